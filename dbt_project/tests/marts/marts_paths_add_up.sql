{{ config(meta={'dagster': {'ref': {'name': 'flow_branches'}}}) }}

{#- Every enrollment that ran a branch, split or wait_for step took exactly one of its paths: the paths'
    counts add up to the step's. Returns the steps where they do not. -#}

with

paths as (

    select flow_id, step_id, sum(enrollments) as enrollments
    from {{ ref('flow_branches') }}
    group by flow_id, step_id

),

steps as (

    select flow_id, step_id, executed
    from {{ ref('flow_steps') }}
    where step_kind in ('branch', 'split', 'wait_for')

)

select steps.flow_id, steps.step_id, steps.executed, coalesce(paths.enrollments, 0) as on_paths
from steps
left join paths on paths.flow_id = steps.flow_id and paths.step_id = steps.step_id
where steps.executed <> coalesce(paths.enrollments, 0)
