"""Scenario stores for sending: the engine's harness plus the catalog tables recommendations read,
the store settings and templates of sending scenarios; the fake provider served on a port of its
own, a flow's actions queued for one customer, and `flowhouse send` run against them."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import textwrap
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx
from click.testing import CliRunner, Result

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "engine"))

from harness import Store, flow

from flowhouse.cli import cli
from flowhouse.core.warehouse import Location, create_table

CATALOG_TABLES = {
    "staging.stg_products": (
        ("sku", "text", True),
        ("name", "text", False),
        ("url", "text", False),
        ("image_url", "text", False),
        ("price", "decimal", False),
        ("inventory_qty", "integer", False),
    ),
    "staging.stg_order_lines": (
        ("order_id", "text", True),
        ("line_number", "integer", True),
        ("customer_id", "text", False),
        ("sku", "text", False),
        ("quantity", "integer", True),
        ("price", "decimal", False),
        ("ordered_at", "timestamp", True),
    ),
}

#: Store settings for sending scenarios: no quiet hours, caps or smart sending unless a test
#: names them; a Twilio Messaging Service and a status callback.
SEND_SETTINGS = """
store: {name: Test, url: https://shop.example, timezone: UTC, postal_address: 1 Main St}
smart_sending: {}
delivery:
  sendgrid: {lookup_delay: 0s}   # the fake provider's records do not lag
  twilio:
    messaging_service_sid: MG00000000000000000000000000000000
    status_callback: https://hooks.shop.example/webhooks/twilio
  links_url: https://hooks.shop.example
"""

TEMPLATES = {
    "t.html.j2": "<p>Hi {{ customer.first_name }}</p>"
    '<a href="{{ store.url | with_utm }}">shop</a>'
    '<a href="{{ links.unsubscribe }}">unsubscribe</a> {{ sender.postal_address }}',
    "t.txt.j2": "Hi {{ customer.first_name }}, your cart misses you. Reply STOP to opt out.",
}


def sending_store(location: Location, folder: Path) -> Store:
    """A harness store with the raw events table and the catalog tables."""
    store = Store(location, folder)
    with store.wh.transaction():
        store.wh.ensure_schema("staging")
        for table, columns in CATALOG_TABLES.items():
            store.wh.execute(create_table(table, columns, store.dialect))  # type: ignore[arg-type]
        store.wh.ensure_raw_tables()
    return store


def deploy(store: Store, *flows: str, settings: str = SEND_SETTINGS) -> Path:
    """Deploy flows with the sending settings and the test templates; returns the flows folder."""
    store.flows(*flows, settings=settings)
    folder = max(store.folder.glob("flows*"), key=lambda p: int(p.name[5:]))
    (folder / "templates").mkdir(exist_ok=True)
    for name, text in TEMPLATES.items():
        (folder / "templates" / name).write_text(textwrap.dedent(text))
    return folder


def run(*args: str, env: dict[str, str] | None = None) -> Result:
    """A ``flowhouse`` command in this process."""
    return CliRunner().invoke(cli, list(args), env=env)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def serve(*args: str, env: dict[str, str] | None = None) -> subprocess.Popen[bytes]:
    """A ``flowhouse`` command in a process of its own (a server: ``receive``, ``fake-provider``)."""
    command = [sys.executable, "-m", "flowhouse.cli", *args]
    environ = {**os.environ, **(env or {})}
    return subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, env=environ)


def wait_for(url: str, proc: subprocess.Popen[bytes]) -> None:
    """Until ``url`` answers (30 s at most, and while ``proc`` runs)."""
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        assert proc.poll() is None, (proc.stdout.read() if proc.stdout else b"").decode()
        try:
            httpx.get(url, timeout=1)
            return
        except httpx.TransportError:
            time.sleep(0.1)
    raise AssertionError(f"{url} did not answer")


@contextmanager
def fake_provider_running(*args: str) -> Iterator[str]:
    """``flowhouse fake-provider`` on a free port (``args``: more of its options), answering; its
    URL until the block ends, then stopped."""
    port = free_port()
    proc = serve("fake-provider", "--port", str(port), *args)
    url = f"http://127.0.0.1:{port}"
    try:
        wait_for(f"{url}/_fake/stats", proc)
        yield url
    finally:
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=15) is not None


def queue_for_ann(
    location: Location, folder: Path, steps: list[dict[str, Any]], settings: str
) -> tuple[Path, list[dict[str, Any]]]:
    """Flow ``vip`` of ``steps`` deployed with ``settings`` (pool ``vip20`` holding VIP-AAA); Ann
    (``c1``) abandons a cart at 10:00 on 2026-03-01 and the tick then queues what she is due.
    Answers the flows folder and the outbox rows, by channel."""
    store = sending_store(location, folder)
    flows = deploy(store, flow("vip", steps), settings=settings)
    store.codes("vip20", "VIP-AAA")
    store.tick("2026-03-01 00:00")
    store.customer("c1", first_name="Ann")
    store.event("c1", "cart_abandoned", at="2026-03-01 10:00")
    store.tick("2026-03-01 10:00")
    outbox: list[dict[str, Any]] = store.rows("messages", order="channel")
    store.close()
    return flows, outbox


def send(
    location: Location,
    flows: Path,
    url: str | None,
    *extra: str,
    code: int = 0,
    now: str = "2026-03-01T10:01:00",
    **env: str,
) -> str:
    """``flowhouse send`` at ``now`` against the fake provider at ``url`` (None: the providers
    the settings name) with ``env`` set, exiting ``code``; its output."""
    where = str(location.path) if location.path else str(location.url)
    args = ["send", "--warehouse", where, "--flows", str(flows), "--now", now, *extra]
    args += ["--provider-url", url] if url else []
    result = run(*args, env=env or None)
    assert result.exit_code == code, result.output
    return result.output
