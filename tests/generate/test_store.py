"""A generated store keeps the contract (docs/events.md, flowhouse/contract.py) and looks like a store."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from typing import Any

import duckdb
import pytest

from flowhouse.core.contract import CATALOG_EVENT_TYPES, RAW_EVENT_TYPES
from flowhouse.core.paths import CHECKOUT
from flowhouse.core.warehouse import Location
from flowhouse.generate import GenerateStats

Store = tuple[Location, GenerateStats]
GENERATED_TYPES = {t for t in RAW_EVENT_TYPES if not t.startswith("message_")}


def documented_properties() -> dict[str, set[str]]:
    """The property keys of each raw event type, read from the table in docs/events.md."""
    text = (CHECKOUT / "docs" / "events.md").read_text()
    raw_table = text.split("## Raw events", 1)[1].split("## Derived events", 1)[0]
    keys: dict[str, set[str]] = {}
    for line in raw_table.splitlines():
        cells = [c.strip() for c in line.split("|")]
        if len(cells) < 4 or not cells[1].startswith("`"):
            continue
        described = re.sub(r"\([^)]*\)", "", cells[3]).split("—")[0]
        for event_type in re.findall(r"`([a-z_]+)`", cells[1]):
            keys[event_type] = set(re.findall(r"`([a-z_]+)`", described))
    return keys


@pytest.fixture(scope="module")
def con(small_store: Store) -> Iterator[duckdb.DuckDBPyConnection]:
    location, _ = small_store
    connection = duckdb.connect(str(location.path), read_only=True)
    yield connection
    connection.close()


def rows(con: duckdb.DuckDBPyConnection, sql: str) -> list[tuple[Any, ...]]:
    return con.execute(sql).fetchall()


def scalar(con: duckdb.DuckDBPyConnection, sql: str) -> Any:
    return con.execute(sql).fetchone()[0]  # type: ignore[index]


def test_every_raw_event_type_is_generated(con: duckdb.DuckDBPyConnection) -> None:
    types = {r[0] for r in rows(con, "select distinct event_type from raw.events")}
    assert types == GENERATED_TYPES


def test_properties_carry_exactly_the_documented_keys(con: duckdb.DuckDBPyConnection) -> None:
    documented = documented_properties()
    observed = rows(
        con,
        "select event_type, list_sort(json_keys(properties)) as keys, count(*) "
        "from raw.events group by all",
    )
    seen: dict[str, set[str]] = {}
    for event_type, keys, _ in observed:
        assert set(keys) <= documented[event_type], (event_type, keys)
        seen.setdefault(event_type, set()).update(keys)
    assert seen == {t: documented[t] for t in GENERATED_TYPES}


def test_payments_name_an_order_or_a_subscription(con: duckdb.DuckDBPyConnection) -> None:
    kinds = rows(
        con,
        "select list_sort(json_keys(properties)), count(*) from raw.events "
        "where event_type = 'payment_succeeded' group by 1 order by 1",
    )
    assert [k for k, _ in kinds] == [
        ["amount", "method", "order_id"],
        ["amount", "method", "subscription_id"],
    ]


def test_lines_carry_sku_quantity_price_and_orders_add_category_and_cost(
    con: duckdb.DuckDBPyConnection,
) -> None:
    line_keys = rows(
        con,
        "select event_type, list_sort(json_keys(line)) as keys, count(*) from ("
        "  select event_type, unnest(from_json(properties->'lines', '[\"json\"]')) as line"
        "  from raw.events where event_type in ('checkout_started', 'order_placed')"
        ") group by all order by 1",
    )
    assert [(t, k) for t, k, _ in line_keys] == [
        ("checkout_started", ["price", "quantity", "sku"]),
        ("order_placed", ["category", "cost", "price", "quantity", "sku"]),
    ]


def test_order_value_is_subtotal_minus_discount_plus_shipping(
    con: duckdb.DuckDBPyConnection,
) -> None:
    orders = rows(
        con,
        "select properties->>'subtotal', properties->>'discount', properties->>'shipping', "
        "properties->>'value', properties->>'coupon_code', properties->'lines' "
        "from raw.events where event_type = 'order_placed'",
    )
    assert orders
    with_coupon = 0
    for subtotal, discount, shipping, value, coupon, lines in orders:
        assert round(float(subtotal) - float(discount) + float(shipping), 2) == float(value)
        line_total = sum(line["quantity"] * line["price"] for line in json.loads(lines))
        assert round(line_total, 2) == float(subtotal)
        with_coupon += coupon is not None
    assert 0.05 < with_coupon / len(orders) < 0.3
    assert (
        scalar(con, "select count(*) from raw.events where (properties->>'discount')::double > 0")
        > 0
    )


def test_catalog_events_have_no_customer_and_the_rest_reference_customers(
    con: duckdb.DuckDBPyConnection,
) -> None:
    catalog = ", ".join(f"'{t}'" for t in sorted(CATALOG_EVENT_TYPES))
    misplaced = rows(
        con,
        f"select count(*) filter (where event_type in ({catalog}) and customer_id is not null), "
        f"count(*) filter (where event_type not in ({catalog}) and customer_id is null), "
        f"count(*) filter (where event_type in ({catalog})) from raw.events",
    )[0]
    assert misplaced[:2] == (0, 0)
    assert misplaced[2] > 0
    orphans = scalar(
        con,
        "select count(*) from raw.events e anti join raw.customers c using (customer_id) "
        "where e.customer_id is not null",
    )
    assert orphans == 0


def test_customer_events_happen_after_sign_up(con: duckdb.DuckDBPyConnection) -> None:
    early = scalar(
        con,
        "select count(*) from raw.events e join raw.customers c using (customer_id) "
        "where e.occurred_at < c.created_at",
    )
    assert early == 0


def test_loaded_at_follows_occurred_at_within_the_window(
    con: duckdb.DuckDBPyConnection, small_store: Store
) -> None:
    _, stats = small_store
    assert scalar(con, "select count(*) from raw.events where loaded_at < occurred_at") == 0
    assert scalar(con, "select max(loaded_at) from raw.events") < stats.run.window_end_at
    late_share = scalar(
        con,
        "select avg((loaded_at - occurred_at > interval 1 hour)::int) from raw.events",
    )
    assert 0.01 < late_share < 0.06
    assert scalar(con, "select count(distinct event_id) = count(*) from raw.events")


def test_events_are_stored_in_loaded_at_order(con: duckdb.DuckDBPyConnection) -> None:
    out_of_order = scalar(
        con,
        "select count(*) from (select loaded_at, lag(loaded_at) over (order by rowid) as before "
        "from raw.events) where loaded_at < before",
    )
    assert out_of_order == 0


def test_customers_look_real(con: duckdb.DuckDBPyConnection) -> None:
    customers = rows(
        con, "select customer_id, email, phone, birthday, properties from raw.customers"
    )
    assert len(customers) == 3000
    assert all(re.fullmatch(r"c\d{7}", c[0]) for c in customers)
    assert all(re.fullmatch(r"\+[1-9]\d{7,14}", c[2]) for c in customers if c[2] is not None)
    assert all("@" in c[1] for c in customers if c[1] is not None)
    assert 0.02 < sum(c[1] is None for c in customers) / len(customers) < 0.12
    assert 0.2 < sum(c[2] is None for c in customers) / len(customers) < 0.5
    assert 0.1 < sum(c[3] is None for c in customers) / len(customers) < 0.35
    assert any(c[3] is not None and (c[3].month, c[3].day) == (2, 29) for c in customers)
    for _, _, _, _, properties in customers:
        assert set(json.loads(properties)) == {"wholesale", "acquisition_channel", "loyalty_points"}
    assert scalar(con, "select count(*) filter (where email_opt_in) from raw.customers") > 0
    assert scalar(con, "select count(*) filter (where sms_opt_in) from raw.customers") > 0
    assert (
        scalar(con, "select count(*) from raw.customers where email is null and email_opt_in") == 0
    )


def test_some_customers_have_device_tokens_for_push(con: duckdb.DuckDBPyConnection) -> None:
    tokens = rows(
        con,
        "select t.token, t.platform, t.created_at, c.created_at from raw.device_tokens as t "
        "join raw.customers as c on c.customer_id = t.customer_id",
    )
    assert scalar(con, "select count(*) from raw.device_tokens") == len(tokens)  # all known
    assert 0.25 < len(tokens) / 3000 < 0.45
    assert {t[1] for t in tokens} == {"ios", "android", "web"}
    assert len({t[0] for t in tokens}) == len(tokens)
    assert all(token_at > signed_up_at for _, _, token_at, signed_up_at in tokens)
    stale = sum(t[0].startswith("unregistered-") for t in tokens)
    assert 0 < stale < len(tokens) * 0.15  # the fake answers these UNREGISTERED
    assert scalar(con, "select max(t.created_at) from raw.device_tokens as t") <= scalar(
        con, "select max(loaded_at) from raw.events"
    ) + __import__("datetime").timedelta(days=1)


def test_whatsapp_viber_and_push_consent_is_given_missing_and_withdrawn(
    con: duckdb.DuckDBPyConnection,
) -> None:
    """Each channel with an opt-in of its own has customers who gave it, customers who never did
    (with a phone, so a message to them is skipped as `consent`, not `no_address`) and customers
    who withdrew it; push is turned off only by customers with a device token."""
    consent = dict(rows(con, """
        with events as (
            select customer_id, event_type, occurred_at,
                json_extract_string(properties, '$.channel') as channel
            from raw.events where event_type in ('opted_in', 'unsubscribed')
        ), chat as (
            select c.customer_id, ch.channel,
                max(case when e.event_type = 'opted_in' then e.occurred_at end) as opted_in_at,
                max(case when e.event_type = 'unsubscribed' then e.occurred_at end) as left_at
            from raw.customers as c
            cross join (values ('whatsapp'), ('viber')) as ch(channel)
            left join events as e on e.customer_id = c.customer_id and e.channel = ch.channel
            where c.phone is not null
            group by all
        )
        select channel || ':' || case
                when left_at is not null and opted_in_at is null then 'left_unasked'
                when left_at < opted_in_at then 'left_before'
                when left_at is not null then 'withdrawn'
                when opted_in_at is not null then 'given'
                else 'missing' end,
            count(*)
        from chat group by all
    """))  # fmt: skip
    for channel in ("whatsapp", "viber"):
        phones = sum(n for k, n in consent.items() if k.startswith(channel))
        given, withdrawn = consent[f"{channel}:given"], consent[f"{channel}:withdrawn"]
        assert 0.15 < given / phones < 0.4 and 0.01 < withdrawn / phones < 0.15, consent
        assert consent[f"{channel}:missing"] > phones / 2
        assert f"{channel}:left_unasked" not in consent and f"{channel}:left_before" not in consent
    without_phone = scalar(con, """
        select count(*) from raw.events as e join raw.customers as c using (customer_id)
        where c.phone is null and json_extract_string(e.properties, '$.channel')
            in ('whatsapp', 'viber')
    """)  # fmt: skip
    assert without_phone == 0
    push_off = rows(con, """
        select e.customer_id, e.occurred_at, t.customer_id is not null and e.occurred_at > t.created_at
        from raw.events as e
        left join (select customer_id, min(created_at) as created_at from raw.device_tokens
                   group by 1) as t using (customer_id)
        where e.event_type = 'unsubscribed' and json_extract_string(e.properties, '$.channel') = 'push'
    """)  # fmt: skip
    tokens = scalar(con, "select count(distinct customer_id) from raw.device_tokens")
    assert 0.05 < len(push_off) / tokens < 0.2
    assert all(after_token for _, _, after_token in push_off)


def test_time_zones_include_dst_half_hour_and_invalid_ones(con: duckdb.DuckDBPyConnection) -> None:
    zones = {r[0] for r in rows(con, "select distinct timezone from raw.customers")}
    for zone in (
        "America/St_Johns", "Asia/Kolkata", "Asia/Kathmandu", "Australia/Adelaide",
        "Australia/Sydney", "Europe/Berlin", "America/New_York", "", None, "Mars/Olympus",
    ):  # fmt: skip
        assert zone in zones
    countries = dict(
        rows(
            con,
            "select timezone, list(distinct country) from raw.customers "
            "where timezone in ('Europe/Berlin', 'Asia/Kolkata', 'America/St_Johns') group by 1",
        )
    )
    assert countries == {
        "Europe/Berlin": ["DE"],
        "Asia/Kolkata": ["IN"],
        "America/St_Johns": ["CA"],
    }


def test_sessions_follow_the_clock_of_the_customers_own_zone(
    con: duckdb.DuckDBPyConnection,
) -> None:
    hours = dict(
        rows(
            con,
            "select hour(timezone(c.timezone, e.occurred_at::timestamptz)) as local_hour, count(*) "
            "from raw.events e join raw.customers c using (customer_id) "
            "where e.event_type = 'product_viewed' and c.timezone like '%/%' "
            "and c.timezone <> 'Mars/Olympus' group by 1",
        )
    )
    night = sum(hours.get(h, 0) for h in range(1, 6))
    evening = sum(hours.get(h, 0) for h in range(18, 23))
    assert evening > 5 * night


def test_new_customers_sign_up_inside_the_window(
    con: duckdb.DuckDBPyConnection, small_store: Store
) -> None:
    _, stats = small_store
    created = scalar(con, "select count(*) from raw.events where event_type = 'customer_created'")
    inside = scalar(
        con,
        f"select count(*) from raw.customers where created_at >= '{stats.run.window_start_at}'",
    )
    assert created == inside == stats.run.new_customers > 0
    opted = scalar(
        con,
        "select count(distinct e.customer_id) from raw.events e join raw.events c "
        "using (customer_id) where e.event_type = 'opted_in' "
        "and c.event_type = 'customer_created'",
    )
    assert opted > created / 2


def test_prior_history_spans_two_years_and_leaves_customers_inactive(
    con: duckdb.DuckDBPyConnection, small_store: Store
) -> None:
    _, stats = small_store
    start = stats.run.window_start_at
    first, before = rows(
        con,
        "select min(occurred_at), count(*) from raw.events "
        f"where event_type = 'order_placed' and occurred_at < '{start}'",
    )[0]
    assert (start - first).days > 600
    assert before > 1000
    inactive = scalar(
        con,
        "select count(*) from (select customer_id, max(occurred_at) as last_at from raw.events "
        f"where event_type = 'order_placed' group by 1) where last_at < '{start}'::timestamp "
        "- interval 90 day",
    )
    assert inactive > 100


def test_carts_are_mostly_abandoned(con: duckdb.DuckDBPyConnection) -> None:
    carts, ordered = rows(
        con,
        "select count(distinct properties->>'cart_id') filter (where event_type = 'added_to_cart'),"
        " count(distinct properties->>'cart_id') filter (where event_type = 'order_placed' and "
        "properties->>'cart_id' in (select properties->>'cart_id' from raw.events "
        "where event_type = 'added_to_cart')) from raw.events",
    )[0]
    assert 0.2 < ordered / carts < 0.5


def test_some_customers_view_a_sku_three_times_or_more(con: duckdb.DuckDBPyConnection) -> None:
    repeated = scalar(
        con,
        "select count(*) from (select customer_id, properties->>'sku', count(*) as views "
        "from raw.events where event_type = 'product_viewed' group by 1, 2) where views >= 3",
    )
    assert repeated > 10


def test_stock_runs_out_and_comes_back_and_prices_drop_and_rise(
    con: duckdb.DuckDBPyConnection,
) -> None:
    stock = rows(
        con,
        "select count(*) filter (where qty = 0 and previous > 0), "
        "count(*) filter (where previous = 0 and qty > 0), "
        "count(*) filter (where qty between 1 and 5 and previous > 5) from ("
        "select (properties->>'inventory_qty')::int as qty, "
        "(properties->>'previous_qty')::int as previous "
        "from raw.events where event_type = 'inventory_changed')",
    )[0]
    assert all(n > 0 for n in stock)
    drops, rises = rows(
        con,
        "select count(*) filter (where price <= 0.9 * previous), "
        "count(*) filter (where price > previous) from ("
        "select (properties->>'price')::double as price, "
        "(properties->>'previous_price')::double as previous "
        "from raw.events where event_type = 'price_changed')",
    )[0]
    assert drops > 0
    assert rises > 0


def test_products_hold_the_state_the_last_catalog_events_left(
    con: duckdb.DuckDBPyConnection,
) -> None:
    products = rows(con, "select count(*), count(distinct category) from raw.products")[0]
    assert products == (60, 12)
    margins = dict(
        rows(
            con,
            "select category, avg((price - cost) / price) from raw.products "
            "where category in ('electronics', 'skincare') group by 1",
        )
    )
    assert margins["electronics"] < 0.4 < margins["skincare"]
    mismatched = scalar(
        con,
        "with last as (select properties->>'sku' as sku, "
        "arg_max(properties->>'price', occurred_at)::decimal(12, 2) as price "
        "from raw.events where event_type = 'price_changed' group by 1) "
        "select count(*) from last join raw.products p using (sku) where p.price <> last.price",
    )
    assert mismatched == 0
    stock_mismatched = scalar(
        con,
        "with last as (select properties->>'sku' as sku, "
        "arg_max(properties->>'inventory_qty', occurred_at)::int as qty "
        "from raw.events where event_type = 'inventory_changed' group by 1) "
        "select count(*) from last join raw.products p using (sku) where p.inventory_qty <> qty",
    )
    assert stock_mismatched == 0
    viewed_at_catalog_price = scalar(
        con,
        "select count(*) from raw.events e join raw.products p on p.sku = e.properties->>'sku' "
        "where e.event_type = 'product_viewed' and e.occurred_at > p.updated_at "
        "and (e.properties->>'price')::decimal(12, 2) <> p.price",
    )
    assert viewed_at_catalog_price == 0


def test_subscriptions_renew_every_interval(con: duckdb.DuckDBPyConnection) -> None:
    gaps = rows(
        con,
        "select s.properties->>'interval_days', "
        "min(date_diff('day', r.occurred_at, (r.properties->>'next_renewal_at')::timestamp)), "
        "max(date_diff('day', r.occurred_at, (r.properties->>'next_renewal_at')::timestamp)) "
        "from raw.events s join raw.events r "
        "on s.properties->>'subscription_id' = r.properties->>'subscription_id' "
        "where s.event_type = 'subscription_started' and r.event_type = 'subscription_renewed' "
        "group by 1 order by 1::int",
    )
    for interval, shortest, longest in gaps:
        assert int(interval) - 3 <= shortest <= longest <= int(interval)
    reasons = {
        r[0]
        for r in rows(
            con,
            "select distinct properties->>'reason' from raw.events "
            "where event_type = 'subscription_cancelled'",
        )
    }
    assert "payment_failed" in reasons
    assert len(reasons) > 1


def test_order_follow_ups_come_in_order(con: duckdb.DuckDBPyConnection) -> None:
    wrong = scalar(
        con,
        "with stages as (select properties->>'order_id' as order_id, "
        "min(occurred_at) filter (where event_type = 'order_placed') as placed, "
        "min(occurred_at) filter (where event_type = 'order_shipped') as shipped, "
        "min(occurred_at) filter (where event_type = 'order_out_for_delivery') as out, "
        "min(occurred_at) filter (where event_type = 'order_delivered') as delivered, "
        "min(occurred_at) filter (where event_type in ('order_refunded', 'review_submitted')) "
        "as after from raw.events where properties->>'order_id' is not null group by 1) "
        "select count(*) from stages where not (placed < shipped and shipped < out "
        "and out < delivered and delivered < after)",
    )
    complete = scalar(
        con,
        "select count(*) from raw.events where event_type in ('order_refunded', 'review_submitted')",
    )
    assert complete > 0
    assert wrong == 0


def test_stats_describe_the_run(small_store: Store) -> None:
    _, stats = small_store
    text = stats.describe()
    assert "customers: 3,000" in text
    assert "products:  60" in text
    assert "order_placed" in text
    assert stats.event_total == sum(c.events for c in stats.events)
