with

source as (

    select * from {{ flowhouse.input('products') }}

),

final as (

    select
        trim(sku) as sku,
        name,
        url,
        image_url,
        nullif(trim(category), '') as category,
        price,
        cost,
        price - cost as margin,
        case when price > 0 then round((price - cost) / price, 4) end as margin_pct,
        inventory_qty,
        coalesce(inventory_qty, 0) > 0 as is_in_stock,
        updated_at
    from source

)

select * from final
