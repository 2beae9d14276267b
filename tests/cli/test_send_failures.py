"""Failures that show and recover, through the command line: a missing API key stops a run
before anything is claimed; messages that fail make ``send`` and ``tick`` exit 3; ``send
--retry-failed`` requeues the failed messages still within their flow's lateness, journaled.
On DuckDB and PostgreSQL."""

from __future__ import annotations

import sys
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner, Result

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "engine"))
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "activation"))

from harness import EMAIL, SMS, flow
from sending import deploy, sending_store

from flowhouse.activation.fake.server import FakeProvider, running
from flowhouse.activation.fake.settings import FakeSettings
from flowhouse.cli import cli
from flowhouse.core.warehouse import Location, Warehouse

KEYS = {"FLOWHOUSE_SIGNING_KEY": "test-signing-key", "SENDGRID_API_KEY": ""}


@pytest.fixture(params=["duckdb", pytest.param("postgres", marks=pytest.mark.postgres)])
def location(request: pytest.FixtureRequest, tmp_path: Path) -> Location:
    if request.param == "postgres":
        return Location.parse(request.getfixturevalue("pg_url"))
    return Location.parse(str(tmp_path / "store.duckdb"))


@pytest.fixture
def fake(tmp_path: Path) -> Iterator[FakeProvider]:
    with running(FakeSettings(inbox=tmp_path / "inbox")) as provider:
        yield provider


def queued_store(location: Location, tmp_path: Path, n: int = 2, *sends: Any) -> Path:
    """`n` customers whose abandoned carts queued their messages at 10:00; the flows folder."""
    store = sending_store(location, tmp_path)
    steps = [{"id": f"s{i}", "send": s} for i, s in enumerate(sends or (EMAIL,))]
    folder = deploy(store, flow("cart", steps=steps))
    store.tick("2026-03-01 00:00")
    for i in range(n):
        store.customer(f"c{i}", first_name="Ann", phone=f"+1555000{i:04d}", sms_consent=True)
        store.event(f"c{i}", "cart_abandoned", at="2026-03-01 10:00", cart_id=f"k{i}")
    store.tick("2026-03-01 10:00")
    store.close()
    return folder


def run(location: Location, command: str, folder: Path, *args: str, **env: str) -> Result:
    where = ["--warehouse", location.url if location.path is None else str(location.path)]
    argv = [command, *where, "--flows", str(folder), *args]
    return CliRunner().invoke(cli, argv, env={**KEYS, **env})


def query(location: Location, sql: str) -> list[tuple[Any, ...]]:
    with Warehouse.open(location) as wh:
        return [tuple(r) for r in wh.query(sql)]


def statuses(location: Location) -> Counter[str]:
    return Counter(s for (s,) in query(location, "select status from flowhouse.messages"))


def test_a_missing_key_stops_send_before_anything_is_claimed(
    location: Location, tmp_path: Path
) -> None:
    folder = queued_store(location, tmp_path, 3)
    result = run(location, "send", folder, "--now", "2026-03-01T10:01:00")
    assert result.exit_code == 1, result.output
    assert "Error: cannot send, nothing was claimed" in result.output
    assert "3 due message(s) route to sendgrid" in result.output
    assert "expected the environment variable SENDGRID_API_KEY" in result.output
    assert "Traceback" not in result.output
    assert statuses(location) == {"queued": 3}
    claimed = "select count(*) from flowhouse.messages where claim_id is not null"
    assert query(location, claimed) == [(0,)]


def test_a_missing_key_stops_the_ticks_send_with_every_variable_named(
    location: Location, tmp_path: Path
) -> None:
    folder = queued_store(location, tmp_path, 2, EMAIL, SMS)
    env = {"TWILIO_ACCOUNT_SID": "", "TWILIO_AUTH_TOKEN": ""}
    result = run(location, "tick", folder, "--now", "2026-03-01T10:01:00", "--no-build", **env)
    assert result.exit_code == 1, result.output
    assert "SENDGRID_API_KEY" in result.output and "TWILIO_ACCOUNT_SID" in result.output
    assert statuses(location) == {"queued": 4}


def test_failed_messages_exit_3_and_are_requeued_within_lateness(
    location: Location, tmp_path: Path, fake: FakeProvider
) -> None:
    folder = queued_store(location, tmp_path, 3)
    with Warehouse.open(location) as wh:
        wh.execute("update flowhouse.messages set address = 'not-an-address'")
        wh.commit()
    sent = run(location, "send", folder, "--now", "2026-03-01T10:01:00", "--provider-url", fake.url)
    assert sent.exit_code == 3, sent.output
    assert "3 failed" in sent.output and "--retry-failed requeues them" in sent.output
    with Warehouse.open(location) as wh:  # fixed; one of them is older than the flow allows
        wh.execute("update flowhouse.messages set address = customer_id || '@shop.example'")
        wh.execute(
            "update flowhouse.messages set due_at = timestamp '2026-02-20 10:00:00' "
            "where customer_id = 'c2'"
        )
        wh.commit()
    args = ["--now", "2026-03-01T10:05:00", "--provider-url", fake.url, "--retry-failed"]
    none = run(location, "send", folder, *args, "--reason", "rate limit")
    assert none.exit_code == 0, none.output
    assert "0 failed message(s) requeued, 0 left failed" in none.output
    retried = run(location, "send", folder, *args, "--flow", "cart", "--reason", "EMAIL")
    assert retried.exit_code == 0, retried.output
    assert "2 failed message(s) requeued, 1 left failed (past their flow's max_lateness)" in (
        retried.output
    )
    assert "2 sent" in retried.output
    assert statuses(location) == {"sent": 2, "failed": 1}
    journal = query(
        location,
        "select customer_id, outcome, reason from flowhouse.decisions "
        "where step_kind = 'send_retry' order by customer_id",
    )
    assert [(c, o) for c, o, _ in journal] == [("c0", "requeued"), ("c1", "requeued")]
    assert all(r.startswith("failed before: 400") for _, _, r in journal)


def test_filters_need_retry_failed(tmp_path: Path) -> None:
    result = CliRunner().invoke(cli, ["send", "--warehouse", str(tmp_path / "w.db"), "--flow", "x"])
    assert result.exit_code == 2
    assert "--retry-failed" in result.output


def test_a_tick_whose_messages_fail_exits_3(
    location: Location, tmp_path: Path, fake: FakeProvider
) -> None:
    folder = queued_store(location, tmp_path, 2)
    with Warehouse.open(location) as wh:
        wh.execute("update flowhouse.messages set address = 'not-an-address'")
        wh.commit()
    args = ["--now", "2026-03-01T10:01:00", "--no-build", "--provider-url", fake.url]
    result = run(location, "tick", folder, *args)
    assert result.exit_code == 3, result.output
    assert "2 failed" in result.output
    assert statuses(location) == {"failed": 2}
