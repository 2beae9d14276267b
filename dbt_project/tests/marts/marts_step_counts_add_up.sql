{{ config(meta={'dagster': {'ref': {'name': 'flow_steps'}}}) }}

{#- Step counts add up to flow counts: per flow, what the steps sent, opened, clicked, skipped and held
    out equals what the days did; the exits at steps are the flow's exits; and the first step was
    reached by every enrollment (unless an edit of the flow removed steps). Returns the
    flows and measures that disagree. -#}

with

steps as (

    select
        flow_id,
        sum(messages_sent) as messages_sent,
        sum(messages_opened) as messages_opened,
        sum(messages_clicked) as messages_clicked,
        sum(messages_skipped) as messages_skipped,
        sum(messages_held_out) as messages_held_out,
        sum(messages_queued) as messages_queued,
        sum(exited_here) as exited,
        sum(case when position = 0 then reached end) as first_reached,
        count(case when not is_current then 1 end) as removed_steps
    from {{ ref('flow_steps') }}
    group by flow_id

),

days as (

    select
        flow_id,
        sum(messages_sent) as messages_sent,
        sum(messages_opened) as messages_opened,
        sum(messages_clicked) as messages_clicked,
        sum(messages_skipped) as messages_skipped,
        sum(messages_held_out) as messages_held_out,
        sum(messages_queued) as messages_queued,
        sum(enrolled) as enrolled
    from {{ ref('flow_daily') }}
    group by flow_id

),

ends as (

    select
        flow_id,
        count(*) as enrollments,
        count(case when status = 'exited' then 1 end) as exited
    from {{ ref('enrollment_facts') }}
    group by flow_id

),

compared as (

    select
        days.flow_id,
        steps.messages_sent <> days.messages_sent as sent_differs,
        steps.messages_opened <> days.messages_opened as opened_differs,
        steps.messages_clicked <> days.messages_clicked as clicked_differs,
        steps.messages_skipped <> days.messages_skipped as skipped_differs,
        steps.messages_held_out <> days.messages_held_out as held_out_differs,
        steps.messages_queued <> days.messages_queued as queued_differs,
        steps.exited <> coalesce(ends.exited, 0) as exits_differ,
        days.enrolled <> coalesce(ends.enrollments, 0) as enrolled_differs,
        steps.removed_steps = 0
            and coalesce(steps.first_reached, 0) <> coalesce(ends.enrollments, 0) as first_step_differs
    from days
    inner join steps on steps.flow_id = days.flow_id
    left join ends on ends.flow_id = days.flow_id

)

select * from compared
where sent_differs or opened_differs or clicked_differs or skipped_differs or held_out_differs
    or queued_differs or exits_differ or enrolled_differs or first_step_differs
