{{
    config(
        materialized='incremental',
        incremental_strategy='append',
        enabled=flowhouse.derived_is_enabled('subscription_renewal_due'),
        post_hook=flowhouse.marks_post_hooks(),
    )
}}

{#- renewal_notice_days before a subscription's next renewal: next_renewal_at of a subscription_renewed
    event, or occurred_at + interval_days of a subscription_started event. It fires at
    greatest(next renewal - notice, the event) when, among the rows loaded by the decision moment
    D = greatest(that moment, the event's loaded_at), the subscription was not renewed again, paused or
    cancelled since the event. One event per subscription and renewal date. Reads int_subscription_events
    (the subscription events, once, with their renewal dates: a small table, never the stream): every
    started or renewed event whose D falls after derived_window_since() (a renewal can be months away),
    judged against the affected subscriptions' events, by key. -#}
{%- set marks = flowhouse.take_marks(ref('int_subscription_events'), 'loaded_through', through_now=true) %}
{%- set notice_days = var('renewal_notice_days') | int %}

with

as_of as (

    select {{ flowhouse.flowhouse_now() }} as now_at

),

subscription_events as (

    -- int_subscription_events: the subscription events, once, with the renewal date they announce
    select subscription_events.*
    from {{ ref('int_subscription_events') }} as subscription_events
    cross join as_of
    where subscription_events.loaded_at <= as_of.now_at

),

renewals as (

    select event_id, customer_id, subscription_id, occurred_at, loaded_at, next_renewal_at
    from subscription_events
    where {{ flowhouse.event_types_in('event_type', ['subscription_started', 'subscription_renewed']) }}
        and customer_id is not null

),

candidates as (

    select
        renewals.*,
        greatest(next_renewal_at - {{ notice_days }} * interval '1 day', occurred_at) as due_at,
        greatest(next_renewal_at - {{ notice_days }} * interval '1 day', occurred_at, loaded_at)
            as decided_at
    from renewals
    where next_renewal_at > occurred_at

),

undecided as (

    select candidates.*
    from candidates
    cross join as_of
    where candidates.decided_at <= as_of.now_at
        and candidates.decided_at > {{ flowhouse.derived_window_since() }}

),

affected_events as (

    select * from subscription_events
    where subscription_id in (select subscription_id from undecided)

),

due as (

    select undecided.*
    from undecided
    where not exists (
        select 1
        from affected_events as later
        where later.subscription_id = undecided.subscription_id
            and {{ flowhouse.event_types_in(
                'later.event_type', ['subscription_renewed', 'subscription_paused', 'subscription_cancelled']
            ) }}
            and later.loaded_at <= undecided.decided_at
            and later.occurred_at <= undecided.due_at
            and (
                later.occurred_at > undecided.occurred_at
                or (later.occurred_at = undecided.occurred_at and later.event_id > undecided.event_id)
            )
    )

),

first_notice as (

    select * from (
        select
            due.*,
            row_number() over (
                partition by subscription_id, next_renewal_at order by decided_at, event_id
            ) as notice_number
        from due
    ) as ranked
    where notice_number = 1

),

derived as (

    select
        {{ flowhouse.derived_event_id(
            'subscription_renewal_due', ['subscription_id', flowhouse.derived_iso_timestamp('next_renewal_at')]
        ) }} as event_id,
        customer_id,
        cast('subscription_renewal_due' as {{ dbt.type_string() }}) as event_type,
        due_at as occurred_at,
        decided_at as loaded_at,
        {{ flowhouse.json_object_of({
            'subscription_id': 'subscription_id',
            'next_renewal_at': flowhouse.derived_iso_timestamp('next_renewal_at'),
        }) }} as properties
    from first_notice

),

final as (

    {{ flowhouse.derived_new_events('derived') }}

)

select * from final
