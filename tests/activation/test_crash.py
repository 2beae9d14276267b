"""Killing the sender in mid-batch, again and again, loses no message and delivers none twice.

``flowhouse send`` runs as its own process against the fake provider (slowed down so that every
kill lands while requests are in flight), is killed with SIGKILL as soon as the provider has
accepted some of its messages, and is started again; a last run finishes. The warehouse must then
show every message sent, and the fake provider must have received each exactly once: rows left
in flight are reconciled through the providers' lookups, never resent blindly.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from harness import EMAIL, SMS, flow
from sending import deploy, sending_store

from flowhouse.activation.fake.failures import Failures
from flowhouse.activation.fake.server import FakeProvider, running
from flowhouse.activation.fake.settings import FakeSettings
from flowhouse.core.warehouse import Location, Warehouse

CUSTOMERS = 300
KILLS = 5
NOW = "2026-03-01 10:01"


def _queue(location: Location, folder: Path) -> Path:
    store = sending_store(location, folder)
    try:
        flows = deploy(
            store,
            flow("cart", steps=[{"id": "mail", "send": EMAIL}, {"id": "text", "send": SMS}]),
        )
        store.tick("2026-03-01 00:00")
        for i in range(CUSTOMERS):
            store.customer(
                f"c{i}", first_name=f"Ann{i}", phone=f"+1555100{i:04d}", sms_consent=True
            )
            store.event(f"c{i}", "cart_abandoned", at="2026-03-01 10:00", cart_id=f"k{i}")
        store.tick("2026-03-01 10:00")
        return flows
    finally:
        store.close()


def _sender(location: Location, flows: Path, url: str) -> subprocess.Popen[bytes]:
    command = [sys.executable, "-m", "flowhouse.cli", "send", "--warehouse", str(location.path),
               "--flows", str(flows), "--now", NOW, "--provider-url", url]  # fmt: skip
    return subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)


def _accepted(fake: FakeProvider) -> int:
    return len(fake.state.messages())


def _kill_mid_batch(location: Location, flows: Path, fake: FakeProvider) -> int:
    """Start a sender, kill it once the provider accepted a few more messages; returns how many
    rows it left in flight."""
    before = _accepted(fake)
    proc = _sender(location, flows, fake.url)
    deadline = time.monotonic() + 60
    while _accepted(fake) < before + 15 and proc.poll() is None and time.monotonic() < deadline:
        time.sleep(0.02)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    with Warehouse.open(location) as wh:
        return int(wh.scalar("select count(*) from flowhouse.messages where status = 'sending'"))


def test_killing_the_sender_again_and_again_loses_and_duplicates_nothing(tmp_path: Path) -> None:
    location = Location.parse(str(tmp_path / "store.duckdb"))
    flows = _queue(location, tmp_path)
    slow = Failures(slow=1.0, latency_ms=40, seed=1)
    with running(FakeSettings(failures=slow)) as fake:
        in_flight = [_kill_mid_batch(location, flows, fake) for _ in range(KILLS)]
        finish = _sender(location, flows, fake.url)
        output = finish.communicate(timeout=300)[0].decode()
        assert finish.returncode == 0, output
        received = [r.message_id for r in fake.state.messages()]
        duplicates = fake.state.duplicates()
    with Warehouse.open(location) as wh:
        statuses = dict(wh.query("select status, count(*) from flowhouse.messages group by 1"))
        ids = {r[0] for r in wh.query("select message_id from flowhouse.messages")}
    assert any(in_flight), f"no kill left a row in flight ({in_flight}): the test proves nothing"
    assert statuses == {"sent": 2 * CUSTOMERS}, (statuses, output)
    assert duplicates == {}
    assert sorted(received) == sorted(ids)
    assert "reconciled after a crash" in output or in_flight[-1] == 0
