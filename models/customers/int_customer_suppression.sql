{{
    config(
        materialized='incremental',
        unique_key='customer_id',
        incremental_strategy='delete+insert',
        on_schema_change='append_new_columns'
    )
}}

{#- Global suppression per channel, as of the build's now: the first hard bounce or complaint a provider
    reported (message_bounced, message_complained with properties.channel). A bounce whose bounce_type
    says `soft` (a full mailbox, a server down for a while) does not suppress; one without a bounce_type
    does, since the provider did not call it temporary.
    Incremental by what changed (macros/incremental.sql): a build recomputes the customers with a bounce
    or complaint loaded since its last one, or whose event's time the build's now passed, from all of
    their bounces and complaints. -#}

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
    where event_type in ('message_bounced', 'message_complained')
        and {{ flowhouse.changed_since(marks, 'loaded_at', ['occurred_at', 'loaded_at'], now) }}

),

{%- endif %}

known_engagement as (

    select
        events.customer_id,
        events.event_type,
        lower(trim({{ flowhouse.json_text('events.properties', 'channel') }})) as channel,
        lower(trim({{ flowhouse.json_text('events.properties', 'bounce_type') }})) as bounce_type,
        events.occurred_at
    from events
    cross join as_of
    where events.event_type in ('message_bounced', 'message_complained')
        and events.customer_id is not null
        and events.occurred_at <= as_of.now_at
        and events.loaded_at <= as_of.now_at
        {%- if marks %}
        and events.customer_id in (select customer_id from changed)
        {%- endif %}

),

flagged as (

    select
        customer_id,
        channel,
        occurred_at,
        event_type = 'message_complained' or coalesce(bounce_type, '') <> 'soft' as is_suppressing
    from known_engagement

),

per_customer as (

    select
        customer_id,
        min(case when is_suppressing and channel = 'email' then occurred_at end)
            as email_suppressed_at,
        min(case when is_suppressing and channel = 'sms' then occurred_at end)
            as sms_suppressed_at,
        {{ now }} as refreshed_at,
        {{ flowhouse.loaded_through(ref('stg_events'), 'loaded_at', marks) }} as loaded_through
    from flagged
    group by customer_id

),

final as (

    -- filtered after grouping: a filter on the JSON before it would be pushed into the scan, where
    -- DuckDB evaluates the JSON ahead of event_type, over the whole stream
    select *
    from per_customer
    where email_suppressed_at is not null
        or sms_suppressed_at is not null

)

select * from final
