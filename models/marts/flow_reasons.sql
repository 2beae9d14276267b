{#- Every reason, in long form, one row per flow, day (store time zone), stage and reason: triggers refused at entry
    (audience, reentry, concurrency, before_live, duplicate_key, paused), messages skipped (the stable skip tokens)
    and enrollments that exited (the exit event's type, exit_condition, filter, step_removed, flow_removed,
    no_date), and messages that failed (the provider's or the renderer's words, first 200 characters). flow_daily has the fixed reasons as columns; this has them all, including exit events. -#}

with

refused as (

    select flow_id, {{ flowhouse.store_date('effective_at') }} as day, 'refused' as stage, reason, count(*) as count
    from {{ source('flowhouse', 'decisions') }}
    where step_kind = 'entry' and outcome = 'refused'
    group by 1, 2, 4

),

skipped as (

    select flow_id, day, 'skipped' as stage, skip_reason as reason, count(*) as count
    from {{ ref('message_facts') }}
    where kind = 'message' and status = 'skipped'
    group by 1, 2, 4

),

failed as (

    select flow_id, day, 'failed' as stage, substr(coalesce(failure_reason, 'unknown'), 1, 200) as reason,
        count(*) as count
    from {{ ref('message_facts') }}
    where status = 'failed'
    group by 1, 2, 4

),

exited as (

    select flow_id, {{ flowhouse.store_date('ended_at') }} as day, 'exited' as stage, end_reason as reason,
        count(*) as count
    from {{ ref('enrollment_facts') }}
    where status = 'exited'
    group by 1, 2, 4

),

final as (

    select * from refused
    union all
    select * from skipped
    union all
    select * from exited
    union all
    select * from failed

)

select * from final
