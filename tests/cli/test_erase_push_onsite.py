"""`flowhouse erase` takes a customer's device tokens, retired tokens and onsite messages out of
the warehouse, and a reject that carries one of their tokens."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path

from click.testing import CliRunner

from flowhouse.cli import cli
from flowhouse.core.state import ensure_state
from flowhouse.core.warehouse import Location, Warehouse
from flowhouse.load import load_file

ROWS = [
    "insert into raw.customers (customer_id, created_at, updated_at) values "
    "('c1', timestamp '2026-01-01', timestamp '2026-01-01'), "
    "('c2', timestamp '2026-01-01', timestamp '2026-01-01')",
    "insert into flowhouse.invalid_device_tokens values "
    "('dead-c1', 'c1', 'fcm', '404 UNREGISTERED', 'm1', timestamp '2026-03-01')",
    "insert into flowhouse.onsite_messages (message_id, customer_id, flow_id, step_id, title, body, "
    "created_at, expires_at, status) values "
    "('m2', 'c1', 'f', 's', 'Hi', 'Hi Ann', timestamp '2026-03-01', timestamp '2026-03-08', "
    "'pending'), ('m3', 'c2', 'f', 's', 'Hi', 'Hi Bo', timestamp '2026-03-01', "
    "timestamp '2026-03-08', 'pending')",
]


def test_erase_removes_tokens_and_onsite_messages(tmp_path: Path) -> None:
    location = Location.parse(str(tmp_path / "w.duckdb"))
    with Warehouse.open(location) as wh:
        wh.ensure_raw_tables()
        ensure_state(wh, "flowhouse")
        for statement in ROWS:
            wh.execute(statement)
        wh.commit()
    tokens = tmp_path / "tokens.csv"
    tokens.write_text(
        "customer_id,token,platform,created_at,revoked_at\n"
        "c1,tok-c1,ios,2026-02-01,\nc2,tok-c2,web,2026-02-01,\nc1,tok-c1-tv,tv,2026-02-01,\n"
    )
    load_file(location, "device_tokens", tokens, now=datetime(2026, 3, 1))
    result = CliRunner().invoke(
        cli, ["erase", "--customer", "c1", "--warehouse", str(location.path)]
    )
    assert result.exit_code == 0, result.output
    with Warehouse.open(location) as wh:
        assert wh.query("select token from raw.device_tokens") == [("tok-c2",)]
        assert wh.query("select count(*) from flowhouse.invalid_device_tokens") == [(0,)]
        assert wh.query("select customer_id from flowhouse.onsite_messages") == [("c2",)]
        assert wh.query("select count(*) from raw.rejects where record like '%tok-c1%'") == [(0,)]
