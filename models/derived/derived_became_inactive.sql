{{
    config(
        materialized='incremental',
        incremental_strategy='append',
        enabled=flowhouse.derived_is_enabled('became_inactive'),
    )
}}

{#- A customer becomes inactive inactive_after_days after an activity (var activity_event_types) when,
    among the rows loaded by the decision moment D = greatest(activity + days, activity loaded_at), they
    had no later activity within (activity, activity + days]. One event per inactive spell (keyed by the
    last activity). Re-read bound: derived_since(days); of those rows only activities decided after the
    previous builds are judged, against the affected customers' activity history. -#}
{%- set days = var('inactive_after_days') | int %}
{%- set activity_types = var('activity_event_types') %}

with

events as (

    select * from {{ ref('stg_events') }}

),

as_of as (

    select {{ flowhouse.flowhouse_now() }} as now_at

),

known_events as (

    select events.*
    from events
    cross join as_of
    where events.loaded_at <= as_of.now_at

),

activity as (

    select event_id, customer_id, occurred_at, loaded_at
    from known_events
    where event_type in ('{{ activity_types | join("', '") }}')
        and customer_id is not null

),

candidates as (

    select
        event_id,
        customer_id,
        occurred_at as last_activity_at,
        occurred_at + {{ days }} * interval '1 day' as inactive_at,
        greatest(occurred_at + {{ days }} * interval '1 day', loaded_at) as decided_at
    from activity
    where loaded_at > {{ flowhouse.derived_since(days * 1440) }}

),

undecided as (

    -- candidates decided at or before the previous builds were emitted by them (or were not inactive)
    select candidates.*
    from candidates
    cross join as_of
    where candidates.decided_at <= as_of.now_at
        and candidates.decided_at > {{ flowhouse.derived_since(0) }}

),

affected_activity as (

    select * from activity
    where customer_id in (select customer_id from undecided)

),

inactive as (

    select undecided.*
    from undecided
    where not exists (
        select 1
        from affected_activity as later
        where later.customer_id = undecided.customer_id
            and later.loaded_at <= undecided.decided_at
            and later.occurred_at <= undecided.inactive_at
            and (
                later.occurred_at > undecided.last_activity_at
                or (
                    later.occurred_at = undecided.last_activity_at
                    and later.event_id > undecided.event_id
                )
            )
    )

),

derived as (

    select
        {{ flowhouse.derived_event_id('became_inactive', ['customer_id', 'event_id']) }} as event_id,
        customer_id,
        cast('became_inactive' as {{ dbt.type_string() }}) as event_type,
        inactive_at as occurred_at,
        decided_at as loaded_at,
        {{ flowhouse.json_object_of({
            'last_activity_at': flowhouse.derived_iso_timestamp('last_activity_at'),
            'days_inactive': days,
        }) }} as properties
    from inactive

),

final as (

    {{ flowhouse.derived_new_events('derived') }}

)

select * from final
