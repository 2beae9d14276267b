{{
    config(
        materialized='incremental',
        incremental_strategy='append',
        enabled=flowhouse.derived_is_enabled('high_value_order'),
        post_hook=flowhouse.marks_post_hooks(),
    )
}}

{#- An order (the first order_placed per order_id) whose value (properties.value) is at least
    high_value_order_threshold. occurred_at is the order's; loaded_at = greatest(occurred_at, the order's
    loaded_at). Reads the orders of int_order_placements loaded after
    derived_window_since() (macros/derived_orders.sql). -#}
{%- set marks = flowhouse.take_marks(ref('int_order_placements'), 'loaded_through', through_now=true) %}

with

as_of as (

    select {{ flowhouse.flowhouse_now() }} as now_at

),

new_orders as (

    {{ flowhouse.derived_numbered_orders(flowhouse.derived_window_since()) }}

),

derived as (

    select
        {{ flowhouse.derived_event_id('high_value_order', ['new_orders.order_id']) }} as event_id,
        new_orders.customer_id,
        cast('high_value_order' as {{ dbt.type_string() }}) as event_type,
        new_orders.occurred_at,
        greatest(new_orders.occurred_at, new_orders.loaded_at) as loaded_at,
        {{ flowhouse.json_object_of({
            'order_id': 'new_orders.order_id',
            'value': flowhouse.json_money('new_orders.properties', 'value'),
        }) }} as properties
    from new_orders
    cross join as_of
    where {{ flowhouse.json_number('new_orders.properties', 'value') }} >= {{ var('high_value_order_threshold') }}
        and greatest(new_orders.occurred_at, new_orders.loaded_at) <= as_of.now_at

),

final as (

    {{ flowhouse.derived_new_events('derived') }}

)

select * from final
