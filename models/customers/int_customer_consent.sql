{{ config(materialized='table') }}

with

consent_events as (

    select * from {{ ref('stg_consent_events') }}

),

as_of as (

    select {{ flowhouse.flowhouse_now() }} as now_at

),

known as (

    select consent_events.*
    from consent_events
    cross join as_of
    where consent_events.occurred_at <= as_of.now_at
        and consent_events.loaded_at <= as_of.now_at

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

)

select * from final
