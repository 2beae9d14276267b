"""One store configuration: ``_settings.yml`` is read by the dbt models and the engine alike.

Through the CLI with the real dbt, on DuckDB and PostgreSQL: a store set to Asia/Tokyo in its
settings (and nowhere else) has a zone-less customer's "wait until 10:00" land at 10:00 Tokyo
time; a store that declares ``cart_abandoned`` raw gets no derived copy of its carts, without
touching ``dbt_project.yml``, and a store that does not declare it is warned by ``flowhouse build``.
"""

from __future__ import annotations

import json
import shutil
from datetime import datetime
from pathlib import Path

import pytest
from click.testing import CliRunner, Result

from flowhouse.cli import cli
from flowhouse.core.paths import FLOWS
from flowhouse.core.warehouse import Location, Warehouse

pytestmark = pytest.mark.slow

ADDED, RAW_ABANDONED, NOW = "2026-08-31 23:00:00", "2026-09-01 00:30:00", "2026-09-01 06:00:00"

FLOW = """\
flow: morning
name: Morning after the cart
trigger: {event: cart_abandoned}
steps:
  - id: morning
    wait_until: {time: "10:00"}
  - id: hello
    send: {channel: email, template: cart/reminder.html.j2, subject: Hi}
"""


def run(*args: str) -> Result:
    result = CliRunner().invoke(cli, list(args))
    assert result.exit_code == 0, result.output
    return result


def _flows(tmp_path: Path, settings: str) -> Path:
    folder = tmp_path / "flows"
    shutil.copytree(FLOWS / "templates", folder / "templates")
    (folder / "_settings.yml").write_text(settings)
    (folder / "morning.yml").write_text(FLOW)
    return folder


def _inputs(tmp_path: Path, warehouse: str) -> None:
    """A customer without a time zone who carts and leaves; the store's own cart_abandoned."""
    customers = tmp_path / "customers.jsonl"
    customers.write_text(
        json.dumps({"customer_id": "c1", "email": "c1@example.com", "phone": None, "email_opt_in": True,
                    "created_at": "2026-08-01 00:00:00", "updated_at": "2026-08-01 00:00:00"})
        + "\n"
    )  # fmt: skip
    events = [
        ("e1", "added_to_cart", ADDED, {"cart_id": "k1", "sku": "s1", "quantity": 1, "price": 20}),
        ("e2", "cart_abandoned", RAW_ABANDONED, {"cart_id": "k1", "value": 20}),
    ]
    lines = [
        json.dumps({"event_id": i, "customer_id": "c1", "event_type": t, "occurred_at": at,
                    "loaded_at": at, "properties": p})
        for i, t, at, p in events
    ]  # fmt: skip
    (tmp_path / "events.jsonl").write_text("\n".join(lines) + "\n")
    run("load", "customers", str(customers), "--warehouse", warehouse)
    run("load", "events", str(tmp_path / "events.jsonl"), "--warehouse", warehouse)


@pytest.fixture(params=["duckdb", pytest.param("postgres", marks=pytest.mark.postgres)])
def warehouse(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "postgres":
        return str(request.getfixturevalue("pg_url"))
    return str(tmp_path / "store.duckdb")


def _carts(warehouse: str) -> list[tuple[str, bool]]:
    with Warehouse.open(Location.parse(warehouse)) as wh:
        rows = wh.query(
            "select event_id, is_derived from core.events where event_type = 'cart_abandoned' "
            "order by event_id"
        )
    return [(str(r[0]), bool(r[1])) for r in rows]


def test_the_store_zone_and_raw_types_come_from_the_settings(
    warehouse: str, tmp_path: Path
) -> None:
    settings = (
        "store: {timezone: Asia/Tokyo, postal_address: 1 Main St}\n"
        "events: {raw: [cart_abandoned]}\n"
    )
    flows = _flows(tmp_path, settings)
    _inputs(tmp_path, warehouse)
    run("tick", "--warehouse", warehouse, "--flows", str(flows), "--now", ADDED, "--no-send")
    run("tick", "--warehouse", warehouse, "--flows", str(flows), "--now", NOW, "--no-send")

    assert _carts(warehouse) == [("e2", False)]  # the store's cart only: no derived copy
    with Warehouse.open(Location.parse(warehouse)) as wh:
        zone = wh.scalar("select effective_timezone from core.customer_attributes")
        due = wh.scalar("select due_at from flowhouse.enrollments where flow_id = 'morning'")
    assert zone == "Asia/Tokyo"
    assert due == datetime(2026, 9, 1, 1, 0)  # 10:00 in Tokyo (UTC+9), not 10:00 UTC


def test_a_derived_type_the_store_also_sends_is_derived_again_and_warned(
    warehouse: str, tmp_path: Path
) -> None:
    flows = _flows(tmp_path, "store: {postal_address: 1 Main St}\n")
    _inputs(tmp_path, warehouse)
    built = run("build", "--warehouse", warehouse, "--flows", str(flows), "--now", NOW)
    assert "warning: test.flowhouse.derived_types_also_sent_raw" in built.output
    carts = _carts(warehouse)
    assert ("e2", False) in carts and any(derived for _, derived in carts)
