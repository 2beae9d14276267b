{{ config(materialized='incremental', unique_key='enrollment_id', incremental_strategy='delete+insert') }}

{#- One row per enrollment: how it entered, the path it walked, where it is or how it ended, what it was
    sent, and its outcome: the flow's goal within the goal window after entry (the measure treatment and
    holdout are compared on) and the orders attributed last-touch to its messages. Incremental: a build
    redoes the customers whose state or events changed, and every enrollment whose window was open. -#}

with

enrollments as (

    select * from {{ source('flowhouse', 'enrollments') }}
    {% if is_incremental() %}
    where customer_id in ({{ flowhouse.marts_changed_customers('is_window_open') }})
    {% endif %}

),

flows as (

    select flow_id, goal_event, goal_within_seconds from {{ source('flowhouse', 'flows') }}

),

as_of as (

    select {{ flowhouse.flowhouse_now() }} as now_at

),

windows as (

    select
        enrollments.*,
        flows.goal_event,
        enrollments.entered_at + flows.goal_within_seconds * interval '1 second' as goal_window_ends_at
    from enrollments
    inner join flows on flows.flow_id = enrollments.flow_id

),

steps as (

    select flow_id, step_id, position from {{ source('flowhouse', 'steps') }}

),

walked as (

    select
        decisions.enrollment_id,
        string_agg(decisions.step_id, ' > '
            order by decisions.effective_at, coalesce(steps.position, 1000000), decisions.decided_at)
            as path,
        count(*) as steps_executed
    from {{ source('flowhouse', 'decisions') }} as decisions
    left join steps on steps.flow_id = decisions.flow_id and steps.step_id = decisions.step_id
    where decisions.step_kind not in ('entry', 'end', 'send_check', 'send_retry')
        and decisions.enrollment_id in (select enrollment_id from enrollments)
    group by decisions.enrollment_id

),

sent as (

    select
        enrollment_id,
        {{ flowhouse.message_counts() }}
    from {{ ref('message_facts') }}
    where kind = 'message' and enrollment_id in (select enrollment_id from enrollments)
    group by enrollment_id

),

goals as (

    select windows.enrollment_id, min(events.occurred_at) as converted_at
    from windows
    inner join {{ ref('events') }} as events
        on events.customer_id = windows.customer_id
        and events.event_type = windows.goal_event
        and events.occurred_at > windows.entered_at
        and events.occurred_at <= windows.goal_window_ends_at
    group by windows.enrollment_id

),

ordered as (

    select
        windows.enrollment_id,
        count(*) as orders_in_window,
        sum(orders.order_value) as revenue_in_window
    from windows
    inner join {{ ref('stg_orders') }} as orders
        on orders.customer_id = windows.customer_id
        and orders.ordered_at > windows.entered_at
        and orders.ordered_at <= windows.goal_window_ends_at
    group by windows.enrollment_id

),

final as (

    select
        windows.enrollment_id,
        windows.flow_id,
        windows.flow_version,
        windows.customer_id,
        windows.trigger_event_id,
        windows.trigger_type,
        windows.entry_key,
        windows.entered_at,
        {{ flowhouse.store_date('windows.entered_at') }} as day,
        windows.is_holdout,
        case when windows.is_holdout then 'holdout' else 'treatment' end as arm_group,
        windows.variant,
        walked.path,
        coalesce(walked.steps_executed, 0) as steps_executed,
        windows.status,
        case when windows.status = 'active' then windows.step_id end as current_step_id,
        case when windows.status = 'active' then windows.due_at end as due_at,
        windows.ended_at,
        windows.end_reason,
        coalesce(sent.messages_queued, 0) as messages_queued,
        coalesce(sent.messages_sent, 0) as messages_sent,
        coalesce(sent.messages_skipped, 0) as messages_skipped,
        coalesce(sent.messages_held_out, 0) as messages_held_out,
        coalesce(sent.messages_opened, 0) as messages_opened,
        coalesce(sent.messages_clicked, 0) as messages_clicked,
        windows.goal_event,
        windows.goal_window_ends_at,
        windows.goal_window_ends_at > as_of.now_at as is_window_open,
        goals.converted_at is not null as converted,
        goals.converted_at,
        coalesce(ordered.orders_in_window, 0) as orders_in_window,
        {{ flowhouse.money('coalesce(ordered.revenue_in_window, 0)') }} as revenue_in_window,
        coalesce(sent.attributed_orders, 0) as attributed_orders,
        {{ flowhouse.money('coalesce(sent.attributed_revenue, 0)') }} as attributed_revenue,
        {{ flowhouse.marts_watermarks() }}
    from windows
    cross join as_of
    left join walked on walked.enrollment_id = windows.enrollment_id
    left join sent on sent.enrollment_id = windows.enrollment_id
    left join goals on goals.enrollment_id = windows.enrollment_id
    left join ordered on ordered.enrollment_id = windows.enrollment_id

)

select * from final
