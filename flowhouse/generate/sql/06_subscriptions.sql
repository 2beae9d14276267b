-- Subscriptions to a consumable: started, renewed every interval_days (with next_renewal_at), some
-- paused for a cycle or two and resumed, some cancelled, some with failed payments (most recover on
-- the retry, the rest are cancelled after the third attempt). Renewal n falls at start + n intervals.
-- The first run writes each subscription's whole history, so none looks abandoned half-way.

create or replace temp table gen_subscriptions as
with

subscribers as (

    select
        customer_num,
        created_us + days_us(500 * u1(customer_num, 'subscription_start')) as started_us,
        case
            when u1(customer_num, 'interval') < 0.15 then 14
            when u1(customer_num, 'interval') < 0.70 then 30
            when u1(customer_num, 'interval') < 0.90 then 60
            else 90
        end as interval_days,
        6 + floor(6 * u1(customer_num, 'subscription_category'))::integer + 12 * floor(
            getvariable('skus_per_category') * pow(u1(customer_num, 'subscription_rank'), 2)
        )::integer as sku_num,
        case
            when u1(customer_num, 'cancel') < 0.45
                then 1 + floor(10 * u1(customer_num, 'cancel_cycle'))::integer
        end as cancel_cycle,
        case
            when u1(customer_num, 'payment_fails') < 0.25
                then 1 + floor(10 * u1(customer_num, 'fail_cycle'))::integer
        end as fail_cycle,
        u1(customer_num, 'payment_recovers') < 0.7 as is_recovering
    from gen_customers
    where u1(customer_num, 'subscriber') < 0.05

),

ending as (

    select
        *,
        case
            when fail_cycle is not null and not is_recovering
                and fail_cycle <= coalesce(cancel_cycle, fail_cycle) then 'payment'
            when cancel_cycle is not null then 'cancel'
        end as ends_by
    from subscribers
    where started_us < getvariable('win_end_us')

)

select
    e.*,
    case e.ends_by when 'payment' then e.fail_cycle when 'cancel' then e.cancel_cycle end
        as end_cycle,
    case
        when e.fail_cycle is null and u1(e.customer_num, 'pause') < 0.25
            then 1 + floor(8 * u1(e.customer_num, 'pause_cycle'))::integer
    end as pause_cycle,
    1 + floor(2 * u1(e.customer_num, 'pause_length'))::integer as pause_cycles,
    'sub' || e.customer_num::varchar as subscription_id,
    p.sku,
    round(price_at(
        p.sku_num, p.base_price, p.is_stable, p.price_len_us, p.price_off_us, e.started_us
    ) * 0.9, 2)::decimal(12, 2) as price,
    days_us(e.interval_days) as interval_us
from ending as e
inner join gen_products as p on e.sku_num = p.sku_num;

create or replace temp table gen_subscription_cycles as
with

cycles as (

    select
        *,
        unnest(range(
            greatest(1, (getvariable('sub_from_us') - started_us) // interval_us),
            least(
                coalesce(end_cycle, 1000000),
                (getvariable('win_end_us') + days_us(3) - started_us) // interval_us + 1
            ) + 1
        )) as cycle
    from gen_subscriptions

)

select
    *,
    started_us + cycle * interval_us as renewal_us,
    pause_cycle is not null and cycle >= pause_cycle and cycle < pause_cycle + pause_cycles
        as is_paused,
    subscription_id || '.' as event_prefix
from cycles;

insert into gen_events
with

started as (

    select
        subscription_id || '.st' as event_id,
        customer_num,
        'subscription_started' as event_type,
        started_us as occurred_us,
        json_object(
            'subscription_id', subscription_id,
            'sku', sku,
            'interval_days', interval_days,
            'price', price
        ) as properties
    from gen_subscriptions

),

first_payment as (

    select
        subscription_id || '.p0',
        customer_num,
        'payment_succeeded',
        started_us + 5000000,
        json_object('subscription_id', subscription_id, 'amount', price, 'method', 'card')
    from gen_subscriptions

),

renewals as (

    select
        event_prefix || 'r' || cycle::varchar,
        customer_num,
        'subscription_renewed',
        renewal_us
            + case when cycle = fail_cycle then days_us(2) else 0 end
            + minutes_us(30 * u2(customer_num, cycle, 'renewal_minute')),
        json_object(
            'subscription_id', subscription_id,
            'sku', sku,
            'amount', price,
            'next_renewal_at', iso_utc(renewal_us + interval_us)
        )
    from gen_subscription_cycles
    where not is_paused
        and (end_cycle is null or cycle < end_cycle)
        and (cycle <> coalesce(fail_cycle, 0) or is_recovering)

),

renewal_payments as (

    select
        event_prefix || 'p' || cycle::varchar,
        customer_num,
        'payment_succeeded',
        renewal_us
            + case when cycle = fail_cycle then days_us(2) else 0 end
            + minutes_us(30 * u2(customer_num, cycle, 'renewal_minute')) + 5000000,
        json_object('subscription_id', subscription_id, 'amount', price, 'method', 'card')
    from gen_subscription_cycles
    where not is_paused
        and (end_cycle is null or cycle < end_cycle)
        and (cycle <> coalesce(fail_cycle, 0) or is_recovering)

),

failed_payments as (

    select
        event_prefix || 'f' || cycle::varchar || '-' || attempt::varchar,
        customer_num,
        'subscription_payment_failed',
        renewal_us + days_us([0, 2, 5][attempt]),
        json_object('subscription_id', subscription_id, 'amount', price, 'attempt', attempt)
    from (
        select
            *,
            unnest(range(1, case when is_recovering then 2 else 4 end)) as attempt
        from gen_subscription_cycles
        where cycle = fail_cycle
    )

),

pauses as (

    select
        event_prefix || 'pa' || cycle::varchar,
        customer_num,
        'subscription_paused',
        renewal_us - days_us(3),
        json_object('subscription_id', subscription_id)
    from gen_subscription_cycles
    where cycle = pause_cycle and (end_cycle is null or cycle < end_cycle)

),

resumes as (

    select
        event_prefix || 're' || cycle::varchar,
        customer_num,
        'subscription_resumed',
        renewal_us - days_us(3),
        json_object('subscription_id', subscription_id)
    from gen_subscription_cycles
    where cycle = pause_cycle + pause_cycles and (end_cycle is null or cycle < end_cycle)

),

cancellations as (

    select
        event_prefix || 'x',
        customer_num,
        'subscription_cancelled',
        case when ends_by = 'payment' then renewal_us + days_us(7) else renewal_us - days_us(2) end,
        json_object(
            'subscription_id', subscription_id,
            'reason', case
                when ends_by = 'payment' then 'payment_failed'
                else ['too_expensive', 'not_needed', 'switched_brand', 'too_much_product',
                    'other'][1 + floor(5 * u1(customer_num, 'cancel_reason'))::integer]
            end
        )
    from gen_subscription_cycles
    where cycle = end_cycle

),

all_events as (

    select * from started
    union all select * from first_payment
    union all select * from renewals
    union all select * from renewal_payments
    union all select * from failed_payments
    union all select * from pauses
    union all select * from resumes
    union all select * from cancellations

),

loaded as (

    select *, occurred_us + latency_us(event_id) as loaded_us
    from all_events

)

select event_id, customer_num, event_type, occurred_us, loaded_us, properties
from loaded
where loaded_us >= getvariable('load_from_us') and loaded_us < getvariable('win_end_us');

drop table gen_subscription_cycles;
