{{ config(meta={'dagster': {'ref': {'name': 'order_attribution'}}}) }}

{#- Attributed revenue equals the orders it attributes: the revenue flow_daily, flow_steps and
    message_facts report equals the value of the distinct orders in order_attribution, which equals
    their value in stg_orders. Returns one row per total that differs. -#}

with

totals as (

    select 'flow_daily' as source, sum(attributed_revenue) as revenue from {{ ref('flow_daily') }}
    union all
    select 'flow_steps', sum(attributed_revenue) from {{ ref('flow_steps') }}
    union all
    select 'message_facts', sum(attributed_revenue) from {{ ref('message_facts') }}
    where kind = 'message'
    union all
    select 'enrollment_facts', sum(attributed_revenue) from {{ ref('enrollment_facts') }}

),

orders as (

    select coalesce(sum(orders.order_value), 0) as revenue
    from {{ ref('stg_orders') }} as orders
    where orders.order_id in (select order_id from {{ ref('order_attribution') }})

)

select totals.source, totals.revenue, orders.revenue as attributed_orders_revenue
from totals
cross join orders
where coalesce(totals.revenue, 0) <> orders.revenue
