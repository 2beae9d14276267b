{{
    config(
        materialized='incremental',
        incremental_strategy='append',
        enabled=flowhouse.derived_is_enabled('price_dropped'),
        post_hook=flowhouse.marks_post_hooks(),
    )
}}

{#- A price_changed event that lowers a sku's price by at least price_drop_min_pct percent of the previous
    price (previous_price > 0). A catalog event: no customer. occurred_at is the price change's, loaded_at =
    greatest(occurred_at, its loaded_at). An incremental build reads the changes that may decide after its
    last one (derived_catalog_changes). -#}

{%- set marks = flowhouse.take_marks(ref('stg_events'), through_now=true) %}

with

price_changes as (

    {{ flowhouse.derived_catalog_changes('price_changed', {
        'price': flowhouse.json_money('events.properties', 'price'),
        'previous_price': flowhouse.json_money('events.properties', 'previous_price'),
    }, marks) }}

),

drops as (

    -- compared in exact decimals: a 10 % drop from 19.90 to 17.91 counts at price_drop_min_pct 10
    select * from price_changes
    where sku is not null
        and previous_price > 0
        and (previous_price - price) * 100 >= {{ var('price_drop_min_pct') }} * previous_price

),

derived as (

    {{ flowhouse.derived_catalog_events('price_dropped', 'drops', {
        'sku': 'sku',
        'price': 'price',
        'previous_price': 'previous_price',
        'drop_pct': 'cast(round((previous_price - price) * 100 / previous_price, 2) as decimal(6, 2))',
    }) }}

),

final as (

    {{ flowhouse.derived_new_events('derived') }}

)

select * from final
