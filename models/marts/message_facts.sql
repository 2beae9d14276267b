{{ config(materialized='incremental', unique_key='message_id', incremental_strategy='delete+insert') }}

{#- One row per message or action in the outbox: what the engine decided, what activation did, what the
    customer did with it (from the engagement events carrying its message_id) and the orders attributed
    to it. Incremental: a build redoes every message of the customers whose messages, enrollments or
    events changed since the last one. -#}

with

messages as (

    select * from {{ source('flowhouse', 'messages') }}
    {% if is_incremental() %}
    where customer_id in ({{ flowhouse.marts_changed_customers() }})
    {% endif %}

),

send_checks as (

    select distinct detail as message_id
    from {{ source('flowhouse', 'decisions') }}
    where step_kind = 'send_check'

),

engagement as (

    select
        {{ flowhouse.json_text('properties', 'message_id') }} as message_id,
        min(case when event_type = 'message_delivered' then occurred_at end) as delivered_event_at,
        min(case when event_type = 'message_opened' then occurred_at end) as first_opened_at,
        count(case when event_type = 'message_opened' then 1 end) as opens,
        min(case when event_type = 'message_clicked' then occurred_at end) as first_clicked_at,
        count(case when event_type = 'message_clicked' then 1 end) as clicks,
        min(case when event_type = 'message_bounced' then occurred_at end) as bounced_at,
        min(case when event_type = 'message_complained' then occurred_at end) as complained_at,
        min(case when event_type = 'message_dismissed' then occurred_at end) as dismissed_at,
        min(case when event_type = 'unsubscribed' then occurred_at end) as unsubscribed_at
    from {{ ref('stg_events') }}
    where {{ flowhouse.event_types_in('event_type', [
            'message_delivered', 'message_opened', 'message_clicked', 'message_bounced',
            'message_complained', 'message_dismissed', 'unsubscribed'
        ]) }}
        and customer_id in (select customer_id from messages)
    group by 1

),

attributed as (

    select message_id, count(*) as attributed_orders, sum(order_value) as attributed_revenue
    from {{ ref('order_attribution') }}
    group by message_id

),

final as (

    select
        messages.message_id,
        messages.enrollment_id,
        messages.flow_id,
        messages.flow_version,
        messages.step_id,
        messages.customer_id,
        messages.channel,
        messages.kind,
        messages.is_marketing,
        messages.variant,
        messages.status = 'held_out' as is_holdout,
        messages.template,
        messages.subject,
        messages.destination,
        messages.status,
        messages.skip_reason,
        case
            when messages.status <> 'skipped' then null
            when send_checks.message_id is not null then 'send'
            else 'queue'
        end as skip_stage,
        messages.status <> 'held_out'
            and (messages.status <> 'skipped' or send_checks.message_id is not null) as is_queued,
        messages.failure_reason,
        messages.due_at,
        messages.queued_at,
        messages.sent_at,
        coalesce(messages.delivered_at, engagement.delivered_event_at) as delivered_at,
        {{ flowhouse.store_date('messages.due_at') }} as day,
        messages.sent_at is not null as is_sent,
        messages.sent_at is not null
            and coalesce(messages.delivered_at, engagement.delivered_event_at) is not null
            as is_delivered,
        messages.status = 'bounced' or engagement.bounced_at is not null as is_bounced,
        engagement.first_opened_at,
        coalesce(engagement.opens, 0) as opens,
        engagement.first_clicked_at,
        coalesce(engagement.clicks, 0) as clicks,
        engagement.first_opened_at is not null as is_opened,
        engagement.first_clicked_at is not null as is_clicked,
        engagement.bounced_at,
        engagement.unsubscribed_at,
        engagement.complained_at,
        engagement.dismissed_at,
        engagement.dismissed_at is not null as is_dismissed,
        coalesce(attributed.attributed_orders, 0) as attributed_orders,
        {{ flowhouse.money('coalesce(attributed.attributed_revenue, 0)') }} as attributed_revenue,
        {{ flowhouse.marts_watermarks() }}
    from messages
    left join send_checks on send_checks.message_id = messages.message_id
    left join engagement on engagement.message_id = messages.message_id
    left join attributed on attributed.message_id = messages.message_id

)

select * from final
