{{
    config(
        materialized='incremental',
        unique_key='customer_id',
        incremental_strategy='delete+insert',
        on_schema_change='append_new_columns',
        pre_hook="{{ flowhouse.forget_when_now_went_back() }}"
    )
}}

{%- set activity_types = var('activity_event_types') %}

{#- The latest activity and delivery per customer, as of the build's now. Incremental by what changed
    (macros/incremental.sql): both are latest times, so a build reads only the events that changed
    (loaded since its last build, or whose time its now passed) and keeps, per customer, the later of
    the row it had and theirs. What counts against now alone (the deliveries of the last 14 and 30
    days) is int_customer_activity's, a view. -#}

{%- set marks = flowhouse.incremental_marks() %}
{%- set now = flowhouse.flowhouse_now() %}

with

known_events as (

    -- the events known at the build's now (those that changed, when incremental)
    {{ flowhouse.changed_rows(
        ref('stg_events'), 'loaded_at', ['occurred_at', 'loaded_at'], marks,
        'customer_id is not null', known=['occurred_at', 'loaded_at']
    ) }}

),

latest as (

    -- one pass over the stream (the changed rows on an incremental build), grouped by customer
    select
        customer_id,
        max(
            case
                when {{ flowhouse.event_types_in('event_type', activity_types) }} then occurred_at
            end
        ) as last_activity_at,
        max(case when event_type = 'message_delivered' then occurred_at end)
            as last_message_delivered_at,
        {{ now }} as refreshed_at
    from known_events
    group by customer_id

),

final as (

    select
        latest.customer_id,
        {%- if marks %}
        {{ flowhouse.later('latest.last_activity_at', 'kept.last_activity_at') }} as last_activity_at,
        {{ flowhouse.later('latest.last_message_delivered_at', 'kept.last_message_delivered_at') }}
            as last_message_delivered_at,
        {%- else %}
        latest.last_activity_at,
        latest.last_message_delivered_at,
        {%- endif %}
        latest.refreshed_at,
        {{ flowhouse.loaded_through(ref('stg_events'), 'loaded_at', marks) }} as loaded_through
    from latest
    {%- if marks %}
    left join {{ this }} as kept
        on latest.customer_id = kept.customer_id
    {%- endif %}

)

select * from final
