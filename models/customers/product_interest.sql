{{
    config(
        materialized='incremental',
        unique_key='customer_id',
        incremental_strategy='delete+insert',
        on_schema_change='append_new_columns',
        pre_hook="{{ flowhouse.forget_when_now_went_back() }}"
    )
}}

{#- Who is interested in which sku, as of the build's now: the table catalog events (back_in_stock,
    price_dropped, low_stock: no customer, properties.sku) are joined against to fan them out. One pass
    over the views and cart additions, grouped by customer and sku; orders only add last_ordered_at to
    those pairs (a purchase alone is not interest: docs/events.md fans out to who viewed or carted).
    Incremental by what changed (macros/incremental.sql): a build recomputes every sku of the customers
    with a view, a cart addition or an order loaded since its last one, or whose event or order time
    the build's now passed, from all of their events and orders. -#}

{%- set marks = flowhouse.incremental_marks() %}
{%- set now = flowhouse.flowhouse_now() %}

with

changed as (

    {{ flowhouse.changed_keys('customer_id', [
        {'relation': ref('stg_events'), 'loaded': 'loaded_at', 'times': ['occurred_at', 'loaded_at'],
         'where': "event_type in ('product_viewed', 'added_to_cart')"},
        {'relation': ref('stg_orders'), 'loaded': 'loaded_at', 'times': ['ordered_at', 'loaded_at']},
    ], marks) }}

),

events as (

    -- the views and cart additions known at the build's now (of the changed customers, when
    -- incremental)
    {{ flowhouse.rows_of_changed_keys(
        ref('stg_events'), 'customer_id', 'changed', marks,
        "event_type in ('product_viewed', 'added_to_cart') and customer_id is not null",
        known=['occurred_at', 'loaded_at']
    ) }}

),

orders as (

    -- the orders placed and loaded by the build's now (of the changed customers, when incremental;
    -- order lines carry no loaded_at: the order has it)
    {{ flowhouse.rows_of_changed_keys(
        ref('stg_orders'), 'customer_id', 'changed', marks, known=['ordered_at', 'loaded_at']
    ) }}

),

order_lines as (

    select * from {{ ref('stg_order_lines') }}

),

known_interest_events as (

    select
        events.customer_id,
        events.event_type,
        {{ flowhouse.json_text('events.properties', 'sku') }} as sku,
        events.occurred_at
    from events

),

interest as (

    select
        customer_id,
        sku,
        max(case when event_type = 'product_viewed' then occurred_at end) as last_viewed_at,
        max(case when event_type = 'added_to_cart' then occurred_at end) as last_carted_at
    from known_interest_events
    group by customer_id, sku
    -- drops the events without a sku after grouping: a `sku is not null` before it would be pushed into
    -- the scan, where DuckDB evaluates the JSON ahead of event_type, over the whole stream
    having count(sku) > 0

),

ordered as (

    select
        order_lines.customer_id,
        order_lines.sku,
        max(orders.ordered_at) as last_ordered_at
    from order_lines
    inner join orders
        on order_lines.order_id = orders.order_id
    where order_lines.customer_id is not null
        and order_lines.sku is not null
    group by order_lines.customer_id, order_lines.sku

),

stamps as (

    select
        {{ now }} as refreshed_at,
        {{ flowhouse.loaded_through(ref('stg_events'), 'loaded_at', marks) }} as loaded_through

),

final as (

    select
        interest.customer_id,
        interest.sku,
        interest.last_viewed_at,
        interest.last_carted_at,
        ordered.last_ordered_at,
        -- greatest() of a null is null on some warehouses (Snowflake): coalesce each side first
        greatest(
            coalesce(interest.last_viewed_at, interest.last_carted_at),
            coalesce(interest.last_carted_at, interest.last_viewed_at)
        ) as last_interest_at,
        stamps.refreshed_at,
        stamps.loaded_through
    from interest
    cross join stamps
    left join ordered
        on interest.customer_id = ordered.customer_id
        and interest.sku = ordered.sku

)

select * from final
