{{
    config(
        materialized='incremental',
        unique_key='event_id',
        incremental_strategy='delete+insert',
        on_schema_change='append_new_columns',
        pre_hook="{{ flowhouse.forget_when_now_went_back() }}",
        post_hook=flowhouse.marks_post_hooks(),
    )
}}

{#- One row per order_refunded event, its order and amount read from the JSON once: stg_orders sums an
    order's refunds from here, a per-order lookup, instead of re-reading every refund in the event
    stream for each order that changed. Incremental by what changed (macros/incremental.sql): a build
    appends the refunds loaded since its last one (a refund read again replaces its row). -#}

{%- set marks = flowhouse.take_marks(ref('stg_events')) %}

with

refunds as (

    {{ flowhouse.changed_rows(ref('stg_events'), 'loaded_at', [], marks, "event_type = 'order_refunded'") }}

),

final as (

    select
        event_id,
        {{ flowhouse.json_text('properties', 'order_id') }} as order_id,
        customer_id,
        {{ flowhouse.json_money('properties', 'amount') }} as amount,
        occurred_at,
        loaded_at,
        {{ flowhouse.flowhouse_now() }} as refreshed_at,
        {{ flowhouse.loaded_through(ref('stg_events'), 'loaded_at', marks) }} as loaded_through
    from refunds

)

select * from final
