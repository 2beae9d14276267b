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
    Incremental by what changed (macros/incremental.sql): the view and cart times are latest times, so a
    build reads only the views and cart additions that changed (loaded since its last build, or whose
    time its now passed) and keeps, per customer and sku, the later of the row it had and theirs;
    last_ordered_at is recomputed, for the customers with a changed row or a changed order (a replayed
    order may move an order earlier), from their orders and order lines (per-order tables, read by
    customer, never the event stream). -#}

{%- set marks = flowhouse.incremental_marks() %}
{%- set now = flowhouse.flowhouse_now() %}

with

events as (

    -- the views and cart additions known at the build's now (those that changed, when incremental)
    {{ flowhouse.changed_rows(
        ref('stg_events'), 'loaded_at', ['occurred_at', 'loaded_at'], marks,
        flowhouse.event_types_in('event_type', ['product_viewed', 'added_to_cart'])
        ~ " and customer_id is not null",
        known=['occurred_at', 'loaded_at']
    ) }}

),

changed_orders as (

    -- the orders placed and loaded by the build's now that changed (every one, with no marks)
    {{ flowhouse.changed_rows(
        ref('stg_orders'), 'loaded_at', ['ordered_at', 'loaded_at'], marks,
        'customer_id is not null', known=['ordered_at', 'loaded_at']
    ) }}

),

changed as (

    select customer_id from events
    union
    select customer_id from changed_orders

),

orders as (

    -- the orders placed and loaded by the build's now (of the changed customers, when incremental;
    -- order lines carry no loaded_at: the order has it)
    {{ flowhouse.rows_of_changed_keys(
        ref('stg_orders'), 'customer_id', 'changed', marks, known=['ordered_at', 'loaded_at']
    ) }}

),

order_lines as (

    {{ flowhouse.rows_of_changed_keys(ref('stg_order_lines'), 'customer_id', 'changed', marks) }}

),

known_interest_events as (

    select
        events.customer_id,
        events.event_type,
        {{ flowhouse.json_text('events.properties', 'sku') }} as sku,
        events.occurred_at
    from events

),

interest_read as (

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

interest as (

    {%- if marks %}
    -- the later of each pair's kept row and its changed events
    select
        customer_id,
        sku,
        max(last_viewed_at) as last_viewed_at,
        max(last_carted_at) as last_carted_at
    from (
        select customer_id, sku, last_viewed_at, last_carted_at from interest_read
        union all
        select customer_id, sku, last_viewed_at, last_carted_at
        from {{ this }}
        where customer_id in (select customer_id from changed)
    ) as merged
    group by customer_id, sku
    {%- else %}
    select * from interest_read
    {%- endif %}

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
