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
            "where (status = 'skipped') <> (skip_reason is not null) "
            "or (status = 'failed' and failure_reason is null)"
        )
        render_failures = wh.scalar(
            "select count(*) from flowhouse.messages where failure_reason like 'render:%'"
        )
        sent = wh.scalar(
            "select count(*) from flowhouse.messages where status in ('sent', 'delivered', "
            "'bounced') and provider_message_id is not null"
        )
        delivered = wh.scalar(
            "select count(*) from flowhouse.messages as m where m.status = 'delivered' and "
            "exists (select 1 from raw.events as e where e.event_type = 'message_delivered' "
            "and json_extract_string(e.properties, '$.message_id') = m.message_id)"
        )
        sync_runs = wh.scalar("select count(*) from flowhouse.sync_runs")
        healthy = wh.query("select sync_id, is_healthy, rows_in_destination from core.sync_health")
        failed_syncs = wh.scalar(
            "select count(*) from flowhouse.sync_runs where status not in ('succeeded', 'partial')"
        )
        stuck = wh.scalar(
            "select count(*) from flowhouse.messages where status in ('claimed', 'sending')"
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
    assert render_failures == 0
    assert sent > 0 and delivered > 0, "messages reached the fake provider and came back"
    assert stuck == 0
    assert "delivered twice: 0" in result.output and "rejected by it: 0" in result.output
    # every sync ran at each refresh, and its destination matches its source
    assert "Audience syncs" in result.output
    assert "NOT " not in result.output.split("Audience syncs")[1]
    assert result.output.count("destination equal to the source") >= 2
    assert sync_runs > 0 and failed_syncs == 0
    # the dbt model summarising sync health saw the runs of the previous refreshes
    assert len(healthy) == len(list((FLOWS / "syncs").glob("*.yml")))
    assert all(is_healthy for _, is_healthy, _ in healthy)
    assert journaled == 0
    assert "enrolled" in result.output and "skips by reason" in result.output
