"""The command line: every command has help, and bad options get clear errors."""

from __future__ import annotations

import pytest
from click.testing import CliRunner

from flowhouse.cli import cli
from flowhouse.core.errors import ConfigError
from flowhouse.core.warehouse import Location


@pytest.mark.parametrize("command", sorted(cli.commands))
def test_every_command_has_help(command: str) -> None:
    result = CliRunner().invoke(cli, [command, "--help"])
    assert result.exit_code == 0, result.output
    assert "Usage: " in result.output and "--help" in result.output


def test_top_level_help_lists_the_commands() -> None:
    result = CliRunner().invoke(cli, ["--help"])
    assert result.exit_code == 0
    for command in ("generate", "load", "build", "summary", "demo"):
        assert command in result.output


def test_bad_timestamp_names_the_option() -> None:
    result = CliRunner().invoke(cli, ["generate", "--continue-until", "tomorrow-ish"])
    assert result.exit_code == 2
    assert "--continue-until" in result.output and "ISO 8601" in result.output


def test_locations() -> None:
    duck = Location.parse("some/where.duckdb")
    assert duck.dialect == "duckdb" and duck.path is not None and duck.path.is_absolute()
    assert duck.dbt_env()["FLOWHOUSE_DBT_TARGET"] == "duckdb"
    pg = Location.parse("postgresql://u:s%40cret@db.example:6543/shop")
    env = pg.dbt_env()
    assert (env["FLOWHOUSE_PG_HOST"], env["FLOWHOUSE_PG_PORT"]) == ("db.example", "6543")
    assert (env["FLOWHOUSE_PG_PASSWORD"], env["FLOWHOUSE_PG_DATABASE"]) == ("s@cret", "shop")
    assert "s@cret" not in str(pg) and "s%40cret" not in str(pg)
    with pytest.raises(ConfigError, match="expected a DuckDB file path or a postgresql:// URL"):
        Location.parse("mysql://x/y")


def test_warehouse_from_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("FLOWHOUSE_WAREHOUSE", "postgresql://localhost/x")
    assert Location.parse(None).dialect == "postgres"
