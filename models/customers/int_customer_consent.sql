{{
    config(
        materialized='incremental',
        unique_key='customer_id',
        incremental_strategy='delete+insert',
        on_schema_change='append_new_columns',
        pre_hook="{{ flowhouse.forget_when_now_went_back() }}"
    )
}}

{#- Incremental by what changed (macros/incremental.sql): every column is a latest time, so a build
    reads only the consent events that changed (loaded since its last build, or whose time its now
    passed) and keeps, per customer, the later of the row it had and theirs. -#}

{%- set marks = flowhouse.incremental_marks() %}
{%- set now = flowhouse.flowhouse_now() %}
{%- set columns = [
    'last_email_opted_in_at', 'last_email_unsubscribed_at', 'last_sms_opted_in_at',
    'last_sms_unsubscribed_at', 'last_whatsapp_opted_in_at', 'last_whatsapp_unsubscribed_at',
    'last_viber_opted_in_at', 'last_viber_unsubscribed_at',
] %}

with

known as (

    -- the consent events known at the build's now (those that changed, when incremental)
    {{ flowhouse.changed_rows(
        ref('stg_consent_events'), 'loaded_at', ['occurred_at', 'loaded_at'], marks,
        known=['occurred_at', 'loaded_at']
    ) }}

),

latest as (

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
        max(case when is_opt_in and applies_to_whatsapp then occurred_at end)
            as last_whatsapp_opted_in_at,
        max(case when not is_opt_in and applies_to_whatsapp then occurred_at end)
            as last_whatsapp_unsubscribed_at,
        max(case when is_opt_in and applies_to_viber then occurred_at end)
            as last_viber_opted_in_at,
        max(case when not is_opt_in and applies_to_viber then occurred_at end)
            as last_viber_unsubscribed_at
    from known
    group by customer_id

),

final as (

    select
        latest.customer_id,
        {%- for column in columns %}
        {%- if marks %}
        {{ flowhouse.later('latest.' ~ column, 'kept.' ~ column) }} as {{ column }},
        {%- else %}
        latest.{{ column }},
        {%- endif %}
        {%- endfor %}
        {{ now }} as refreshed_at,
        {{ flowhouse.loaded_through(ref('stg_consent_events'), 'loaded_at', marks) }}
            as loaded_through
    from latest
    {%- if marks %}
    left join {{ this }} as kept
        on latest.customer_id = kept.customer_id
    {%- endif %}

)

select * from final
