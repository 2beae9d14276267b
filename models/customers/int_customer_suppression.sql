{{
    config(
        materialized='incremental',
        unique_key='customer_id',
        incremental_strategy='delete+insert',
        on_schema_change='append_new_columns',
        pre_hook="{{ flowhouse.forget_when_now_went_back() }}",
        post_hook=flowhouse.marks_post_hooks(),
    )
}}

{#- Global suppression per channel, as of the build's now: the first hard bounce or complaint a provider
    reported (message_bounced, message_complained with properties.channel). A bounce whose bounce_type
    says `soft` (a full mailbox, a server down for a while) does not suppress; one without a bounce_type
    does, since the provider did not call it temporary.
    Incremental by what changed (macros/incremental.sql): every column is an earliest time, so a build
    reads only the bounces and complaints that changed (loaded since its last build, or whose time its
    now passed) and keeps, per customer, the earlier of the row it had and theirs. -#}

{%- set marks = flowhouse.take_marks(ref('stg_events')) %}
{%- set now = flowhouse.flowhouse_now() %}
{%- set engagement = flowhouse.event_types_in('event_type', ['message_bounced', 'message_complained']) %}

with

events as (

    -- the bounces and complaints known at the build's now (those that changed, when incremental)
    {{ flowhouse.changed_rows(
        ref('stg_events'), 'loaded_at', ['occurred_at', 'loaded_at'], marks,
        engagement ~ ' and customer_id is not null', known=['occurred_at', 'loaded_at']
    ) }}

),

known_engagement as (

    select
        events.customer_id,
        events.event_type,
        lower(trim({{ flowhouse.json_text('events.properties', 'channel') }})) as channel,
        lower(trim({{ flowhouse.json_text('events.properties', 'bounce_type') }})) as bounce_type,
        events.occurred_at
    from events

),

flagged as (

    select
        customer_id,
        channel,
        occurred_at,
        event_type = 'message_complained' or coalesce(bounce_type, '') <> 'soft' as is_suppressing
    from known_engagement

),

earliest as (

    select
        customer_id,
        min(case when is_suppressing and channel = 'email' then occurred_at end)
            as email_suppressed_at,
        min(case when is_suppressing and channel = 'sms' then occurred_at end)
            as sms_suppressed_at,
        min(case when is_suppressing and channel = 'whatsapp' then occurred_at end)
            as whatsapp_suppressed_at,
        min(case when is_suppressing and channel = 'viber' then occurred_at end)
            as viber_suppressed_at
    from flagged
    group by customer_id

),

per_customer as (

    select
        earliest.customer_id,
        {%- for column in [
            'email_suppressed_at', 'sms_suppressed_at', 'whatsapp_suppressed_at', 'viber_suppressed_at'
        ] %}
        {%- if marks %}
        {{ flowhouse.earlier('earliest.' ~ column, 'kept.' ~ column) }} as {{ column }},
        {%- else %}
        earliest.{{ column }},
        {%- endif %}
        {%- endfor %}
        {{ now }} as refreshed_at,
        {{ flowhouse.loaded_through(ref('stg_events'), 'loaded_at', marks) }} as loaded_through
    from earliest
    {%- if marks %}
    left join {{ this }} as kept
        on earliest.customer_id = kept.customer_id
    {%- endif %}

),

final as (

    -- filtered after grouping: a filter on the JSON before it would be pushed into the scan, where
    -- DuckDB evaluates the JSON ahead of event_type, over the whole stream
    select *
    from per_customer
    where email_suppressed_at is not null
        or sms_suppressed_at is not null
        or whatsapp_suppressed_at is not null
        or viber_suppressed_at is not null

)

select * from final
