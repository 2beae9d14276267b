{{ config(meta={'dagster': {'ref': {'name': 'enrollment_facts'}}}) }}

{#- Holdout enrollments walk the flow but receive nothing: no message of a holdout enrollment was sent,
    attempted or given to a provider, and none of them is counted as sent in enrollment_facts. Returns
    the offending messages and enrollments. -#}

with

holdout as (

    select enrollment_id from {{ ref('enrollment_facts') }} where is_holdout

),

messages as (

    select message_id, enrollment_id, status, sent_at, provider_message_id
    from {{ source('flowhouse', 'messages') }}
    where enrollment_id in (select enrollment_id from holdout)

),

attempted as (

    select distinct message_id from {{ source('flowhouse', 'send_attempts') }}

)

select messages.enrollment_id, messages.message_id, messages.status
from messages
left join attempted on attempted.message_id = messages.message_id
where messages.status not in ('held_out', 'skipped')
    or messages.sent_at is not null
    or messages.provider_message_id is not null
    or attempted.message_id is not null
union all
select enrollment_id, null, 'counted as sent'
from {{ ref('enrollment_facts') }}
where is_holdout and (messages_sent > 0 or messages_queued > 0)
