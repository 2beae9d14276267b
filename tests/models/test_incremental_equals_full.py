"""Incremental equals full: the per-order and per-customer models a tick refreshes (stg_orders,
stg_order_lines, int_customer_*, product_interest, int_customer_lists, and the views over them,
customer_attributes and list_members) recompute only what changed since their last build
(docs/engine.md "Incremental models"); their rows must be those of a --full-refresh build of the same
data at the same now, compared in SQL, as sets. The new data holds what an incremental model gets
wrong first: late events, a refund of an old order, a replayed order (also one that now comes first),
an unsubscribe, a bounce, list events (late, left after the build's now), an event loaded after the
build's now and one that occurs after it; then a build at a later now with nothing new moves only the
time-relative attributes (and the pressure of the deliveries leaving its window); a retraction of
events (flowhouse events retract) and a build at an earlier now are followed too."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import datetime, timedelta
from typing import Any

import pytest
from sqlglot import exp

from flowhouse.core.build import build_models
from flowhouse.core.sql import render, statement
from flowhouse.core.warehouse import Location, Warehouse
from flowhouse.corrections import retract
from flowhouse.generate import continue_store, generate_store

pytestmark = pytest.mark.slow

START = datetime(2026, 9, 1)
T0 = START + timedelta(days=10)  # the first build
T1 = T0 + timedelta(days=1)  # the incremental build after new events
T2 = T1 + timedelta(days=20)  # a build with nothing new: time-relative attributes move

SELECT = [
    "+customer_attributes",
    "+product_interest",
    "+int_customer_activity",
    "+list_members",
    "+int_order_placements",
    "+int_subscription_events",
]
#: schema.model compared, less the stamps that say when a row was computed
MODELS = [
    "staging.stg_orders",
    "staging.stg_order_lines",
    "staging.stg_order_refunds",
    "core.int_customer_orders",
    "core.int_customer_last_activity",
    "core.int_customer_activity",
    "core.int_customer_consent",
    "core.int_customer_suppression",
    "core.int_customer_category_affinity",
    "core.int_customer_push",
    "core.int_customer_subscriptions",
    "core.product_interest",
    "staging.quarantined_events",
    "core.int_customer_attributes",
    "core.customer_attributes",
    "core.int_customer_lists",
    "core.list_members",
    # the state of the order- and time-driven derived events (models/derived)
    "core.int_order_placements",
    "core.int_subscription_events",
]
STAMPS = {"refreshed_at", "loaded_through", "computed_at", "quarantined_at"}
EVENT_COLUMNS = ["event_id", "customer_id", "event_type", "occurred_at", "loaded_at", "properties"]


def build(
    location: Location,
    now: datetime,
    full_refresh: bool = False,
    dbt_vars: dict[str, Any] | None = None,
) -> None:
    build_models(
        location, select=SELECT, full_refresh=full_refresh, tests=False, now=now, dbt_vars=dbt_vars
    )


def one(wh: Warehouse, sql: str) -> tuple[Any, ...]:
    return wh.query(sql)[0]


def new_events(wh: Warehouse) -> list[tuple[Any, ...]]:
    """Hand-made events loaded between T0 and T1 (and one after T1), over the generated store's
    customers and orders."""
    old = one(
        wh,
        "select order_id, customer_id, event_id, ordered_at from staging.stg_orders "
        "where not is_refunded order by ordered_at, order_id limit 1",
    )
    older = one(
        wh,
        "select order_id, customer_id, event_id from staging.stg_orders "
        "where is_refunded order by ordered_at, order_id limit 1",
    )
    replayed = one(
        wh,
        "select e.event_id, e.customer_id, e.occurred_at, e.properties from raw.events e "
        "join staging.stg_orders o on o.event_id = e.event_id "
        "order by o.ordered_at desc, o.order_id limit 1",
    )
    moved = one(
        wh,
        "select e.event_id, e.customer_id, e.occurred_at, e.properties from raw.events e "
        "join staging.stg_orders o on o.event_id = e.event_id "
        "order by o.ordered_at desc, o.order_id limit 1 offset 1",
    )
    viewer, sku = one(
        wh, "select customer_id, sku from core.product_interest order by customer_id, sku limit 1"
    )
    (buyer,) = one(wh, "select customer_id from core.int_customer_orders order by 1 limit 1")
    (someone,) = one(wh, "select customer_id from core.customer_attributes order by 1 limit 1")
    loaded = T1 - timedelta(hours=2)

    def props(value: Any) -> Any:
        return value if isinstance(value, dict) else json.loads(value)

    order = {"order_id": "o-late", "value": 40, "lines": [{"sku": sku, "price": 40}]}
    return [
        # a late view: occurred long before T0, loaded now
        ("x-late-view", viewer, "product_viewed", START + timedelta(days=1), loaded,
         {"sku": sku, "category": "late-category"}),
        # refunds of old orders: one happening now, and a second one of a refunded order that
        # happened long ago and is loaded now
        ("x-refund-now", old[1], "order_refunded", loaded, loaded,
         {"order_id": old[0], "amount": 5}),
        ("x-refund-old", older[1], "order_refunded", START + timedelta(days=2), loaded,
         {"order_id": older[0], "amount": 7.5}),
        # an order sent again as it was, and one sent again a minute earlier than first (it now
        # comes first)
        ("x-replay", replayed[1], "order_placed", replayed[2], loaded, props(replayed[3])),
        ("x-replay-first", moved[1], "order_placed", moved[2] - timedelta(minutes=1), loaded,
         props(moved[3])),
        ("x-unsubscribe", someone, "unsubscribed", loaded, loaded, {"channel": "email"}),
        ("x-bounce", someone, "message_bounced", loaded, loaded, {"channel": "email"}),
        ("x-delivered", buyer, "message_delivered", T1 - timedelta(days=9), loaded, {}),
        # loaded after T1: counted from the build at T2
        ("x-after-now", buyer, "order_placed", T1 - timedelta(minutes=30), T1 + timedelta(hours=1),
         {**order, "order_id": "o-after-now"}),
        # occurs after T1, loaded before it: counted once now passes it
        ("x-future", viewer, "product_viewed", T1 + timedelta(days=3), loaded,
         {"sku": sku, "category": "future-category"}),
        # the only event of its customer: a build at an earlier now leaves them no row
        ("x-future-only", "c-future", "product_viewed", T1 + timedelta(days=3), loaded,
         {"sku": sku, "category": "future-category"}),
        ("x-new-order", viewer, "order_placed", loaded, loaded, order),
        # push consent withdrawn, and an opt-in to onsite; a new subscription of a buyer, and a
        # pause of it that happens after T1 (counted from the build at T2)
        ("x-push-unsubscribe", viewer, "unsubscribed", loaded, loaded, {"channel": "push"}),
        ("x-onsite-opt-in", someone, "opted_in", loaded, loaded, {"channel": "onsite"}),
        ("x-subscribed", buyer, "subscription_started", loaded, loaded, {"subscription_id": "s-new"}),
        ("x-paused", buyer, "subscription_paused", T1 + timedelta(days=2), loaded,
         {"subscription_id": "s-new"}),
        # breaks the event contract: quarantined, left out of every model
        ("x-bad-value", viewer, "order_placed", loaded, loaded, {"order_id": "o-bad", "value": "12,50"}),
        # lists: a join loaded late, left before T1 but loaded after it (a member at T1, not at
        # T2), a join that occurs after T1, and a list name in another case
        ("x-list-join", viewer, "list_joined", START + timedelta(days=1), loaded,
         {"list": "newsletter"}),
        ("x-list-left", viewer, "list_left", T1 - timedelta(hours=1), T1 + timedelta(hours=1),
         {"list": "newsletter"}),
        ("x-list-future", buyer, "list_joined", T1 + timedelta(days=3), loaded, {"list": "vip"}),
        ("x-list-case", someone, "list_joined", loaded, loaded, {"list": " Wholesale "}),
    ]  # fmt: skip


def append(location: Location) -> None:
    with Warehouse.open(location) as wh:
        rows = [(*row[:5], json.dumps(row[5])) for row in new_events(wh)]
        values = [tuple(str(v) if isinstance(v, datetime) else v for v in r) for r in rows]
        wh.execute(exp.insert(exp.values(values), "raw.events", columns=EVENT_COLUMNS))
        change_device_tokens(wh)
        wh.commit()


def change_device_tokens(wh: Warehouse) -> None:
    """Device tokens change in place, with no load time: a customer's only token revoked before T1
    (no consent event: their push row goes), a token of another revoked after T1 (their push
    moves with now alone), and a new token registered before T1."""
    alone, revoked_later = (
        row[0]
        for row in wh.query(
            "select customer_id from core.int_customer_push "
            "where push_token_count = 1 and last_consent_event_at is null order by 1 limit 2"
        )
    )
    for customer, at in ((alone, T1 - timedelta(hours=3)), (revoked_later, T1 + timedelta(days=1))):
        wh.execute(
            render(
                statement(
                    "update raw.device_tokens set revoked_at = :at where customer_id = :customer",
                    at=at,
                    customer=customer,
                ),
                wh.dialect,
            )
        )
    (someone,) = one(wh, "select customer_id from core.customer_attributes order by 1 limit 1")
    wh.execute(
        render(
            statement(
                "insert into raw.device_tokens (customer_id, token, platform, created_at) "
                "values (:customer, 'x-token', 'ios', :at)",
                customer=someone,
                at=T1 - timedelta(hours=5),
            ),
            wh.dialect,
        )
    )


def snapshot(location: Location, schema: str) -> None:
    """Copy every compared model into `schema` (tables, also of the views)."""
    with Warehouse.open(location) as wh:
        wh.ensure_schema(schema)
        for model in MODELS:
            name = model.split(".")[1]
            wh.execute(f"drop table if exists {schema}.{name}")
            wh.execute(f"create table {schema}.{name} as select * from {model}")
        wh.commit()


def differences(location: Location, schema: str) -> dict[str, Any]:
    """Per model that differs from its copy in `schema`: the row counts and a few rows each side
    holds alone (set difference, stamps left out)."""
    found: dict[str, Any] = {}
    with Warehouse.open(location) as wh:
        for model in MODELS:
            name = model.split(".")[1]
            columns = ", ".join(c for c in wh.columns(*model.split(".")) if c not in STAMPS)
            built = f"select {columns} from {model}"
            kept = f"select {columns} from {schema}.{name}"
            only_built = wh.query(f"select * from ({built} except {kept}) as d limit 3")
            only_kept = wh.query(f"select * from ({kept} except {built}) as d limit 3")
            counts = (wh.scalar(f"select count(*) from {model}"),
                      wh.scalar(f"select count(*) from {schema}.{name}"))  # fmt: skip
            if only_built or only_kept or counts[0] != counts[1]:
                found[model] = {"counts": counts, "full": only_built, "incremental": only_kept}
    return found


def incremental_then_full(location: Location) -> Iterator[tuple[str, dict[str, Any]]]:
    generate_store(location, customers=250, days=10, seed=3, start=START)
    build(location, T0)
    continue_store(location, until=T1)
    append(location)
    build(location, T1)
    snapshot(location, "incremental_t1")
    build(location, T2)  # nothing new: now alone moves
    snapshot(location, "incremental_t2")
    build(location, T1, full_refresh=True)
    yield "T1", differences(location, "incremental_t1")
    build(location, T2, full_refresh=True)
    yield "T2", differences(location, "incremental_t2")
    retract(location, retracted(location), "a correction", now=T2)
    build(location, T2)
    snapshot(location, "retracted")
    build(location, T2, full_refresh=True)
    yield "retracted", differences(location, "retracted")
    build(location, T1)  # an earlier now: rows leave, keys may have none left
    snapshot(location, "went_back")
    build(location, T1, full_refresh=True)
    yield "went back", differences(location, "went_back")


def retracted(location: Location) -> list[str]:
    """An order's placement and a view, to retract (flowhouse events retract)."""
    with Warehouse.open(location) as wh:
        order = one(wh, "select event_id from staging.stg_orders order by event_id limit 1")
        view = one(
            wh,
            "select event_id from raw.events where event_type = 'product_viewed' "
            "order by event_id limit 1",
        )
    return [order[0], view[0]]


#: the models that keep their marks beside the table, so that one with no row (no bounce yet) is
#: still built from what changed
KEEP_MARKS = [
    "int_customer_push",
    "int_customer_subscriptions",
    "int_customer_suppression",
    "stg_order_refunds",
]


def kept_marks(location: Location) -> list[tuple[Any, ...]]:
    with Warehouse.open(location) as wh:
        return [
            (model, wh.scalar(f"select count(*) from {schema}.{model}_marks where {kept}"))
            for schema, model in (
                ("core", "int_customer_push"),
                ("core", "int_customer_subscriptions"),
                ("core", "int_customer_suppression"),
                ("staging", "stg_order_refunds"),
            )
            for kept in ["loaded_through is not null and refreshed_at is not null"]
        ]


def check(location: Location) -> None:
    results = dict(incremental_then_full(location))
    assert kept_marks(location) == [(model, 1) for model in KEEP_MARKS]
    assert results == {"T1": {}, "T2": {}, "retracted": {}, "went back": {}}
    with Warehouse.open(location) as wh:
        # the cases happened: what the new events did is in the models
        assert [wh.scalar(f"select count(*) from {where}") for where in HAPPENED] == [1] * len(
            HAPPENED
        )


#: what the new events and the later now did, one row each (a `from` clause)
HAPPENED = [
    "staging.stg_orders where event_id = 'x-replay-first'",
    "staging.stg_orders where order_id = 'o-after-now'",
    "(select 1 from core.int_customer_suppression where email_suppressed_at is not null limit 1) s",
    "(select 1 from incremental_t1.int_customer_activity c join incremental_t2.int_customer_activity"
    " d on c.customer_id = d.customer_id where c.promo_pressure_14d <> d.promo_pressure_14d"
    " limit 1) p",
    "(select 1 from incremental_t1.customer_attributes c join incremental_t2.customer_attributes"
    " d on c.customer_id = d.customer_id where c.recency_days <> d.recency_days limit 1) r",
    "staging.quarantined_events where event_id = 'x-bad-value' and field = 'value'",
    "(select 1 from incremental_t1.int_customer_push where push_token = 'x-token') t",
    "(select 1 from incremental_t1.int_customer_subscriptions c join"
    " incremental_t2.int_customer_subscriptions d on c.customer_id = d.customer_id"
    " where c.subscription_status = 'active' and d.subscription_status = 'paused' limit 1) s",
    # a customer whose only token was revoked after T1 (no consent event) has no push row at T2
    "(select 1 from incremental_t1.int_customer_push c left join incremental_t2.int_customer_push d"
    " on c.customer_id = d.customer_id where d.customer_id is null limit 1) p",
    "(select 1 from incremental_t1.int_customer_attributes c join incremental_t2."
    "int_customer_attributes d on c.customer_id = d.customer_id"
    " where c.promo_pressure_14d <> d.promo_pressure_14d limit 1) q",
    "(select 1 from incremental_t1.list_members m join incremental_t2.int_customer_lists l"
    " on m.customer_id = l.customer_id and m.list_name = l.list_name where not l.is_member) l",
]


def test_incremental_builds_equal_a_full_rebuild(tmp_warehouse: Location) -> None:
    check(tmp_warehouse)


@pytest.mark.postgres
def test_postgres_incremental_builds_equal_a_full_rebuild(pg_url: str) -> None:
    check(Location.parse(pg_url))


#: builds on one day: the days since do not move, so only what changed is rewritten
SAME_DAY = [T0 + timedelta(hours=h) for h in (2, 3, 5)]
#: the next day, nothing new: the days since move for every buyer, in the view alone
NEXT_DAY = SAME_DAY[2] + timedelta(days=1)


def rewritten(location: Location, at: datetime) -> tuple[int, int]:
    """The rows of int_customer_attributes the build at `at` wrote, and all of them."""
    with Warehouse.open(location) as wh:
        written = wh.scalar(
            render(
                statement(
                    "select count(*) from core.int_customer_attributes where refreshed_at = :at",
                    at=at,
                ),
                wh.dialect,
            )
        )
        return written, wh.scalar("select count(*) from core.int_customer_attributes")


def same_day(location: Location) -> dict[str, Any]:
    """customer_attributes within one day: a build with nothing new rewrites few rows; a first
    order of a customer who never ordered moves every buyer's RFM percentile, and the rows whose
    score it changes are rewritten with it (the bounds), matching a full rebuild; a customer gone
    from the customers input loses their row; other settings rewrite every row."""
    generate_store(location, customers=250, days=10, seed=5, start=START)
    build(location, SAME_DAY[0])
    build(location, SAME_DAY[1])
    quiet = rewritten(location, SAME_DAY[1])
    with Warehouse.open(location) as wh:
        (newcomer,) = one(
            wh,
            "select customer_id from core.customer_attributes where not has_ordered "
            "order by customer_id limit 1",
        )
        placed = str(SAME_DAY[1] + timedelta(minutes=30))
        order = {"order_id": "o-newcomer", "value": 5000, "lines": [{"sku": "s-1", "price": 5000}]}
        row = ("x-newcomer", newcomer, "order_placed", placed, placed, json.dumps(order))
        wh.execute(exp.insert(exp.values([row]), "raw.events", columns=EVENT_COLUMNS))
        # a customer who leaves the customers input (a store's own relation may delete rows)
        wh.execute(
            "delete from raw.customers where customer_id = "
            "(select max(customer_id) from raw.customers)"
        )
        wh.commit()
    build(location, SAME_DAY[2])
    snapshot(location, "same_day")
    build(location, SAME_DAY[2], full_refresh=True)
    found = {"quiet": quiet, "differences": differences(location, "same_day")}
    # the next day with nothing new: the days since move in the view, no row is rewritten for them
    build(location, NEXT_DAY)
    found["next day"] = rewritten(location, NEXT_DAY)
    snapshot(location, "next_day")
    build(location, NEXT_DAY, full_refresh=True)
    found["next day differences"] = differences(location, "next_day")
    # other settings (the tiers, the predicted LTV's horizon) at the same now, nothing new
    settings = {"ltv_horizon_years": 5, "tiers": [{"name": "all", "min_revenue": 0}]}
    build(location, NEXT_DAY, dbt_vars=settings)
    snapshot(location, "other_settings")
    build(location, NEXT_DAY, full_refresh=True, dbt_vars=settings)
    return {**found, "other settings": differences(location, "other_settings")}


def check_same_day(location: Location) -> None:
    found = same_day(location)
    quiet, total = found["quiet"]
    assert quiet * 10 < total, found["quiet"]
    assert found["differences"] == {}
    next_day, total = found["next day"]
    assert next_day * 10 < total, found["next day"]
    assert found["next day differences"] == {}
    assert found["other settings"] == {}


def test_customer_attributes_rewrites_what_changed_within_a_day(tmp_warehouse: Location) -> None:
    check_same_day(tmp_warehouse)


@pytest.mark.postgres
def test_postgres_customer_attributes_rewrites_what_changed_within_a_day(pg_url: str) -> None:
    check_same_day(Location.parse(pg_url))
