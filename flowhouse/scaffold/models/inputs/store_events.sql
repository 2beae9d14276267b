{#- The store's events as flowhouse's canonical events (docs/events.md, raw.events): here each
    order that was paid becomes an order_placed. loaded_at is when the row reached the warehouse:
    flowhouse reacts to events by it. Add a union for every other kind of event the store has
    (carts, views, sign-ups ...). -#}
select
    'order-' || cast(id as {{ dbt.type_string() }}) as event_id,
    cast(customer_id as {{ dbt.type_string() }}) as customer_id,
    'order_placed' as event_type,
    cast(created_at as timestamp) as occurred_at,
    cast(synced_at as timestamp) as loaded_at,
    {{ flowhouse.json_object_of({
        'order_id': 'cast(id as ' ~ dbt.type_string() ~ ')',
        'value': 'total_price',
        'currency': 'currency',
    }) }} as properties
from {{ source('shop', 'orders') }}
where financial_status in ('paid', 'partially_refunded')
