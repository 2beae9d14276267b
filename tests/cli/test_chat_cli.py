"""A flow with a WhatsApp, a Viber and an SMS step, end to end through the CLI: `flowhouse tick`
queues, `flowhouse send` sends to the fake provider (which checks every request against Twilio's
and Vonage's published documents), and the providers' status webhooks come back through the inbox
as engagement on each channel. Consent and skip reasons are per channel."""

from __future__ import annotations

import json
import sys
from datetime import datetime
from pathlib import Path

import httpx
import pytest
from click.testing import CliRunner, Result

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "engine"))
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "activation"))

from harness import SMS, VIBER, flow
from sending import SEND_SETTINGS, deploy, sending_store

from flowhouse.activation.fake.engagement import Rates
from flowhouse.activation.fake.server import running
from flowhouse.activation.fake.settings import FakeSettings
from flowhouse.cli import cli
from flowhouse.core.warehouse import Location, Warehouse

SID = "HX" + "0123456789abcdef" * 2
WHATSAPP = {
    "channel": "whatsapp",
    "template": "t.txt.j2",
    "content_sid": SID,
    "content_variables": {"1": "{{ customer.first_name }}", "2": "{{ store.url }}"},
}
SETTINGS = SEND_SETTINGS.replace(
    "    status_callback: https://hooks.shop.example/webhooks/twilio\n",
    "    status_callback: https://hooks.shop.example/webhooks/twilio\n"
    "    whatsapp_from: '+14155550199'\n"
    "  vonage: {viber_service_id: '16273'}\n",
)
OPTED_IN = {"has_whatsapp_consent": True, "has_whatsapp_opt_in": True,
            "has_viber_consent": True, "has_viber_opt_in": True}  # fmt: skip

#: customer -> (attributes beyond SMS consent, (whatsapp, viber, sms) status or skip reason)
CUSTOMERS: dict[str, tuple[dict[str, object], tuple[str, str, str]]] = {
    "ok": (OPTED_IN, ("sent", "sent", "sent")),
    "no_opt_in": ({}, ("consent", "consent", "sent")),
    "no_phone": (OPTED_IN | {"phone": None}, ("no_address", "no_address", "no_address")),
    "left_whatsapp": (
        OPTED_IN | {"has_whatsapp_consent": False, "whatsapp_unsubscribed_at": "2026-02-01 00:00"},
        ("unsubscribed", "sent", "sent"),
    ),
}
#: Every message is delivered, and read (the providers report reads for WhatsApp and Viber).
RATES = Rates(delivered=1.0, bounce=0.0, open=1.0, click=0.0, spam_report=0.0, unsubscribe=0.0)


def run(*args: str) -> Result:
    result = CliRunner().invoke(cli, list(args), env={"FLOWHOUSE_SIGNING_KEY": "test-key"})
    assert result.exit_code == 0, result.output
    return result


@pytest.fixture(params=["duckdb", pytest.param("postgres", marks=pytest.mark.postgres)])
def warehouse(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """The warehouse the CLI is given: a DuckDB file, or a fresh PostgreSQL database."""
    if request.param == "postgres":
        return str(request.getfixturevalue("pg_url"))
    return str(tmp_path / "store.duckdb")


def test_whatsapp_and_viber_end_to_end(tmp_path: Path, warehouse: str) -> None:
    location = Location.parse(warehouse)
    store = sending_store(location, tmp_path)
    steps = [{"id": "chat", "send": WHATSAPP}, {"id": "viber", "send": VIBER},
             {"id": "text", "send": SMS}]  # fmt: skip
    flows = deploy(store, flow("chat", steps=steps), settings=SETTINGS)
    for i, (customer, (attributes, _)) in enumerate(CUSTOMERS.items()):
        given = {"phone": f"+1415555{i:04d}", "sms_consent": True} | attributes
        store.customer(customer, first_name="Ann", **given)  # type: ignore[arg-type]
        store.event(customer, "cart_abandoned", at="2026-03-01 10:00", cart_id=customer)
    known = ", ".join(f"('{c}', now(), now())" for c in CUSTOMERS)  # whom events may name
    store.wh.execute(
        f"insert into raw.customers (customer_id, created_at, updated_at) values {known}"
    )
    store.wh.commit()
    store.close()
    base = ["--warehouse", warehouse, "--flows", str(flows)]
    run("tick", *base, "--now", "2026-02-28T00:00", "--no-build", "--no-send")  # goes live
    run("tick", *base, "--now", "2026-03-01T10:05", "--no-build", "--no-send")
    inbox = tmp_path / "inbox"
    with running(FakeSettings(inbox=inbox, engagement=RATES)) as fake:
        fake.set_now(datetime(2026, 3, 1, 10, 6))
        sent = run("send", *base, "--now", "2026-03-01T10:06", "--provider-url", fake.url,
                   "--inbox", str(inbox))  # fmt: skip
        assert "6 sent" in sent.output, sent.output
        stats = httpx.get(f"{fake.url}/_fake/stats").json()
        assert stats["accepted"] == {"twilio": 4, "vonage": 2}, stats
        assert stats["rejected"] == {}  # every request valid against the documents
        received = httpx.get(f"{fake.url}/_fake/messages").json()
        fake.set_now(datetime(2026, 3, 2))  # every status webhook is due: written to the inbox
    chats = {m["address"]: m for m in _messages(received) if m["provider"] == "twilio"}
    assert chats["whatsapp:+14155550000"]["body"] == (
        f'{SID} {{"1": "Ann", "2": "https://shop.example"}}'
    )
    viber = sorted(m["address"] for m in _messages(received) if m["provider"] == "vonage")
    assert viber == ["14155550000", "14155550003"]
    with Warehouse.open(location) as wh:
        rows = wh.query("select customer_id, step_id, status, skip_reason from flowhouse.messages")
    outcome = {(c, s): reason or status for c, s, status, reason in rows}
    assert {c: tuple(outcome[(c, s["id"])] for s in steps) for c in CUSTOMERS} == {
        c: expected for c, (_, expected) in CUSTOMERS.items()
    }

    ingested = run("send", *base, "--now", "2026-03-02T00:00", "--inbox", str(inbox))
    assert "engagement ingested: message_delivered 6, message_opened 3" in ingested.output
    with Warehouse.open(location) as wh:
        events = wh.query(
            "select event_type, properties->>'channel', count(*) from raw.events "
            "where event_type like 'message_%' group by 1, 2 order by 1, 2"
        )
        statuses = wh.query(
            "select channel, status, count(*) from flowhouse.messages "
            "where status <> 'skipped' group by 1, 2 order by 1, 2"
        )
    assert [tuple(e) for e in events] == [
        ("message_delivered", "sms", 3),
        ("message_delivered", "viber", 2),
        ("message_delivered", "whatsapp", 1),
        ("message_opened", "viber", 2),
        ("message_opened", "whatsapp", 1),
    ]
    assert [tuple(s) for s in statuses] == [
        ("sms", "delivered", 3),
        ("viber", "delivered", 2),
        ("whatsapp", "delivered", 1),
    ]


def _messages(received: object) -> list[dict[str, object]]:
    found = received["messages"] if isinstance(received, dict) else received
    return [json.loads(json.dumps(m)) for m in found]


def test_preview_shows_the_whatsapp_template_and_the_viber_text(tmp_path: Path) -> None:
    location = Location.parse(str(tmp_path / "store.duckdb"))
    store = sending_store(location, tmp_path)
    steps = [{"id": "chat", "send": WHATSAPP}, {"id": "viber", "send": VIBER}]
    flows = deploy(store, flow("chat", steps=steps), settings=SETTINGS)
    store.customer("ann", first_name="Ann", phone="+14155550000", **OPTED_IN)  # type: ignore[arg-type]
    store.event("ann", "cart_abandoned", at="2026-03-01 10:00", cart_id="k")
    store.close()
    out = tmp_path / "preview"
    args = ["preview", "chat", "--customer", "ann", "--out", str(out),
            "--warehouse", str(location.path), "--flows", str(flows)]  # fmt: skip
    result = CliRunner().invoke(cli, args)
    assert result.exit_code == 0, result.output
    assert (
        f"chat (WhatsApp via twilio): approved template {SID} (1=Ann, 2=https://shop.example)"
        in (result.output)
    )
    assert "viber (Viber via vonage)" in result.output
    assert sorted(p.name for p in out.iterdir()) == ["chat.txt", "index.html", "viber.txt"]
    assert (out / "viber.txt").read_text().startswith("Hi Ann, your cart misses you.")
    index = (out / "index.html").read_text()
    assert "approved template" in index and "variable 1" in index and "Ann" in index
