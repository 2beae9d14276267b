{{ config(materialized='table') }}

with

events as (

    select * from {{ ref('stg_events') }}

),

placed as (

    select
        {{ flowhouse.json_text('properties', 'order_id') }} as order_id,
        customer_id,
        event_id,
        occurred_at,
        loaded_at,
        properties
    from events
    where event_type = 'order_placed'

),

numbered as (

    -- an order sent twice (a replayed event) counts once: its first event
    select
        *,
        row_number() over (partition by order_id order by occurred_at, event_id) as placement_number
    from placed
    where order_id is not null

),

refunds as (

    select
        {{ flowhouse.json_text('properties', 'order_id') }} as order_id,
        sum(coalesce({{ flowhouse.json_money('properties', 'amount') }}, 0)) as refunded_amount,
        max(occurred_at) as refunded_at
    from events
    where event_type = 'order_refunded'
        and {{ flowhouse.json_text('properties', 'order_id') }} is not null
    group by 1

),

orders as (

    select
        order_id,
        customer_id,
        event_id,
        {{ flowhouse.json_text('properties', 'cart_id') }} as cart_id,
        occurred_at as ordered_at,
        loaded_at,
        {{ flowhouse.json_text('properties', 'currency') }} as currency,
        coalesce({{ flowhouse.json_money('properties', 'subtotal') }}, 0) as subtotal,
        coalesce({{ flowhouse.json_money('properties', 'discount') }}, 0) as discount,
        coalesce({{ flowhouse.json_money('properties', 'shipping') }}, 0) as shipping,
        {{ flowhouse.json_money('properties', 'value') }} as reported_value,
        nullif(trim({{ flowhouse.json_text('properties', 'coupon_code') }}), '') as coupon_code
    from numbered
    where placement_number = 1

),

final as (

    select
        orders.order_id,
        orders.customer_id,
        orders.event_id,
        orders.cart_id,
        orders.ordered_at,
        orders.loaded_at,
        orders.currency,
        {{ flowhouse.money('orders.subtotal') }} as subtotal,
        {{ flowhouse.money('orders.discount') }} as discount,
        {{ flowhouse.money('orders.shipping') }} as shipping,
        {{ flowhouse.money(
            'coalesce(orders.reported_value, orders.subtotal - orders.discount + orders.shipping)'
        ) }} as order_value,
        orders.coupon_code,
        orders.discount > 0 or orders.coupon_code is not null as is_discounted,
        {{ flowhouse.money('coalesce(refunds.refunded_amount, 0)') }} as refunded_amount,
        refunds.order_id is not null as is_refunded,
        refunds.refunded_at
    from orders
    left join refunds
        on orders.order_id = refunds.order_id

)

select * from final
