{{
    config(
        materialized='incremental',
        incremental_strategy='append',
        enabled=flowhouse.derived_is_enabled('became_inactive'),
        post_hook=flowhouse.marks_post_hooks(),
    )
}}

{#- A customer becomes inactive inactive_after_days after an activity (var activity_event_types) when,
    among the rows loaded by the decision moment D = greatest(activity + days, activity loaded_at), they
    had no later activity within (activity, activity + days]. One event per inactive spell (keyed by the
    last activity).

    An incremental build judges the activities whose D falls in (since, now] (since: derived_window_since()):
    those loaded since (a late one) and those that occurred `days` before the window (a range of
    occurred_at, as literals), never the whole history. Each is judged by key: against the activities
    loaded since (read anyway), and the customer's latest activity known at now
    (int_customer_last_activity, built before in the same build): the latest is the activity itself
    (nothing later: it fires, unless an activity of the same instant with a greater id was known), or
    an older-loaded one within the days after it (it was known by D: no spell). Only the few left
    (customers active again since their due time, or a late activity) are judged against their
    activity history since the earliest candidate (macros/derived_orders.sql,
    derived_inactive_scan_since). A full build judges every activity against the whole history. -#}
{%- set marks = flowhouse.take_marks(ref('stg_events'), through_now=true) %}
-- depends_on: {{ ref('int_customer_last_activity') }}
{%- set days = var('inactive_after_days') | int %}
{%- set activity_types = var('activity_event_types') %}
{%- set activity = flowhouse.event_types_in('event_type', activity_types) ~ " and customer_id is not null" %}
{%- set since = flowhouse.derived_window_since() %}
{%- set now = flowhouse.flowhouse_now() %}
{%- set by_key = is_incremental() and since != flowhouse.derived_everything() %}

with

activity as (

    select event_id, customer_id, occurred_at, loaded_at
    from {{ ref('stg_events') }}
    where {{ activity }}
        and loaded_at <= {{ now }}

),

candidates as (

    {%- if by_key %}
    -- loaded since the bound (a late activity decided by now) ...
    select event_id, customer_id, occurred_at, loaded_at
    from {{ ref('stg_events') }}
    where {{ activity }}
        and loaded_at > {{ since }}
        and loaded_at <= {{ now }}
        and occurred_at <= {{ now }} - {{ days }} * interval '1 day'

    union

    -- ... or occurred `days` before the window: every activity known of those instants
    select event_id, customer_id, occurred_at, loaded_at
    from {{ ref('stg_events') }}
    where {{ activity }}
        and occurred_at > {{ since }} - {{ days }} * interval '1 day'
        and occurred_at <= {{ now }} - {{ days }} * interval '1 day'
        and loaded_at <= {{ now }}
    {%- else %}
    select * from activity
    {%- endif %}

),

undecided as (

    -- candidates decided at or before the previous builds were emitted by them (or were not inactive)
    select
        event_id,
        customer_id,
        occurred_at as last_activity_at,
        loaded_at,
        occurred_at + {{ days }} * interval '1 day' as inactive_at,
        greatest(occurred_at + {{ days }} * interval '1 day', loaded_at) as decided_at
    from candidates
    where greatest(occurred_at + {{ days }} * interval '1 day', loaded_at) <= {{ now }}
        and greatest(occurred_at + {{ days }} * interval '1 day', loaded_at) > {{ since }}

),

{%- if by_key %}

window_activity as (

    -- the activities loaded since the bound
    select event_id, customer_id, occurred_at, loaded_at
    from {{ ref('stg_events') }}
    where {{ activity }}
        and loaded_at > {{ since }}
        and loaded_at <= {{ now }}

),

judged as (

    select
        undecided.*,
        undecided.last_activity_at > {{ since }} - {{ days }} * interval '1 day' as in_range,
        latest.last_activity_at as latest_at,
        (
            select max(window_activity.occurred_at)
            from window_activity
            where window_activity.customer_id = undecided.customer_id
        ) as latest_loaded_since_at
    from undecided
    left join {{ ref('int_customer_last_activity') }} as latest
        on latest.customer_id = undecided.customer_id

),

blocked_in_window as (

    -- an activity loaded since the bound, known by D, within the days after
    select judged.event_id
    from judged
    inner join window_activity as later
        on later.customer_id = judged.customer_id
    where later.loaded_at <= judged.decided_at
        and later.occurred_at <= judged.inactive_at
        and (
            later.occurred_at > judged.last_activity_at
            or (later.occurred_at = judged.last_activity_at and later.event_id > judged.event_id)
        )

),

open_candidates as (

    select judged.*
    from judged
    where judged.event_id not in (select event_id from blocked_in_window)

),

alone as (

    -- nothing later known at all: inactive unless an activity of the same instant with a greater id
    -- was known by D (every activity of that instant is among the candidates)
    select open_candidates.*
    from open_candidates
    where open_candidates.in_range
        and coalesce(open_candidates.latest_at <= open_candidates.last_activity_at, true)
        and not exists (
            select 1
            from candidates as tie
            where tie.customer_id = open_candidates.customer_id
                and tie.occurred_at = open_candidates.last_activity_at
                and tie.event_id > open_candidates.event_id
                and tie.loaded_at <= open_candidates.decided_at
        )

),

to_scan as (

    -- left: a late activity, or a customer whose latest activity may have been loaded since the bound
    -- (not within the days after, or not older than what was loaded since): judged on the history
    select open_candidates.*
    from open_candidates
    where not (
        open_candidates.in_range
        and (
            coalesce(open_candidates.latest_at <= open_candidates.last_activity_at, true)
            or (
                open_candidates.latest_at <= open_candidates.inactive_at
                and coalesce(
                    open_candidates.latest_loaded_since_at < open_candidates.latest_at, true
                )
            )
        )
    )

),

history as (

    select activity.*
    from activity
    where activity.occurred_at > {{ flowhouse.derived_inactive_scan_since(since, now, days, activity) }}
        and activity.occurred_at <= {{ now }}
        and activity.customer_id in (select customer_id from to_scan)

),

scanned as (

    select to_scan.*
    from to_scan
    where not exists (
        select 1
        from history as later
        where later.customer_id = to_scan.customer_id
            and later.loaded_at <= to_scan.decided_at
            and later.occurred_at <= to_scan.inactive_at
            and (
                later.occurred_at > to_scan.last_activity_at
                or (later.occurred_at = to_scan.last_activity_at and later.event_id > to_scan.event_id)
            )
    )

),

inactive as (

    select event_id, customer_id, last_activity_at, inactive_at, decided_at from alone
    union all
    select event_id, customer_id, last_activity_at, inactive_at, decided_at from scanned

),
{%- else %}

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
{%- endif %}

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
