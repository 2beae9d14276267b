{{
    config(
        materialized='incremental',
        unique_key='tier_period_id',
        incremental_strategy='delete+insert',
        full_refresh=false,
        on_schema_change='fail'
    )
}}

{#- One row per period a customer spent in a tier. Each build observes every customer's tier at the build's
    now: a customer whose tier differs from their open period gets the open period closed (valid_to) and a
    new one opened (valid_from), both at the observation time. Observations only move forward: a build whose
    now is not later than the newest recorded change records nothing, so re-running a build is a no-op.
    full_refresh=false keeps the history (and the tier_changed events made from it) through --full-refresh. -#}

with

attributes as (

    select customer_id, tier from {{ ref('customer_attributes') }}

),

observation as (

    select {{ flowhouse.flowhouse_now() }} as observed_at

),

{% if is_incremental() %}

open_periods as (

    select tier_period_id, customer_id, tier, previous_tier, valid_from
    from {{ this }}
    where valid_to is null

),

last_recorded as (

    select greatest(max(valid_from), coalesce(max(valid_to), max(valid_from))) as recorded_at
    from {{ this }}

),

{% else %}

open_periods as (

    select
        cast(null as {{ dbt.type_string() }}) as tier_period_id,
        cast(null as {{ dbt.type_string() }}) as customer_id,
        cast(null as {{ dbt.type_string() }}) as tier,
        cast(null as {{ dbt.type_string() }}) as previous_tier,
        cast(null as timestamp) as valid_from
    where 1 = 0

),

last_recorded as (

    select cast(null as timestamp) as recorded_at

),

{% endif %}

opened as (

    select
        attributes.customer_id,
        attributes.tier,
        case
            when open_periods.customer_id is null then {{ flowhouse.starting_tier() }}
            else open_periods.tier
        end as previous_tier,
        observation.observed_at as valid_from,
        cast(null as timestamp) as valid_to
    from attributes
    cross join observation
    left join open_periods
        on attributes.customer_id = open_periods.customer_id
    where open_periods.customer_id is null
        or open_periods.tier is distinct from attributes.tier

),

closed as (

    select
        open_periods.customer_id,
        open_periods.tier,
        open_periods.previous_tier,
        open_periods.valid_from,
        observation.observed_at as valid_to
    from open_periods
    cross join observation
    left join attributes
        on open_periods.customer_id = attributes.customer_id
    where attributes.customer_id is null
        or open_periods.tier is distinct from attributes.tier

),

changes as (

    select * from opened
    union all
    select * from closed

),

final as (

    select
        {{ flowhouse.surrogate_key(['changes.customer_id', 'changes.valid_from']) }}
            as tier_period_id,
        changes.customer_id,
        changes.tier,
        changes.previous_tier,
        changes.valid_from,
        changes.valid_to
    from changes
    cross join observation
    cross join last_recorded
    where last_recorded.recorded_at is null
        or observation.observed_at > last_recorded.recorded_at

)

select * from final
