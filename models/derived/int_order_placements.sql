{{
    config(
        materialized='incremental',
        incremental_strategy='append',
        on_schema_change='append_new_columns',
        pre_hook="{{ flowhouse.forget_when_now_went_back() }}",
        post_hook=flowhouse.marks_post_hooks(),
    )
}}

{#- Every order_placed event of a customer known at the build's now, once, in the order the warehouse
    learned of them: the state the order- and time-driven derivations read by key and by a bounded
    range instead of the event stream (first_purchase, repeat_purchase, milestone_order,
    high_value_order, purchase_anniversary, replenishment_due; macros/derived_orders.sql).

    order_id is properties.order_id (the event id when missing). The first placement of each order_id
    in arrival order (loaded_at, then occurred_at, then event_id) carries order_number: its rank among
    the customer's orders in that order, which later loads cannot change; a replayed placement has
    none. An incremental build appends the placements loaded since its last one (macros/incremental.sql:
    loaded_at at or after the newest loaded_through, at most now), numbering the new orders after the
    customer's orders it holds; a build at an earlier now starts again from nothing. -#}

{%- set marks = flowhouse.take_marks(ref('stg_events'), through_now=true) %}
{%- set now = flowhouse.flowhouse_now() %}

with

placed as (

    select
        event_id,
        coalesce({{ flowhouse.json_text('properties', 'order_id') }}, event_id) as order_id,
        customer_id,
        occurred_at,
        loaded_at,
        properties
    from ({{ flowhouse.changed_rows(
        ref('stg_events'), 'loaded_at', [], marks,
        "event_type = 'order_placed' and customer_id is not null", known=['loaded_at']
    ) }}) as changed_events
    {%- if marks %}
    -- rows loaded in the instant of the last mark are read again: keep what the table holds
    where not exists (
        select 1 from {{ this }} as kept
        where kept.loaded_at >= {{ marks.loaded }} and kept.event_id = changed_events.event_id
    )
    {%- endif %}

),

new_orders as (

    -- the first placement of each order the table does not hold yet
    select * from (
        select
            placed.*,
            row_number() over (
                partition by placed.order_id
                order by placed.loaded_at, placed.occurred_at, placed.event_id
            ) as placement_number
        from placed
        {%- if marks %}
        where not exists (
            select 1 from {{ this }} as kept where kept.order_id = placed.order_id
        )
        {%- endif %}
    ) as ranked
    where placement_number = 1

),

orders_before as (

    {%- if marks %}
    -- the orders each customer with a new one already has
    select customer_id, count(*) as order_count
    from {{ this }}
    where order_number is not null
        and customer_id in (select customer_id from new_orders)
    group by customer_id
    {%- else %}
    select customer_id, 0 as order_count from new_orders where 1 = 0
    {%- endif %}

),

numbered as (

    select
        new_orders.event_id,
        coalesce(orders_before.order_count, 0) + row_number() over (
            partition by new_orders.customer_id
            order by new_orders.loaded_at, new_orders.occurred_at, new_orders.event_id
        ) as order_number
    from new_orders
    left join orders_before
        on orders_before.customer_id = new_orders.customer_id

),

stamps as (

    {{ flowhouse.stamps(ref('stg_events'), 'loaded_at', marks, through_now=true) }}

),

final as (

    select
        placed.event_id,
        placed.order_id,
        placed.customer_id,
        placed.occurred_at,
        placed.loaded_at,
        placed.properties,
        cast(numbered.order_number as integer) as order_number,
        stamps.refreshed_at,
        stamps.loaded_through
    from placed
    cross join stamps
    left join numbered
        on numbered.event_id = placed.event_id

)

select * from final
