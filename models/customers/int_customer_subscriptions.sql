{{
    config(
        materialized='incremental',
        unique_key='customer_id',
        incremental_strategy='delete+insert',
        on_schema_change='append_new_columns',
        pre_hook="{{ flowhouse.forget_when_now_went_back() }}",
        post_hook=flowhouse.marks_post_hooks(),
    )
}}

{#- Each customer's subscription state as of the build's now, from the subscription events of the contract
    (subscription_started, _renewed, _resumed: active; _paused: paused; _cancelled: cancelled; a failed
    payment changes nothing): per subscription_id the latest such event wins, and a customer is `active`
    when any of their subscriptions is, else `paused` when any is, else `cancelled`. Customers without a
    subscription event have no row (customer_attributes says `none`).
    Incremental by what changed (macros/incremental.sql): a build recomputes the customers with a
    subscription event loaded since its last one, or whose event time the build's now passed, from all of
    their subscription events (a rare event type: the read keeps the other types out by event_type). -#}

{%- set marks = flowhouse.take_marks(ref('stg_events')) %}
{%- set now = flowhouse.flowhouse_now() %}
{%- set subscription_events = flowhouse.event_types_in('event_type', [
    'subscription_started', 'subscription_renewed', 'subscription_resumed',
    'subscription_paused', 'subscription_cancelled'
]) ~ ' and customer_id is not null' %}

with

changed as (

    {{ flowhouse.changed_keys('customer_id', [
        {'relation': ref('stg_events'), 'loaded': 'loaded_at', 'times': ['occurred_at', 'loaded_at'],
         'where': subscription_events},
    ], marks) }}

),

events as (

    -- the subscription events known at the build's now (of the changed customers, when incremental)
    {{ flowhouse.rows_of_changed_keys(
        ref('stg_events'), 'customer_id', 'changed', marks, subscription_events,
        known=['occurred_at', 'loaded_at']
    ) }}

),

per_subscription as (

    select
        customer_id,
        case event_type
            when 'subscription_paused' then 'paused'
            when 'subscription_cancelled' then 'cancelled'
            else 'active'
        end as status,
        row_number() over (
            partition by customer_id, coalesce({{ flowhouse.json_text('properties', 'subscription_id') }}, '')
            order by occurred_at desc, event_id desc
        ) as latest
    from events

),

final as (

    select
        customer_id,
        case
            when sum(case when status = 'active' then 1 else 0 end) > 0 then 'active'
            when sum(case when status = 'paused' then 1 else 0 end) > 0 then 'paused'
            else 'cancelled'
        end as subscription_status,
        sum(case when status = 'active' then 1 else 0 end) as active_subscriptions,
        {{ now }} as refreshed_at,
        {{ flowhouse.loaded_through(ref('stg_events'), 'loaded_at', marks) }} as loaded_through
    from per_subscription
    where latest = 1
    group by customer_id

)

select * from final
