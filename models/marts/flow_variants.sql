{#- One row per arm of each split, treatment enrollments only (holdout enrollments walk the split but
    receive nothing). Each arm is compared with the split's control, the first arm in the flow file, on
    the flow's goal reached after the split and within the goal window, and on the revenue of the orders
    in that time. Every enrollment assigned to an arm counts, whatever was then sent (intent to treat). -#}

with

arms as (

    select flow_id, step_id as split_step_id, path as arm, position
    from {{ ref('flow_branches') }}
    where step_kind = 'split'

),

controls as (

    select
        flow_id,
        step_id as split_step_id,
        {{ flowhouse.json_text(flowhouse.parse_json('params'), 'control') }} as control_arm
    from {{ source('flowhouse', 'steps') }}
    where kind = 'split'

),

assigned as (

    select
        decisions.flow_id,
        decisions.step_id as split_step_id,
        decisions.reason as arm,
        decisions.effective_at as split_at,
        enrollments.enrollment_id,
        enrollments.customer_id,
        enrollments.goal_event,
        enrollments.goal_window_ends_at
    from {{ source('flowhouse', 'decisions') }} as decisions
    inner join {{ ref('enrollment_facts') }} as enrollments
        on enrollments.enrollment_id = decisions.enrollment_id
    where decisions.step_kind = 'split' and not enrollments.is_holdout

),

goals as (

    select distinct assigned.enrollment_id, assigned.split_step_id
    from assigned
    inner join {{ ref('events') }} as events
        on events.customer_id = assigned.customer_id
        and events.event_type = assigned.goal_event
        and events.occurred_at > assigned.split_at
        and events.occurred_at <= assigned.goal_window_ends_at

),

ordered as (

    select assigned.enrollment_id, assigned.split_step_id, sum(orders.order_value) as revenue
    from assigned
    inner join {{ ref('stg_orders') }} as orders
        on orders.customer_id = assigned.customer_id
        and orders.ordered_at > assigned.split_at
        and orders.ordered_at <= assigned.goal_window_ends_at
    group by 1, 2

),

outcomes as (

    select
        assigned.flow_id,
        assigned.split_step_id,
        assigned.arm,
        case when goals.enrollment_id is not null then 1 else 0 end as converted,
        cast(coalesce(ordered.revenue, 0) as double precision) as revenue
    from assigned
    left join goals
        on goals.enrollment_id = assigned.enrollment_id
        and goals.split_step_id = assigned.split_step_id
    left join ordered
        on ordered.enrollment_id = assigned.enrollment_id
        and ordered.split_step_id = assigned.split_step_id

),

per_arm as (

    select
        arms.flow_id,
        arms.split_step_id,
        arms.arm,
        arms.position,
        count(outcomes.arm) as recipients,
        coalesce(sum(outcomes.converted), 0) as conversions,
        coalesce(sum(outcomes.revenue), 0) as revenue,
        coalesce(var_samp(outcomes.revenue), 0) as revenue_variance
    from arms
    left join outcomes
        on outcomes.flow_id = arms.flow_id
        and outcomes.split_step_id = arms.split_step_id
        and outcomes.arm = arms.arm
    group by 1, 2, 3, 4

),

compared as (

    select
        per_arm.*,
        controls.control_arm,
        per_arm.arm = controls.control_arm as is_control,
        control.recipients as control_recipients,
        control.conversions as control_conversions,
        {{ flowhouse.ratio('per_arm.revenue', 'per_arm.recipients') }} as revenue_per_recipient,
        {{ flowhouse.ratio('control.revenue', 'control.recipients') }} as control_revenue_per_recipient,
        control.revenue_variance as control_revenue_variance
    from per_arm
    inner join controls
        on controls.flow_id = per_arm.flow_id and controls.split_step_id = per_arm.split_step_id
    left join per_arm as control
        on control.flow_id = per_arm.flow_id
        and control.split_step_id = per_arm.split_step_id
        and control.arm = controls.control_arm

),

final as (

    select
        flow_id,
        split_step_id,
        arm,
        cast(position as integer) as position,
        is_control,
        control_arm,
        recipients,
        conversions,
        {{ flowhouse.ratio('conversions', 'recipients') }} as conversion_rate,
        {{ flowhouse.money('revenue') }} as revenue,
        revenue_per_recipient,
        case when not is_control then {{ flowhouse.ratio('conversions', 'recipients') }}
            - {{ flowhouse.ratio('control_conversions', 'control_recipients') }} end as conversion_rate_lift,
        {{ flowhouse.proportion_comparison('comparison', 'conversions', 'recipients',
            'control_conversions', 'control_recipients') }} as comparison_p_value,
        {{ flowhouse.mean_comparison('rpr', 'revenue_per_recipient', 'revenue_variance', 'recipients',
            'control_revenue_per_recipient', 'control_revenue_variance', 'control_recipients') }}
            as rpr_p_value
    from compared

)

select
    flow_id,
    split_step_id,
    arm,
    position,
    is_control,
    control_arm,
    recipients,
    conversions,
    conversion_rate,
    revenue,
    revenue_per_recipient,
    conversion_rate_lift,
    case when not is_control then comparison_ci_low end as conversion_rate_lift_ci_low,
    case when not is_control then comparison_ci_high end as conversion_rate_lift_ci_high,
    case when not is_control then comparison_p_value end as conversion_rate_p_value,
    case when not is_control then {{ flowhouse.ratio('conversion_rate_lift',
        'conversion_rate - conversion_rate_lift') }} end as relative_lift,
    case when not is_control then rpr end as revenue_per_recipient_lift,
    case when not is_control then rpr_ci_low end as revenue_per_recipient_lift_ci_low,
    case when not is_control then rpr_ci_high end as revenue_per_recipient_lift_ci_high,
    case when not is_control then rpr_p_value end as revenue_per_recipient_p_value,
    coalesce(not is_control and comparison_p_value < 0.05, false) as is_significant
from final
