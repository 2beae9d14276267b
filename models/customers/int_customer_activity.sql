{#- Engagement per customer as of the build's now: the latest activity and delivery
    (int_customer_last_activity, incremental) and the marketing pressure, which moves with now alone:
    a view, so no build's now is frozen into a table. -#}

with

last_activity as (

    select * from {{ ref('int_customer_last_activity') }}

),

events as (

    select * from {{ ref('stg_events') }}

),

as_of as (

    select {{ flowhouse.flowhouse_now() }} as now_at

),

recent_deliveries as (

    -- the deliveries of the last 30 days known by now (the occurred_at bound lets warehouses prune)
    select
        events.customer_id,
        events.occurred_at,
        as_of.now_at
    from events
    cross join as_of
    where events.event_type = 'message_delivered'
        and events.customer_id is not null
        and events.occurred_at > as_of.now_at - 30 * interval '1 day'
        and events.occurred_at <= as_of.now_at
        and events.loaded_at <= as_of.now_at

),

pressure as (

    select
        customer_id,
        cast(sum(
            case when occurred_at > now_at - 14 * interval '1 day' then 1 else 0 end
        ) as integer) as promo_pressure_14d,
        cast(count(*) as integer) as promo_pressure_30d
    from recent_deliveries
    group by customer_id

),

final as (

    select
        last_activity.customer_id,
        last_activity.last_activity_at,
        coalesce(pressure.promo_pressure_14d, 0) as promo_pressure_14d,
        coalesce(pressure.promo_pressure_30d, 0) as promo_pressure_30d,
        last_activity.last_message_delivered_at
    from last_activity
    left join pressure
        on last_activity.customer_id = pressure.customer_id

)

select * from final
