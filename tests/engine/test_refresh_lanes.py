"""The model refresh's two lanes (flowhouse/core/lanes.py): which models each holds, decided on the
dbt graph; a tick runs the enrichment lane only when it is due, records every lane run, and goes on
when the enrichment lane fails; ``flowhouse status`` shows each lane's last success and failure."""

from __future__ import annotations

import json
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from flowhouse.cli import EXIT_FAILED, cli
from flowhouse.core.dbt import NodeResult
from flowhouse.core.errors import ConfigError
from flowhouse.core.lanes import (
    ENRICHMENT,
    ENRICHMENT_TAG,
    FAST,
    LAGGING_INPUTS,
    LaneState,
    enrichment_due,
    lane_states,
    lanes_of,
    refresh,
    run_lanes,
)
from flowhouse.core.paths import FLOWS
from flowhouse.core.sql import render, statement
from flowhouse.core.warehouse import Location, Warehouse
from flowhouse.demo import DEMO_START
from flowhouse.flows.settings import Settings, load_settings
from flowhouse.generate import continue_store, generate_store
from flowhouse.orchestration.dagster.assets import ENGINE_READS, SYNC_MEMBERS
from flowhouse.orchestration.dagster.prepare import prepare
from flowhouse.orchestration.engine.tick import tick
from flowhouse.status import lane_lines, render_lanes

# -- the lanes on the dbt graph --------------------------------------------------------------------


def _models() -> dict[str, dict[str, Any]]:
    """The project's models by unique id, as dbt parses it now (partial parsing keeps it quick)."""
    nodes = json.loads(prepare(Location.parse("warehouse.duckdb")).read_text())["nodes"]
    return {k: n for k, n in nodes.items() if n["resource_type"] == "model"}


def _ancestors(models: dict[str, dict[str, Any]], start: list[str]) -> set[str]:
    seen: set[str] = set()
    todo = list(start)
    while todo:
        node = todo.pop()
        if node in seen or node not in models:
            continue
        seen.add(node)
        todo += models[node]["depends_on"]["nodes"]
    return seen


def test_nothing_a_tick_reads_is_in_the_enrichment_lane_but_the_lagging_inputs() -> None:
    models = _models()
    relation = {f"{m['schema']}.{m['alias']}": k for k, m in models.items()}
    reads = [*ENGINE_READS, *SYNC_MEMBERS.values(), "core.customer_attributes"]
    needed = _ancestors(models, [relation[r] for r in reads])
    enrichment = {k for k, m in models.items() if ENRICHMENT_TAG in m["tags"]}
    lagging = enrichment & needed
    assert {models[k]["name"] for k in lagging} == set(LAGGING_INPUTS)
    # the performance marts are all in the enrichment lane; what the tier trigger reads is not
    marts = {k for k, m in models.items() if "marts" in m["tags"]}
    assert marts and marts <= enrichment
    assert enrichment == marts | lagging
    names = {models[k]["name"] for k in needed}
    assert {"customer_tier_history", "product_interest", "list_members"} <= names
    # each lane's selection as the Python definition gives it to dbt
    assert FAST.exclude == (f"tag:{ENRICHMENT_TAG}",) and ENRICHMENT.select == FAST.exclude


def test_a_lane_is_named_or_refused() -> None:
    assert lanes_of("all") == (FAST, ENRICHMENT)
    assert lanes_of("fast") == (FAST,)
    with pytest.raises(ConfigError, match=r"unknown lane.*fast, enrichment, all"):
        lanes_of("slow")


def test_the_enrichment_lane_is_due_by_its_last_success() -> None:
    at = datetime(2026, 9, 10, 12)
    hour = timedelta(hours=1)
    never = LaneState("enrichment", None, None)
    assert enrichment_due(never, at, hour)[0]
    assert enrichment_due(LaneState("enrichment", at - hour, None), at, hour)[0]
    due, why = enrichment_due(LaneState("enrichment", at - hour / 2, None), at, hour)
    assert not due and "next at 2026-09-10 12:30:00" in why
    due, why = enrichment_due(never, at, None)
    assert not due and "only on its own schedule" in why


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("2h", timedelta(hours=2)),
        ("never", None),
        (0, None),
        ("0", None),
        ("90m", timedelta(minutes=90)),
    ],
)
def test_the_setting(value: object, expected: timedelta | None) -> None:
    settings = Settings.model_validate({"refresh": {"enrichment_every": value}})
    assert settings.refresh.enrichment_every == expected
    assert Settings().refresh.enrichment_every == timedelta(hours=1)


def test_a_bad_setting_is_located(tmp_path: Path) -> None:
    (tmp_path / "_settings.yml").write_text(
        "store:\n  name: A\nrefresh:\n  enrichment_every: soon\n"
    )
    with pytest.raises(ConfigError) as err:
        load_settings(tmp_path)
    text = str(err.value)
    assert "_settings.yml:4" in text and "refresh.enrichment_every" in text
    assert "'soon' is not a duration" in text and "never" in text


# -- ticks with the enrichment lane due, not due, failing ------------------------------------------


@pytest.fixture(params=["duckdb", pytest.param("postgres", marks=pytest.mark.postgres)])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Location:
    if request.param == "postgres":
        return Location.parse(request.getfixturevalue("pg_url"))
    return Location.parse(str(tmp_path / "warehouse.duckdb"))


def _runs(location: Location) -> list[tuple[str, datetime, str, str]]:
    with Warehouse.open(location) as wh:
        rows = wh.query(
            "select lane, now_at, status, ran_by from flowhouse.lane_runs "
            "order by finished_at, lane desc"
        )
    return [(str(a), b, str(c), str(d)) for a, b, c, d in rows]


def _ran(location: Location, now: datetime) -> dict[str, str]:
    return {lane: status for lane, at, status, _ in _runs(location) if at == now}


def _lag(location: Location) -> int:
    """Customers whose attributes' top category differs from the category affinity's."""
    with Warehouse.open(location) as wh:
        return int(
            wh.scalar(
                "select count(*) from core.customer_attributes as a "
                "left join core.int_customer_category_affinity as f "
                "on a.customer_id = f.customer_id "
                "where coalesce(a.top_category, '-') <> coalesce(f.top_category, '-')"
            )
        )


def _sabotage(location: Location, on: bool) -> None:
    """The affinity table emptied, its top_category made a number: its build fails while so."""
    kind = "integer" if on else "text"
    with Warehouse.open(location) as wh:
        wh.execute("delete from core.int_customer_category_affinity")
        wh.execute(
            f"alter table core.int_customer_category_affinity alter column top_category "
            f"type {kind} using null"
        )
        wh.commit()


@pytest.mark.slow
def test_ticks_run_the_enrichment_lane_when_due_and_go_on_when_it_fails(store: Location) -> None:
    location = store
    generate_store(location, customers=150, days=8, seed=5, start=DEMO_START)
    t0 = DEMO_START + timedelta(days=8)

    # a fresh store: the enrichment lane was never refreshed, so the first tick runs both lanes
    first = tick(location, FLOWS, now=t0)
    assert _ran(location, t0) == {"fast": "succeeded", "enrichment": "succeeded"}
    assert first.refresh is not None and first.refresh.enrichment_skipped is None
    assert "fast lane:" in first.describe() and "enrichment lane:" in first.describe()
    with Warehouse.open(location) as wh:  # a tick refreshes the marts too (none did before)
        assert wh.table_exists("marts", "flow_daily") and wh.table_exists("marts", "message_facts")

    # 15 minutes later: the fast lane only, and the tick says why
    t1 = t0 + timedelta(minutes=15)
    continue_store(location, until=t1)
    second = tick(location, FLOWS, now=t1)
    assert _ran(location, t1) == {"fast": "succeeded"}
    assert "enrichment lane: not due" in second.describe()

    # an hour after its last success: due again, built before the attributes that read it, so
    # the attributes' top category follows it within the same tick
    t2 = t0 + timedelta(hours=1)
    continue_store(location, until=t2)
    tick(location, FLOWS, now=t2)
    assert _ran(location, t2) == {"fast": "succeeded", "enrichment": "succeeded"}
    assert _lag(location) == 0

    # the enrichment lane fails: recorded, shown, and the fast lane and the engine ran on (the
    # attributes dbt skipped behind the failed model ran again without it)
    _sabotage(location, True)
    t3 = t2 + timedelta(hours=1)
    continue_store(location, until=t3)
    failed = tick(location, FLOWS, now=t3)
    assert _ran(location, t3) == {"fast": "succeeded", "enrichment": "failed"}
    assert "enrichment lane FAILED" in failed.describe()
    assert "int_customer_category_affinity" in failed.describe()
    with Warehouse.open(location) as wh:
        ticks = statement("select count(*) from flowhouse.ticks where tick_at = :at", at=t3)
        assert wh.scalar(render(ticks, wh.dialect)) == 1
        attributes_at = wh.scalar("select max(refreshed_at) from core.int_customer_attributes")
        error = wh.scalar("select error from flowhouse.lane_runs where status = 'failed'")
    assert attributes_at == t3
    assert "model.flowhouse.int_customer_category_affinity: error" in error
    lines = {line.lane: line for line in lane_lines(location, timedelta(hours=1), t3)}
    assert lines["enrichment"].last_success == t2 and lines["enrichment"].last_failure
    assert not lines["enrichment"].stale and not lines["fast"].stale
    shown = render_lanes(list(lines.values()), t3, color=False)
    assert f"last run FAILED as of {t3:%Y-%m-%d %H:%M} (tick)" in shown
    later = lane_lines(location, timedelta(hours=1), t3 + timedelta(hours=2, minutes=1))
    assert [line.stale for line in later] == [True, True]

    # the next tick tries again (its last success is still old), and once fixed it succeeds
    _sabotage(location, False)
    t4 = t3 + timedelta(minutes=15)
    tick(location, FLOWS, now=t4)
    assert _ran(location, t4) == {"fast": "succeeded", "enrichment": "succeeded"}
    assert _lag(location) == 0

    # never: no tick runs it; on its own it runs and is recorded as such
    t5 = t4 + timedelta(hours=3)
    report = refresh(location, t5, load_settings(FLOWS).dbt_vars(), None)
    assert "only on its own schedule" in (report.enrichment_skipped or "")
    alone = run_lanes(location, lanes_of("enrichment"), t5, load_settings(FLOWS).dbt_vars())
    assert [r.lane for r in alone.runs] == ["enrichment"] and alone.runs[0].ok
    assert _runs(location)[-1] == ("enrichment", t5, "succeeded", "refresh")
    with Warehouse.open(location) as wh:
        assert lane_states(wh)["enrichment"].last_success == t5


@pytest.mark.slow
def test_the_cli_refresh_status_and_a_failed_lane(tmp_path: Path) -> None:
    location = Location.parse(str(tmp_path / "warehouse.duckdb"))
    generate_store(location, customers=100, days=8, seed=6, start=DEMO_START)
    t0 = DEMO_START + timedelta(days=8)
    runner = CliRunner()
    base = ["--warehouse", str(location.path)]

    done = runner.invoke(cli, ["refresh", "--lane", "all", "--now", t0.isoformat(), *base])
    assert done.exit_code == 0, done.output
    assert "fast lane:" in done.output and "enrichment lane:" in done.output

    _sabotage(location, True)
    at = t0 + timedelta(hours=1)
    ticked = runner.invoke(cli, ["tick", "--no-send", "--now", at.isoformat(), *base])
    assert ticked.exit_code == EXIT_FAILED, ticked.output
    assert "enrichment lane FAILED" in ticked.output
    assert "the enrichment lane of the model refresh failed" in ticked.output

    alone = runner.invoke(cli, ["refresh", "--lane", "enrichment", "--now", at.isoformat(), *base])
    assert alone.exit_code == 1 and "Error: dbt run failed" in alone.output

    shown = runner.invoke(cli, ["status", "--now", at.isoformat(), *base])
    assert shown.exit_code == 0, shown.output
    assert f"fast        last success as of {at:%Y-%m-%d %H:%M}" in shown.output
    assert f"enrichment  last success as of {t0:%Y-%m-%d %H:%M}" in shown.output
    assert f"last run FAILED as of {at:%Y-%m-%d %H:%M} (refresh)" in shown.output
    assert "\x1b[" not in shown.output  # no colour when not on a terminal

    missing = runner.invoke(cli, ["status", "--warehouse", str(tmp_path / "none.duckdb")])
    assert missing.exit_code == 1 and "Error: no warehouse" in missing.output
    assert not (tmp_path / "none.duckdb").exists()

    no_customer = runner.invoke(cli, ["status", "welcome", *base])
    assert no_customer.exit_code == 2 and "FLOW needs --customer ID" in no_customer.output


def test_a_lane_fails_on_its_own_nodes_only() -> None:
    """The lane outcome from dbt's results: a mart's error fails the enrichment lane only."""
    from flowhouse.core.lanes import _lane_run

    at = datetime(2026, 9, 10)
    results = [
        NodeResult("model.flowhouse.customer_attributes", "success", None, 1.0),
        NodeResult("model.flowhouse.flow_daily", "error", "boom", 1.0, ("marts", "enrichment")),
    ]
    fast = _lane_run(FAST, results, None, at, at, at, "tick")
    slow = _lane_run(ENRICHMENT, results, None, at, at, at, "tick")
    assert fast.ok and fast.models == 1
    assert not slow.ok and slow.error == "model.flowhouse.flow_daily: error: boom"
