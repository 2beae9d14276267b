{{
    config(
        materialized='incremental',
        incremental_strategy='append',
        enabled=flowhouse.derived_is_enabled('back_in_stock'),
        post_hook=flowhouse.marks_post_hooks(),
    )
}}

{#- An inventory_changed event that takes a sku from no stock (previous_qty <= 0) to some
    (inventory_qty > 0). A catalog event: no customer. occurred_at is the inventory change's, loaded_at =
    greatest(occurred_at, its loaded_at). An incremental build reads the changes that may decide after its
    last one (derived_catalog_changes). -#}

{%- set marks = flowhouse.take_marks(ref('stg_events'), through_now=true) %}

with

inventory_changes as (

    {{ flowhouse.derived_catalog_changes('inventory_changed', {
        'inventory_qty': flowhouse.json_number('events.properties', 'inventory_qty'),
        'previous_qty': flowhouse.json_number('events.properties', 'previous_qty'),
    }, marks) }}

),

restocks as (

    select * from inventory_changes
    where sku is not null
        and previous_qty <= 0
        and inventory_qty > 0

),

derived as (

    {{ flowhouse.derived_catalog_events('back_in_stock', 'restocks', {'sku': 'sku', 'inventory_qty': 'cast(inventory_qty as integer)'}) }}

),

final as (

    {{ flowhouse.derived_new_events('derived') }}

)

select * from final
