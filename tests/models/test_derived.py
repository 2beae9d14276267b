"""Derived events (models/derived) on a tiny hand-made store.

Every derivation fires on purpose, some inputs arrive late, and the expected events are known by
construction. The invariants of docs/events.md are checked by building the same store differently:
several builds at increasing ``--now`` must leave exactly the rows of one build at the end, a full refresh
must leave the rows the incremental builds did, and a derivation switched off must leave the raw events
of its type in ``core.events``.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import Any

import pytest
from sqlglot import exp

from flowhouse.core.build import build_models
from flowhouse.core.dbt import run_dbt
from flowhouse.core.warehouse import Dialect, Location, Warehouse, column_type
from flowhouse.corrections import retract

pytestmark = pytest.mark.slow

DERIVED_TYPES = (
    "cart_abandoned", "browse_abandoned", "first_purchase", "repeat_purchase", "milestone_order",
    "high_value_order", "became_inactive", "purchase_anniversary", "birthday", "back_in_stock",
    "price_dropped", "low_stock", "replenishment_due", "subscription_renewal_due",
    "search_without_purchase", "viewed_product_n_times",
)  # fmt: skip
SELECT = tuple(f"+derived_{event_type}" for event_type in DERIVED_TYPES)
FINAL_NOW = datetime(2026, 9, 10)
# builds in between: after k8's abandonment but before its order arrives; after c9's burst ended and its
# late view arrived; after c6 went inactive and its late visit arrived; then one at an earlier now (the
# state tables of orders and subscriptions start again)
CADENCE = (
    datetime(2026, 9, 1, 11, 5), datetime(2026, 9, 1, 12, 45), datetime(2026, 9, 5, 12),
    datetime(2026, 9, 2),
)  # fmt: skip

EVENT_COLUMNS = ["event_id", "customer_id", "event_type", "occurred_at", "loaded_at", "properties"]
CUSTOMER_COLUMNS = ["customer_id", "email", "created_at", "birthday", "properties", "updated_at"]
PRODUCT_COLUMNS = ["sku", "price", "cost", "updated_at"]
D, A = "2026-09-01 ", "2026-08-"


def line(sku: str, price: float, category: str = "apparel") -> dict[str, Any]:
    return {"sku": sku, "quantity": 1, "price": price, "category": category}


# (event_id, customer_id, event_type, occurred_at, loaded_at or None (a minute later), properties)
EVENTS: list[tuple[str, str | None, str, str, str | None, dict[str, Any]]] = [
    # cart_abandoned: k2 ends in a checkout; k8's order arrives after the abandonment was decided
    ("c2-search", "c2", "searched", D + "09:55", None, {"query": "socks", "results_count": 4}),
    ("c2-add", "c2", "added_to_cart", D + "10:00", None, {"cart_id": "k2", "sku": "s1", "quantity": 1, "price": 20.0}),
    ("c2-checkout", "c2", "checkout_started", D + "10:10", None, {"cart_id": "k2", "value": 20.0, "lines": [line("s1", 20.0)]}),
    ("c8-add", "c8", "added_to_cart", D + "10:00", None, {"cart_id": "k8", "sku": "s2", "quantity": 2, "price": 7.5}),
    ("c8-order", "c8", "order_placed", D + "10:40", D + "11:30", {"order_id": "o-c8", "cart_id": "k8", "value": 15.0, "lines": [line("s2", 7.5)]}),
    # purchases: c1's first order a year ago, then a 2nd and a 3rd (a milestone, high value)
    ("c1-o1", "c1", "order_placed", "2025-09-03 10:00", None, {"order_id": "o-c1-1", "value": 40.0, "lines": [line("s1", 20.0)]}),
    ("c1-o2", "c1", "order_placed", D + "09:00", None, {"order_id": "o-c1-2", "value": 20.0, "lines": [line("s1", 20.0)]}),
    ("c1-o3", "c1", "order_placed", D + "11:00", None, {"order_id": "o-c1-3", "value": 300.0, "lines": [line("s3", 300.0)]}),
    # c5's order A happened first but arrived after order B: B is the first purchase
    ("c5-oa", "c5", "order_placed", D + "10:00", D + "13:00", {"order_id": "o-c5-a", "value": 10.0, "lines": [line("s1", 10.0)]}),
    ("c5-ob", "c5", "order_placed", D + "11:00", None, {"order_id": "o-c5-b", "value": 12.0, "lines": [line("s1", 12.0)]}),
    # replenishment: c3's beauty product runs out after 60 days; c4's coffee was reordered in time
    ("c3-o1", "c3", "order_placed", "2026-07-05 09:00", None, {"order_id": "o-c3-1", "value": 25.0, "lines": [line("b1", 25.0, "beauty")]}),
    ("c4-o1", "c4", "order_placed", A + "06 09:00", None, {"order_id": "o-c4-1", "value": 25.0, "lines": [line("k1", 25.0, "coffee")]}),
    ("c4-o2", "c4", "order_placed", D + "09:00", None, {"order_id": "o-c4-2", "value": 25.0, "lines": [line("k1", 25.0, "coffee")]}),
    # became_inactive: c6's visit in June, then nothing known for 90 days (the August visit arrives late)
    ("c6-view", "c6", "product_viewed", "2026-06-05 08:00", None, {"sku": "s1", "category": "apparel"}),
    ("c6-late", "c6", "product_viewed", A + "01 08:00", "2026-09-05 00:00", {"sku": "s1", "category": "apparel"}),
    # browse: c9's burst of three views; a fourth view in between arrives after the burst ended
    ("c9-search", "c9", "searched", D + "09:50", None, {"query": "red shoes", "results_count": 0}),
    ("c9-v1", "c9", "product_viewed", D + "10:00", None, {"sku": "s1", "category": "apparel"}),
    ("c9-v2", "c9", "product_viewed", D + "10:20", None, {"sku": "s2", "category": "apparel"}),
    ("c9-v4", "c9", "product_viewed", D + "10:30", D + "12:30", {"sku": "s4", "category": "shoes"}),
    ("c9-v3", "c9", "product_viewed", D + "10:40", None, {"sku": "s3", "category": "shoes"}),
    # viewed_product_n_times: c10's third view of s5 (each view its own burst)
    ("c10-v1", "c10", "product_viewed", D + "10:00", None, {"sku": "s5", "category": "shoes"}),
    ("c10-v2", "c10", "product_viewed", D + "11:30", None, {"sku": "s5", "category": "shoes"}),
    ("c10-v3", "c10", "product_viewed", D + "13:00", None, {"sku": "s5", "category": "shoes"}),
    # catalog
    ("inv-s5", None, "inventory_changed", "2026-09-02 09:00", None, {"sku": "s5", "inventory_qty": 10, "previous_qty": 0}),
    ("inv-s6", None, "inventory_changed", "2026-09-02 09:00", None, {"sku": "s6", "inventory_qty": 3, "previous_qty": 20}),
    ("inv-s7", None, "inventory_changed", "2026-09-02 10:00", None, {"sku": "s7", "inventory_qty": 12, "previous_qty": 10}),
    ("price-s5", None, "price_changed", "2026-09-02 09:00", None, {"sku": "s5", "price": 90.0, "previous_price": 100.0}),
    ("price-s6", None, "price_changed", "2026-09-02 09:00", None, {"sku": "s6", "price": 91.0, "previous_price": 100.0}),
    # subscriptions: sub1 renews 30 days after it started; sub2 was cancelled; sub3's renewal names the date
    ("sub1", "c11", "subscription_started", A + "10 09:00", None, {"subscription_id": "sub1", "interval_days": 30}),
    ("sub2", "c11", "subscription_started", A + "05 09:00", None, {"subscription_id": "sub2", "interval_days": 30}),
    ("sub2-cancel", "c11", "subscription_cancelled", A + "20 09:00", None, {"subscription_id": "sub2"}),
    ("sub3", "c11", "subscription_renewed", A + "15 09:00", None, {"subscription_id": "sub3", "next_renewal_at": "2026-09-08T00:00:00Z"}),
    # purchase_anniversary of a first order on 29 February
    ("c12-o1", "c12", "order_placed", "2024-02-29 12:00", None, {"order_id": "o-c12-1", "value": 30.0, "lines": [line("s1", 30.0)]}),
]  # fmt: skip
# what a build reading only what was loaded since its last one could get wrong (docs/engine.md
# "Incremental models"): look-back partners read long after they occurred, late candidates, rare types
EVENTS += [
    # k13's contents reach back before its last build: the first addition was followed by an order
    # (prices with cents: DuckDB writes an added line's 20.0 as 20.0, PostgreSQL as 20)
    ("c13-add", "c13", "added_to_cart", "2026-09-03 10:00", None, {"cart_id": "k13", "sku": "s1", "quantity": 1, "price": 19.5}),
    ("c13-order", "c13", "order_placed", "2026-09-03 10:30", None, {"order_id": "o-c13", "value": 20.0, "lines": [line("s1", 20.0)]}),
    ("c13-add-2", "c13", "added_to_cart", "2026-09-09 10:00", None, {"cart_id": "k13", "sku": "s2", "quantity": 1, "price": 7.5}),
    # c14's second view arrives days late: its burst reaches back to a view an earlier build read
    ("c14-v1", "c14", "product_viewed", "2026-09-03 10:00", None, {"sku": "s1", "category": "apparel"}),
    ("c14-v2", "c14", "product_viewed", "2026-09-03 10:30", "2026-09-06 08:00", {"sku": "s2", "category": "apparel"}),
    # c15's search and cart arrive days late, the cart addition first: no search without purchase
    ("c15-search", "c15", "searched", "2026-09-02 10:00", "2026-09-06 09:00", {"query": "hats", "results_count": 2}),
    ("c15-add", "c15", "added_to_cart", "2026-09-02 10:20", "2026-09-06 08:59", {"cart_id": "k15", "sku": "s1", "quantity": 1, "price": 19.5}),
    # back in stock after many builds without one; and a restock loaded before it takes effect
    ("inv-s8", None, "inventory_changed", "2026-09-07 09:00", "2026-09-04 00:30", {"sku": "s8", "inventory_qty": 2, "previous_qty": 0}),
    ("inv-s9", None, "inventory_changed", "2026-09-09 09:00", None, {"sku": "s9", "inventory_qty": 4, "previous_qty": 0}),
]  # fmt: skip
# the order- and time-driven derivations judged by key and by a window (macros/derived_orders.sql)
EVENTS += [
    # replenishment: c33's coffee reorder happened in time but arrived late, before the first order's
    # due time: that one is not due, the reorder is (a due time moved by a late order)
    ("c33-o1", "c33", "order_placed", A + "05 09:00", None, {"order_id": "o-c33-1", "value": 25.0, "lines": [line("k1", 25.0, "coffee")]}),
    ("c33-o2", "c33", "order_placed", A + "08 09:00", "2026-09-02 00:00", {"order_id": "o-c33-2", "value": 25.0, "lines": [line("k1", 25.0, "coffee")]}),
    # became_inactive: c35 came back after its due time (judged on its history); c36 did nothing
    # after its only activity (due between two builds with nothing new for it); c37's later activity,
    # loaded long ago, keeps it active
    ("c35-r1", "c35", "review_submitted", "2026-06-03 11:30", None, {}),
    ("c35-r2", "c35", "review_submitted", D + "12:00", None, {}),
    ("c36-r1", "c36", "review_submitted", "2026-06-04 12:00", None, {}),
    ("c37-r1", "c37", "review_submitted", "2026-06-04 06:00", None, {}),
    ("c37-r2", "c37", "review_submitted", "2026-07-01 10:00", None, {}),
    # c38's order sent again later with an earlier time: still one order, numbered by arrival
    ("c38-o1", "c38", "order_placed", D + "09:30", None, {"order_id": "o-c38", "value": 30.0, "lines": [line("s1", 30.0)]}),
    ("c38-replay", "c38", "order_placed", D + "09:00", D + "12:00", {"order_id": "o-c38", "value": 30.0, "lines": [line("s1", 30.0)]}),
]  # fmt: skip
CUSTOMERS = [  # (customer_id, created_at, birthday)
    ("c1", "2024-06-01", "1992-02-29"),
    ("c2", "2026-01-01", "1985-09-04"),
    ("c3", "2026-01-01", None),
]
# the catalog knows s2's cost (k8's margin), not s1's (k2's margin is unknown)
PRODUCTS = [("s2", 7.5, 4.5, "2026-08-01 00:00:00")]

# (event_type, customer_id, occurred_at, loaded_at) of every derived event the store makes by FINAL_NOW
EXPECTED = {
    ("back_in_stock", None, "2026-09-02 09:00", "2026-09-02 09:01"),
    ("became_inactive", "c1", "2025-12-02 10:00", "2025-12-02 10:00"),
    ("became_inactive", "c12", "2024-05-29 12:00", "2024-05-29 12:00"),
    ("became_inactive", "c6", "2026-09-03 08:00", "2026-09-03 08:00"),  # the late visit came after
    ("birthday", "c1", "2025-02-28 00:00", "2025-02-28 00:00"),
    ("birthday", "c1", "2026-02-28 00:00", "2026-02-28 00:00"),
    ("birthday", "c2", "2026-09-04 00:00", "2026-09-04 00:00"),
    ("browse_abandoned", "c10", D + "11:00", D + "11:00"),
    ("browse_abandoned", "c10", D + "12:30", D + "12:30"),
    ("browse_abandoned", "c10", D + "14:00", D + "14:00"),
    ("browse_abandoned", "c6", "2026-06-05 09:00", "2026-06-05 09:00"),
    ("browse_abandoned", "c6", A + "01 09:00", "2026-09-05 00:00"),
    ("browse_abandoned", "c9", D + "11:40", D + "11:40"),
    ("cart_abandoned", "c2", D + "11:10", D + "11:10"),
    ("cart_abandoned", "c8", D + "11:00", D + "11:00"),  # its order was loaded at 11:30
    ("first_purchase", "c1", "2025-09-03 10:00", "2025-09-03 10:01"),
    ("first_purchase", "c12", "2024-02-29 12:00", "2024-02-29 12:01"),
    ("first_purchase", "c3", "2026-07-05 09:00", "2026-07-05 09:01"),
    ("first_purchase", "c4", A + "06 09:00", A + "06 09:01"),
    ("first_purchase", "c5", D + "11:00", D + "11:01"),
    ("first_purchase", "c8", D + "10:40", D + "11:30"),
    ("high_value_order", "c1", D + "11:00", D + "11:01"),
    ("low_stock", None, "2026-09-02 09:00", "2026-09-02 09:01"),
    ("milestone_order", "c1", D + "11:00", D + "11:01"),
    ("price_dropped", None, "2026-09-02 09:00", "2026-09-02 09:01"),
    ("purchase_anniversary", "c1", "2026-09-03 00:00", "2026-09-03 00:00"),
    ("purchase_anniversary", "c12", "2025-02-28 00:00", "2025-02-28 00:00"),
    ("purchase_anniversary", "c12", "2026-02-28 00:00", "2026-02-28 00:00"),
    ("repeat_purchase", "c1", D + "09:00", D + "09:01"),
    ("repeat_purchase", "c1", D + "11:00", D + "11:01"),
    ("repeat_purchase", "c4", D + "09:00", D + "09:01"),
    ("repeat_purchase", "c5", D + "10:00", D + "13:00"),
    ("replenishment_due", "c3", "2026-09-03 09:00", "2026-09-03 09:00"),
    ("search_without_purchase", "c9", D + "10:50", D + "10:50"),
    ("subscription_renewal_due", "c11", "2026-09-05 00:00", "2026-09-05 00:00"),
    ("subscription_renewal_due", "c11", "2026-09-06 09:00", "2026-09-06 09:00"),
    ("viewed_product_n_times", "c10", D + "13:00", D + "13:01"),
    # the order- and time-driven cases
    ("first_purchase", "c33", A + "05 09:00", A + "05 09:01"),
    ("repeat_purchase", "c33", A + "08 09:00", "2026-09-02 00:00"),
    ("replenishment_due", "c33", "2026-09-07 09:00", "2026-09-07 09:00"),
    ("became_inactive", "c35", D + "11:30", D + "11:30"),
    ("became_inactive", "c36", "2026-09-02 12:00", "2026-09-02 12:00"),
    ("first_purchase", "c38", D + "09:30", D + "09:31"),
}
EXPECTED |= {
    ("cart_abandoned", "c13", "2026-09-09 11:00", "2026-09-09 11:00"),
    ("first_purchase", "c13", "2026-09-03 10:30", "2026-09-03 10:31"),
    ("browse_abandoned", "c14", "2026-09-03 11:00", "2026-09-03 11:00"),  # the late view not known
    ("browse_abandoned", "c14", "2026-09-03 11:30", "2026-09-06 08:00"),
    ("cart_abandoned", "c15", "2026-09-02 11:20", "2026-09-06 08:59"),
    ("back_in_stock", None, "2026-09-07 09:00", "2026-09-07 09:00"),
    ("back_in_stock", None, "2026-09-09 09:00", "2026-09-09 09:01"),
}

# event_id, customer_id, event_type, occurred_at, loaded_at, properties (sorted JSON text)
Row = tuple[str, str | None, str, datetime, datetime, str]


def load_store(location: Location, extra_events: Sequence[tuple[Any, ...]] = ()) -> None:
    events = []
    for event_id, customer_id, event_type, occurred, loaded, properties in EVENTS:
        occurred_at = datetime.fromisoformat(occurred)
        loaded_at = datetime.fromisoformat(loaded) if loaded else occurred_at + timedelta(minutes=1)
        events.append((event_id, customer_id, event_type, str(occurred_at), str(loaded_at),
                       json.dumps(properties)))  # fmt: skip
    customers = [(c, f"{c}@example.com", created, birthday, "{}", created)
                 for c, created, birthday in CUSTOMERS]  # fmt: skip
    with Warehouse.open(location) as wh:
        wh.ensure_raw_tables()
        wh.execute(exp.insert(exp.values(events + list(extra_events)), "raw.events",
                              columns=EVENT_COLUMNS))  # fmt: skip
        wh.execute(exp.insert(exp.values(customers), "raw.customers", columns=CUSTOMER_COLUMNS))
        wh.execute(exp.insert(exp.values(PRODUCTS), "raw.products", columns=PRODUCT_COLUMNS))


def derived_rows(location: Location) -> set[Row]:
    """The rows of every derived_<type> table there is, properties as sorted JSON text."""
    rows: list[tuple[Any, ...]] = []
    with Warehouse.open(location) as wh:
        for event_type in DERIVED_TYPES:
            if wh.table_exists("core", f"derived_{event_type}"):
                rows += wh.query(exp.select(*EVENT_COLUMNS).from_(f"core.derived_{event_type}"))
    return {(*row[:5], _json(row[5])) for row in rows}


def _json(value: Any) -> str:
    return json.dumps(value if isinstance(value, dict) else json.loads(value), sort_keys=True)


def summary(rows: set[Row]) -> set[tuple[str, str | None, str, str]]:
    return {(r[2], r[1], f"{r[3]:%Y-%m-%d %H:%M}", f"{r[4]:%Y-%m-%d %H:%M}") for r in rows}


def properties(rows: set[Row], event_type: str, customer_id: str | None) -> list[dict[str, Any]]:
    found = [r for r in rows if r[2] == event_type and r[1] == customer_id]
    return [json.loads(r[5]) for r in sorted(found, key=lambda r: r[3])]


def build(location: Location, now: datetime, full_refresh: bool = False) -> None:
    build_models(location, select=SELECT, full_refresh=full_refresh, tests=False, now=now)


@pytest.fixture(scope="module")
def one_build(tmp_path_factory: pytest.TempPathFactory) -> set[Row]:
    """The derived events of a single build at FINAL_NOW."""
    location = Location.parse(str(tmp_path_factory.mktemp("one") / "warehouse.duckdb"))
    load_store(location)
    build(location, FINAL_NOW)
    return derived_rows(location)


@pytest.fixture(scope="module")
def cadence_builds(tmp_path_factory: pytest.TempPathFactory) -> tuple[set[Row], set[Row]]:
    """The derived events after builds at every CADENCE moment and FINAL_NOW, then after a full refresh."""
    location = Location.parse(str(tmp_path_factory.mktemp("cadence") / "warehouse.duckdb"))
    load_store(location)
    for now in (*CADENCE, FINAL_NOW):
        build(location, now)
    incremental = derived_rows(location)
    build(location, FINAL_NOW, full_refresh=True)
    return incremental, derived_rows(location)


def test_every_derivation_fires_as_constructed(one_build: set[Row]) -> None:
    assert {r[2] for r in one_build} == set(DERIVED_TYPES)
    assert summary(one_build) == EXPECTED
    assert all(r[4] >= r[3] for r in one_build)  # never known before it happened


def test_properties(one_build: set[Row]) -> None:
    assert properties(one_build, "cart_abandoned", "c2") == [
        {"cart_id": "k2", "value": 20.0, "margin_pct": None, "lines": [line("s1", 20.0)],
         "last_activity_at": "2026-09-01T10:10:00Z"}
    ]  # fmt: skip
    k8 = properties(one_build, "cart_abandoned", "c8")[0]
    assert k8["lines"] == [{"sku": "s2", "quantity": 2, "price": 7.5}]
    assert k8["margin_pct"] == 0.4  # 2 × (7.5 - 4.5) / 15
    assert properties(one_build, "browse_abandoned", "c9") == [
        {"sku": "s3", "category": "shoes", "views": 3}  # the late view was not known yet
    ]
    assert properties(one_build, "first_purchase", "c5")[0]["order_id"] == "o-c5-b"
    assert properties(one_build, "repeat_purchase", "c5")[0]["order_number"] == 2
    assert properties(one_build, "milestone_order", "c1") == [
        {"order_id": "o-c1-3", "order_number": 3}
    ]
    assert properties(one_build, "price_dropped", None) == [
        {"sku": "s5", "price": 90.0, "previous_price": 100.0, "drop_pct": 10.0}
    ]
    assert properties(one_build, "became_inactive", "c6") == [
        {"last_activity_at": "2026-06-05T08:00:00Z", "days_inactive": 90}
    ]
    assert [p["years"] for p in properties(one_build, "purchase_anniversary", "c12")] == [1, 2]
    assert properties(one_build, "birthday", "c1")[0] == {"birthday": "1992-02-29"}
    assert properties(one_build, "replenishment_due", "c3") == [
        {"sku": "b1", "order_id": "o-c3-1", "days": 60}
    ]
    renewals = properties(one_build, "subscription_renewal_due", "c11")
    assert [p["subscription_id"] for p in renewals] == ["sub3", "sub1"]
    assert renewals[0]["next_renewal_at"] == "2026-09-08T00:00:00Z"


def test_look_backs_reach_what_earlier_builds_read(one_build: set[Row]) -> None:
    k13 = properties(one_build, "cart_abandoned", "c13")[0]
    assert k13["lines"] == [
        {"sku": "s1", "quantity": 1, "price": 19.5},
        {"sku": "s2", "quantity": 1, "price": 7.5},
    ]
    assert k13["value"] == 27.0
    assert [p["views"] for p in properties(one_build, "browse_abandoned", "c14")] == [1, 2]


def test_builds_at_any_cadence_leave_the_rows_of_one_build(
    cadence_builds: tuple[set[Row], set[Row]], one_build: set[Row]
) -> None:
    incremental, _ = cadence_builds
    assert incremental == one_build


def test_full_refresh_leaves_the_rows_of_the_incremental_builds(
    cadence_builds: tuple[set[Row], set[Row]],
) -> None:
    incremental, refreshed = cadence_builds
    assert refreshed == incremental


def test_a_retraction_derives_again_without_the_retracted_rows(
    tmp_warehouse: Location, one_build: set[Row]
) -> None:
    """A retraction empties the derived tables and their marks (core.<model>_marks): the next build
    reads the whole stream again, not only what was loaded since the last build."""
    load_store(tmp_warehouse)
    build(tmp_warehouse, FINAL_NOW)
    retract(tmp_warehouse, ["c14-v2"], "a correction", now=FINAL_NOW)
    with Warehouse.open(tmp_warehouse) as wh:
        assert wh.scalar("select count(*) from core.derived_browse_abandoned_marks") == 0
    build(tmp_warehouse, FINAL_NOW)
    gone = {r for r in one_build if r[1] == "c14" and r[4] == datetime(2026, 9, 6, 8)}
    assert [r[2] for r in gone] == ["browse_abandoned"]
    assert derived_rows(tmp_warehouse) == one_build - gone


# rows a loader commits while a derived model is being built (by model), newer than every row loaded
# before, as a loader's are, but in two commits: one row (a cart abandoned by c40, an order of c42), then
# a newer one: (event_id, customer_id, event_type, occurred_at, minutes after the newest loaded_at,
# properties)
COMMITTED_DURING_BUILD = {
    "derived_cart_abandoned": [
        ("c40-add", "c40", "added_to_cart", "2026-09-09 08:00:00", 1,
         {"cart_id": "k40", "sku": "s1", "quantity": 1, "price": 19.5}),
        ("c41-review", "c41", "review_submitted", "2026-09-09 10:10:00", 5, {}),
    ],
    "derived_first_purchase": [
        ("c42-o1", "c42", "order_placed", "2026-09-09 09:00:00", 1,
         {"order_id": "o-c42", "value": 19.5, "lines": [line("s1", 19.5)]}),
        ("c43-review", "c43", "review_submitted", "2026-09-09 10:11:00", 5, {}),
    ],
}  # fmt: skip


def committed_during(rows: Sequence[tuple[Any, ...]], dialect: Dialect) -> str:
    """An insert of `rows` into raw.events, loaded the given minutes after the newest loaded_at."""
    selects = [
        exp.select(
            exp.Literal.string(event_id), exp.Literal.string(customer_id),
            exp.Literal.string(event_type),
            exp.cast(exp.Literal.string(occurred_at), "timestamp"),
            exp.Max(this=exp.column("loaded_at")) + exp.Interval(
                this=exp.Literal.string(str(minutes)), unit=exp.var("minute")),
            exp.cast(exp.Literal.string(json.dumps(properties)), column_type("json", dialect)),
        ).from_("raw.events")
        for event_id, customer_id, event_type, occurred_at, minutes, properties in rows
    ]  # fmt: skip
    union = selects[0]
    for select in selects[1:]:
        union = exp.union(union, select, distinct=False)
    return exp.insert(union, "raw.events", columns=EVENT_COLUMNS).sql(dialect=dialect)


def build_with_rows_committed_during(location: Location) -> set[Row]:
    """Build, with COMMITTED_DURING_BUILD inserted after derived_cart_abandoned and
    derived_first_purchase read and before their marks are kept (the test-only var of
    macros/incremental.sql, between_read_and_marks), then build again at the same now."""
    with Warehouse.open(location) as wh:
        dialect = wh.dialect
    during = {
        model: committed_during(rows, dialect) for model, rows in COMMITTED_DURING_BUILD.items()
    }
    load_store(location)
    build_models(location, select=SELECT, tests=False, now=FINAL_NOW,
                 dbt_vars={"test_between_read_and_marks": during})  # fmt: skip
    build(location, FINAL_NOW)
    return derived_rows(location)


def test_rows_committed_while_a_model_reads_are_read_by_the_next_build(
    tmp_warehouse: Location,
) -> None:
    """A build's marks are taken before it reads: the rows a loader commits in between are read by
    the next build, even when a newer row was committed with them (a mark taken after the read, the
    newest loaded_at then, would skip them)."""
    found = {(r[2], r[1]) for r in build_with_rows_committed_during(tmp_warehouse)}
    assert {("cart_abandoned", "c40"), ("first_purchase", "c42")} <= found


def test_switched_off_derivation_keeps_raw_events_of_its_type(tmp_warehouse: Location) -> None:
    raw = ("raw-abandoned", "c2", "cart_abandoned", D + "11:30", D + "11:31", '{"cart_id": "k2"}')
    load_store(tmp_warehouse, [raw])
    dbt_vars = {"now": str(FINAL_NOW), "derive_cart_abandoned": False}
    run_dbt("run", tmp_warehouse, ["--select", "+events"], dbt_vars)
    with Warehouse.open(tmp_warehouse) as wh:
        stream = wh.query(
            exp.select("event_id", "is_derived")
            .from_("core.events")
            .where(exp.column("event_type").eq(exp.Literal.string("cart_abandoned")))
        )
        assert not wh.table_exists("core", "derived_cart_abandoned")
        query = exp.select("event_type").distinct().from_("core.events").where("is_derived")
        derived = wh.query(query)
    assert stream == [("raw-abandoned", False)]
    assert set(DERIVED_TYPES) - {r[0] for r in derived} == {"cart_abandoned"}


@pytest.mark.postgres
def test_postgres_derives_the_same_events(pg_url: str, one_build: set[Row]) -> None:
    location = Location.parse(pg_url)
    load_store(location)
    build(location, datetime(2026, 9, 2))
    build(location, FINAL_NOW)
    assert derived_rows(location) == one_build


@pytest.mark.postgres
def test_postgres_reads_rows_committed_while_a_model_reads(pg_url: str) -> None:
    found = {(r[2], r[1]) for r in build_with_rows_committed_during(Location.parse(pg_url))}
    assert {("cart_abandoned", "c40"), ("first_purchase", "c42")} <= found
