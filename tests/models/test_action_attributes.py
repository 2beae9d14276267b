"""Actions that take effect and the attributes of issue 18: tags, loyalty points and the tier override
applied by flows (flowhouse.profile_updates) are customer attributes at the next build, with custom
properties typed from the settings, the subscription state, the EU flag and the coupon_issued event —
on DuckDB and on PostgreSQL, and read by compiled flow predicates on both."""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any

import pytest
from click.testing import CliRunner
from sqlglot import exp

from flowhouse.cli import cli
from flowhouse.core.build import build_models, prepare_sources
from flowhouse.core.sql import render
from flowhouse.core.warehouse import Location, Warehouse
from flowhouse.flows.compile import predicate

pytestmark = pytest.mark.slow

NOW = datetime(2026, 10, 1, 12, 0)
SELECT = ("+customer_attributes", "+derived_coupon_issued")
PROPERTIES = {"shoe_size": "number", "vip_since": "date", "favourite_store": "string",
              "newsletter": "boolean"}  # fmt: skip

CUSTOMER_COLUMNS = ["customer_id", "email", "country", "properties", "created_at", "updated_at"]
CUSTOMERS = [
    ("c_tagged", "a@example.com", "de",
     {"shoe_size": 43, "vip_since": "2025-05-01", "favourite_store": "Berlin", "loyalty_points": 100,
      "newsletter": True}),
    ("c_removed", "b@example.com", "US", {"shoe_size": "forty", "newsletter": "false"}),
    ("c_plain", "c@example.com", None, {}),
]  # fmt: skip
EVENT_COLUMNS = ["event_id", "customer_id", "event_type", "occurred_at", "loaded_at", "properties"]
EVENTS = [
    ("s1", "c_tagged", "subscription_started", "2026-08-01 10:00", {"subscription_id": "A"}),
    ("s2", "c_tagged", "subscription_paused", "2026-09-01 10:00", {"subscription_id": "A"}),
    ("s3", "c_tagged", "subscription_started", "2026-09-02 10:00", {"subscription_id": "B"}),
    ("s4", "c_removed", "subscription_started", "2026-08-01 10:00", {"subscription_id": "C"}),
    ("s5", "c_removed", "subscription_cancelled", "2026-08-20 10:00", {"subscription_id": "C"}),
    ("s6", "c_removed", "subscription_paused", "2026-10-02 10:00", {"subscription_id": "C"}),
]  # fmt: skip
UPDATE_COLUMNS = ["update_id", "enrollment_id", "flow_id", "step_id", "customer_id", "action",
                  "name", "value", "updated_at", "expires_at"]  # fmt: skip
#: change_tier overrides with an expiry (expires_in): c_tagged's still runs at the build's now,
#: c_plain's ended before it (back to the revenue tier).
EXPIRING = [
    ("u6", "e2", "f", "tier", "c_tagged", "change_tier", None, "vip", "2026-09-05 10:00",
     "2026-12-05 10:00"),
    ("u12", "e4", "f", "tier", "c_plain", "change_tier", None, "gold", "2026-09-01 10:00",
     "2026-09-08 10:00"),
]  # fmt: skip
UPDATES = [
    ("u1", "e1", "f", "tag", "c_tagged", "add_tag", "vip", None, "2026-09-01 10:00"),
    ("u2", "e1", "f", "tag2", "c_tagged", "add_tag", "early", None, "2026-09-01 10:00"),
    ("u3", "e1", "f", "pts", "c_tagged", "loyalty_points", None, "250", "2026-09-02 10:00"),
    ("u4", "e2", "f", "pts", "c_tagged", "loyalty_points", None, "-50", "2026-09-03 10:00"),
    ("u5", "e1", "f", "tier", "c_tagged", "change_tier", None, "gold", "2026-09-01 10:00"),
    ("u7", "e3", "f", "tag", "c_removed", "add_tag", "vip", None, "2026-09-01 10:00"),
    ("u8", "e3", "f", "untag", "c_removed", "remove_tag", "vip", None, "2026-09-02 10:00"),
    ("u9", "e3", "f", "tier", "c_removed", "change_tier", None, "vip", "2026-09-01 10:00"),
    ("u10", "e3", "f", "tier2", "c_removed", "change_tier", None, "auto", "2026-09-03 10:00"),
    # applied after the build's now: not known yet
    ("u11", "e3", "f", "late", "c_plain", "add_tag", "late", None, "2026-10-05 10:00"),
]  # fmt: skip
COUPON_COLUMNS = ["pool", "code", "added_at", "customer_id", "message_id", "issued_at",
                  "expires_at"]  # fmt: skip
COUPONS = [
    ("vip20", "VIP-1", "2026-08-01 00:00", "c_tagged", "m1", "2026-09-05 10:00", "2026-10-05 10:00"),
    ("vip20", "VIP-2", "2026-08-01 00:00", None, None, None, None),
    # issued to a customer since erased (flowhouse erase anonymises the id): no event
    ("vip20", "VIP-3", "2026-08-01 00:00", "erased:0cc1", "m3", "2026-09-05 10:00", None),
]  # fmt: skip


def _rows(rows: list[tuple[Any, ...]]) -> list[tuple[Any, ...]]:
    return [tuple(json.dumps(v) if isinstance(v, dict) else v for v in row) for row in rows]


def load(location: Location) -> None:
    prepare_sources(location)
    customers = [(*row, "2026-01-01 00:00", "2026-01-01 00:00") for row in CUSTOMERS]
    events = [(*row[:4], row[3], row[4]) for row in EVENTS]
    with Warehouse.open(location) as wh:
        for table, columns, rows in (
            ("raw.customers", CUSTOMER_COLUMNS, customers),
            ("raw.events", EVENT_COLUMNS, events),
            ("flowhouse.profile_updates", UPDATE_COLUMNS, [(*u, None) for u in UPDATES] + EXPIRING),
            ("flowhouse.coupon_codes", COUPON_COLUMNS, COUPONS),
        ):
            wh.execute(exp.insert(exp.values(_rows(rows)), table, columns=columns))


def build(location: Location) -> None:
    load(location)
    build_models(
        location, select=SELECT, tests=False, now=NOW,
        dbt_vars={"customer_properties": PROPERTIES},
    )  # fmt: skip


COLUMNS = ["customer_id", "tags", "loyalty_points", "flow_loyalty_points", "tier", "revenue_tier",
           "tier_override", "subscription_status", "is_eu", "properties__shoe_size",
           "properties__vip_since", "properties__favourite_store",
           "properties__newsletter"]  # fmt: skip


def attributes(wh: Warehouse) -> dict[str, dict[str, Any]]:
    rows = wh.query(exp.select(*COLUMNS).from_("core.customer_attributes"))
    return {r[0]: dict(zip(COLUMNS, r, strict=True)) for r in rows}


def matching(wh: Warehouse, sql: str) -> list[str]:
    """The customers a compiled flow predicate holds for, as the engine renders it."""
    where = predicate(sql)
    query = (
        exp.select("customer.customer_id")
        .from_(exp.to_table("core.customer_attributes").as_("customer"))
        .where(where)
        .order_by("customer.customer_id")
    )
    return [r[0] for r in wh.query(render(query, wh.dialect))]


PREDICATES = [
    ("list_contains(customer.tags, 'vip')", ["c_tagged"]),
    ("not list_contains(customer.tags, 'vip')", ["c_plain", "c_removed"]),
    ("customer.properties.shoe_size >= 42", ["c_tagged"]),
    ("customer.properties.vip_since < '2026-01-01'", ["c_tagged"]),
    ("customer.properties.favourite_store = 'Berlin'", ["c_tagged"]),
    ("customer.properties.newsletter = false", ["c_removed"]),
    ("customer.loyalty_points >= 300 and customer.tier = 'vip'", ["c_tagged"]),
    ("customer.is_eu", ["c_tagged"]),
    ("customer.subscription_status = 'cancelled'", ["c_removed"]),
]


def check(location: Location) -> None:
    build(location)
    with Warehouse.open(location) as wh:
        found = attributes(wh)
        tagged, removed, plain = found["c_tagged"], found["c_removed"], found["c_plain"]
        assert list(tagged["tags"]) == ["early", "vip"]
        assert list(removed["tags"]) == [] and list(plain["tags"]) == []
        # the store's own 100 plus the flows' 250 - 50
        assert (tagged["loyalty_points"], tagged["flow_loyalty_points"]) == (300, 200)
        assert (plain["loyalty_points"], plain["flow_loyalty_points"]) == (0, 0)
        # the latest change_tier wins over revenue; `auto` clears it
        assert (tagged["tier"], tagged["revenue_tier"], tagged["tier_override"]) == (
            "vip",
            "bronze",
            "vip",
        )
        assert (removed["tier"], removed["tier_override"]) == ("bronze", None)
        # an override whose expires_in has passed is over: the revenue tier again
        assert (plain["tier"], plain["tier_override"]) == ("bronze", None)
        # one subscription paused, another active: active; a pause after now is not known yet
        assert tagged["subscription_status"] == "active"
        assert removed["subscription_status"] == "cancelled"
        assert plain["subscription_status"] == "none"
        assert (tagged["is_eu"], removed["is_eu"], plain["is_eu"]) == (True, False, None)
        assert float(tagged["properties__shoe_size"]) == 43
        assert removed["properties__shoe_size"] is None  # "forty" is no number
        assert str(tagged["properties__vip_since"]) == "2025-05-01"
        assert tagged["properties__favourite_store"] == "Berlin"
        assert (tagged["properties__newsletter"], removed["properties__newsletter"]) == (
            True,
            False,
        )
        for sql, expected in PREDICATES:
            assert matching(wh, sql) == expected, sql
        issued = wh.query(
            exp.select("customer_id", "occurred_at", "properties")
            .from_("core.derived_coupon_issued")
            .where("event_type = 'coupon_issued'")
        )
    assert [(c, at) for c, at, _ in issued] == [("c_tagged", datetime(2026, 9, 5, 10, 0))]
    props = issued[0][2] if isinstance(issued[0][2], dict) else json.loads(issued[0][2])
    assert (props["pool"], props["code"], props["message_id"]) == ("vip20", "VIP-1", "m1")


def test_action_state_and_attributes_on_duckdb(tmp_warehouse: Location) -> None:
    check(tmp_warehouse)


@pytest.mark.postgres
def test_action_state_and_attributes_on_postgres(pg_url: str) -> None:
    check(Location.parse(pg_url))


def test_properties_loaded_from_a_customers_file_are_typed(tmp_warehouse: Location) -> None:
    """A customers file's own columns land in properties (flowhouse load) and read as their
    declared types: the canonical input of custom properties."""
    path = tmp_warehouse.path.parent / "customers.csv"  # type: ignore[union-attr]
    path.write_text(
        "customer_id,email,created_at,updated_at,Shoe Size,vip_since\n"
        "k1,k1@example.com,2026-01-01,2026-01-01,44,2024-02-29\n"
        "k2,k2@example.com,2026-01-01,2026-01-01,,\n"
    )
    result = CliRunner().invoke(
        cli, ["load", "customers", str(path), "--warehouse", str(tmp_warehouse.path)]
    )
    assert result.exit_code == 0, result.output
    build_models(
        tmp_warehouse, select=("+customer_attributes",), tests=False, now=NOW,
        dbt_vars={"customer_properties": PROPERTIES},
    )  # fmt: skip
    with Warehouse.open(tmp_warehouse) as wh:
        assert matching(wh, "customer.properties.shoe_size > 43") == ["k1"]
        assert matching(wh, "customer.properties.vip_since = '2024-02-29'") == ["k1"]
        assert matching(wh, "customer.properties.shoe_size is null") == ["k2"]
