{{
    config(
        materialized='incremental',
        incremental_strategy='append',
        enabled=flowhouse.derived_is_enabled('low_stock'),
    )
}}

{#- An inventory_changed event that takes a sku's stock from above low_stock_threshold to at or below
    it (including to zero). A catalog event: no customer. occurred_at is the inventory change's, loaded_at =
    greatest(occurred_at, its loaded_at). Re-read bound: derived_since(0). -#}

with

events as (

    select * from {{ ref('stg_events') }}

),

as_of as (

    select {{ flowhouse.flowhouse_now() }} as now_at

),

inventory_changes as (

    select
        events.event_id,
        events.occurred_at,
        greatest(events.occurred_at, events.loaded_at) as decided_at,
        {{ flowhouse.json_text('events.properties', 'sku') }} as sku,
        {{ flowhouse.json_number('events.properties', 'inventory_qty') }} as inventory_qty,
        {{ flowhouse.json_number('events.properties', 'previous_qty') }} as previous_qty
    from events
    cross join as_of
    where events.event_type = 'inventory_changed'
        and events.loaded_at > {{ flowhouse.derived_since(0) }}
        and greatest(events.occurred_at, events.loaded_at) <= as_of.now_at

),

running_low as (

    select * from inventory_changes
    where sku is not null
        and previous_qty > {{ var('low_stock_threshold') }}
        and inventory_qty <= {{ var('low_stock_threshold') }}

),

derived as (

    select
        {{ flowhouse.derived_event_id('low_stock', ['event_id']) }} as event_id,
        cast(null as {{ dbt.type_string() }}) as customer_id,
        cast('low_stock' as {{ dbt.type_string() }}) as event_type,
        occurred_at,
        decided_at as loaded_at,
        {{ flowhouse.json_object_of({
            'sku': 'sku',
            'inventory_qty': 'cast(inventory_qty as integer)',
        }) }} as properties
    from running_low

),

final as (

    {{ flowhouse.derived_new_events('derived') }}

)

select * from final
