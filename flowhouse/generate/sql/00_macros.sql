-- Helpers for the generator. Randomness is a hash of the seed, a salt naming the draw, and a key,
-- mapped to [0, 1): the same seed gives the same numbers on every run and on any number of threads
-- (random() does not). hash() of several values only combines their hashes, which leaves draws with
-- different salts correlated; hashing that combination again mixes it.
-- Times are kept as epoch microseconds (bigint) until the rows are written.

create or replace temp macro h1(a, salt) as hash(hash(hash(getvariable('seed'), salt), a));

create or replace temp macro u1(a, salt) as (h1(a, salt) >> 11) * 1.1102230246251565e-16;

create or replace temp macro u2(a, b, salt) as
    (hash(hash(hash(getvariable('seed'), salt), a, b)) >> 11) * 1.1102230246251565e-16;

create or replace temp macro u3(a, b, c, salt) as
    (hash(hash(hash(getvariable('seed'), salt), a, b, c)) >> 11) * 1.1102230246251565e-16;

-- an integer in [lo, hi] from a uniform number
create or replace temp macro between_int(u, lo, hi) as
    (lo + floor(u * (hi - lo + 1)))::bigint;

create or replace temp macro minutes_us(x) as (x * 60000000::bigint)::bigint;

create or replace temp macro hours_us(x) as (x * 3600000000::bigint)::bigint;

create or replace temp macro days_us(x) as (x * 86400000000::bigint)::bigint;

create or replace temp macro iso_utc(us) as
    strftime(make_timestamp(us), '%Y-%m-%dT%H:%M:%SZ');

create or replace temp macro customer_key(k) as
    case when k < 10000000 then 'c' || lpad(k::varchar, 7, '0') else 'c' || k::varchar end;

create or replace temp macro sku_key(n) as 'SKU-' || lpad(n::varchar, 5, '0');

-- One pick from a weighted list: the 1,000-slot table built in 01_reference.sql.
create or replace temp macro pick(slots, u) as slots[1 + floor(u * 1000)::integer];

-- Ingestion latency: seconds for most events, hours to a day for about 3 % (late arrivals).
create or replace temp macro latency_from(u_late, u_by) as
    case
        when u_late < 0.03 then hours_us(1 + 29 * u_late / 0.03)
        else 2000000 + floor(pow(u_by, 2) * 240000000)::bigint
    end;

create or replace temp macro latency_us(key) as latency_from(u1(key, 'late'), u1(key, 'latency'));

create or replace temp macro latency2_us(a, b) as latency_from(u2(a, b, 'late'), u2(a, b, 'latency'));

-- Catalog feeds are quick and never late.
create or replace temp macro catalog_latency_us(key) as
    1000000 + floor(u1(key, 'lat') * 59000000)::bigint;

-- Prices move in sku-specific periods: the price at any instant is a function of the sku and the
-- period, so views, carts and orders agree with the price_changed events without a join.
create or replace temp macro price_period(len_us, off_us, t_us) as
    (t_us - getvariable('origin_us') - off_us) // len_us;

create or replace temp macro price_start_us(len_us, off_us, period) as
    getvariable('origin_us') + off_us + period * len_us;

create or replace temp macro price_factor(sku_num, is_stable, period) as
    case
        when is_stable then 1.00
        when u2(sku_num, period, 'price') < 0.58 then 1.00
        when u2(sku_num, period, 'price') < 0.74 then 0.85
        when u2(sku_num, period, 'price') < 0.84 then 0.70
        when u2(sku_num, period, 'price') < 0.90 then 0.95
        else 1.10
    end;

create or replace temp macro price_of(sku_num, base_price, is_stable, period) as
    greatest(round(base_price * price_factor(sku_num, is_stable, period), 0) - 0.01, 0.99)
        ::decimal(12, 2);

create or replace temp macro price_at(sku_num, base_price, is_stable, len_us, off_us, t_us) as
    price_of(sku_num, base_price, is_stable, price_period(len_us, off_us, t_us));

-- Inventory runs in sku-specific restock cycles: restocked at the start, sold down, and in some
-- cycles down to low stock or out of stock until the next restock.
create or replace temp macro stock_level(sku_num, cycle) as
    (24 + floor(pow(u2(sku_num, cycle, 'restock'), 1.5) * 176))::integer;

-- 0 normal, 1 runs low, 2 sells out
create or replace temp macro stock_kind(sku_num, cycle) as
    case
        when u2(sku_num, cycle, 'kind') < 0.25 then 2
        when u2(sku_num, cycle, 'kind') < 0.45 then 1
        else 0
    end;

create or replace temp macro stock_low(sku_num, cycle) as
    (1 + floor(u2(sku_num, cycle, 'low') * 5))::integer;

create or replace temp macro stock_at_step(sku_num, cycle, step) as
    case step
        when 0 then stock_level(sku_num, cycle)
        when 1 then stock_level(sku_num, cycle) // 2
        when 2 then
            case
                when stock_kind(sku_num, cycle) > 0 then stock_low(sku_num, cycle)
                else stock_level(sku_num, cycle) // 4
            end
        else 0
    end::integer;

create or replace temp macro stock_at_cycle_end(sku_num, cycle) as
    stock_at_step(sku_num, cycle, case when stock_kind(sku_num, cycle) = 2 then 3 else 2 end);

-- When a customer created at created_us opts in to WhatsApp or Viber: minutes after signing up inside
-- the store's windows, or in the first two weeks of the first window for earlier customers.
create or replace temp macro chat_opt_in_us(created_us, u) as
    case
        when created_us >= getvariable('store_start_us') then created_us + minutes_us(2 + 28 * u)
        else getvariable('store_start_us') + days_us(14 * u)
    end;
