"""The engine through the CLI on a generated store with the real dbt: tick, plan, backtest, coupons."""

from __future__ import annotations

import shutil
from datetime import datetime, timedelta
from pathlib import Path

import pytest
import yaml
from click.testing import CliRunner, Result

from flowhouse.cli import cli
from flowhouse.core.paths import FLOWS
from flowhouse.core.warehouse import Warehouse

START = datetime(2026, 9, 1)
LAUNCH = START + timedelta(days=12)


def run(*args: str) -> Result:
    return CliRunner().invoke(cli, list(args))


def ts(at: datetime) -> str:
    return at.isoformat()


@pytest.fixture(scope="module")
def store(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A generated store with its models built as of the launch day."""
    path = tmp_path_factory.mktemp("engine") / "store.duckdb"
    assert (
        run("generate", "--warehouse", str(path), "--customers", "2500", "--days", "14").exit_code
        == 0
    )
    built = run("build", "--warehouse", str(path), "--skip-tests", "--now", ts(LAUNCH))
    assert built.exit_code == 0, built.output
    return path


@pytest.fixture
def warehouse(store: Path, tmp_path: Path) -> str:
    """A private copy of the built store, so each test starts before any tick."""
    copy = tmp_path / "store.duckdb"
    shutil.copy(store, copy)
    wal = store.with_name(store.name + ".wal")
    if wal.exists():  # dbt runs in this process and may not have checkpointed yet
        shutil.copy(wal, copy.with_name(copy.name + ".wal"))
    return str(copy)


def test_backtest_reports_and_leaves_the_live_state_alone(warehouse: str) -> None:
    result = run(
        "backtest", "browse_abandonment", "--warehouse", warehouse,
        "--from", ts(LAUNCH - timedelta(days=3)), "--to", ts(LAUNCH), "--every", "3h",
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    assert "backtest of browse_abandonment" in result.output
    assert "goal conversions:" in result.output
    with Warehouse.open(warehouse) as wh:
        enrolled = wh.count("flowhouse_backtest.enrollments")
        per_step = wh.scalar("select count(distinct step_id) from flowhouse_backtest.messages")
        # the build created the live state tables (dbt reads them as sources), all empty
        live = wh.count("flowhouse.flows") + wh.count("flowhouse.enrollments")
    assert enrolled > 0
    assert per_step >= 1
    assert f"treatment {enrolled}" in result.output or "holdout" in result.output
    assert not live


def test_backtest_of_an_unknown_flow_names_the_known_ones(warehouse: str) -> None:
    result = run(
        "backtest", "nope", "--warehouse", warehouse, "--from", ts(START), "--to", ts(LAUNCH)
    )
    assert result.exit_code != 0
    assert "unknown flow" in result.output and "cart_abandonment" in result.output


def test_tick_goes_live_then_plan_shows_a_removed_step_and_the_tick_exits_it(
    warehouse: str, tmp_path: Path
) -> None:
    flows = tmp_path / "flows"
    shutil.copytree(FLOWS, flows, ignore=shutil.ignore_patterns("*.py", "__pycache__"))
    first = run(
        "tick",
        "--warehouse",
        warehouse,
        "--flows",
        str(flows),
        "--now",
        ts(LAUNCH),
        "--no-build",
        "--no-send",
    )
    assert first.exit_code == 0, first.output
    later = LAUNCH + timedelta(hours=30)
    tick = run(
        "tick",
        "--warehouse",
        warehouse,
        "--flows",
        str(flows),
        "--now",
        ts(later),
        "--no-build",
        "--no-send",
    )
    assert tick.exit_code == 0, tick.output
    unchanged = run("plan", "--warehouse", warehouse, "--flows", str(flows))
    assert "0 to change" in unchanged.output
    with Warehouse.open(warehouse) as wh:
        waiting = wh.query(
            "select flow_id, step_id, count(*) from flowhouse.enrollments "
            "where status = 'active' group by flow_id, step_id order by count(*) desc limit 1"
        )
    assert waiting, "the hourly ticks should leave enrollments waiting"
    flow_id, step_id, n = waiting[0]
    path = flows / f"{flow_id}.yml"
    spec = yaml.safe_load(path.read_text())
    spec["steps"] = _without(spec["steps"], step_id)
    path.write_text(yaml.safe_dump(spec, sort_keys=False))
    planned = run("plan", "--warehouse", warehouse, "--flows", str(flows))
    assert planned.exit_code == 0, planned.output
    assert f"~ {flow_id}: changed" in planned.output
    assert (
        f"- step {step_id} removed: {n} enrollment(s) waiting here will exit (step_removed)"
        in planned.output
    )
    after = run(
        "tick",
        "--warehouse",
        warehouse,
        "--flows",
        str(flows),
        "--now",
        ts(later),
        "--no-build",
        "--no-send",
        "--allow-removals",
    )
    assert after.exit_code == 0, after.output
    with Warehouse.open(warehouse) as wh:
        exited = wh.scalar(
            f"select count(*) from flowhouse.enrollments where flow_id = '{flow_id}' "
            f"and step_id = '{step_id}' and end_reason = 'step_removed'"
        )
        versions = wh.scalar(
            f"select count(*) from flowhouse.flow_versions where flow_id = '{flow_id}'"
        )
    assert exited == n
    assert versions == 2


def _without(steps: list[dict[str, object]], step_id: str) -> list[dict[str, object]]:
    """The steps with `step_id` removed, wherever it is nested."""
    out = []
    for step in steps:
        if step.get("id") == step_id:
            continue
        for key in ("on_event", "on_timeout"):
            if isinstance(step.get(key), list):
                step[key] = _without(step[key], step_id)  # type: ignore[arg-type]
        for nest in ("branch", "split"):
            for path in step.get(nest) or []:  # type: ignore[attr-defined]
                path["steps"] = _without(path.get("steps") or [], step_id)
        out.append(step)
    return out


def test_a_tick_back_in_time_is_refused(warehouse: str) -> None:
    assert (
        run(
            "tick", "--warehouse", warehouse, "--now", ts(LAUNCH), "--no-build", "--no-send"
        ).exit_code
        == 0
    )
    back = run(
        "tick",
        "--warehouse",
        warehouse,
        "--now",
        ts(LAUNCH - timedelta(hours=1)),
        "--no-build",
        "--no-send",
    )
    assert back.exit_code != 0
    assert "cannot go back in time" in back.output


def test_now_with_an_offset_is_converted_to_utc(warehouse: str) -> None:
    """``--now 02:00+02:00`` is midnight UTC, as Dagster's run tag reads it
    (tests/core/test_clock.py)."""
    at = (LAUNCH + timedelta(hours=2)).isoformat() + "+02:00"
    ticked = run("tick", "--warehouse", warehouse, "--now", at, "--no-build", "--no-send")
    assert ticked.exit_code == 0, ticked.output
    assert f"tick at {LAUNCH:%Y-%m-%d %H:%M:%S}" in ticked.output
    with Warehouse.open(warehouse) as wh:
        assert wh.scalar("select max(tick_at) from flowhouse.ticks") == LAUNCH


def test_coupons_add_generates_and_rejects_bad_codes_with_their_line(
    warehouse: str, tmp_path: Path
) -> None:
    generated = run("coupons", "add", "cart10", "--warehouse", warehouse, "--generate", "25")
    assert generated.exit_code == 0, generated.output
    codes = tmp_path / "codes.txt"
    codes.write_text("GOOD-1\n\nbad code!\n")
    rejected = run("coupons", "add", "cart10", "--warehouse", warehouse, "--file", str(codes))
    assert rejected.exit_code != 0
    assert f"{codes}:3" in rejected.output and "bad code!" in rejected.output
    with Warehouse.open(warehouse) as wh:
        assert wh.scalar("select count(*) from flowhouse.coupon_codes where pool = 'cart10'") == 25
