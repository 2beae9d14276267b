"""No row that reaches raw.events can fail a build: a row breaking the event contract is quarantined
(``staging.quarantined_events``), left out of the stream, counted by ``flowhouse summary`` and by the warn
test ``no_quarantined_events`` (an asset check in Dagster), and the build goes on. The contract the
quarantine checks is the one ``flowhouse/core/contract.py`` declares (a generated dbt macro)."""

from __future__ import annotations

import json
from datetime import datetime

import pytest
from click.testing import CliRunner
from sqlglot import exp

from flowhouse.cli import cli
from flowhouse.core.build import build_models
from flowhouse.core.contract import DBT_CONTRACT_MACRO, dbt_contract_macro
from flowhouse.core.paths import DBT_PACKAGE
from flowhouse.core.warehouse import Location, Warehouse
from flowhouse.summary import render_summary

NOW = datetime(2026, 9, 2)
EVENT_COLUMNS = ["event_id", "customer_id", "event_type", "occurred_at", "loaded_at", "properties"]
LOADED = "2026-09-01 10:01"
# (event_id, event_type, properties) written straight into raw.events, as an ELT tool might
BAD = [
    ("bad-value", "order_placed", {"order_id": "o-bad", "value": "12,50", "lines": []}),
    ("bad-time", "order_shipped", {"order_id": "o1", "estimated_delivery_at": "next tuesday"}),
    ("bad-date", "order_shipped", {"order_id": "o1", "estimated_delivery_at": "2026-02-30"}),
    ("bad-object", "product_viewed", [1, 2]),
    ("bad-huge", "added_to_cart", {"cart_id": "k", "sku": "s", "quantity": 1e300, "price": 1}),
]
GOOD = [
    ("good-order", "order_placed", {"order_id": "o1", "value": 12.5, "subtotal": "12.50",
                                    "lines": [{"sku": "s", "price": "1,5", "quantity": 1}]}),
    ("good-ship", "order_shipped", {"order_id": "o1", "estimated_delivery_at": "2026-09-05T10:00:00Z"}),
]  # fmt: skip
EXPECTED = {
    ("bad-value", "value"),
    ("bad-time", "estimated_delivery_at"),
    ("bad-date", "estimated_delivery_at"),
    ("bad-object", "properties"),
    ("bad-huge", "quantity"),
}


def load_store(location: Location) -> None:
    rows = [(event_id, "c1", event_type, "2026-09-01 10:00", LOADED, json.dumps(properties))
            for event_id, event_type, properties in BAD + GOOD]  # fmt: skip
    with Warehouse.open(location) as wh:
        wh.ensure_raw_tables()
        wh.execute(exp.insert(exp.values(rows), "raw.events", columns=EVENT_COLUMNS))
        wh.execute(
            exp.insert(
                exp.values([("c1", "2026-08-01 00:00:00", "2026-08-01 00:00:00")]),
                "raw.customers",
                columns=["customer_id", "created_at", "updated_at"],
            )
        )


def check_quarantine(location: Location) -> None:
    result = build_models(location, now=NOW)
    assert any("no_quarantined_events" in w for w in result.warnings())
    with Warehouse.open(location) as wh:
        found = set(wh.query("select event_id, field from staging.quarantined_events"))
        staged = {r[0] for r in wh.query("select event_id from staging.stg_events")}
        orders = wh.query("select order_id, order_value from staging.stg_orders")
        reason = wh.scalar(
            "select reason from staging.quarantined_events where event_id = 'bad-value'"
        )
    assert found == EXPECTED
    assert staged == {"good-order", "good-ship"}
    assert [(o, float(v)) for o, v in orders] == [("o1", 12.5)]
    assert reason == "expected a number below 1e9 for order_placed.value"


def test_contract_macro_is_current() -> None:
    written = (DBT_PACKAGE / "macros" / DBT_CONTRACT_MACRO).read_text(encoding="utf-8")
    assert written == dbt_contract_macro(), "regenerate it from dbt_contract_macro()"


@pytest.mark.slow
def test_bad_rows_are_quarantined_and_the_build_goes_on(tmp_warehouse: Location) -> None:
    load_store(tmp_warehouse)
    check_quarantine(tmp_warehouse)
    assert "quarantine: 5 problems in staging.quarantined_events" in render_summary(tmp_warehouse)
    # a second build re-checks the recent rows without duplicating them
    build_models(tmp_warehouse, now=datetime(2026, 9, 3), tests=False)
    with Warehouse.open(tmp_warehouse) as wh:
        assert wh.count("staging.quarantined_events") == 5


@pytest.mark.postgres
def test_bad_rows_are_quarantined_on_postgres(pg_url: str) -> None:
    location = Location.parse(pg_url)
    load_store(location)
    check_quarantine(location)


@pytest.mark.slow
def test_a_tick_goes_on_past_a_bad_row(tmp_warehouse: Location) -> None:
    load_store(tmp_warehouse)
    where = str(tmp_warehouse.path)
    result = CliRunner().invoke(
        cli, ["tick", "--warehouse", where, "--now", "2026-09-02", "--no-send"]
    )
    assert result.exit_code == 0, result.output
    with Warehouse.open(tmp_warehouse) as wh:
        assert wh.count("staging.quarantined_events") == len(EXPECTED)
