"""`flowhouse generate` on the command line."""

from __future__ import annotations

from click.testing import CliRunner

from flowhouse.cli import cli
from flowhouse.core.warehouse import Location


def test_generate_then_continue(tmp_warehouse: Location) -> None:
    runner = CliRunner()
    where = ["--warehouse", str(tmp_warehouse.path)]
    first = runner.invoke(
        cli, ["generate", *where, "--customers", "200", "--days", "3", "--seed", "1"]
    )
    assert first.exit_code == 0, first.output
    assert "customers: 200" in first.output
    assert "product_viewed" in first.output

    later = runner.invoke(cli, ["generate", *where, "--continue-until", "2026-09-05T12:00:00"])
    assert later.exit_code == 0, later.output
    assert "continued (window 2)" in later.output

    again = runner.invoke(cli, ["generate", *where, "--continue-until", "2026-09-05T00:00:00"])
    assert again.exit_code == 1
    assert "Error: --continue-until must be after the end of the last generated window" in (
        again.output
    )


def test_continue_without_a_store_fails(tmp_warehouse: Location) -> None:
    result = CliRunner().invoke(
        cli,
        ["generate", "--warehouse", str(tmp_warehouse.path), "--continue-until", "2026-09-05"],
    )
    assert result.exit_code == 1
    assert "no generated store to continue" in result.output
