{{ config(materialized='table') }}

{#- Each customer's subscription state as of the build's now, from the subscription events of the contract
    (subscription_started, _renewed, _resumed: active; _paused: paused; _cancelled: cancelled; a failed
    payment changes nothing): per subscription_id the latest such event wins, and a customer is `active`
    when any of their subscriptions is, else `paused` when any is, else `cancelled`. Customers without a
    subscription event have no row (customer_attributes says `none`). -#}

with

events as (

    select * from {{ ref('stg_events') }}
    where event_type in (
        'subscription_started', 'subscription_renewed', 'subscription_resumed',
        'subscription_paused', 'subscription_cancelled'
    )
        and customer_id is not null
        and occurred_at <= {{ flowhouse.flowhouse_now() }}
        and loaded_at <= {{ flowhouse.flowhouse_now() }}

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
        sum(case when status = 'active' then 1 else 0 end) as active_subscriptions
    from per_subscription
    where latest = 1
    group by customer_id

)

select * from final
