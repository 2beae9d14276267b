{#- Treatment against holdout, the honest measure of what a flow adds: one row per flow for all time
    (period 'all') and per ISO week of entry (period 'week'). Enrollees are compared on the flow's goal
    within the goal window after entry and on the revenue of the orders in that window; incremental
    conversions and revenue scale the difference to the treatment group. Enrollees whose window is still
    open count in both groups alike (assignment is random); enrollees_window_open says how many. The
    last-touch numbers of the treatment group sit beside, for comparison. -#}

with

enrollments as (

    select
        flow_id,
        day,
        cast({{ dbt.date_trunc('week', 'day') }} as date) as week_start,
        is_holdout,
        case when converted then 1 else 0 end as converted,
        cast(revenue_in_window as double precision) as revenue,
        attributed_orders,
        attributed_revenue,
        is_window_open
    from {{ ref('enrollment_facts') }}

),

{%- set measures %}
        count(case when not is_holdout then 1 end) as treatment_enrollees,
        count(case when is_holdout then 1 end) as holdout_enrollees,
        coalesce(sum(case when not is_holdout then converted end), 0) as treatment_conversions,
        coalesce(sum(case when is_holdout then converted end), 0) as holdout_conversions,
        coalesce(sum(case when not is_holdout then revenue end), 0) as treatment_revenue,
        coalesce(sum(case when is_holdout then revenue end), 0) as holdout_revenue,
        coalesce(var_samp(case when not is_holdout then revenue end), 0) as treatment_revenue_variance,
        coalesce(var_samp(case when is_holdout then revenue end), 0) as holdout_revenue_variance,
        coalesce(sum(case when not is_holdout then attributed_orders end), 0) as attributed_conversions,
        coalesce(sum(case when not is_holdout then attributed_revenue end), 0) as attributed_revenue,
        count(case when is_window_open then 1 end) as enrollees_window_open
{%- endset %}

grouped as (

    select
        flow_id,
        'all' as period,
        min(day) as period_start,
        cast(max(day) + 1 as date) as period_end,
        {{ measures }}
    from enrollments
    group by flow_id
    union all
    select
        flow_id,
        'week' as period,
        week_start as period_start,
        cast(week_start + 7 as date) as period_end,
        {{ measures }}
    from enrollments
    group by flow_id, week_start

),

rated as (

    select
        grouped.*,
        {{ flowhouse.ratio('treatment_conversions', 'treatment_enrollees') }} as treatment_conversion_rate,
        {{ flowhouse.ratio('holdout_conversions', 'holdout_enrollees') }} as holdout_conversion_rate,
        {{ flowhouse.ratio('treatment_revenue', 'treatment_enrollees') }} as treatment_revenue_per_enrollee,
        {{ flowhouse.ratio('holdout_revenue', 'holdout_enrollees') }} as holdout_revenue_per_enrollee
    from grouped

),

compared as (

    select
        rated.*,
        {{ flowhouse.proportion_comparison('conversion_rate_lift', 'treatment_conversions',
            'treatment_enrollees', 'holdout_conversions', 'holdout_enrollees') }}
            as conversion_rate_p_value,
        {{ flowhouse.mean_comparison('revenue_per_enrollee_lift', 'treatment_revenue_per_enrollee',
            'treatment_revenue_variance', 'treatment_enrollees', 'holdout_revenue_per_enrollee',
            'holdout_revenue_variance', 'holdout_enrollees') }} as revenue_per_enrollee_p_value
    from rated

),

final as (

    select
        flow_id,
        period,
        period_start,
        period_end,
        treatment_enrollees,
        holdout_enrollees,
        treatment_conversions,
        holdout_conversions,
        treatment_conversion_rate,
        holdout_conversion_rate,
        conversion_rate_lift,
        conversion_rate_lift_ci_low,
        conversion_rate_lift_ci_high,
        conversion_rate_p_value,
        {{ flowhouse.ratio('conversion_rate_lift', 'holdout_conversion_rate') }} as relative_lift,
        {{ flowhouse.money('treatment_revenue') }} as treatment_revenue,
        {{ flowhouse.money('holdout_revenue') }} as holdout_revenue,
        treatment_revenue_per_enrollee,
        holdout_revenue_per_enrollee,
        revenue_per_enrollee_lift,
        revenue_per_enrollee_lift_ci_low,
        revenue_per_enrollee_lift_ci_high,
        revenue_per_enrollee_p_value,
        conversion_rate_lift * treatment_enrollees as incremental_conversions,
        conversion_rate_lift_ci_low * treatment_enrollees as incremental_conversions_ci_low,
        conversion_rate_lift_ci_high * treatment_enrollees as incremental_conversions_ci_high,
        revenue_per_enrollee_lift * treatment_enrollees as incremental_revenue,
        revenue_per_enrollee_lift_ci_low * treatment_enrollees as incremental_revenue_ci_low,
        revenue_per_enrollee_lift_ci_high * treatment_enrollees as incremental_revenue_ci_high,
        attributed_conversions,
        {{ flowhouse.money('attributed_revenue') }} as attributed_revenue,
        enrollees_window_open,
        coalesce(conversion_rate_p_value < 0.05, false) as is_significant
    from compared

)

select * from final
