{{
    config(
        materialized='incremental',
        unique_key='customer_id',
        incremental_strategy='delete+insert',
        on_schema_change='append_new_columns'
    )
}}

{%- set activity_types = var('activity_event_types') %}

{#- The latest activity and delivery per customer, as of the build's now. Incremental by what changed
    (macros/incremental.sql): a build recomputes the customers with an event loaded since its last one,
    or whose event's time the build's now passed, from all of their events. What counts against now
    alone (the deliveries of the last 14 and 30 days) is int_customer_activity's, a view. -#}

{%- set marks = flowhouse.incremental_marks() %}
{%- set now = flowhouse.flowhouse_now() %}

with

events as (

    select * from {{ ref('stg_events') }}

),

as_of as (

    select {{ now }} as now_at

),

{%- if marks %}

changed as (

    select distinct customer_id
    from events
    where {{ flowhouse.changed_since(marks, 'loaded_at', ['occurred_at', 'loaded_at'], now) }}

),

{%- endif %}

known_events as (

    select
        events.customer_id,
        events.event_type,
        events.occurred_at,
        as_of.now_at
    from events
    cross join as_of
    where events.customer_id is not null
        and events.occurred_at <= as_of.now_at
        and events.loaded_at <= as_of.now_at
        {%- if marks %}
        and events.customer_id in (select customer_id from changed)
        {%- endif %}

),

final as (

    -- one pass over the stream, grouped by customer
    select
        customer_id,
        max(
            case
                when event_type in ('{{ activity_types | join("', '") }}') then occurred_at
            end
        ) as last_activity_at,
        max(case when event_type = 'message_delivered' then occurred_at end)
            as last_message_delivered_at,
        max(now_at) as refreshed_at,
        {{ flowhouse.loaded_through(ref('stg_events'), 'loaded_at', marks) }} as loaded_through
    from known_events
    group by customer_id

)

select * from final
