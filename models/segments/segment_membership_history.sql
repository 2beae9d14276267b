{{
    config(
        materialized='incremental',
        unique_key='membership_id',
        incremental_strategy='delete+insert',
        full_refresh=false,
        on_schema_change='fail'
    )
}}

{#- One row per stay of a customer in a segment. Each build compares the current members (segment_members)
    with the open memberships (exited_at null): a new member gets a row entered at the observation time
    (the build's now), a member who left gets its open row closed at that time. Observations only move
    forward: a build whose now is not later than the newest recorded change records nothing, so re-running a
    build is a no-op. full_refresh=false keeps the history (and the segment_entered / segment_exited events
    made from it) through --full-refresh. The anti-joins are written `not exists` (decorrelated by both
    warehouses): DuckDB 2.0.0 drops rows from the `left join ... where right.key is null` form when the
    right side is a filtered constant relation, as in unit-test fixtures. -#}

with

members as (

    select customer_id, segment from {{ ref('segment_members') }}

),

observation as (

    select {{ flowhouse.flowhouse_now() }} as observed_at

),

{% if is_incremental() %}

open_memberships as (

    select membership_id, customer_id, segment, entered_at
    from {{ this }}
    where exited_at is null

),

last_recorded as (

    select greatest(max(entered_at), coalesce(max(exited_at), max(entered_at))) as recorded_at
    from {{ this }}

),

{% else %}

open_memberships as (

    select
        cast(null as {{ dbt.type_string() }}) as membership_id,
        cast(null as {{ dbt.type_string() }}) as customer_id,
        cast(null as {{ dbt.type_string() }}) as segment,
        cast(null as timestamp) as entered_at
    where 1 = 0

),

last_recorded as (

    select cast(null as timestamp) as recorded_at

),

{% endif %}

entered as (

    select
        members.customer_id,
        members.segment,
        observation.observed_at as entered_at,
        cast(null as timestamp) as exited_at
    from members
    cross join observation
    where not exists (
        select 1
        from open_memberships
        where open_memberships.customer_id = members.customer_id
            and open_memberships.segment = members.segment
    )

),

exited as (

    select
        open_memberships.customer_id,
        open_memberships.segment,
        open_memberships.entered_at,
        observation.observed_at as exited_at
    from open_memberships
    cross join observation
    where not exists (
        select 1
        from members
        where members.customer_id = open_memberships.customer_id
            and members.segment = open_memberships.segment
    )

),

changes as (

    select * from entered
    union all
    select * from exited

),

final as (

    select
        {{ flowhouse.surrogate_key(['changes.customer_id', 'changes.segment', 'changes.entered_at']) }}
            as membership_id,
        changes.customer_id,
        changes.segment,
        changes.entered_at,
        changes.exited_at
    from changes
    cross join observation
    cross join last_recorded
    where last_recorded.recorded_at is null
        or observation.observed_at > last_recorded.recorded_at

)

select * from final
