-- Sessions: how many a customer has in a week follows their activity level; each starts at a local
-- hour drawn from a diurnal curve in the customer's own time zone (converted to UTC with the zone's
-- real rules, DST included). A session is category views, maybe a search, then product views; some
-- sessions add items to a cart, fewer start a checkout, fewer still place the order.
-- Every step is a function of the session key and its position, so the steps are stored compactly
-- (their JSON is built as they are written) and the carts re-derive the views they were added from.

set variable week_lo = (getvariable('src_from_us') - getvariable('origin_us')) // days_us(7) - 1;

set variable week_hi = (getvariable('win_end_us') - getvariable('origin_us')) // days_us(7) + 1;

create or replace temp macro step_us(session_us, gap_us, session_key, step) as
    session_us + step * gap_us
    + floor(u2(session_key, step, 'step_jitter') * 0.8 * gap_us)::bigint;

create or replace temp macro viewed_sku_num(session_key, step, favourite_sku_num, category_idx) as
    case
        when u2(session_key, step, 'favourite') < 0.25 then favourite_sku_num
        else
            case
                when u2(session_key, step, 'same_category') < 0.75 then category_idx
                else pick(getvariable('category_slots'), u2(session_key, step, 'category'))
            end
            + 12 * floor(
                getvariable('skus_per_category') * pow(u2(session_key, step, 'rank'), 2.2)
            )::integer
    end;

-- UTC start of every local hour, per zone, over the weeks sessions are drawn for.
create or replace temp table gen_zone_hours as
select
    z.zone_idx,
    d.local_day,
    h.hour,
    epoch_us(timezone(
        z.conversion_zone,
        make_timestamp(getvariable('origin_us') + hours_us(d.local_day * 24 + h.hour))
    )) as utc_us
from gen_zones as z
cross join (
    select range as local_day
    from range(getvariable('week_lo') * 7, getvariable('week_hi') * 7 + 7)
) as d
cross join (select range as hour from range(24)) as h;

create or replace temp table gen_sessions as
with

customer_weeks as (

    select
        c.customer_num,
        c.zone_idx,
        c.created_us,
        c.sessions_per_week,
        c.favourite_sku_num,
        c.is_wholesale,
        w.week
    from gen_customers as c
    cross join (
        select range as week from range(getvariable('week_lo'), getvariable('week_hi') + 1)
    ) as w
    where c.sessions_per_week > 0 and c.created_us < getvariable('win_end_us')

),

counted as (

    select
        *,
        least(31, floor(
            sessions_per_week * (0.4 + 1.2 * u2(customer_num, week, 'sessions'))
            + u2(customer_num, week, 'sessions_round')
        ))::integer as sessions
    from customer_weeks

),

numbered as (

    select * exclude (sessions), unnest(range(sessions)) as j
    from counted
    where sessions > 0

),

keyed as (

    select
        *,
        (customer_num * 2048 + week) * 32 + j as session_key,
        week * 7 + floor(u3(customer_num, week, j, 'weekday') * 7)::integer as local_day,
        pick(getvariable('hour_slots'), u3(customer_num, week, j, 'hour')) - 1 as hour
    from numbered

),

timed as (

    select
        k.*,
        h.utc_us + floor(u1(k.session_key, 'minute') * 3600000000)::bigint as session_us
    from keyed as k
    inner join gen_zone_hours as h
        on k.zone_idx = h.zone_idx and k.local_day = h.local_day and k.hour = h.hour

),

drawn as (

    select
        customer_num,
        week,
        j,
        session_key,
        session_us,
        favourite_sku_num,
        is_wholesale,
        's' || customer_num::varchar || '-' || week::varchar || '-' || j::varchar as session_id,
        case
            when u1(session_key, 'categories') < 0.45 then 0
            when u1(session_key, 'categories') < 0.85 then 1
            else 2
        end as category_views,
        (u1(session_key, 'search') < 0.3)::integer as searches,
        (1 + floor(pow(u1(session_key, 'views'), 1.5) * 7))::integer as product_views,
        floor(1000000 * (25 + 115 * u1(session_key, 'pace')))::bigint as gap_us,
        case
            when u1(session_key, 'main_category') < 0.4 then (favourite_sku_num - 1) % 12 + 1
            else pick(getvariable('category_slots'), u1(session_key, 'main_category_pick'))
        end as category_idx,
        u1(session_key, 'cart') < case when is_wholesale then 0.35 else 0.22 end as has_cart,
        u1(session_key, 'checkout') < 0.5 as has_checkout,
        u1(session_key, 'order') < 0.72 as has_order,
        u1(session_key, 'items') as u_items
    from timed
    where session_us >= greatest(created_us, getvariable('src_from_us'))
        and session_us < getvariable('win_end_us')

)

select
    * exclude (u_items),
    least(product_views, 1 + floor(pow(u_items, 2) * 3))::integer as cart_items,
    category_views + searches + product_views as steps
from drawn;

-- Category views, searches and product views, kept compact (the JSON is built as they are written,
-- by the view below).
create or replace temp table gen_step_events as
with

steps as (

    select
        customer_num,
        week,
        j,
        session_key,
        session_us,
        gap_us,
        favourite_sku_num,
        category_idx,
        category_views,
        searches,
        unnest(range(steps)) as step
    from gen_sessions

),

timed as (

    select
        *,
        step_us(session_us, gap_us, session_key, step) as occurred_us,
        case
            when step < category_views then 0
            when step < category_views + searches then 1
            else 2
        end::utinyint as kind
    from steps

),

loaded as (

    select *, occurred_us + latency2_us(session_key, step) as loaded_us
    from timed

)

select
    session_key,
    step::utinyint as step,
    kind,
    occurred_us,
    loaded_us,
    category_idx::utinyint as category_idx,
    case
        when kind = 2 then viewed_sku_num(session_key, step, favourite_sku_num, category_idx)
    end::integer as sku_num
from loaded
where loaded_us >= getvariable('load_from_us') and loaded_us < getvariable('win_end_us')
order by loaded_us;

create or replace temp view gen_step_events_json as
with

keyed as (

    select
        *,
        session_key // 65536 as customer_num,
        session_key // 32 % 2048 as week,
        session_key % 32 as j
    from gen_step_events

),

named as (

    select
        *,
        's' || customer_num::varchar || '-' || week::varchar || '-' || j::varchar as session_id,
        u2(session_key, step, 'query') as u_query
    from keyed

)

select
    n.session_id || '.' || n.step::varchar as event_id,
    n.customer_num,
    ['category_viewed', 'searched', 'product_viewed'][n.kind + 1] as event_type,
    n.occurred_us,
    n.loaded_us,
    case n.kind
        when 2 then json_object(
            'session_id', n.session_id,
            'sku', p.sku,
            'category', p.category,
            'price', price_at(
                p.sku_num, p.base_price, p.is_stable, p.price_len_us, p.price_off_us,
                n.occurred_us
            )
        )
        when 0 then json_object(
            'session_id', n.session_id,
            'category', getvariable('category_names')[
                case
                    when n.step = 0 then n.category_idx
                    else pick(getvariable('category_slots'), u2(n.session_key, n.step, 'browsed'))
                end
            ]
        )
        else json_object(
            'session_id', n.session_id,
            'query', case
                when n.u_query < 0.08 then ['gift card balance', 'returns policy', 'xmas jumper 3xl',
                    'bluetooth toaster', 'vegan leather sofa'][1 + floor(n.u_query * 62.5)::integer]
                else getvariable('category_queries')[n.category_idx][
                    1 + floor((n.u_query - 0.08) / 0.92 * 5)::integer
                ]
            end,
            'results_count', case
                when n.u_query < 0.08 then 0
                else 1 + floor(pow(u2(n.session_key, n.step, 'results'), 1.5) * 119)::integer
            end
        )
    end as properties
from named as n
left join gen_products as p on n.sku_num = p.sku_num;

-- Carts: the first one to three product views of a session with a cart are added to it, each a few
-- seconds after its view. One row per cart, its items in columns (no aggregation needed).
create or replace temp macro cart_quantity(session_key, step, is_wholesale) as
    case
        when is_wholesale then between_int(u2(session_key, step, 'quantity'), 4, 20)
        when u2(session_key, step, 'quantity') < 0.80 then 1
        when u2(session_key, step, 'quantity') < 0.95 then 2
        else 3
    end::integer;

create or replace temp macro added_us(session_us, gap_us, session_key, step) as
    step_us(session_us, gap_us, session_key, step)
    + floor(1000000 * (5 + 15 * u2(session_key, step, 'add_delay')))::bigint;

create or replace temp table gen_carts as
with

carts as (

    select
        *,
        category_views + searches as first_view_step
    from gen_sessions
    where has_cart

),

items as (

    select
        customer_num,
        session_key,
        session_id,
        'k' || substr(session_id, 2) as cart_id,
        cart_items,
        has_checkout,
        has_order,
        step_us(session_us, gap_us, session_key, steps)
            + floor(1000000 * (30 + 270 * u1(session_key, 'checkout_delay')))::bigint
            as checkout_us,
        viewed_sku_num(session_key, first_view_step, favourite_sku_num, category_idx) as sku_num_1,
        viewed_sku_num(session_key, first_view_step + 1, favourite_sku_num, category_idx)
            as sku_num_2,
        viewed_sku_num(session_key, first_view_step + 2, favourite_sku_num, category_idx)
            as sku_num_3,
        cart_quantity(session_key, first_view_step, is_wholesale) as quantity_1,
        cart_quantity(session_key, first_view_step + 1, is_wholesale) as quantity_2,
        cart_quantity(session_key, first_view_step + 2, is_wholesale) as quantity_3,
        added_us(session_us, gap_us, session_key, first_view_step) as added_us_1,
        added_us(session_us, gap_us, session_key, first_view_step + 1) as added_us_2,
        added_us(session_us, gap_us, session_key, first_view_step + 2) as added_us_3
    from carts

),

priced as (

    select
        i.* exclude (sku_num_1, sku_num_2, sku_num_3),
        p1.sku as sku_1,
        p2.sku as sku_2,
        p3.sku as sku_3,
        p1.category as category_1,
        p2.category as category_2,
        p3.category as category_3,
        p1.cost as cost_1,
        p2.cost as cost_2,
        p3.cost as cost_3,
        price_at(
            p1.sku_num, p1.base_price, p1.is_stable, p1.price_len_us, p1.price_off_us, i.added_us_1
        ) as price_1,
        price_at(
            p2.sku_num, p2.base_price, p2.is_stable, p2.price_len_us, p2.price_off_us, i.added_us_2
        ) as price_2,
        price_at(
            p3.sku_num, p3.base_price, p3.is_stable, p3.price_len_us, p3.price_off_us, i.added_us_3
        ) as price_3
    from items as i
    inner join gen_products as p1 on i.sku_num_1 = p1.sku_num
    inner join gen_products as p2 on i.sku_num_2 = p2.sku_num
    inner join gen_products as p3 on i.sku_num_3 = p3.sku_num

)

select
    *,
    (
        quantity_1 * price_1
        + case when cart_items >= 2 then quantity_2 * price_2 else 0 end
        + case when cart_items >= 3 then quantity_3 * price_3 else 0 end
    )::decimal(12, 2) as subtotal
from priced;

insert into gen_events
with

adds as (

    select
        customer_num,
        session_id,
        cart_id,
        unnest(list_slice([
            {'item': 0, 'sku': sku_1, 'quantity': quantity_1, 'price': price_1, 'at': added_us_1},
            {'item': 1, 'sku': sku_2, 'quantity': quantity_2, 'price': price_2, 'at': added_us_2},
            {'item': 2, 'sku': sku_3, 'quantity': quantity_3, 'price': price_3, 'at': added_us_3}
        ], 1, cart_items)) as added
    from gen_carts

),

loaded as (

    select
        *,
        session_id || '.a' || added.item::varchar as event_id,
        added.at + latency_us(session_id || '.a' || added.item::varchar) as loaded_us
    from adds

)

select
    event_id,
    customer_num,
    'added_to_cart',
    added.at,
    loaded_us,
    json_object(
        'session_id', session_id,
        'cart_id', cart_id,
        'sku', added.sku,
        'quantity', added.quantity,
        'price', added.price
    )
from loaded
where loaded_us >= getvariable('load_from_us') and loaded_us < getvariable('win_end_us');

-- Carts that reached checkout (the orders placed from them are in 05_orders.sql).
create or replace temp table gen_checkouts as
select
    customer_num,
    session_key,
    session_id,
    cart_id,
    has_order,
    checkout_us,
    list_slice([
        {'sku': sku_1, 'quantity': quantity_1, 'price': price_1},
        {'sku': sku_2, 'quantity': quantity_2, 'price': price_2},
        {'sku': sku_3, 'quantity': quantity_3, 'price': price_3}
    ], 1, cart_items) as lines,
    list_slice([
        {'sku': sku_1, 'quantity': quantity_1, 'price': price_1, 'category': category_1,
            'cost': cost_1},
        {'sku': sku_2, 'quantity': quantity_2, 'price': price_2, 'category': category_2,
            'cost': cost_2},
        {'sku': sku_3, 'quantity': quantity_3, 'price': price_3, 'category': category_3,
            'cost': cost_3}
    ], 1, cart_items) as order_lines,
    subtotal
from gen_carts
where has_checkout;

insert into gen_events
with

loaded as (

    select
        *,
        session_id || '.co' as event_id,
        checkout_us + latency_us(session_id || '.co') as loaded_us
    from gen_checkouts

)

select
    event_id,
    customer_num,
    'checkout_started',
    checkout_us,
    loaded_us,
    json_object(
        'session_id', session_id,
        'cart_id', cart_id,
        'value', subtotal,
        'currency', 'USD',
        'lines', lines
    )
from loaded
where loaded_us >= getvariable('load_from_us') and loaded_us < getvariable('win_end_us');

drop table gen_sessions;

drop table gen_carts;
