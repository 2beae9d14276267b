{{ config(materialized='table', schema='core') }}

{#- One row per sync that has run: how its last run went, whether it is healthy, and how much it
    moved and had refused over the last seven days (as of the build's now). -#}

with

runs as (

    select * from {{ source('flowhouse', 'sync_runs') }}

),

state as (

    select * from {{ source('flowhouse', 'sync_state') }}

),

as_of as (

    select {{ flowhouse.flowhouse_now() }} as now_at

),

ranked as (

    select
        runs.*,
        row_number() over (partition by sync_id order by started_at desc, run_id desc) as recency
    from runs

),

last_run as (

    select * from ranked where recency = 1

),

week as (

    select
        runs.sync_id,
        count(*) as runs_7d,
        sum(case when runs.status in ('failed', 'interrupted') then 1 else 0 end) as failed_runs_7d,
        sum(coalesce(runs.added, 0) + coalesce(runs.changed, 0) + coalesce(runs.removed, 0))
            as rows_sent_7d,
        sum(coalesce(runs.rejected, 0)) as rows_rejected_7d
    from runs
    cross join as_of
    where runs.started_at > as_of.now_at - 7 * interval '1 day'
    group by runs.sync_id

),

successes as (

    select sync_id, max(started_at) as last_success_at
    from runs
    where status = 'succeeded'
    group by sync_id

),

held as (

    select sync_id, count(*) as rows_in_destination
    from state
    group by sync_id

),

final as (

    select
        last_run.sync_id,
        last_run.destination,
        last_run.mode,
        last_run.started_at as last_run_at,
        last_run.status as last_status,
        last_run.error as last_error,
        successes.last_success_at,
        coalesce(held.rows_in_destination, 0) as rows_in_destination,
        last_run.source_rows as last_source_rows,
        last_run.added as last_added,
        last_run.changed as last_changed,
        last_run.removed as last_removed,
        last_run.rejected as last_rejected,
        coalesce(week.runs_7d, 0) as runs_7d,
        coalesce(week.failed_runs_7d, 0) as failed_runs_7d,
        coalesce(week.rows_sent_7d, 0) as rows_sent_7d,
        coalesce(week.rows_rejected_7d, 0) as rows_rejected_7d,
        case
            when coalesce(week.rows_sent_7d, 0) + coalesce(week.rows_rejected_7d, 0) = 0 then 0.0
            else 1.0 * week.rows_rejected_7d / (week.rows_sent_7d + week.rows_rejected_7d)
        end as rejection_rate_7d,
        last_run.status in ('succeeded', 'partial') as is_healthy
    from last_run
    left join successes on successes.sync_id = last_run.sync_id
    left join held on held.sync_id = last_run.sync_id
    left join week on week.sync_id = last_run.sync_id

)

select * from final
