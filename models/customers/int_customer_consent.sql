{{
    config(
        materialized='incremental',
        unique_key='customer_id',
        incremental_strategy='delete+insert',
        on_schema_change='append_new_columns'
    )
}}

{#- Incremental by what changed (macros/incremental.sql): a build recomputes the customers with a consent
    event loaded since its last one, or whose event's time the build's now passed, from all of their
    consent events. -#}

{%- set marks = flowhouse.incremental_marks() %}
{%- set now = flowhouse.flowhouse_now() %}

with

consent_events as (

    select * from {{ ref('stg_consent_events') }}

),

as_of as (

    select {{ now }} as now_at

),

{%- if marks %}

changed as (

    select distinct customer_id
    from consent_events
    where {{ flowhouse.changed_since(marks, 'loaded_at', ['occurred_at', 'loaded_at'], now) }}

),

{%- endif %}

known as (

    select consent_events.*
    from consent_events
    cross join as_of
    where consent_events.occurred_at <= as_of.now_at
        and consent_events.loaded_at <= as_of.now_at
        {%- if marks %}
        and consent_events.customer_id in (select customer_id from changed)
        {%- endif %}

),

final as (

    select
        customer_id,
        max(case when is_opt_in and applies_to_email then occurred_at end)
            as last_email_opted_in_at,
        max(case when not is_opt_in and applies_to_email then occurred_at end)
            as last_email_unsubscribed_at,
        max(case when is_opt_in and applies_to_sms then occurred_at end)
            as last_sms_opted_in_at,
        max(case when not is_opt_in and applies_to_sms then occurred_at end)
            as last_sms_unsubscribed_at,
        {{ now }} as refreshed_at,
        {{ flowhouse.loaded_through(ref('stg_consent_events'), 'loaded_at', marks) }}
            as loaded_through
    from known
    group by customer_id

)

select * from final
