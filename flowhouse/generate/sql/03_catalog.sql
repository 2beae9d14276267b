-- The catalog: skus spread over twelve categories (sku n is in category ((n - 1) % 12) + 1 and is the
-- ((n - 1) // 12)-th most popular there), their price periods and restock cycles, the catalog events
-- (price_changed, inventory_changed, no customer) and the current state written to raw.products.

create or replace temp table gen_products as
with

numbers as (

    select
        range as sku_num,
        ((range - 1) % 12 + 1)::integer as category_idx
    from range(1, getvariable('n_products') + 1)

),

drawn as (

    select
        n.sku_num,
        sku_key(n.sku_num) as sku,
        c.category_idx,
        c.category,
        getvariable('adjectives')[
            1 + floor(u1(n.sku_num, 'adjective') * len(getvariable('adjectives')))::integer
        ] || ' ' || c.nouns[1 + floor(u1(n.sku_num, 'noun') * len(c.nouns))::integer]
        || ' - ' || getvariable('colors')[
            1 + floor(u1(n.sku_num, 'color') * len(getvariable('colors')))::integer
        ] as name,
        round(
            c.price_low + (c.price_high - c.price_low) * pow(u1(n.sku_num, 'base_price'), 1.7), 0
        )::decimal(12, 2) as base_price,
        c.margin + 0.16 * (u1(n.sku_num, 'margin') - 0.5) as margin,
        u1(n.sku_num, 'stable') < 0.3 as is_stable,
        days_us(7 + floor(u1(n.sku_num, 'price_period') * 15)) as price_len_us,
        floor(u1(n.sku_num, 'price_offset') * 86400000000)::bigint as price_off_us,
        days_us(9 + floor(u1(n.sku_num, 'stock_cycle') * 22)) as stock_len_us,
        floor(u1(n.sku_num, 'stock_offset') * 86400000000)::bigint as stock_off_us
    from numbers as n
    inner join gen_categories as c on n.category_idx = c.category_idx

),

final as (

    select
        *,
        'https://shop.example.com/products/'
            || trim(lower(regexp_replace(name, '[^A-Za-z0-9]+', '-', 'g')), '-')
            || '-' || lower(sku) as url,
        'https://cdn.example.com/products/' || lower(sku) || '.jpg' as image_url,
        round(base_price * (1 - margin), 2)::decimal(12, 2) as cost
    from drawn

)

select * from final;

-- Price changes: a period whose price differs from the one before (drops and rises).
create or replace temp table gen_price_changes as
with

periods as (

    select
        sku_num,
        base_price,
        is_stable,
        price_len_us,
        price_off_us,
        unnest(range(
            price_period(price_len_us, price_off_us, getvariable('store_start_us')) + 1,
            price_period(price_len_us, price_off_us, getvariable('win_end_us')) + 1
        )) as period
    from gen_products
    where not is_stable

),

priced as (

    select
        sku_num,
        period,
        price_start_us(price_len_us, price_off_us, period) as occurred_us,
        price_of(sku_num, base_price, is_stable, period) as price,
        price_of(sku_num, base_price, is_stable, period - 1) as previous_price
    from periods

)

select
    *,
    'prc-' || sku_num::varchar || '-' || period::varchar as event_id,
    occurred_us + catalog_latency_us('prc-' || sku_num::varchar || '-' || period::varchar)
        as loaded_us
from priced
where price <> previous_price and occurred_us < getvariable('win_end_us');

-- Stock steps: restock (0), sold down to half (1), to a quarter or low stock (2), sold out (3).
-- Steps before the store's first window are the stock it started with; they are not events.
create or replace temp table gen_stock_steps as
with

cycles as (

    select
        sku_num,
        stock_len_us,
        stock_off_us,
        unnest(range(
            price_period(stock_len_us, stock_off_us, getvariable('store_start_us')),
            price_period(stock_len_us, stock_off_us, getvariable('win_end_us')) + 1
        )) as cycle
    from gen_products

),

steps as (

    select
        sku_num,
        cycle,
        unnest(range(case when stock_kind(sku_num, cycle) = 2 then 4 else 3 end)) as step,
        price_start_us(stock_len_us, stock_off_us, cycle) as cycle_start_us,
        stock_len_us
    from cycles

),

final as (

    select
        sku_num,
        cycle,
        step,
        cycle_start_us + floor(
            stock_len_us * [0.0, 0.35, 0.7, 0.85][step + 1]
            + minutes_us(180 * u3(sku_num, cycle, step, 'stock_jitter'))
        )::bigint as occurred_us,
        stock_at_step(sku_num, cycle, step) as inventory_qty,
        case
            when step = 0 then stock_at_cycle_end(sku_num, cycle - 1)
            else stock_at_step(sku_num, cycle, step - 1)
        end as previous_qty,
        'inv-' || sku_num::varchar || '-' || cycle::varchar || '-' || step::varchar as event_id
    from steps

)

select *, occurred_us + catalog_latency_us(event_id) as loaded_us
from final
where occurred_us < getvariable('win_end_us');

insert into gen_events
select
    p.event_id,
    null,
    'price_changed',
    p.occurred_us,
    p.loaded_us,
    json_object('sku', g.sku, 'price', p.price, 'previous_price', p.previous_price)
from gen_price_changes as p
inner join gen_products as g on p.sku_num = g.sku_num
where p.loaded_us >= getvariable('load_from_us') and p.loaded_us < getvariable('win_end_us');

insert into gen_events
select
    s.event_id,
    null,
    'inventory_changed',
    s.occurred_us,
    s.loaded_us,
    json_object(
        'sku', g.sku, 'inventory_qty', s.inventory_qty, 'previous_qty', s.previous_qty
    )
from gen_stock_steps as s
inner join gen_products as g on s.sku_num = g.sku_num
where s.occurred_us >= getvariable('store_start_us')
    and s.loaded_us >= getvariable('load_from_us')
    and s.loaded_us < getvariable('win_end_us');

-- raw.products: each sku as its last loaded catalog events left it.
create or replace temp table gen_product_rows as
with

last_price as (

    select sku_num, arg_max(price, occurred_us) as price, max(occurred_us) as changed_us
    from gen_price_changes
    where loaded_us < getvariable('win_end_us')
    group by sku_num

),

last_stock as (

    select
        sku_num,
        arg_max(inventory_qty, occurred_us) as inventory_qty,
        max(occurred_us) filter (where occurred_us >= getvariable('store_start_us')) as changed_us
    from gen_stock_steps
    where loaded_us < getvariable('win_end_us')
    group by sku_num

),

final as (

    select
        g.sku,
        g.name,
        g.url,
        g.image_url,
        g.category,
        coalesce(lp.price, price_at(
            g.sku_num, g.base_price, g.is_stable, g.price_len_us, g.price_off_us,
            getvariable('store_start_us')
        )) as price,
        g.cost,
        ls.inventory_qty,
        make_timestamp(greatest(
            getvariable('store_start_us'), lp.changed_us, ls.changed_us
        )) as updated_at
    from gen_products as g
    left join last_price as lp on g.sku_num = lp.sku_num
    left join last_stock as ls on g.sku_num = ls.sku_num

)

select * from final;
