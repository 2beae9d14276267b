{{
    config(
        materialized='incremental',
        unique_key='customer_id',
        incremental_strategy='delete+insert',
        on_schema_change='append_new_columns',
        pre_hook="{{ flowhouse.forget_when_now_went_back() }}"
    )
}}

{#- Incremental by what changed (macros/incremental.sql): a build recomputes the customers with an order
    placed, refunded or loaded since its last one, or whose order or refund time the build's now passed,
    from all of their orders. -#}

{%- set marks = flowhouse.incremental_marks() %}
{%- set now = flowhouse.flowhouse_now() %}

with

changed as (

    {{ flowhouse.changed_keys('customer_id', [{
        'relation': ref('stg_orders'), 'loaded': 'last_loaded_at',
        'times': ['ordered_at', 'loaded_at', 'refunded_at'],
    }], marks) }}

),

orders as (

    -- the orders known at the build's now (of the changed customers, when incremental)
    {{ flowhouse.rows_of_changed_keys(
        ref('stg_orders'), 'customer_id', 'changed', marks,
        'customer_id is not null', known=['ordered_at', 'loaded_at']
    ) }}

),

known_orders as (

    -- a refund counts once its latest part happened by the build's now
    select
        orders.order_id,
        orders.customer_id,
        orders.ordered_at,
        orders.order_value,
        orders.is_discounted,
        case
            when orders.refunded_at <= {{ now }} then orders.refunded_amount else 0
        end as refunded_amount
    from orders

),

numbered as (

    select
        *,
        row_number() over (
            partition by customer_id order by ordered_at, order_id
        ) as order_number,
        row_number() over (
            partition by customer_id order by ordered_at desc, order_id desc
        ) as reverse_order_number
    from known_orders

),

final as (

    select
        customer_id,
        cast(count(*) as integer) as order_count,
        min(ordered_at) as first_order_at,
        {{ flowhouse.money('max(case when order_number = 1 then order_value end)') }}
            as first_order_value,
        max(ordered_at) as last_order_at,
        {{ flowhouse.money('max(case when reverse_order_number = 1 then order_value end)') }}
            as last_order_value,
        {{ flowhouse.money('sum(order_value)') }} as gross_revenue,
        {{ flowhouse.money('sum(refunded_amount)') }} as refunded_amount,
        {{ flowhouse.money('sum(order_value) - sum(refunded_amount)') }} as net_revenue,
        cast(sum(case when is_discounted then 1 else 0 end) as integer) as discounted_order_count,
        {{ now }} as refreshed_at,
        {{ flowhouse.loaded_through(ref('stg_orders'), 'last_loaded_at', marks) }}
            as loaded_through
    from numbered
    group by customer_id

)

select * from final
