"""Native push and onsite messages end to end through the command line: `flowhouse tick` queues
and sends pushes to the fake provider's FCM (requests validated against Google's discovery
document) and writes onsite messages to the warehouse; `flowhouse receive` serves them to a
storefront with a signed customer token and stores seen and dismissed; the next `flowhouse send`
ingests them. Consent and skip reasons are checked per channel."""

from __future__ import annotations

import signal
import sys
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from click.testing import CliRunner, Result
from sqlglot import exp

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "engine"))
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "activation"))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from harness import flow
from sending import (
    SEND_SETTINGS,
    deploy,
    fake_provider_running,
    free_port,
    sending_store,
    serve,
    wait_for,
)

from flowhouse.activation.providers.onsite.token import sign
from flowhouse.cli import cli
from flowhouse.core.warehouse import Location, Warehouse, create_table

SECRET = "onsite-test-secret"
#: The scenario happens now: the receiver judges tokens and expiry by the wall clock.
NOW = datetime.now(UTC).replace(tzinfo=None, second=0, microsecond=0)
LAUNCH, DUE = NOW - timedelta(hours=3), NOW - timedelta(minutes=90)
SETTINGS = SEND_SETTINGS.replace(
    "delivery:\n",
    "delivery:\n  routes: {push: fcm, onsite: onsite}\n  fcm: {project_id: shop-app}\n",
)
PUSH = {
    "channel": "push", "template": "t.txt.j2", "title": "Hi {{ customer.first_name }}",
    "deep_link": "https://shop.example/cart",
}  # fmt: skip
ONSITE = {
    "channel": "onsite", "template": "t.txt.j2", "title": "Your cart",
    "deep_link": "/cart", "expires_after": "2d",
}  # fmt: skip
SHORT = ONSITE | {"expires_after": "1h"}
TOKENS = (
    ("p1", "tok-p1-ios", "ios", "2026-02-01 00:00"),
    ("p1", "unregistered-p1-android", "android", "2026-02-02 00:00"),
    ("p3", "tok-p3", "web", "2026-02-01 00:00"),
    ("p4", "tok-p4", "ios", "2026-02-01 00:00"),
)
DEVICE_COLUMNS = (
    ("customer_id", "text", True), ("token", "text", True), ("platform", "text", True),
    ("created_at", "timestamp", True), ("revoked_at", "timestamp", False),
)  # fmt: skip


def iso(moment: datetime) -> str:
    return moment.isoformat(timespec="seconds")


def run(*args: str, env: dict[str, str] | None = None) -> Result:
    return CliRunner().invoke(cli, list(args), env=env)


def customers(store: Any) -> None:
    """Push: p1 two tokens (one stale), p2 none, p3 a token without consent, p4 unsubscribed
    from push. Onsite: o1, o3 (no opt-in needed), o2 unsubscribed from onsite."""
    store.customer("p1", first_name="Ann", push_token="tok-p1-ios", push_token_count=2,
                   has_push_consent=True, has_push_opt_in=True)  # fmt: skip
    store.customer("p2", first_name="Bo")
    store.customer("p3", push_token="tok-p3", push_token_count=1, has_push_consent=False)
    store.customer("p4", push_token="tok-p4", push_token_count=1, has_push_consent=False,
                   has_push_opt_in=True, push_unsubscribed_at="2026-02-20 00:00")  # fmt: skip
    store.customer("o1", first_name="Cy")
    store.customer("o2", onsite_unsubscribed_at="2026-02-20 00:00")
    store.customer("o3")
    wh: Warehouse = store.wh
    wh.execute(create_table("staging.stg_device_tokens", DEVICE_COLUMNS, store.dialect))
    rows = [(*tuple(exp.Literal.string(v) for v in row), exp.null()) for row in TOKENS]
    wh.execute(exp.insert(exp.values(rows), "staging.stg_device_tokens"))
    _raw_customers(wh, ("o1", "o3"))
    wh.commit()


def _raw_customers(wh: Warehouse, ids: tuple[str, ...]) -> None:
    """``raw.customers`` rows: the engagement the receiver stores is loaded like any event."""
    for customer_id in ids:
        wh.execute(
            "insert into raw.customers (customer_id, created_at, updated_at) values "
            f"('{customer_id}', timestamp '2026-01-01 00:00', timestamp '2026-01-01 00:00')"
        )


@pytest.fixture
def fake_provider() -> Iterator[str]:
    with fake_provider_running() as url:
        yield url


def rows(location: Location, sql: str) -> list[tuple[Any, ...]]:
    with Warehouse.open(location, read_only=True) as wh:
        return wh.query(sql)


def test_push_and_onsite_through_tick_receive_and_send(tmp_path: Path, fake_provider: str) -> None:
    location = Location.parse(str(tmp_path / "store.duckdb"))
    store = sending_store(location, tmp_path)
    folder = deploy(
        store,
        flow("cart_push", trigger={"event": "cart_abandoned", "where": "event.case = 'push'"},
             steps=[{"id": "push_1", "send": PUSH}]),
        flow("cart_onsite", trigger={"event": "cart_abandoned", "where": "event.case = 'onsite'"},
             steps=[{"id": "banner", "send": ONSITE}]),
        flow("short_onsite", trigger={"event": "cart_abandoned", "where": "event.case = 'short'"},
             steps=[{"id": "banner", "send": SHORT}]),
        settings=SETTINGS,
    )  # fmt: skip
    store.tick(LAUNCH)
    customers(store)
    for c in ("p1", "p2", "p3", "p4"):
        store.event(c, "cart_abandoned", at=DUE, cart_id=f"k{c}", case="push")
    for c in ("o1", "o2"):
        store.event(c, "cart_abandoned", at=DUE, cart_id=f"k{c}", case="onsite")
    store.event("o3", "cart_abandoned", at=DUE, cart_id="ko3", case="short")
    store.close()
    inbox = tmp_path / "inbox"
    base = ["--warehouse", str(location.path), "--flows", str(folder), "--inbox", str(inbox)]

    ticked = run("tick", *base, "--now", iso(DUE + timedelta(minutes=1)), "--no-build",
                 "--provider-url", fake_provider)  # fmt: skip
    assert ticked.exit_code == 0, ticked.output
    assert "fcm: sent 1" in ticked.output and "onsite: sent 2" in ticked.output
    assert "device tokens found dead and retired: 1" in ticked.output

    outbox = {
        r[0]: r[1:]
        for r in rows(location, "select customer_id, channel, status, skip_reason, address "
                      "from flowhouse.messages")
    }  # fmt: skip
    assert outbox["p1"] == ("push", "sent", None, "tok-p1-ios")
    assert outbox["p2"][1:3] == ("skipped", "no_address")
    assert outbox["p3"][1:3] == ("skipped", "consent")
    assert outbox["p4"][1:3] == ("skipped", "unsubscribed")
    assert outbox["o1"][:2] == ("onsite", "sent")
    assert outbox["o2"][1:3] == ("skipped", "unsubscribed")
    assert rows(
        location, "select token, customer_id, provider from flowhouse.invalid_device_tokens"
    ) == [("unregistered-p1-android", "p1", "fcm")]
    stats = httpx.get(f"{fake_provider}/_fake/stats").json()
    assert stats["accepted"] == {"fcm": 1}

    port = free_port()
    env = {"FLOWHOUSE_SIGNING_KEY": "k", "FLOWHOUSE_ONSITE_SECRET": SECRET}
    proc = serve("receive", "--port", str(port), *base[:2], "--flows", str(folder),
                 "--inbox", str(inbox), "--unverified", "sendgrid", "--unverified", "twilio",
                 env=env)  # fmt: skip
    url = f"http://127.0.0.1:{port}"
    try:
        wait_for(f"{url}/unsubscribe", proc)
        later = int(time.time()) + 600
        token = sign(SECRET, "o1", later)
        polled = httpx.get(f"{url}/onsite/messages", params={"customer": "o1"},
                           headers={"Authorization": f"Bearer {token}"})  # fmt: skip
        assert polled.status_code == 200, polled.text
        [shown] = polled.json()["messages"]
        assert (shown["title"], shown["deep_link"]) == ("Your cart", "/cart")
        assert shown["body"].startswith("Hi Cy, your cart misses you")
        assert shown["body_format"] == "text"  # a .txt.j2 template: the storefront escapes it
        assert shown["expires_at"] == iso(DUE + timedelta(days=2)) + "Z"  # due + 2d
        assert polled.headers["access-control-allow-origin"] == "*"
        refused = {
            "unsigned": httpx.get(f"{url}/onsite/messages", params={"customer": "o1"}),
            "forged": httpx.get(f"{url}/onsite/messages",
                                params={"customer": "o1", "token": sign("guess", "o1", later)}),
            "another's": httpx.get(f"{url}/onsite/messages",
                                   params={"customer": "o3", "token": token}),
            "expired": httpx.get(f"{url}/onsite/messages",
                                 params={"customer": "o1", "token": sign(SECRET, "o1", 1000)}),
        }  # fmt: skip
        assert {k: r.status_code for k, r in refused.items()} == {
            "unsigned": 401, "forged": 403, "another's": 403, "expired": 401,
        }  # fmt: skip
        message = shown["message_id"]
        q = {"customer": "o1", "token": token}
        assert httpx.post(f"{url}/onsite/messages/{message}/seen", params=q).status_code == 202
        assert httpx.post(f"{url}/onsite/messages/{message}/dismissed", params=q).status_code == 202
        other = {"customer": "o3", "token": sign(SECRET, "o3", later)}
        assert httpx.post(f"{url}/onsite/messages/{message}/seen", params=other).status_code == 404
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(timeout=15)
    assert len(list((inbox / "onsite").glob("*.json"))) == 2

    sent = run(
        "send", *base, "--now", iso(NOW + timedelta(hours=1)), "--provider-url", fake_provider
    )
    assert sent.exit_code == 0, sent.output
    assert "onsite messages: dismissed 1, expired 1" in sent.output
    events = rows(location, "select event_type from raw.events order by event_type")
    assert [e[0] for e in events] == ["message_delivered", "message_dismissed", "message_opened"]
    ended = {
        r[0]: r[1:]
        for r in rows(location, "select customer_id, status, end_reason from flowhouse.onsite_messages")
    }  # fmt: skip
    assert ended["o1"] == ("dismissed", "dismissed by the customer")
    assert ended["o3"] == ("expired", "expired: never seen within its time to live")
    [(status,)] = rows(location, "select status from flowhouse.messages where customer_id = 'o1'")
    assert status == "delivered"
