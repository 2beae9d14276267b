{#- One row per path out of a branch, split or wait_for step of each flow's current version, in the flow
    file's order: how many enrollments took it and their share of the step. Paths nobody took are here
    with zero. A branch's paths are path_1, path_2, ... and else; a split's are its arms; a wait_for's are
    event_received and timed_out. -#}

with

steps as (

    select flow_id, step_id, kind as step_kind, {{ flowhouse.parse_json('params') }} as params
    from {{ source('flowhouse', 'steps') }}
    where kind in ('branch', 'split', 'wait_for')

),

paths as (

    select
        flow_id,
        step_id,
        step_kind,
        position,
        {{ flowhouse.json_scalar_text('value') }} as path
    from {{ flowhouse.json_array_elements('steps', 'params', 'paths', ['flow_id', 'step_id', 'step_kind']) }}
        as elements

),

taken as (

    select
        flow_id,
        step_id,
        case when step_kind = 'wait_for' then outcome else reason end as path,
        count(*) as enrollments
    from {{ source('flowhouse', 'decisions') }}
    where step_kind in ('branch', 'split')
        or (step_kind = 'wait_for' and outcome in ('event_received', 'timed_out'))
    group by 1, 2, 3

),

final as (

    select
        paths.flow_id,
        paths.step_id,
        paths.step_kind,
        paths.path,
        cast(paths.position as integer) as position,
        coalesce(taken.enrollments, 0) as enrollments,
        {{ flowhouse.ratio('coalesce(taken.enrollments, 0)',
            'sum(coalesce(taken.enrollments, 0)) over (partition by paths.flow_id, paths.step_id)') }}
            as share
    from paths
    left join taken
        on taken.flow_id = paths.flow_id
        and taken.step_id = paths.step_id
        and taken.path = paths.path

)

select * from final
