{#- One row per flow and day (store time zone), from the flow's first activity to the build's now: entries, ends and
    who is active; messages by what happened to them that day; orders attributed to the flow that day.
    Each count falls on the day its own event happened (a message sent on Monday and opened on Tuesday
    is sent Monday, opened Tuesday). Messages are kind 'message' (actions are not counted). -#}

{%- set entry_metrics = ['triggered', 'enrolled', 'enrolled_treatment', 'enrolled_holdout', 'refused',
    'refused_audience', 'refused_reentry', 'refused_concurrency', 'refused_before_live',
    'refused_duplicate_key', 'refused_paused'] -%}
{%- set message_metrics = ['messages_queued', 'messages_held_out', 'messages_skipped',
    'skipped_no_address', 'skipped_consent', 'skipped_unsubscribed', 'skipped_suppressed', 'skipped_stale',
    'skipped_frequency_cap', 'skipped_smart_sending', 'skipped_quiet_hours', 'skipped_discount_active',
    'skipped_coupon_pool_empty', 'messages_sent', 'messages_delivered', 'messages_opened',
    'messages_clicked', 'messages_bounced', 'messages_unsubscribed', 'messages_failed', 'recipients',
    'conversions'] -%}
{%- set metrics = entry_metrics + ['ended', 'completed', 'exited'] + message_metrics
    + ['goal_conversions'] -%}

with

flows as (

    select flow_id, name as flow_name, went_live_at from {{ source('flowhouse', 'flows') }}

),

entries as (

    select flow_id, {{ flowhouse.store_date('effective_at') }} as day, outcome, reason
    from {{ source('flowhouse', 'decisions') }}
    where step_kind = 'entry'

),

messages as (

    select * from {{ ref('message_facts') }} where kind = 'message'

),

enrollments as (

    select flow_id, status, ended_at, converted_at from {{ ref('enrollment_facts') }}

),

attributed as (

    select flow_id, {{ flowhouse.store_date('ordered_at') }} as day, order_value
    from {{ ref('order_attribution') }}

),

activity as (

    select flow_id, day, 'triggered' as metric, count(*) as value from entries group by 1, 2
    union all
    select flow_id, day, 'enrolled', count(*) from entries where outcome = 'enrolled' group by 1, 2
    union all
    select flow_id, day, 'enrolled_' || reason, count(*) from entries where outcome = 'enrolled'
    group by 1, 2, 3
    union all
    select flow_id, day, 'refused', count(*) from entries where outcome = 'refused' group by 1, 2
    union all
    select flow_id, day, 'refused_' || reason, count(*) from entries where outcome = 'refused'
    group by 1, 2, 3
    union all
    select flow_id, {{ flowhouse.store_date('ended_at') }}, 'ended', count(*) from enrollments
    where ended_at is not null group by 1, 2
    union all
    select flow_id, {{ flowhouse.store_date('ended_at') }}, status, count(*) from enrollments
    where status in ('completed', 'exited') group by 1, 2, 3
    union all
    select flow_id, {{ flowhouse.store_date('converted_at') }}, 'goal_conversions', count(*) from enrollments
    where converted_at is not null group by 1, 2
    union all
    select flow_id, day, 'messages_queued', count(*) from messages where is_queued group by 1, 2
    union all
    select flow_id, day, 'messages_held_out', count(*) from messages where is_holdout group by 1, 2
    union all
    select flow_id, day, 'messages_skipped', count(*) from messages where status = 'skipped'
    group by 1, 2
    union all
    select flow_id, day, 'skipped_' || skip_reason, count(*) from messages where status = 'skipped'
    group by 1, 2, 3
    union all
    select flow_id, day, 'messages_failed', count(*) from messages where status = 'failed'
    group by 1, 2
    union all
    select flow_id, {{ flowhouse.store_date('sent_at') }}, 'messages_sent', count(*) from messages where is_sent
    group by 1, 2
    union all
    select flow_id, {{ flowhouse.store_date('sent_at') }}, 'recipients', count(distinct customer_id) from messages
    where is_sent group by 1, 2
    union all
    select flow_id, {{ flowhouse.store_date('delivered_at') }}, 'messages_delivered', count(*) from messages
    where is_delivered group by 1, 2
    union all
    select flow_id, {{ flowhouse.store_date('first_opened_at') }}, 'messages_opened', count(*) from messages
    where is_opened group by 1, 2
    union all
    select flow_id, {{ flowhouse.store_date('first_clicked_at') }}, 'messages_clicked', count(*) from messages
    where is_clicked group by 1, 2
    union all
    select flow_id, {{ flowhouse.store_date('coalesce(bounced_at, sent_at)') }}, 'messages_bounced', count(*)
    from messages where is_bounced group by 1, 2
    union all
    select flow_id, {{ flowhouse.store_date('unsubscribed_at') }}, 'messages_unsubscribed', count(*) from messages
    where unsubscribed_at is not null group by 1, 2
    union all
    select flow_id, day, 'conversions', count(*) from attributed group by 1, 2

),

revenue as (

    select flow_id, day, sum(order_value) as attributed_revenue from attributed group by 1, 2

),

bounds as (

    select
        flows.flow_id,
        least({{ flowhouse.store_date('flows.went_live_at') }}, min(activity.day)) as first_day,
        {{ flowhouse.store_date(flowhouse.flowhouse_now()) }} as last_day
    from flows
    left join activity on activity.flow_id = flows.flow_id
    group by flows.flow_id, flows.went_live_at

),

spine as (

    select flow_id, first_day, {{ flowhouse.derived_integer_series('0', 'last_day - first_day') }} as offset_days
    from bounds
    where last_day >= first_day

),

days as (

    select flow_id, cast(first_day + cast(offset_days as integer) as date) as day from spine

),

pivoted as (

    select
        days.flow_id,
        days.day,
        {%- for metric in metrics %}
        cast(coalesce(sum(case when activity.metric = '{{ metric }}' then activity.value end), 0)
            as bigint) as {{ metric }},
        {%- endfor %}
        0 as _end_of_metrics
    from days
    left join activity on activity.flow_id = days.flow_id and activity.day = days.day
    group by days.flow_id, days.day

),

final as (

    select
        pivoted.flow_id,
        flows.flow_name,
        pivoted.day,
        {%- for metric in entry_metrics %}
        pivoted.{{ metric }},
        {%- endfor %}
        cast(sum(pivoted.enrolled - pivoted.ended) over (
            partition by pivoted.flow_id order by pivoted.day rows unbounded preceding
        ) as bigint) as active,
        pivoted.completed,
        pivoted.exited,
        {%- for metric in message_metrics %}
        pivoted.{{ metric }},
        {%- endfor %}
        {{ flowhouse.money('coalesce(revenue.attributed_revenue, 0)') }} as attributed_revenue,
        cast(coalesce(revenue.attributed_revenue, 0) as double precision)
            / nullif(pivoted.recipients, 0) as revenue_per_recipient,
        pivoted.goal_conversions
    from pivoted
    inner join flows on flows.flow_id = pivoted.flow_id
    left join revenue on revenue.flow_id = pivoted.flow_id and revenue.day = pivoted.day

)

select * from final
