{{
    config(
        materialized='incremental',
        incremental_strategy='append',
        on_schema_change='append_new_columns',
        pre_hook="{{ flowhouse.forget_when_now_went_back() }}",
        post_hook=flowhouse.marks_post_hooks(),
    )
}}

{#- Every subscription event that names its subscription (started, renewed, paused, cancelled), known at
    the build's now, once: the state subscription_renewal_due reads by key and by its renewal date
    instead of the event stream. next_renewal_at: next_renewal_at of a subscription_renewed event, or
    occurred_at + interval_days of a subscription_started one. An incremental build appends the events
    loaded since its last one (macros/incremental.sql); a build at an earlier now starts again. -#}

{%- set marks = flowhouse.take_marks(ref('stg_events'), through_now=true) %}
{%- set now = flowhouse.flowhouse_now() %}

with

changed_events as (

    select
        event_id,
        customer_id,
        event_type,
        occurred_at,
        loaded_at,
        properties,
        {{ flowhouse.json_text('properties', 'subscription_id') }} as subscription_id
    from ({{ flowhouse.changed_rows(
        ref('stg_events'), 'loaded_at', [], marks,
        flowhouse.event_types_in('event_type', [
            'subscription_started', 'subscription_renewed', 'subscription_paused', 'subscription_cancelled'
        ]),
        known=['loaded_at']
    ) }}) as changed

),

subscription_events as (

    select *
    from changed_events
    where subscription_id is not null
    {%- if marks %}
        -- rows loaded in the instant of the last mark are read again: keep what the table holds
        and not exists (
            select 1 from {{ this }} as kept
            where kept.loaded_at >= {{ marks.loaded }} and kept.event_id = changed_events.event_id
        )
    {%- endif %}

),

stamps as (

    {{ flowhouse.stamps(ref('stg_events'), 'loaded_at', marks, through_now=true) }}

),

final as (

    select
        subscription_events.event_id,
        subscription_events.customer_id,
        subscription_events.event_type,
        subscription_events.subscription_id,
        subscription_events.occurred_at,
        subscription_events.loaded_at,
        case
            when subscription_events.event_type = 'subscription_started'
                then subscription_events.occurred_at
                    + cast({{ flowhouse.json_number('subscription_events.properties', 'interval_days') }}
                        as integer)
                    * interval '1 day'
            when subscription_events.event_type = 'subscription_renewed'
                then {{ flowhouse.derived_json_timestamp('subscription_events.properties', 'next_renewal_at') }}
        end as next_renewal_at,
        stamps.refreshed_at,
        stamps.loaded_through
    from subscription_events
    cross join stamps

)

select * from final
