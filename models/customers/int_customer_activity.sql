{{ config(materialized='table') }}

{%- set activity_types = var('activity_event_types') %}

with

events as (

    select * from {{ ref('stg_events') }}

),

as_of as (

    select {{ flowhouse.flowhouse_now() }} as now_at

),

known_events as (

    select
        events.customer_id,
        events.event_type,
        events.occurred_at,
        as_of.now_at
    from events
    cross join as_of
    where events.customer_id is not null
        and events.occurred_at <= as_of.now_at
        and events.loaded_at <= as_of.now_at

),

final as (

    -- one pass over the stream, grouped by customer
    select
        customer_id,
        max(
            case
                when event_type in ('{{ activity_types | join("', '") }}') then occurred_at
            end
        ) as last_activity_at,
        cast(sum(
            case
                when event_type = 'message_delivered'
                    and occurred_at > now_at - 14 * interval '1 day' then 1
                else 0
            end
        ) as integer) as promo_pressure_14d,
        cast(sum(
            case
                when event_type = 'message_delivered'
                    and occurred_at > now_at - 30 * interval '1 day' then 1
                else 0
            end
        ) as integer) as promo_pressure_30d,
        max(case when event_type = 'message_delivered' then occurred_at end)
            as last_message_delivered_at
    from known_events
    group by customer_id

)

select * from final
