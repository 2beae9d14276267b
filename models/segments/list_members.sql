{{ config(materialized='table') }}

with

events as (

    select * from {{ ref('stg_events') }}

),

as_of as (

    select {{ flowhouse.flowhouse_now() }} as now_at

),

list_events as (

    select
        events.event_id,
        events.customer_id,
        lower(trim({{ flowhouse.json_text('events.properties', 'list') }})) as list_name,
        events.event_type,
        events.occurred_at
    from events
    cross join as_of
    where events.event_type in ('list_joined', 'list_left')
        and events.customer_id is not null
        and events.occurred_at <= as_of.now_at
        and events.loaded_at <= as_of.now_at

),

latest as (

    -- the latest event per customer and list wins; at the same instant, leaving wins
    select
        *,
        row_number() over (
            partition by customer_id, list_name
            order by occurred_at desc, case when event_type = 'list_left' then 0 else 1 end, event_id desc
        ) as recency_rank
    from list_events
    where list_name is not null and list_name <> ''

),

final as (

    select
        customer_id,
        list_name,
        occurred_at as joined_at
    from latest
    where recency_rank = 1
        and event_type = 'list_joined'

)

select * from final
