{{
    config(
        materialized='incremental',
        incremental_strategy='append',
        enabled=flowhouse.derived_is_enabled('milestone_order'),
        post_hook=flowhouse.marks_post_hooks(),
    )
}}

{#- An order whose number reaches one of order_milestones (3rd, 5th, 10th, 25th order by default),
    counting the customer's orders in the order the warehouse learned of them (derived_numbered_orders).
    occurred_at is the order's; loaded_at = greatest(occurred_at, the order's loaded_at): the orders
    numbering it were loaded before it. Reads the orders of int_order_placements loaded after
    derived_window_since() (macros/derived_orders.sql). -#}
{%- set marks = flowhouse.take_marks(ref('int_order_placements'), 'loaded_through', through_now=true) %}

{%- set milestones = var('order_milestones') | map('int') | list %}

with

as_of as (

    select {{ flowhouse.flowhouse_now() }} as now_at

),

new_orders as (

    {{ flowhouse.derived_numbered_orders(flowhouse.derived_window_since()) }}

),

derived as (

    select
        {{ flowhouse.derived_event_id('milestone_order', ['new_orders.order_id']) }} as event_id,
        new_orders.customer_id,
        cast('milestone_order' as {{ dbt.type_string() }}) as event_type,
        new_orders.occurred_at,
        greatest(new_orders.occurred_at, new_orders.loaded_at) as loaded_at,
        {{ flowhouse.json_object_of({
            'order_id': 'new_orders.order_id',
            'order_number': 'cast(new_orders.order_number as integer)',
        }) }} as properties
    from new_orders
    cross join as_of
    where new_orders.order_number in ({{ milestones | join(', ') }})
        and greatest(new_orders.occurred_at, new_orders.loaded_at) <= as_of.now_at

),

final as (

    {{ flowhouse.derived_new_events('derived') }}

)

select * from final
