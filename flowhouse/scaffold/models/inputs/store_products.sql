{#- The store's catalog as flowhouse's canonical products (docs/events.md, raw.products). -#}
select
    cast(sku as {{ dbt.type_string() }}) as sku,
    title as name,
    'https://shop.example/products/' || handle as url,
    image_src as image_url,
    product_type as category,
    price,
    cast(null as decimal(12, 2)) as cost,
    inventory_quantity as inventory_qty,
    cast(updated_at as timestamp) as updated_at
from {{ source('shop', 'products') }}
