{{ config(materialized='table') }}

with

orders as (

    select * from {{ ref('stg_orders') }}

),

events as (

    select * from {{ ref('stg_events') }}

),

placed as (

    -- the order_placed event stg_orders kept for each order (the first, when an order was sent twice)
    select
        orders.order_id,
        orders.customer_id,
        orders.ordered_at,
        events.properties
    from orders
    inner join events
        on orders.event_id = events.event_id
    where events.event_type = 'order_placed'

),

elements as (

    select *
    from {{ flowhouse.json_array_elements(
        'placed', 'properties', 'lines', ['order_id', 'customer_id', 'ordered_at']
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
        ordered_at
    from elements

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
        ordered_at
    from lines

)

select * from final
