with

events as (

    select * from {{ ref('stg_events') }}

),

consent as (

    select
        event_id,
        customer_id,
        event_type,
        lower(trim({{ flowhouse.json_text('properties', 'channel') }})) as channel,
        occurred_at,
        loaded_at
    from events
    where {{ flowhouse.event_types_in('event_type', ['opted_in', 'unsubscribed']) }}
        and customer_id is not null

),

final as (

    select
        event_id,
        customer_id,
        event_type,
        channel,
        event_type = 'opted_in' as is_opt_in,
        coalesce(channel in ('email', 'all'), false) as applies_to_email,
        coalesce(channel in ('sms', 'all'), false) as applies_to_sms,
        -- WhatsApp and Viber need their own opt-in: `all` counts for them only in an unsubscribe
        coalesce(channel = 'whatsapp' or (channel = 'all' and event_type = 'unsubscribed'), false)
            as applies_to_whatsapp,
        coalesce(channel = 'viber' or (channel = 'all' and event_type = 'unsubscribed'), false)
            as applies_to_viber,
        occurred_at,
        loaded_at
    from consent

)

select * from final
