"""Product interest and global suppression on a tiny hand-made store, on DuckDB and PostgreSQL.

``core.product_interest`` is what catalog events (back_in_stock, price_dropped, low_stock) are fanned out
against, and ``email_suppressed_at`` / ``sms_suppressed_at`` in ``core.customer_attributes`` are what
send-time checks read. Both are as of the build's now, so the store is built at two moments: an event that
arrives between them (a late view, a late bounce) must count in the second build only. The dbt tests of
the three models (their unit tests included) run on each warehouse too.
"""

from __future__ import annotations

import json
from datetime import datetime, timedelta
from typing import Any

import pytest
from sqlglot import exp

from flowhouse.core.build import build_models
from flowhouse.core.dbt import run_dbt
from flowhouse.core.warehouse import Location, Warehouse

pytestmark = pytest.mark.slow

NOW_1 = datetime(2026, 9, 30)
NOW_2 = datetime(2026, 10, 10)
MODELS = ("product_interest", "int_customer_suppression", "customer_attributes")

CUSTOMER_COLUMNS = ["customer_id", "email", "phone", "email_opt_in", "sms_opt_in", "created_at",
                    "updated_at"]  # fmt: skip
CUSTOMERS = [
    ("c1", "one@example.com", "+4915100000001", True, True),
    ("c2", "two@example.com", "+4915100000002", True, True),
    ("c3", "three@example.com", None, False, False),
]
EVENT_COLUMNS = ["event_id", "customer_id", "event_type", "occurred_at", "loaded_at", "properties"]
LATE = "2026-10-05 00:00"  # after NOW_1, before NOW_2
# (event_id, customer_id, event_type, occurred_at, loaded_at or None (5 minutes later), properties)
EVENTS: list[tuple[str, str | None, str, str, str | None, dict[str, Any]]] = [
    # c1 views s1, carts it, orders s1 and s2 (never viewed: no row), views s1 again (arrives late)
    ("v1", "c1", "product_viewed", "2026-09-01 10:00", None, {"session_id": "a", "sku": "s1", "category": "shoes", "price": 50}),
    ("a1", "c1", "added_to_cart", "2026-09-02 10:00", None, {"session_id": "b", "cart_id": "k1", "sku": "s1", "quantity": 1, "price": 50}),
    ("o1", "c1", "order_placed", "2026-09-04 10:00", None, {"order_id": "o1", "value": 80, "lines": [{"sku": "s1", "quantity": 1, "price": 50}, {"sku": "s2", "quantity": 1, "price": 30}]}),
    ("v2", "c1", "product_viewed", "2026-09-03 10:00", LATE, {"session_id": "b", "sku": "s1", "category": "shoes", "price": 50}),
    # c2 only carts s3; a view without a sku and a catalog event make no rows
    ("a2", "c2", "added_to_cart", "2026-09-05 10:00", None, {"session_id": "c", "cart_id": "k2", "sku": "s3", "quantity": 2, "price": 9}),
    ("v3", "c2", "product_viewed", "2026-09-05 09:00", None, {"session_id": "c", "category": "socks"}),
    ("i1", None, "inventory_changed", "2026-09-06 10:00", None, {"sku": "s1", "inventory_qty": 4, "previous_qty": 0}),
    # suppression: c1's soft bounce does not count, its hard bounce does; c2 complains by SMS, and an
    # e-mail bounce without a bounce type arrives late; c3's complaint is about push messages
    ("b1", "c1", "message_bounced", "2026-09-10 08:00", None, {"message_id": "m1", "channel": "email", "bounce_type": "soft"}),
    ("b2", "c1", "message_bounced", "2026-09-12 08:00", None, {"message_id": "m2", "channel": "email", "bounce_type": "hard"}),
    ("q1", "c2", "message_complained", "2026-09-11 08:00", None, {"message_id": "m3", "channel": "sms"}),
    ("b3", "c2", "message_bounced", "2026-09-20 08:00", LATE, {"message_id": "m4", "channel": "email"}),
    ("q2", "c3", "message_complained", "2026-09-11 08:00", None, {"message_id": "m5", "channel": "push"}),
]  # fmt: skip

Interest = tuple[str, str, str | None, str | None, str | None, str | None]
INTEREST_1: set[Interest] = {
    ("c1", "s1", "2026-09-01 10:00", "2026-09-02 10:00", "2026-09-04 10:00", "2026-09-02 10:00"),
    ("c2", "s3", None, "2026-09-05 10:00", None, "2026-09-05 10:00"),
}
INTEREST_2: set[Interest] = {
    ("c1", "s1", "2026-09-03 10:00", "2026-09-02 10:00", "2026-09-04 10:00", "2026-09-03 10:00"),
    ("c2", "s3", None, "2026-09-05 10:00", None, "2026-09-05 10:00"),
}
SUPPRESSION_1 = {
    "c1": ("2026-09-12 08:00", None),
    "c2": (None, "2026-09-11 08:00"),
    "c3": (None, None),
}
SUPPRESSION_2 = {**SUPPRESSION_1, "c2": ("2026-09-20 08:00", "2026-09-11 08:00")}


def load_store(location: Location) -> None:
    at = "2026-08-01 00:00:00"
    customers = [(*row, at, at) for row in CUSTOMERS]
    events = []
    for event_id, customer_id, event_type, occurred, loaded, properties in EVENTS:
        loaded_at = loaded or str(datetime.fromisoformat(occurred) + timedelta(minutes=5))
        events.append((event_id, customer_id, event_type, occurred, loaded_at,
                       json.dumps(properties)))  # fmt: skip
    with Warehouse.open(location) as wh:
        wh.ensure_raw_tables()
        wh.execute(exp.insert(exp.values(customers), "raw.customers", columns=CUSTOMER_COLUMNS))
        wh.execute(exp.insert(exp.values(events), "raw.events", columns=EVENT_COLUMNS))


def minute(value: datetime | None) -> str | None:
    return None if value is None else f"{value:%Y-%m-%d %H:%M}"


def build_and_read(location: Location, now: datetime) -> tuple[set[Interest], dict[str, Any]]:
    """Build the models at ``now``, run their dbt tests, and read what they hold."""
    build_models(location, select=tuple(f"+{m}" for m in MODELS), tests=False, now=now)
    run_dbt("test", location, ["--select", " ".join(MODELS)], {"now": now.isoformat(sep=" ")})
    columns = ["last_viewed_at", "last_carted_at", "last_ordered_at", "last_interest_at"]
    with Warehouse.open(location) as wh:
        interest = wh.query(
            exp.select("customer_id", "sku", *columns).from_("core.product_interest")
        )
        suppression = wh.query(
            exp.select("customer_id", "email_suppressed_at", "sms_suppressed_at").from_(
                "core.customer_attributes"
            )
        )
    return (
        {(r[0], r[1], minute(r[2]), minute(r[3]), minute(r[4]), minute(r[5])) for r in interest},
        {r[0]: (minute(r[1]), minute(r[2])) for r in suppression},
    )


def check_both_builds(location: Location) -> None:
    load_store(location)
    interest, suppression = build_and_read(location, NOW_1)
    assert interest == INTEREST_1
    assert suppression == SUPPRESSION_1
    interest, suppression = build_and_read(location, NOW_2)
    assert interest == INTEREST_2
    assert suppression == SUPPRESSION_2


def test_interest_and_suppression_as_of_each_now(tmp_warehouse: Location) -> None:
    check_both_builds(tmp_warehouse)


@pytest.mark.postgres
def test_interest_and_suppression_on_postgres(pg_url: str) -> None:
    check_both_builds(Location.parse(pg_url))
