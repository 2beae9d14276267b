{{ config(materialized='table') }}

{#- Per customer: the device tokens a push can use and push consent, and onsite opt-outs.

    A token is usable while the app has not revoked it and the push provider has not answered it dead
    (flowhouse.invalid_device_tokens). Push consent: an `unsubscribed` event with channel push (or all)
    withdraws it until a later `opted_in` with channel push; without either event, a usable token is the
    consent (the operating system asked the customer before the app could register it). Onsite needs no
    opt-in; an `unsubscribed` with channel onsite (or all), not followed by an `opted_in` with channel
    onsite, opts the customer out. -#}

with

tokens as (

    select * from {{ ref('stg_device_tokens') }}

),

dead as (

    select distinct token from {{ source('flowhouse', 'invalid_device_tokens') }}

),

consent_events as (

    select * from {{ ref('stg_consent_events') }}

),

as_of as (

    select {{ flowhouse.flowhouse_now() }} as now_at

),

usable as (

    select
        tokens.customer_id,
        tokens.token,
        tokens.platform,
        tokens.created_at,
        row_number() over (
            partition by tokens.customer_id order by tokens.created_at desc, tokens.token
        ) as newest
    from tokens
    cross join as_of
    left join dead on dead.token = tokens.token
    where dead.token is null
        and tokens.created_at <= as_of.now_at
        and (tokens.revoked_at is null or tokens.revoked_at > as_of.now_at)

),

devices as (

    select
        customer_id,
        max(case when newest = 1 then token end) as push_token,
        count(*) as push_token_count
    from usable
    group by customer_id

),

consent as (

    select
        consent_events.customer_id,
        max(case when is_opt_in and channel = 'push' then occurred_at end) as last_push_opted_in_at,
        max(case when not is_opt_in and channel in ('push', 'all') then occurred_at end)
            as last_push_unsubscribed_at,
        max(case when is_opt_in and channel = 'onsite' then occurred_at end)
            as last_onsite_opted_in_at,
        max(case when not is_opt_in and channel in ('onsite', 'all') then occurred_at end)
            as last_onsite_unsubscribed_at
    from consent_events
    cross join as_of
    where consent_events.occurred_at <= as_of.now_at
        and consent_events.loaded_at <= as_of.now_at
        and consent_events.channel in ('push', 'onsite', 'all')
    group by consent_events.customer_id

),

customers as (

    select customer_id from devices
    union
    select customer_id from consent

),

final as (

    select
        customers.customer_id,
        devices.push_token,
        coalesce(devices.push_token_count, 0) as push_token_count,
        case
            when consent.last_push_unsubscribed_at is not null
                and (
                    consent.last_push_opted_in_at is null
                    or consent.last_push_unsubscribed_at >= consent.last_push_opted_in_at
                ) then false
            when consent.last_push_opted_in_at is not null then true
            else devices.push_token is not null
        end as has_push_consent,
        consent.last_push_opted_in_at is not null or devices.push_token is not null
            as has_push_opt_in,
        consent.last_push_unsubscribed_at as push_unsubscribed_at,
        case
            when consent.last_onsite_unsubscribed_at >= coalesce(
                consent.last_onsite_opted_in_at, consent.last_onsite_unsubscribed_at
            ) then consent.last_onsite_unsubscribed_at
        end as onsite_unsubscribed_at
    from customers
    left join devices on devices.customer_id = customers.customer_id
    left join consent on consent.customer_id = customers.customer_id

)

select * from final
