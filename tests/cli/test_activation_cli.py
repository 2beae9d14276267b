"""Activation through the command line: the fake provider and the receiver as real servers,
`flowhouse send` against them, and the inbox ingested by the next send."""

from __future__ import annotations

import json
import signal
import sys
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "engine"))
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "activation"))

from harness import EMAIL, flow
from sending import (
    deploy,
    fake_provider_running,
    free_port,
    run,
    sending_store,
    serve,
    wait_for,
)

from flowhouse.activation.fake.webhooks import SENDGRID_PUBLIC_KEY
from flowhouse.activation.links import Claims, sign
from flowhouse.core.warehouse import Location, Warehouse

SIGNING_KEY = "test-signing-key"


@pytest.fixture
def fake_provider(tmp_path: Path) -> Iterator[str]:
    with fake_provider_running("--inbox", str(tmp_path / "inbox")) as url:
        yield url


def test_send_through_the_cli_to_the_fake_provider(tmp_path: Path, fake_provider: str) -> None:
    location = Location.parse(str(tmp_path / "store.duckdb"))
    store = sending_store(location, tmp_path)
    flows = deploy(store, flow("cart", steps=[{"id": "mail", "send": EMAIL}]))
    store.tick("2026-03-01 00:00")
    for i in range(3):
        store.customer(f"c{i}", first_name="Ann")
        store.event(f"c{i}", "cart_abandoned", at="2026-03-01 10:00", cart_id=f"k{i}")
    store.tick("2026-03-01 10:00")
    store.close()
    args = ["send", "--warehouse", str(location.path), "--flows", str(flows),
            "--now", "2026-03-01T10:01:00", "--provider-url", fake_provider]  # fmt: skip
    result = run(*args)
    assert result.exit_code == 0, result.output
    assert "3 sent" in result.output and "sendgrid: sent 3" in result.output
    assert "3 claimed so far: 3 sent" in result.output  # progress after each claim
    stats = httpx.get(f"{fake_provider}/_fake/stats").json()
    assert stats["accepted"] == {"sendgrid": 3}
    assert stats["rejected"] == {}
    again = run(*args)
    assert "0 claimed" in again.output


def test_send_refuses_a_bad_bucket(tmp_path: Path) -> None:
    result = run("send", "--warehouse", str(tmp_path / "w.duckdb"), "--bucket", "2/2")
    assert result.exit_code == 2
    assert "--bucket" in result.output


def test_send_without_credentials_names_the_missing_variable(tmp_path: Path) -> None:
    location = Location.parse(str(tmp_path / "store.duckdb"))
    store = sending_store(location, tmp_path)
    flows = deploy(store, flow("cart", steps=[{"id": "mail", "send": EMAIL}]))
    store.close()
    env = {"FLOWHOUSE_SIGNING_KEY": ""}
    result = run("send", "--warehouse", str(location.path), "--flows", str(flows), env=env)
    assert result.exit_code == 1
    assert "FLOWHOUSE_SIGNING_KEY" in result.output
    assert "Traceback" not in result.output


def test_receive_stores_an_unsubscribe_that_the_next_send_ingests(tmp_path: Path) -> None:
    inbox = tmp_path / "inbox"
    port = free_port()
    proc = serve(
        "receive", "--port", str(port), "--inbox", str(inbox),
        env={"FLOWHOUSE_SIGNING_KEY": SIGNING_KEY, "TWILIO_AUTH_TOKEN": "token",
             "SENDGRID_WEBHOOK_PUBLIC_KEY": SENDGRID_PUBLIC_KEY},
    )  # fmt: skip
    url = f"http://127.0.0.1:{port}"
    try:
        wait_for(f"{url}/unsubscribe", proc)
        token = sign(Claims("m1", "c1", "email"), SIGNING_KEY)
        forged = sign(Claims("m1", "c2", "email"), "another key")
        assert httpx.post(f"{url}/unsubscribe", params={"token": forged}).status_code == 400
        answer = httpx.post(
            f"{url}/unsubscribe", params={"token": token}, data={"List-Unsubscribe": "One-Click"}
        )
        assert answer.status_code == 200
        page = httpx.get(f"{url}/preferences", params={"token": token})
        assert page.status_code == 200 and "Stop marketing e-mails" in page.text
        assert httpx.get(f"{url}/preferences", params={"token": forged}).status_code == 400
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(timeout=15)
    [stored] = list((inbox / "flowhouse").glob("*.json"))
    assert json.loads(stored.read_text())["customer_id"] == "c1"

    location = Location.parse(str(tmp_path / "store.duckdb"))
    store = sending_store(location, tmp_path)
    flows = deploy(store, flow("cart", steps=[{"id": "mail", "send": EMAIL}]))
    store.wh.execute(
        "insert into raw.customers (customer_id, created_at, updated_at) "
        "values ('c1', now(), now())"
    )
    store.wh.commit()
    store.close()
    result = run(
        "send", "--warehouse", str(location.path), "--flows", str(flows), "--inbox", str(inbox),
        "--now", "2026-03-01T10:01:00", env={"FLOWHOUSE_SIGNING_KEY": SIGNING_KEY},
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    assert "engagement ingested: unsubscribed 1" in result.output
    with Warehouse.open(location) as wh:
        found = wh.query("select customer_id, event_type from raw.events")
    assert found == [("c1", "unsubscribed")]
