{#- One row per step of each flow's current version (and per step of an earlier version that decisions
    were journaled at, is_current false): how many enrollments reached it, ran it, wait at it
    now or left the flow at it (an exit is checked before each step), and for send steps what the
    messages did (failed: refused for good, reasons in flow_reasons). Counts are over the flow's whole history; reached = executed + exited_here +
    waiting_now. -#}

with

current_steps as (

    select
        flow_id,
        step_id,
        kind as step_kind,
        position,
        next_step as next_step_id,
        {{ flowhouse.parse_json('params') }} as params,
        true as is_current
    from {{ source('flowhouse', 'steps') }}

),

removed_steps as (

    -- steps of earlier versions that decisions were journaled at: kept so that the steps add up to
    -- the flow (their kind as journaled; 'removed' where an enrollment exited because of it)
    select
        flow_id,
        step_id,
        max(step_kind) as step_kind,
        cast(null as integer) as position,
        cast(null as varchar) as next_step_id,
        cast(null as {{ 'jsonb' if target.type == 'postgres' else 'json' }}) as params,
        false as is_current
    from {{ source('flowhouse', 'decisions') }} as decisions
    where step_kind not in ('entry', 'end', 'send_check', 'send_retry')
        and not exists (
            select 1 from current_steps
            where current_steps.flow_id = decisions.flow_id and current_steps.step_id = decisions.step_id
        )
    group by flow_id, step_id

),

steps as (

    select * from current_steps
    union all
    select * from removed_steps

),

labelled as (

    select
        steps.*,
        {{ flowhouse.json_text('params', 'channel') }} as channel,
        cast({{ flowhouse.json_text('params', 'seconds') }} as bigint) as wait_seconds,
        coalesce(
            {{ flowhouse.json_text('params', 'subject') }},
            {{ flowhouse.json_text('params', 'template') }},
            'until ' || {{ flowhouse.json_text('params', 'time') }},
            'until ' || {{ flowhouse.json_text('params', 'date') }},
            'for ' || {{ flowhouse.json_text('params', 'event') }},
            {{ flowhouse.json_text('params', 'type') }}
        ) as described
    from steps

),

decided as (

    select
        flow_id,
        step_id,
        count(distinct case when outcome <> 'exited' then enrollment_id end) as executed,
        count(distinct case when outcome = 'exited' then enrollment_id end) as exited_here
    from {{ source('flowhouse', 'decisions') }}
    where step_kind not in ('entry', 'end', 'send_check', 'send_retry')
    group by 1, 2

),

waiting as (

    select flow_id, step_id, count(*) as waiting_now
    from {{ source('flowhouse', 'enrollments') }}
    where status = 'active'
    group by 1, 2

),

sends as (

    select
        flow_id,
        step_id,
        {{ flowhouse.message_counts() }},
        count(case when status = 'failed' then 1 end) as messages_failed
    from {{ ref('message_facts') }}
    where kind = 'message'
    group by 1, 2

),

counted as (

    select
        labelled.flow_id,
        labelled.step_id,
        labelled.step_kind,
        cast(labelled.position as integer) as position,
        labelled.next_step_id,
        labelled.is_current,
        labelled.channel,
        case
            when labelled.wait_seconds is null then labelled.described
            when labelled.wait_seconds % 86400 = 0
                then cast(cast(floor(labelled.wait_seconds / 86400) as bigint) as varchar) || 'd'
            when labelled.wait_seconds % 3600 = 0
                then cast(cast(floor(labelled.wait_seconds / 3600) as bigint) as varchar) || 'h'
            else cast(cast(floor(labelled.wait_seconds / 60) as bigint) as varchar) || 'm'
        end as label,
        coalesce(decided.executed, 0) as executed,
        coalesce(decided.exited_here, 0) as exited_here,
        coalesce(waiting.waiting_now, 0) as waiting_now,
        coalesce(sends.messages_queued, 0) as messages_queued,
        coalesce(sends.messages_held_out, 0) as messages_held_out,
        coalesce(sends.messages_skipped, 0) as messages_skipped,
        coalesce(sends.messages_sent, 0) as messages_sent,
        coalesce(sends.messages_delivered, 0) as messages_delivered,
        coalesce(sends.messages_opened, 0) as messages_opened,
        coalesce(sends.messages_clicked, 0) as messages_clicked,
        coalesce(sends.messages_bounced, 0) as messages_bounced,
        coalesce(sends.messages_unsubscribed, 0) as messages_unsubscribed,
        coalesce(sends.messages_failed, 0) as messages_failed,
        coalesce(sends.attributed_orders, 0) as attributed_orders,
        {{ flowhouse.money('coalesce(sends.attributed_revenue, 0)') }} as attributed_revenue
    from labelled
    left join decided on decided.flow_id = labelled.flow_id and decided.step_id = labelled.step_id
    left join waiting on waiting.flow_id = labelled.flow_id and waiting.step_id = labelled.step_id
    left join sends on sends.flow_id = labelled.flow_id and sends.step_id = labelled.step_id

),

final as (

    select
        flow_id,
        step_id,
        step_kind,
        position,
        next_step_id,
        is_current,
        channel,
        label,
        executed + exited_here + waiting_now as reached,
        executed,
        waiting_now,
        exited_here,
        {{ flowhouse.ratio('exited_here', 'executed + exited_here + waiting_now') }} as drop_off_rate,
        messages_queued,
        messages_held_out,
        messages_skipped,
        messages_sent,
        messages_delivered,
        messages_opened,
        messages_clicked,
        messages_bounced,
        messages_unsubscribed,
        messages_failed,
        {{ flowhouse.ratio('messages_opened', 'messages_delivered') }} as open_rate,
        {{ flowhouse.ratio('messages_clicked', 'messages_delivered') }} as click_rate,
        attributed_orders,
        attributed_revenue
    from counted

)

select * from final
