{{
    config(
        materialized='incremental',
        incremental_strategy='append',
        enabled=flowhouse.derived_is_enabled('purchase_anniversary'),
        post_hook=flowhouse.marks_post_hooks(),
    )
}}

{#- The yearly return of the day of a customer's first purchase (the order first_purchase fires for), at
    00:00 UTC; 29 February falls on 28 February in other years. loaded_at = greatest(the anniversary, the
    first order's loaded_at). An incremental build emits the anniversaries whose loaded_at falls after
    derived_window_since() and by now; a full build every one since the first order. The
    first orders are int_order_placements' rows with order_number 1 (one per buyer), never the stream. -#}
{%- set marks = flowhouse.take_marks(ref('int_order_placements'), 'loaded_through', through_now=true) %}

{%- set since = flowhouse.derived_window_since() %}

with

as_of as (

    select {{ flowhouse.flowhouse_now() }} as now_at

),

first_orders as (

    -- each buyer's first order (int_order_placements: one row per customer, order_number 1)
    select
        customer_id,
        occurred_at as first_order_at,
        loaded_at as first_order_loaded_at
    from {{ ref('int_order_placements') }}
    cross join as_of
    where order_number = 1
        and loaded_at <= as_of.now_at

),

year_bounds as (

    select
        greatest(
            min(extract(year from first_orders.first_order_at)) + 1,
            extract(year from {{ since }})
        ) as first_year,
        extract(year from max(as_of.now_at)) as last_year
    from first_orders
    cross join as_of

),

years as (

    select {{ flowhouse.derived_integer_series('first_year', 'last_year') }} as year_number
    from year_bounds

),

anniversaries as (

    select
        first_orders.customer_id,
        first_orders.first_order_at,
        cast(years.year_number - extract(year from first_orders.first_order_at) as integer) as years,
        years.year_number,
        {{ flowhouse.derived_yearly_occurrence('first_orders.first_order_at', 'years.year_number') }}
            as anniversary_at,
        first_orders.first_order_loaded_at
    from first_orders
    inner join years
        on years.year_number > extract(year from first_orders.first_order_at)

),

due as (

    select
        anniversaries.*,
        greatest(anniversaries.anniversary_at, anniversaries.first_order_loaded_at) as decided_at
    from anniversaries

),

derived as (

    select
        {{ flowhouse.derived_event_id('purchase_anniversary', ['due.customer_id', 'due.year_number']) }}
            as event_id,
        due.customer_id,
        cast('purchase_anniversary' as {{ dbt.type_string() }}) as event_type,
        due.anniversary_at as occurred_at,
        due.decided_at as loaded_at,
        {{ flowhouse.json_object_of({
            'first_order_at': flowhouse.derived_iso_timestamp('due.first_order_at'),
            'years': 'due.years',
        }) }} as properties
    from due
    cross join as_of
    where due.decided_at <= as_of.now_at
        and due.decided_at > {{ since }}

),

final as (

    {{ flowhouse.derived_new_events('derived') }}

)

select * from final
