-- Orders: placed from checkouts in the window, plus a compact prior history for customers who existed
-- before the store's first window (orders only, spread between sign-up and the window start, at a
-- daytime hour of the customer's zone). Every order then runs the same course: payment (some fail,
-- most retries succeed), shipment, sometimes a changed delivery date, out for delivery, delivery,
-- and for some a refund, a review or a support ticket.

create or replace temp macro prior_sku_num(order_key, item, favourite_sku_num) as
    case
        when u2(order_key, item, 'favourite') < 0.3 then favourite_sku_num
        else pick(getvariable('category_slots'), u2(order_key, item, 'category')) + 12 * floor(
            getvariable('skus_per_category') * pow(u2(order_key, item, 'rank'), 2.2)
        )::integer
    end;

create or replace temp macro prior_quantity(order_key, item, is_wholesale) as
    case
        when is_wholesale then between_int(u2(order_key, item, 'quantity'), 4, 20)
        when u2(order_key, item, 'quantity') < 0.80 then 1
        when u2(order_key, item, 'quantity') < 0.95 then 2
        else 3
    end::integer;

create or replace temp table gen_prior_orders as
with

orders as (

    select
        customer_num,
        created_us,
        favourite_sku_num,
        is_wholesale,
        std_offset_min,
        unnest(range(prior_orders)) as i
    from gen_customers
    where prior_orders > 0

),

timed as (

    select
        *,
        -(customer_num * 64 + i) as order_key,
        (created_us + floor(
            (getvariable('store_start_us') - created_us) * u2(customer_num, i, 'prior_at')
        )::bigint) // days_us(1) * days_us(1) as day_us
    from orders

),

placed as (

    select
        *,
        least(
            greatest(
                day_us
                + hours_us(pick(getvariable('hour_slots'), u1(order_key, 'hour')) - 1)
                - minutes_us(std_offset_min)
                + floor(u1(order_key, 'minute') * 3600000000)::bigint,
                created_us + 60000000
            ),
            getvariable('store_start_us') - 3600000000
        ) as order_us,
        1 + floor(pow(u1(order_key, 'items'), 2) * 3)::integer as items
    from timed

),

drawn as (

    select
        customer_num,
        i,
        order_key,
        order_us,
        items,
        prior_sku_num(order_key, 0, favourite_sku_num) as sku_num_1,
        prior_sku_num(order_key, 1, favourite_sku_num) as sku_num_2,
        prior_sku_num(order_key, 2, favourite_sku_num) as sku_num_3,
        prior_quantity(order_key, 0, is_wholesale) as quantity_1,
        prior_quantity(order_key, 1, is_wholesale) as quantity_2,
        prior_quantity(order_key, 2, is_wholesale) as quantity_3
    from placed
    where order_us >= getvariable('prior_from_us')

),

priced as (

    select
        d.*,
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
            p1.sku_num, p1.base_price, p1.is_stable, p1.price_len_us, p1.price_off_us, d.order_us
        ) as price_1,
        price_at(
            p2.sku_num, p2.base_price, p2.is_stable, p2.price_len_us, p2.price_off_us, d.order_us
        ) as price_2,
        price_at(
            p3.sku_num, p3.base_price, p3.is_stable, p3.price_len_us, p3.price_off_us, d.order_us
        ) as price_3
    from drawn as d
    inner join gen_products as p1 on d.sku_num_1 = p1.sku_num
    inner join gen_products as p2 on d.sku_num_2 = p2.sku_num
    inner join gen_products as p3 on d.sku_num_3 = p3.sku_num

)

select
    'o' || customer_num::varchar || '-p' || i::varchar as order_id,
    order_key,
    customer_num,
    order_us,
    'k' || customer_num::varchar || '-p' || i::varchar as cart_id,
    list_slice([
        {'sku': sku_1, 'quantity': quantity_1, 'price': price_1, 'category': category_1,
            'cost': cost_1},
        {'sku': sku_2, 'quantity': quantity_2, 'price': price_2, 'category': category_2,
            'cost': cost_2},
        {'sku': sku_3, 'quantity': quantity_3, 'price': price_3, 'category': category_3,
            'cost': cost_3}
    ], 1, items) as lines,
    (
        quantity_1 * price_1
        + case when items >= 2 then quantity_2 * price_2 else 0 end
        + case when items >= 3 then quantity_3 * price_3 else 0 end
    )::decimal(12, 2) as subtotal
from priced;

create or replace temp table gen_orders as
with

prior_orders as (

    select * from gen_prior_orders

),

session_orders as (

    select
        'o' || substr(session_id, 2) as order_id,
        session_key as order_key,
        customer_num,
        checkout_us
            + floor(1000000 * (60 + 540 * u1(session_key, 'order_delay')))::bigint as order_us,
        cart_id,
        order_lines as lines,
        subtotal
    from gen_checkouts
    where has_order

),

orders as (

    select * from prior_orders
    union all
    select * from session_orders

),

couponed as (

    select
        *,
        case
            when u1(order_key, 'coupon') < 0.15
                then 1 + floor(u1(order_key, 'coupon_code') * 5)::integer
        end as coupon_idx
    from orders

),

priced as (

    select
        *,
        ['WELCOME10', 'SAVE15', 'FREESHIP', 'VIP20', 'BDAY25'][coupon_idx] as coupon_code,
        round(subtotal * coalesce([10, 15, 0, 20, 25][coupon_idx], 0) / 100, 2)
            ::decimal(12, 2) as discount,
        case
            when coupon_idx = 3 or subtotal >= 75 then 0.00
            else 5.95
        end::decimal(12, 2) as shipping
    from couponed

)

select
    p.* exclude (coupon_idx),
    (p.subtotal - p.discount + p.shipping)::decimal(12, 2) as value,
    c.country,
    c.std_offset_min,
    c.is_wholesale
from priced as p
inner join gen_customers as c on p.customer_num = c.customer_num;

drop table gen_prior_orders;

drop table gen_checkouts;

create or replace temp table gen_order_flow as
with

paid as (

    select
        *,
        order_us + floor(1000000 * (3 + 57 * u1(order_key, 'payment_delay')))::bigint as payment_us,
        u1(order_key, 'payment') < 0.08 as is_payment_failed,
        u1(order_key, 'payment_retry') < 0.65 as is_retry_paid
    from gen_orders

),

retried as (

    select
        *,
        payment_us + minutes_us(20 + 1420 * u1(order_key, 'retry_delay')) as retry_us,
        case
            when not is_payment_failed then payment_us
            when is_retry_paid then payment_us + minutes_us(20 + 1420 * u1(order_key, 'retry_delay'))
        end as paid_us
    from paid

),

shipped as (

    select
        *,
        paid_us + hours_us(6 + 66 * u1(order_key, 'ship_delay')) as shipped_us,
        u1(order_key, 'date_changed') < 0.07 as is_date_changed,
        u1(order_key, 'lost') < 0.01 as is_lost
    from retried

),

estimated as (

    select
        *,
        (shipped_us // days_us(1) + 2 + floor(5 * u1(order_key, 'transit'))::bigint)
            * days_us(1) + hours_us(20) as estimated_us
    from shipped

),

delivered as (

    select
        *,
        shipped_us + (estimated_us - shipped_us) // 2 as date_changed_us,
        estimated_us + days_us(1 + floor(3 * u1(order_key, 'delay'))) as new_estimated_us,
        case
            when paid_us is not null and not is_lost then greatest(
                shipped_us + hours_us(18),
                (
                    case when is_date_changed
                        then estimated_us + days_us(1 + floor(3 * u1(order_key, 'delay')))
                        else estimated_us
                    end // days_us(1)
                    - case
                        when not is_date_changed and u1(order_key, 'early') < 0.2 then 1 else 0
                    end
                ) * days_us(1)
                + minutes_us(60 * (10 + 9 * u1(order_key, 'delivery_hour')) - std_offset_min)
            )
        end as delivered_us
    from estimated

),

after as (

    select
        *,
        greatest(
            shipped_us + hours_us(1), delivered_us - minutes_us(60 + 240 * u1(order_key, 'van'))
        ) as out_for_delivery_us,
        delivered_us is not null
            and u1(order_key, 'refund') < case when is_wholesale then 0.02 else 0.06 end
            as is_refunded,
        delivered_us is not null and u1(order_key, 'review') < 0.14 as is_reviewed,
        case
            when paid_us is null then u1(order_key, 'ticket') < 0.2
            when is_lost then true
            else u1(order_key, 'ticket') < 0.03
        end as has_ticket
    from delivered

)

select
    *,
    delivered_us + days_us(2 + 23 * u1(order_key, 'refund_delay')) as refund_us,
    case
        when u1(order_key, 'refund_share') < 0.6 then value
        else round(value * (0.2 + 0.5 * u1(order_key, 'refund_amount')), 2)::decimal(12, 2)
    end as refund_amount,
    delivered_us + days_us(3 + 17 * u1(order_key, 'review_delay')) as review_us,
    case
        when paid_us is null then payment_us + hours_us(1 + 23 * u1(order_key, 'ticket_delay'))
        when is_lost then
            case when is_date_changed then new_estimated_us else estimated_us end
            + days_us(2 + 2 * u1(order_key, 'ticket_delay'))
        else delivered_us + hours_us(12 + 108 * u1(order_key, 'ticket_delay'))
    end as ticket_us,
    u1(order_key, 'ticket_closed') < 0.9 as is_ticket_closed
from after;

drop table gen_orders;

-- One compact row per order event (stage, when it happened, when it was loaded); the view below
-- builds the event from it and the order as it is written.
create or replace temp table gen_order_events as
with

stages as (

    select
        order_key,
        customer_num,
        unnest([
            {'stage': 1, 'at': order_us},
            {'stage': 2, 'at': case when not is_payment_failed then paid_us end},
            {'stage': 3, 'at': case when is_payment_failed then payment_us end},
            {'stage': 4, 'at': case when is_payment_failed then paid_us end},
            {'stage': 5, 'at': shipped_us},
            {'stage': 6, 'at': case when is_date_changed then date_changed_us end},
            {'stage': 7, 'at': case when delivered_us is not null then out_for_delivery_us end},
            {'stage': 8, 'at': delivered_us},
            {'stage': 9, 'at': case when is_refunded then refund_us end},
            {'stage': 10, 'at': case when is_reviewed then review_us end},
            {'stage': 11, 'at': case when has_ticket then ticket_us end},
            {'stage': 12, 'at': case
                when has_ticket and is_ticket_closed
                    then ticket_us + hours_us(1 + 119 * u1(order_key, 'ticket_close'))
            end}
        ]) as event
    from gen_order_flow

),

loaded as (

    select
        order_key,
        customer_num,
        event.stage::utinyint as stage,
        event.at as occurred_us,
        event.at + latency2_us(order_key, event.stage) as loaded_us
    from stages
    where event.at is not null

)

select *
from loaded
where loaded_us >= getvariable('load_from_us') and loaded_us < getvariable('win_end_us')
order by loaded_us;

-- What the events' properties need of each order.
create or replace temp table gen_order_flow as
select
    order_key,
    order_id,
    cart_id,
    subtotal,
    discount,
    shipping,
    value,
    coupon_code,
    lines,
    country,
    estimated_us,
    new_estimated_us,
    refund_amount,
    is_refunded,
    paid_us,
    is_lost
from gen_order_flow;

create or replace temp view gen_order_events_json as
select
    case
        when e.stage in (11, 12) then 't' || substr(f.order_id, 2)
        else f.order_id
    end || ['.op', '.ps', '.pf', '.pr', '.sh', '.dc', '.od', '.dl', '.rf', '.rv', '.to', '.tc'][
        e.stage
    ] as event_id,
    e.customer_num,
    [
        'order_placed', 'payment_succeeded', 'payment_failed', 'payment_succeeded', 'order_shipped',
        'delivery_date_changed', 'order_out_for_delivery', 'order_delivered', 'order_refunded',
        'review_submitted', 'support_ticket_opened', 'support_ticket_closed'
    ][e.stage] as event_type,
    e.occurred_us,
    e.loaded_us,
    case e.stage
        when 1 then json_object(
            'order_id', f.order_id,
            'cart_id', f.cart_id,
            'subtotal', f.subtotal,
            'discount', f.discount,
            'shipping', f.shipping,
            'value', f.value,
            'currency', 'USD',
            'coupon_code', f.coupon_code,
            'lines', f.lines
        )
        when 3 then json_object(
            'order_id', f.order_id,
            'amount', f.value,
            'reason', case
                when u1(f.order_key, 'failure') < 0.6 then 'card_declined'
                when u1(f.order_key, 'failure') < 0.85 then 'insufficient_funds'
                else 'expired_card'
            end
        )
        when 5 then json_object(
            'order_id', f.order_id,
            'carrier', case
                when f.country in ('US', 'CA')
                    then ['ups', 'usps', 'fedex'][1 + floor(3 * u1(f.order_key, 'carrier'))::integer]
                else ['dhl', 'dpd', 'ups'][1 + floor(3 * u1(f.order_key, 'carrier'))::integer]
            end,
            'tracking_number', '1Z' || to_hex(h1(f.order_key, 'tracking')),
            'estimated_delivery_at', iso_utc(f.estimated_us)
        )
        when 6 then json_object(
            'order_id', f.order_id,
            'previous_estimated_delivery_at', iso_utc(f.estimated_us),
            'estimated_delivery_at', iso_utc(f.new_estimated_us)
        )
        when 9 then json_object(
            'order_id', f.order_id,
            'amount', f.refund_amount,
            'reason', case
                when u1(f.order_key, 'refund_reason') < 0.20 then 'damaged'
                when u1(f.order_key, 'refund_reason') < 0.55 then 'wrong_size'
                when u1(f.order_key, 'refund_reason') < 0.75 then 'not_as_described'
                else 'changed_mind'
            end
        )
        when 10 then json_object(
            'order_id', f.order_id,
            'sku', f.lines[1 + floor(len(f.lines) * u1(f.order_key, 'review_line'))::integer].sku,
            'rating', case
                when f.is_refunded then 1 + floor(2 * u1(f.order_key, 'rating'))::integer
                when u1(f.order_key, 'rating') < 0.55 then 5
                when u1(f.order_key, 'rating') < 0.80 then 4
                when u1(f.order_key, 'rating') < 0.90 then 3
                when u1(f.order_key, 'rating') < 0.95 then 2
                else 1
            end
        )
        when 11 then json_object(
            'ticket_id', 't' || substr(f.order_id, 2),
            'topic', case
                when f.paid_us is null then 'billing'
                when f.is_lost then 'where_is_my_order'
                else ['damaged_item', 'return_request', 'wrong_item', 'where_is_my_order'][
                    1 + floor(4 * u1(f.order_key, 'topic'))::integer
                ]
            end,
            'order_id', f.order_id
        )
        when 12 then json_object('ticket_id', 't' || substr(f.order_id, 2))
        when 7 then json_object('order_id', f.order_id)
        when 8 then json_object('order_id', f.order_id)
        else json_object(
            'order_id', f.order_id,
            'amount', f.value,
            'method', case
                when u1(f.order_key, 'method') < 0.70 then 'card'
                when u1(f.order_key, 'method') < 0.85 then 'paypal'
                when u1(f.order_key, 'method') < 0.95 then 'apple_pay'
                else 'gift_card'
            end
        )
    end as properties
from gen_order_events as e
inner join gen_order_flow as f on e.order_key = f.order_key;
