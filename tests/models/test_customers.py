"""Customer attributes, segments and membership history on a tiny hand-made store.

The store is built at two moments (``--now``): five customers whose attributes, segments and tiers are
known by construction. The changes between the two builds must come out as exactly the expected
``segment_entered`` / ``segment_exited`` / ``tier_changed`` events, and a third build at the same moment
must change nothing.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any

import pytest
from sqlglot import exp

from flowhouse.core.build import build_models
from flowhouse.core.warehouse import Location, Warehouse

pytestmark = pytest.mark.slow

NOW_1 = datetime(2026, 9, 30)
NOW_2 = datetime(2026, 11, 15)
SELECT = ("+derived_segment_entered", "+derived_segment_exited", "+derived_tier_changed")

CUSTOMER_COLUMNS = ["customer_id", "email", "timezone", "email_opt_in", "sms_opt_in", "properties",
                    "created_at", "updated_at"]  # fmt: skip
CUSTOMERS = [
    ("c_vip", " VIP@Example.com ", "Europe/Berlin", True, False, "{}"),
    ("c_gold", "gold@example.com", "america/new_york", True, True, "{}"),
    ("c_browser", "browser@example.com", "Mars/Olympus_Mons", False, False, "{}"),
    ("c_unsub", "unsub@example.com", None, True, True, '{"wholesale": false}'),
    ("c_deal", "deal@example.com", "UTC", True, False, '{"wholesale": true}'),
]
EVENT_COLUMNS = ["event_id", "customer_id", "event_type", "occurred_at", "loaded_at", "properties"]
# (event_id, customer_id, event_type, occurred_at, properties); each loads 5 minutes after it occurs
EVENTS: list[tuple[str, str, str, str, dict[str, Any]]] = [
    ("e01", "c_vip", "order_placed", "2026-09-01 10:00", {"order_id": "o1", "subtotal": 1500, "discount": 0, "shipping": 0, "value": 1500, "lines": [{"sku": "S1", "quantity": 3, "price": 500, "category": "shoes"}]}),
    ("e02", "c_vip", "order_placed", "2026-09-20 10:00", {"order_id": "o2", "subtotal": 650, "discount": 50, "shipping": 0, "value": 600, "coupon_code": "VIP50", "lines": [{"sku": "B1", "quantity": 1, "price": 650, "category": "bags"}]}),
    ("e03", "c_vip", "order_refunded", "2026-09-25 10:00", {"order_id": "o2", "amount": 50}),
    ("e04", "c_gold", "order_placed", "2026-09-10 10:00", {"order_id": "o3", "subtotal": 800, "discount": 0, "shipping": 0, "value": 800}),
    ("e05", "c_gold", "order_placed", "2026-10-20 10:00", {"order_id": "o4", "subtotal": 1300, "discount": 0, "shipping": 0, "value": 1300}),
    ("e06", "c_browser", "product_viewed", "2026-09-25 09:00", {"sku": "S1", "category": "shoes"}),
    ("e07", "c_browser", "product_viewed", "2026-09-25 09:01", {"sku": "S2", "category": "shoes"}),
    ("e08", "c_browser", "product_viewed", "2026-09-25 09:02", {"sku": "B1", "category": "bags"}),
    ("e09", "c_unsub", "opted_in", "2026-09-05 08:00", {"channel": "email"}),
    ("e10", "c_unsub", "unsubscribed", "2026-09-10 08:00", {"channel": "all"}),
    ("e11", "c_unsub", "list_joined", "2026-09-02 08:00", {"list": "wholesale"}),
    ("e12", "c_unsub", "list_left", "2026-10-01 08:00", {"list": "wholesale"}),
    ("e13", "c_deal", "order_placed", "2026-08-01 10:00", {"order_id": "o5", "subtotal": 60, "discount": 10, "shipping": 0, "value": 50}),
    ("e14", "c_deal", "order_placed", "2026-08-15 10:00", {"order_id": "o6", "subtotal": 70, "discount": 10, "shipping": 0, "value": 60}),
    ("e15", "c_deal", "message_delivered", "2026-09-29 08:00", {"channel": "email"}),
    ("e16", "c_deal", "message_delivered", "2026-09-25 08:00", {"channel": "email"}),
    ("e17", "c_deal", "message_delivered", "2026-09-20 08:00", {"channel": "sms"}),
    ("e18", "c_deal", "message_delivered", "2026-09-10 08:00", {"channel": "email"}),
    ("e19", "c_deal", "message_delivered", "2026-09-05 08:00", {"channel": "email"}),
    ("e20", "c_deal", "message_delivered", "2026-08-20 08:00", {"channel": "email"}),
]  # fmt: skip

ATTRIBUTE_COLUMNS = ["customer_id", "email", "effective_timezone", "has_valid_timezone",
                     "order_count", "first_order_value", "last_order_value", "lifetime_revenue",
                     "tier", "next_tier", "revenue_to_next_tier", "discount_sensitivity",
                     "top_category", "top_category_source", "promo_pressure_14d",
                     "promo_pressure_30d", "has_email_consent", "has_sms_consent"]  # fmt: skip


def load_store(location: Location) -> None:
    customers = [(*row, "2026-08-01 00:00:00", "2026-08-01 00:00:00") for row in CUSTOMERS]
    events = []
    for event_id, customer_id, event_type, at, properties in EVENTS:
        occurred = datetime.fromisoformat(at)
        loaded = occurred + timedelta(minutes=5)
        events.append((event_id, customer_id, event_type, str(occurred), str(loaded),
                       json.dumps(properties)))  # fmt: skip
    with Warehouse.open(location) as wh:
        wh.ensure_raw_tables()
        wh.execute(exp.insert(exp.values(customers), "raw.customers", columns=CUSTOMER_COLUMNS))
        wh.execute(exp.insert(exp.values(events), "raw.events", columns=EVENT_COLUMNS))


@dataclass(frozen=True)
class Snapshot:
    """What one build left in the warehouse."""

    attributes: dict[str, dict[str, Any]]
    members: set[tuple[str, str]]
    events: set[tuple[str, str, str, datetime]]  # (event_type, customer, detail, occurred_at)
    history_rows: int


DERIVED = ("derived_segment_entered", "derived_segment_exited", "derived_tier_changed")
HISTORY = ("segment_membership_history", "customer_tier_history")


def derived_events(wh: Warehouse) -> set[tuple[str, str, str, datetime]]:
    """(event_type, customer, segment or 'from->to' tiers, occurred_at) of every derived event."""
    found = set()
    for model in DERIVED:
        query = exp.select("event_type", "customer_id", "properties", "occurred_at")
        for event_type, customer_id, properties, occurred_at in wh.query(
            query.from_(f"core.{model}")
        ):
            props = properties if isinstance(properties, dict) else json.loads(properties)
            detail = props.get("segment") or f"{props['from_tier']}->{props['to_tier']}"
            found.add((event_type, customer_id, detail, occurred_at))
    return found


def snapshot(location: Location) -> Snapshot:
    with Warehouse.open(location) as wh:
        rows = wh.query(exp.select(*ATTRIBUTE_COLUMNS).from_("core.customer_attributes"))
        members = wh.query(exp.select("customer_id", "segment").from_("core.segment_members"))
        return Snapshot(
            attributes={r[0]: dict(zip(ATTRIBUTE_COLUMNS, r, strict=True)) for r in rows},
            members={(r[0], r[1]) for r in members},
            events=derived_events(wh),
            history_rows=sum(wh.count(f"core.{table}") for table in HISTORY),
        )


def build_three_times(location: Location) -> Iterator[Snapshot]:
    """Build at NOW_1, at NOW_2, and at NOW_2 again; yield what each build left."""
    load_store(location)
    for now in (NOW_1, NOW_2, NOW_2):
        build_models(location, select=SELECT, tests=False, now=now)
        yield snapshot(location)


@pytest.fixture(scope="module")
def builds(tmp_path_factory: pytest.TempPathFactory) -> list[Snapshot]:
    location = Location.parse(str(tmp_path_factory.mktemp("store") / "warehouse.duckdb"))
    return list(build_three_times(location))


def test_order_attributes_and_tiers(builds: list[Snapshot]) -> None:
    vip, gold = builds[0].attributes["c_vip"], builds[0].attributes["c_gold"]
    assert (vip["order_count"], vip["first_order_value"], vip["last_order_value"]) == (2, 1500, 600)
    assert vip["lifetime_revenue"] == 2050  # 2,100 ordered − 50 refunded
    assert (vip["tier"], vip["next_tier"], vip["revenue_to_next_tier"]) == ("vip", None, None)
    assert vip["discount_sensitivity"] == Decimal("0.5")
    assert (vip["top_category"], vip["top_category_source"]) == ("shoes", "orders")
    # the order of 2026-10-20 lies after NOW_1: the first build does not see it
    assert (gold["order_count"], gold["tier"], gold["next_tier"]) == (1, "gold", "vip")
    assert gold["revenue_to_next_tier"] == 1200
    assert builds[1].attributes["c_gold"]["tier"] == "vip"


def consent(attributes: dict[str, Any]) -> tuple[bool, bool]:
    return attributes["has_email_consent"], attributes["has_sms_consent"]


def test_profile_engagement_and_consent_attributes(builds: list[Snapshot]) -> None:
    attributes = builds[0].attributes
    assert attributes["c_vip"]["email"] == "vip@example.com"
    assert attributes["c_gold"]["effective_timezone"] == "America/New_York"
    browser = attributes["c_browser"]
    assert (browser["has_valid_timezone"], browser["effective_timezone"]) == (False, "UTC")
    assert (browser["top_category"], browser["top_category_source"]) == ("shoes", "views")
    deal = attributes["c_deal"]
    assert (deal["promo_pressure_14d"], deal["promo_pressure_30d"]) == (3, 5)
    assert deal["discount_sensitivity"] == 1
    # opted in by row and by event, then unsubscribed from all channels
    assert consent(attributes["c_unsub"]) == (False, False)
    assert consent(attributes["c_vip"]) == (True, False)  # the row's flags


def test_segment_members(builds: list[Snapshot]) -> None:
    assert builds[0].members == {
        ("c_vip", "vip"),
        ("c_vip", "high_discount_sensitivity"),  # one of two orders discounted: the threshold
        ("c_browser", "engaged_non_buyers"),
        ("c_unsub", "engaged_non_buyers"),
        ("c_unsub", "wholesale"),
        ("c_deal", "wholesale"),
        ("c_deal", "high_discount_sensitivity"),
    }


def test_first_build_enters_every_member_and_non_starting_tier(builds: list[Snapshot]) -> None:
    entered = {(e[1], e[2]) for e in builds[0].events if e[0] == "segment_entered"}
    assert entered == builds[0].members
    assert {e for e in builds[0].events if e[0] == "tier_changed"} == {
        ("tier_changed", "c_vip", "bronze->vip", NOW_1),
        ("tier_changed", "c_gold", "bronze->gold", NOW_1),
    }
    assert all(e[3] == NOW_1 for e in builds[0].events)


def test_second_build_records_exits_and_entries_at_its_now(builds: list[Snapshot]) -> None:
    assert builds[1].events - builds[0].events == {
        ("segment_entered", "c_gold", "vip", NOW_2),
        ("tier_changed", "c_gold", "gold->vip", NOW_2),
        ("segment_exited", "c_browser", "engaged_non_buyers", NOW_2),
        ("segment_exited", "c_unsub", "engaged_non_buyers", NOW_2),
        ("segment_exited", "c_unsub", "wholesale", NOW_2),
    }
    assert builds[0].events <= builds[1].events


def test_rebuilding_at_the_same_now_changes_nothing(builds: list[Snapshot]) -> None:
    assert builds[2].events == builds[1].events
    assert builds[2].history_rows == builds[1].history_rows


@pytest.mark.postgres
def test_membership_history_on_postgres(pg_url: str) -> None:
    first, second, third = build_three_times(Location.parse(pg_url))
    assert first.attributes["c_vip"]["lifetime_revenue"] == 2050
    assert first.attributes["c_browser"]["effective_timezone"] == "UTC"
    assert ("segment_exited", "c_unsub", "wholesale", NOW_2) in second.events - first.events
    assert ("tier_changed", "c_gold", "gold->vip", NOW_2) in second.events
    assert (third.events, third.history_rows) == (second.events, second.history_rows)
