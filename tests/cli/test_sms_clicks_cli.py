"""SMS click tracking through the command line, over real HTTP: `flowhouse send --inbox` sends an
SMS whose link is a short link, `flowhouse receive` answers a click on it with a redirect, and the
next `flowhouse send` ingests the click as a `message_clicked` event of that SMS."""

from __future__ import annotations

import json
import re
import signal
import sys
from pathlib import Path

import httpx
import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "engine"))
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "activation"))

import harness
from harness import flow, write_templates
from sending import deploy, free_port, run, sending_store, serve, wait_for
from test_activation_cli import SIGNING_KEY, fake_provider

from flowhouse.core.warehouse import Location, Warehouse

__all__ = ["fake_provider"]  # the fixture, used by name

BODY = "Your cart: https://shop.example/cart?c={{ customer.customer_id }} Reply STOP to opt out."
ENV = {"FLOWHOUSE_SIGNING_KEY": SIGNING_KEY}


def test_an_sms_click_through_receive_is_ingested_by_the_next_send(
    tmp_path: Path, fake_provider: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    def templates(folder: Path) -> None:
        write_templates(folder)
        (folder / "templates" / "l.txt.j2").write_text(BODY)

    monkeypatch.setattr(harness, "write_templates", templates)
    location = Location.parse(str(tmp_path / "store.duckdb"))
    store = sending_store(location, tmp_path)
    sms = {"channel": "sms", "template": "l.txt.j2"}
    flows = deploy(store, flow("cart", steps=[{"id": "text", "send": sms}]))
    store.tick("2026-03-01 00:00")
    store.customer("c1", phone="+15550000001", sms_consent=True)
    store.event("c1", "cart_abandoned", at="2026-03-01 10:00", cart_id="k1")
    store.tick("2026-03-01 10:00")
    store.wh.execute(
        "insert into raw.customers (customer_id, created_at, updated_at) "
        "values ('c1', now(), now())"
    )
    store.wh.commit()
    [message] = store.messages()
    store.close()
    inbox = tmp_path / "inbox"
    send = ["send", "--warehouse", str(location.path), "--flows", str(flows), "--inbox",
            str(inbox), "--provider-url", fake_provider]  # fmt: skip
    result = run(*send, "--now", "2026-03-01T10:01:00", env=ENV)
    assert result.exit_code == 0, result.output
    answer = httpx.get(f"{fake_provider}/_fake/messages", params={"provider": "twilio"})
    [sent] = answer.json()["messages"]
    found = re.search(r"https://hooks\.shop\.example(/c/[A-Za-z0-9_-]{20}) ", sent["body"])
    assert found, sent["body"]

    port = free_port()
    proc = serve("receive", "--port", str(port), "--inbox", str(inbox), "--unverified",
                 "sendgrid", "--unverified", "twilio", env=ENV)  # fmt: skip
    url = f"http://127.0.0.1:{port}"
    try:
        wait_for(f"{url}/unsubscribe", proc)
        forged = found.group(1)[:-2] + ("AA" if not found.group(1).endswith("AA") else "BB")
        assert httpx.get(url + forged).status_code == 404
        answer = httpx.get(url + found.group(1), follow_redirects=False)
        assert answer.status_code == 302
        assert answer.headers["location"] == "https://shop.example/cart?c=c1"
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(timeout=15)

    result = run(*send, "--now", "2026-03-01T10:05:00", env=ENV)
    assert result.exit_code == 0, result.output
    assert "message_clicked 1" in result.output, result.output
    with Warehouse.open(location) as wh:
        rows = wh.query("select properties from raw.events where event_type = 'message_clicked'")
    [props] = [p if isinstance(p, dict) else json.loads(p) for (p,) in rows]
    assert (props["message_id"], props["channel"]) == (message["message_id"], "sms")
