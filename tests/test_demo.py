"""The main job end to end: a small generated store, every dbt model built and tested, a summary,
then the flow library live for two simulated days."""

from __future__ import annotations

from pathlib import Path

from click.testing import CliRunner

from flowhouse.cli import cli
from flowhouse.paths import FLOWS
from flowhouse.warehouse import Warehouse


def test_demo_end_to_end(tmp_path: Path) -> None:
    warehouse = tmp_path / "demo.duckdb"
    args = ["demo", "--warehouse", str(warehouse), "--customers", "1500", "--days", "21",
            "--simulate-days", "2"]  # fmt: skip
    result = CliRunner().invoke(cli, args)
    assert result.exit_code == 0, result.output
    assert "Raw events by type" in result.output
    assert "Derived events by type" in result.output
    assert "Customers by tier" in result.output
    with Warehouse.open(str(warehouse)) as wh:
        assert wh.count("raw.customers") >= 1500
        assert wh.count("core.customer_attributes") == wh.count("raw.customers")
        derived = wh.scalar("select count(distinct event_type) from core.events where is_derived")
        flows = wh.count("flowhouse.flows")
        enrolled = wh.count("flowhouse.enrollments")
        unexplained = wh.scalar(
            "select count(*) from flowhouse.messages "
            "where status not in ('queued', 'held_out', 'skipped') "
            "or (status = 'skipped') <> (skip_reason is not null)"
        )
        journaled = wh.scalar(
            "select count(*) from flowhouse.enrollments as e where not exists "
            "(select 1 from flowhouse.decisions as d where d.enrollment_id = e.enrollment_id "
            "and d.step_id = '_entry' and d.outcome = 'enrolled')"
        )
    assert derived >= 10
    assert flows == len(list(FLOWS.glob("[!_]*.yml")))
    assert enrolled > 0
    assert unexplained == 0
    assert journaled == 0
    assert "enrolled" in result.output and "skips by reason" in result.output
