{{
    config(
        materialized='incremental',
        unique_key='order_id',
        incremental_strategy='delete+insert',
        on_schema_change='append_new_columns',
        pre_hook="{{ flowhouse.forget_when_now_went_back() }}"
    )
}}

{#- Incremental by what changed (macros/incremental.sql): a build rewrites the lines of the orders whose
    kept placement was loaded since its last one (a refund changes no line). -#}

{%- set marks = flowhouse.incremental_marks() %}

with

orders as (

    {{ flowhouse.changed_rows(ref('stg_orders'), 'loaded_at', [], marks) }}

),

events as (

    {{ flowhouse.changed_rows(ref('stg_events'), 'loaded_at', [], marks, "event_type = 'order_placed'") }}

),

placed as (

    -- the order_placed event stg_orders kept for each order (the first, when an order was sent twice)
    select
        orders.order_id,
        orders.customer_id,
        orders.ordered_at,
        orders.loaded_at,
        events.properties
    from orders
    inner join events
        on orders.event_id = events.event_id
    where events.event_type = 'order_placed'

),

elements as (

    select *
    from {{ flowhouse.json_array_elements(
        'placed', 'properties', 'lines', ['order_id', 'customer_id', 'ordered_at', 'loaded_at']
    ) }} as order_lines

),

lines as (

    select
        order_id,
        position as line_number,
        customer_id,
        {{ flowhouse.json_text('value', 'sku') }} as sku,
        {{ flowhouse.json_number('value', 'quantity') }} as quantity,
        {{ flowhouse.json_money('value', 'price') }} as price,
        nullif(trim({{ flowhouse.json_text('value', 'category') }}), '') as category,
        {{ flowhouse.json_money('value', 'cost') }} as cost,
        ordered_at,
        loaded_at
    from elements

),

stamps as (

    select
        {{ flowhouse.flowhouse_now() }} as refreshed_at,
        {{ flowhouse.loaded_through(ref('stg_orders'), 'loaded_at', marks) }} as loaded_through

),

final as (

    select
        {{ flowhouse.surrogate_key(['order_id', 'line_number']) }} as order_line_id,
        order_id,
        cast(line_number as integer) as line_number,
        customer_id,
        sku,
        cast(coalesce(quantity, 1) as integer) as quantity,
        price,
        {{ flowhouse.money(
            'case when abs(coalesce(quantity, 1) * price) < 1e15 then coalesce(quantity, 1) * price end'
        ) }} as line_value,
        category,
        cost,
        ordered_at,
        loaded_at,
        stamps.refreshed_at,
        stamps.loaded_through
    from lines
    cross join stamps

)

select * from final
