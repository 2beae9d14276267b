{{
    config(
        materialized='incremental',
        unique_key='order_id',
        incremental_strategy='delete+insert',
        on_schema_change='append_new_columns',
        pre_hook="{{ flowhouse.forget_when_now_went_back() }}"
    )
}}

{#- Incremental by what changed (macros/incremental.sql): a build re-reads the order events loaded since
    its last one; an order with a new placement (a replayed one too) or a new refund is rewritten, its
    first placement chosen between the row it had and the new events, its refunds summed over all of
    its refund events (stg_order_refunds, by order). -#}

{%- set marks = flowhouse.incremental_marks() %}

with

order_events as (

    select
        {{ flowhouse.json_text('properties', 'order_id') }} as order_id,
        customer_id,
        event_id,
        event_type,
        occurred_at,
        loaded_at,
        properties
    from ({{ flowhouse.changed_rows(
        ref('stg_events'), 'loaded_at', [], marks,
        flowhouse.event_types_in('event_type', ['order_placed', 'order_refunded'])
    ) }}) as changed_events

),

placed as (

    select *
    from order_events
    where event_type = 'order_placed'
        and order_id is not null

),

candidates as (

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
    from placed
    {%- if marks %}

    union all

    -- the placement each changed order kept so far
    select
        order_id,
        customer_id,
        event_id,
        cart_id,
        ordered_at,
        loaded_at,
        currency,
        subtotal,
        discount,
        shipping,
        order_value as reported_value,
        coupon_code
    from {{ this }}
    where order_id in (select order_id from order_events)
    {%- endif %}

),

numbered as (

    -- an order sent twice (a replayed event) counts once: its first event
    select
        *,
        row_number() over (partition by order_id order by ordered_at, event_id) as placement_number
    from candidates

),

orders as (

    select * from numbered where placement_number = 1

),

refund_events as (

    -- the refunds of the orders that changed (every refund, with no marks), however long ago they were
    -- loaded: a lookup by order in stg_order_refunds, not a re-read of the event stream
    select order_id, amount, occurred_at, loaded_at
    from {{ ref('stg_order_refunds') }}
    where order_id is not null
    {%- if marks %}
        and order_id in (select order_id from order_events)
    {%- endif %}

),

refunds as (

    select
        order_id,
        sum(coalesce(amount, 0)) as refunded_amount,
        max(occurred_at) as refunded_at,
        max(loaded_at) as refunds_loaded_at
    from refund_events
    group by 1

),

stamps as (

    select
        {{ flowhouse.flowhouse_now() }} as refreshed_at,
        {{ flowhouse.loaded_through(ref('stg_events'), 'loaded_at', marks) }} as loaded_through

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
        refunds.refunded_at,
        greatest(orders.loaded_at, coalesce(refunds.refunds_loaded_at, orders.loaded_at))
            as last_loaded_at,
        stamps.refreshed_at,
        stamps.loaded_through
    from orders
    cross join stamps
    left join refunds
        on orders.order_id = refunds.order_id

)

select * from final
