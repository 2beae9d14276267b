"""``flowhouse load device_tokens``: the customers' push registration tokens, checked like any
canonical input (a missing token, customer or creation time, an unknown platform and a future
timestamp are rejected with their row), upserted by token (a re-registration moves it)."""

from __future__ import annotations

from pathlib import Path

import pytest
from click.testing import CliRunner

from flowhouse.cli import cli
from flowhouse.core.warehouse import Location, Warehouse
from flowhouse.load import load_file

HEADER = "customer_id,token,platform,created_at,revoked_at"


def write(tmp_path: Path, *lines: str) -> Path:
    path = tmp_path / "tokens.csv"
    path.write_text("\n".join([HEADER, *lines]) + "\n")
    return path


def tokens(location: Location) -> list[tuple[str, str, str, bool]]:
    with Warehouse.open(location) as wh:
        rows = wh.query(
            "select token, customer_id, platform, revoked_at is not null from raw.device_tokens "
            "order by token"
        )
    return [(r[0], r[1], r[2], bool(r[3])) for r in rows]


def test_cli_loads_tokens_and_reports_rejects(tmp_path: Path, tmp_warehouse: Location) -> None:
    path = write(
        tmp_path,
        "c1,tok-a,ios,2026-09-01T10:00:00Z,",
        "c1,tok-b,Android,2026-09-02,2026-09-03",
        "c2,tok-c,blackberry,2026-09-01,",
        "c3,,web,2026-09-01,",
        ",tok-d,web,2026-09-01,",
        "c4,tok-e,web,,",
        "c5,tok-f,web,2999-01-01,",
    )
    result = CliRunner().invoke(
        cli, ["load", "device_tokens", str(path), "--warehouse", str(tmp_warehouse)]
    )
    assert result.exit_code == 2, result.output
    assert "2 loaded" in result.stdout
    for row, reason in [
        (3, "platform = 'blackberry': unknown platform; expected ios, android or web"),
        (4, "token: missing token"),
        (5, "customer_id: missing customer_id"),
        (6, "created_at: missing created_at"),
        (7, "created_at = '2999-01-01'"),
    ]:
        assert f"row {row}: {reason}" in result.stdout, result.stdout
    assert tokens(tmp_warehouse) == [
        ("tok-a", "c1", "ios", False), ("tok-b", "c1", "Android", True),
    ]  # fmt: skip


def test_a_token_registered_again_moves_to_its_new_customer(
    tmp_path: Path, tmp_warehouse: Location
) -> None:
    load_file(tmp_warehouse, "device_tokens", write(tmp_path, "c1,tok-a,ios,2026-09-01,"))
    report = load_file(tmp_warehouse, "device_tokens", write(tmp_path, "c2,tok-a,ios,2026-09-05,"))
    assert report.rows_loaded == 1
    assert tokens(tmp_warehouse) == [("tok-a", "c2", "ios", False)]


@pytest.mark.postgres
def test_load_tokens_into_postgres(tmp_path: Path, pg_url: str) -> None:
    location = Location.parse(pg_url)
    path = write(tmp_path, "c1,tok-a,web,2026-09-01,", "c1,tok-b,tv,2026-09-01,")
    report = load_file(location, "device_tokens", path)
    assert (report.rows_loaded, report.rows_rejected) == (1, 1)
    assert tokens(location) == [("tok-a", "c1", "web", False)]
