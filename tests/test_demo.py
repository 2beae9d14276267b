"""The main job end to end: a small generated store, every dbt model built and tested, a summary."""

from __future__ import annotations

from pathlib import Path

from click.testing import CliRunner

from flowhouse.cli import cli
from flowhouse.warehouse import Warehouse


def test_demo_end_to_end(tmp_path: Path) -> None:
    warehouse = tmp_path / "demo.duckdb"
    args = ["demo", "--warehouse", str(warehouse), "--customers", "1500", "--days", "21"]
    result = CliRunner().invoke(cli, args)
    assert result.exit_code == 0, result.output
    assert "Raw events by type" in result.output
    assert "Derived events by type" in result.output
    assert "Customers by tier" in result.output
    with Warehouse.open(str(warehouse)) as wh:
        assert wh.count("raw.customers") >= 1500
        assert wh.count("core.customer_attributes") == wh.count("raw.customers")
        derived = wh.scalar("select count(distinct event_type) from core.events where is_derived")
    assert derived >= 10
