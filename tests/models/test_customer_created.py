"""``customer_created`` for every new customer, however it was added (docs/events.md).

Through the CLI with the real dbt, on DuckDB and PostgreSQL: customers files loaded with ``flowhouse
load`` between ticks give one ``customer_created`` per new customer and none for a file that only updates
a known one; a customer the store sent its own ``customer_created`` for gets no derived copy; the welcome
flow enrolls the customers new after it went live, leaves out those seen before, and refuses, as
``before_live``, a long-standing customer imported later.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner, Result

from flowhouse.cli import cli
from flowhouse.core.paths import FLOWS
from flowhouse.core.warehouse import Location, Warehouse

pytestmark = pytest.mark.slow

LAUNCH, LATER = "2026-09-01 09:00:00", "2026-09-01 12:00:00"


def run(*args: str) -> Result:
    result = CliRunner().invoke(cli, list(args))
    assert result.exit_code == 0, result.output
    return result


def customer(customer_id: str, created_at: str, updated_at: str, **extra: Any) -> str:
    return json.dumps({
        "customer_id": customer_id, "email": f"{customer_id}@example.com", "phone": None,
        "email_opt_in": True,
        "created_at": created_at, "updated_at": updated_at, **extra,
    })  # fmt: skip


def load(tmp_path: Path, warehouse: str, name: str, *lines: str) -> None:
    path = tmp_path / name
    path.write_text("\n".join(lines) + "\n")
    kind = "events" if name.startswith("events") else "customers"
    run("load", kind, str(path), "--warehouse", warehouse)


@pytest.fixture(params=["duckdb", pytest.param("postgres", marks=pytest.mark.postgres)])
def warehouse(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "postgres":
        return str(request.getfixturevalue("pg_url"))
    return str(tmp_path / "store.duckdb")


def test_one_customer_created_per_new_customer_and_welcome_enrolls_it(
    warehouse: str, tmp_path: Path
) -> None:
    flows = tmp_path / "flows"
    shutil.copytree(FLOWS / "templates", flows / "templates")
    shutil.copy(FLOWS / "_settings.yml", flows / "_settings.yml")
    shutil.copy(FLOWS / "welcome.yml", flows / "welcome.yml")
    tick = ("tick", "--warehouse", warehouse, "--flows", str(flows), "--no-send")

    # before launch: a customer who has been with the store for years
    load(tmp_path, warehouse, "customers-1.jsonl",
         customer("c_old", "2024-01-01 00:00:00", "2024-01-01 00:00:00"))  # fmt: skip
    run(*tick, "--now", LAUNCH)
    # later: c_old's row is updated, c_new and c_raw are new (the store sent c_raw's event itself),
    # and c_imp, a customer since 2023, is imported from another system for the first time
    load(tmp_path, warehouse, "customers-2.jsonl",
         customer("c_old", "2024-01-01 00:00:00", "2026-09-01 10:00:00", first_name="Old"),
         customer("c_imp", "2023-05-01 00:00:00", "2026-09-01 10:00:00"),
         customer("c_new", "2026-09-01 10:30:00", "2026-09-01 10:30:00"),
         customer("c_raw", "2026-09-01 10:40:00", "2026-09-01 10:40:00"))  # fmt: skip
    load(tmp_path, warehouse, "events.jsonl", json.dumps({
        "event_id": "e-raw", "customer_id": "c_raw", "event_type": "customer_created",
        "occurred_at": "2026-09-01 10:40:00", "loaded_at": "2026-09-01 10:41:00",
        "properties": {"source": "web"}}))  # fmt: skip
    run(*tick, "--now", LATER)
    run(*tick, "--now", "2026-09-01 12:05:00")  # nothing new: nothing more

    with Warehouse.open(Location.parse(warehouse)) as wh:
        created = wh.query(
            "select customer_id, is_derived, occurred_at from core.events "
            "where event_type = 'customer_created' order by customer_id"
        )
        enrolled = {r[0] for r in wh.query(
            "select customer_id from flowhouse.enrollments where flow_id = 'welcome'")}  # fmt: skip
        refused = wh.query(
            "select customer_id, reason from flowhouse.decisions "
            "where flow_id = 'welcome' and outcome = 'refused'"
        )
    assert [(c, bool(d), f"{at:%Y-%m-%d %H:%M}") for c, d, at in created] == [
        ("c_imp", True, "2023-05-01 00:00"),
        ("c_new", True, "2026-09-01 10:30"),
        ("c_old", True, "2024-01-01 00:00"),
        ("c_raw", False, "2026-09-01 10:40"),
    ]
    assert enrolled == {"c_new", "c_raw"}
    # c_old, seen before launch, is not even considered; c_imp happened before the flow went live
    assert refused == [("c_imp", "before_live")]
