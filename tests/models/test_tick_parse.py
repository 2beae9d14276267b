"""A tick's time reaches the models without costing dbt a re-parse.

Two consecutive ticks at different times must reuse dbt's partial parse (no "Unable to do partial
parsing" event in the second), and the models must see each tick's `now`: a customer's
``days_since_last_activity`` moves with the tick alone. A build without a time of its own must
never take one left in the environment: it stays "the newest loaded_at".

dbt's events are recorded in-process through dbtRunner's callbacks; the project's target path is
a temporary folder, so builds of other warehouses (other tests) cannot touch the partial parse
between the two ticks.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import datetime
from pathlib import Path
from typing import Any

import dbt.cli.main
import pytest
from sqlglot import exp

import flowhouse.core.dbt
from flowhouse.core.build import build_models
from flowhouse.core.dbt import NOW_ENV, now_env
from flowhouse.core.project import current
from flowhouse.core.warehouse import Location, Warehouse
from flowhouse.cycle import cycle
from flowhouse.flows.settings import load_settings

LAST_SEEN = "2026-09-25 09:00:00"
TICK_1 = datetime(2026, 10, 1, 12)
TICK_2 = datetime(2026, 10, 5, 12, 15)


def test_now_env_is_naive_utc_or_empty() -> None:
    assert now_env(None) == {NOW_ENV: ""}
    assert now_env(datetime(2026, 10, 1, 9, 30)) == {NOW_ENV: "2026-10-01 09:30:00"}
    aware = datetime.fromisoformat("2026-10-01T11:30:00+02:00")
    assert now_env(aware) == {NOW_ENV: "2026-10-01 09:30:00"}


def load_store(location: Location) -> None:
    """One customer, last seen viewing a product on 2026-09-25 (loaded five minutes later)."""
    props = json.dumps({"sku": "S1", "category": "shoes"})
    customer = ("c1", "c1@example.com", "UTC", True, False, "{}", LAST_SEEN, LAST_SEEN)
    event = ("e1", "c1", "product_viewed", LAST_SEEN, "2026-09-25 09:05:00", props)
    with Warehouse.open(location) as wh:
        wh.ensure_raw_tables()
        columns = ["customer_id", "email", "timezone", "email_opt_in", "sms_opt_in",
                   "properties", "created_at", "updated_at"]  # fmt: skip
        wh.execute(exp.insert(exp.values([customer]), "raw.customers", columns=columns))
        columns = ["event_id", "customer_id", "event_type", "occurred_at", "loaded_at",
                   "properties"]  # fmt: skip
        wh.execute(exp.insert(exp.values([event]), "raw.events", columns=columns))


def days_since_last_activity(location: Location) -> int:
    with Warehouse.open(location) as wh:
        query = exp.select("days_since_last_activity").from_("core.customer_attributes")
        return int(wh.query(query.where("customer_id = 'c1'"))[0][0])


class Events:
    """The names of the dbt events of each dbt invocation, in order."""

    def __init__(self) -> None:
        self.runs: list[list[str]] = []

    def runner(self) -> Callable[..., Any]:
        original = dbt.cli.main.dbtRunner

        def make(manifest: Any = None, callbacks: Any = None) -> Any:
            names: list[str] = []
            self.runs.append(names)
            record = [*(callbacks or []), lambda event: names.append(event.info.name)]
            return original(manifest=manifest, callbacks=record)

        return make


def ticks_reuse_the_parse(location: Location, tmp_path: Path, monkeypatch: Any) -> None:
    target = str(tmp_path / "target")
    monkeypatch.setattr(flowhouse.core.dbt, "target_path", lambda *_args, **_kw: target)
    events = Events()
    monkeypatch.setattr(dbt.cli.main, "dbtRunner", events.runner())
    # a stale time in the caller's environment: every build sets its own (or none)
    monkeypatch.setenv(NOW_ENV, "2030-01-01 00:00:00")
    load_store(location)
    flows = current().flows_dir

    cycle(location, flows, TICK_1)
    assert days_since_last_activity(location) == 6
    cycle(location, flows, TICK_2)
    assert days_since_last_activity(location) == 10
    # the store settings' vars, as `flowhouse build` passes them: the same as the ticks'
    settings = load_settings(flows).dbt_vars()
    build_models(location, select=["customer_attributes"], tests=False, dbt_vars=settings)
    assert days_since_last_activity(location) == 0  # as of the newest loaded_at

    first, second, third = (run for run in events.runs if "MainReportVersion" in run)
    assert "UnableToPartialParse" in first  # a fresh target path: the first parse is full
    for later in (second, third):
        assert "UnableToPartialParse" not in later
        assert "PartialParsingSkipParsing" in later or "PartialParsingEnabled" in later


@pytest.mark.slow
def test_ticks_reuse_the_parse_and_see_their_now(
    tmp_warehouse: Location, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    ticks_reuse_the_parse(tmp_warehouse, tmp_path, monkeypatch)


@pytest.mark.slow
@pytest.mark.postgres
def test_ticks_reuse_the_parse_and_see_their_now_on_postgres(
    pg_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    ticks_reuse_the_parse(Location.parse(pg_url), tmp_path, monkeypatch)
