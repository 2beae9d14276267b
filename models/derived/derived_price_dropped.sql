{{
    config(
        materialized='incremental',
        incremental_strategy='append',
        enabled=flowhouse.derived_is_enabled('price_dropped'),
    )
}}

{#- A price_changed event that lowers a sku's price by at least price_drop_min_pct percent of the previous
    price (previous_price > 0). A catalog event: no customer. occurred_at is the price change's, loaded_at =
    greatest(occurred_at, its loaded_at). Re-read bound: derived_since(0). -#}

with

events as (

    select * from {{ ref('stg_events') }}

),

as_of as (

    select {{ flowhouse.flowhouse_now() }} as now_at

),

price_changes as (

    select
        events.event_id,
        events.occurred_at,
        greatest(events.occurred_at, events.loaded_at) as decided_at,
        {{ flowhouse.json_text('events.properties', 'sku') }} as sku,
        {{ flowhouse.json_money('events.properties', 'price') }} as price,
        {{ flowhouse.json_money('events.properties', 'previous_price') }} as previous_price
    from events
    cross join as_of
    where events.event_type = 'price_changed'
        and events.loaded_at > {{ flowhouse.derived_since(0) }}
        and greatest(events.occurred_at, events.loaded_at) <= as_of.now_at

),

drops as (

    -- compared in exact decimals: a 10 % drop from 19.90 to 17.91 counts at price_drop_min_pct 10
    select * from price_changes
    where sku is not null
        and previous_price > 0
        and (previous_price - price) * 100 >= {{ var('price_drop_min_pct') }} * previous_price

),

derived as (

    select
        {{ flowhouse.derived_event_id('price_dropped', ['event_id']) }} as event_id,
        cast(null as {{ dbt.type_string() }}) as customer_id,
        cast('price_dropped' as {{ dbt.type_string() }}) as event_type,
        occurred_at,
        decided_at as loaded_at,
        {{ flowhouse.json_object_of({
            'sku': 'sku',
            'price': 'price',
            'previous_price': 'previous_price',
            'drop_pct': 'cast(round((previous_price - price) * 100 / previous_price, 2) as decimal(6, 2))',
        }) }} as properties
    from drops

),

final as (

    {{ flowhouse.derived_new_events('derived') }}

)

select * from final
