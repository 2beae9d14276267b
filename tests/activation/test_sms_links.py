"""SMS link clicks: links in SMS bodies go out as short links on the receiver, a click on one is
answered with a redirect and recorded, and the next ingest makes it a ``message_clicked`` event
of the SMS message (what the marts' ``sms_click`` attribution window reads).

Sent for real through the fake provider (on DuckDB and PostgreSQL); the receiver is its ASGI app
driven by an HTTP client.
"""

from __future__ import annotations

import json
import re
import warnings
from datetime import datetime
from pathlib import Path
from typing import Any

import harness
import pytest
from harness import Store, flow, write_templates
from sending import deploy
from starlette.exceptions import StarletteDeprecationWarning

from flowhouse.activation import links
from flowhouse.activation.deliver import Options, send_open
from flowhouse.activation.engagement import ingest
from flowhouse.activation.fake.server import FakeProvider
from flowhouse.activation.receiver import Verification, create_app
from flowhouse.activation.render import short_links
from flowhouse.activation.sender import Policy
from flowhouse.core.sql import literal
from flowhouse.flows.settings import Settings
from flowhouse.preview import sms_segments

with warnings.catch_warnings():
    warnings.simplefilter("ignore", StarletteDeprecationWarning)
    from starlette.testclient import TestClient

KEY = "test-signing-key"
BODY = (
    "Your cart is waiting: https://shop.example/cart?c={{ customer.customer_id }}. "
    "Reply STOP to opt out."
)
SHORT = re.compile(r"https://hooks\.shop\.example/c/([A-Za-z0-9_-]+)")


def send_sms(
    store: Store,
    fake: FakeProvider,
    inbox: Path | None,
    monkeypatch: pytest.MonkeyPatch,
    workers: int | None = None,
) -> str:
    """One SMS with a link queued and sent (rendered in ``workers`` worker processes, when
    given); the body the provider received."""

    def templates(folder: Path) -> None:
        write_templates(folder)
        (folder / "templates" / "l.txt.j2").write_text(BODY)

    monkeypatch.setattr(harness, "write_templates", templates)
    folder = deploy(store, flow("cart", steps=[{"id": "s", "send": {"channel": "sms",
                                                                    "template": "l.txt.j2"}}]))  # fmt: skip
    store.tick("2026-03-01 00:00")
    store.customer("c1", first_name="Ann", phone="+15550000001", sms_consent=True)
    store.event("c1", "cart_abandoned", at="2026-03-01 10:00", cart_id="k1")
    store.tick("2026-03-01 10:00")
    options = Options(provider_url=fake.url, inbox=inbox, environ={"FLOWHOUSE_SIGNING_KEY": KEY},
                      policy=Policy(base_backoff=0.01, max_wait=2.0, seed=1),
                      workers=workers)  # fmt: skip
    report = send_open(store.wh, store.schema, datetime(2026, 3, 1, 10, 1), store.compiled,
                       store.settings, folder, options)  # fmt: skip
    assert report.outcomes["sent"] == 1, report.describe()
    [received] = fake.state.messages("twilio")
    return received.body or ""


def receiver(inbox: Path) -> TestClient:
    return TestClient(create_app(inbox, KEY, Verification(unverified=frozenset({"sendgrid",
                                                                                "twilio"}))))  # fmt: skip


def test_an_sms_click_redirects_and_becomes_a_message_clicked_event(
    store: Store, fake: FakeProvider, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    inbox = tmp_path / "hooks"
    body = send_sms(store, fake, inbox, monkeypatch)
    [token] = SHORT.findall(body)
    short = f"https://hooks.shop.example/c/{token}"
    assert len(token) == links.TOKEN_CHARS == 20 and len(short) == 49
    assert body == f"Your cart is waiting: {short}. Reply STOP to opt out."
    # the segment count is of the body as sent: one GSM-7 segment, short link included
    assert sms_segments(body).segments == 1
    [message] = store.rows("messages")
    client = receiver(inbox)
    forged = token[:-1] + ("A" if token[-1] != "A" else "B")
    for bad in (forged, "short"):
        answer = client.get(f"/c/{bad}", follow_redirects=False)
        assert answer.status_code == 404, bad
    assert not (inbox / "flowhouse").exists()  # nothing recorded for them
    answer = client.get(f"/c/{token}", follow_redirects=False)
    assert answer.status_code == 302
    assert answer.headers["location"] == "https://shop.example/cart?c=c1"
    [stored] = (inbox / "flowhouse").glob("*.json")
    click: dict[str, Any] = json.loads(stored.read_text())
    assert (click["kind"], click["message_id"], click["channel"]) == (
        "click", message["message_id"], "sms")  # fmt: skip

    store.wh.execute(
        "insert into raw.customers (customer_id, created_at, updated_at) "
        "values ('c1', current_timestamp, current_timestamp)"
    )
    store.wh.commit()
    report = ingest(store.location, inbox, datetime(2026, 3, 1, 11, 0))
    assert (report.events, report.loaded) == ({"message_clicked": 1}, 1), report.describe()
    again = client.get(f"/c/{token}", follow_redirects=False)  # a second click is a second event
    assert again.status_code == 302
    assert ingest(store.location, inbox, datetime(2026, 3, 1, 11, 5)).loaded == 1
    rows = store.wh.query(
        "select customer_id, properties from raw.events where event_type = "
        + literal("message_clicked").sql(store.dialect)
    )
    assert len(rows) == 2
    for customer_id, properties in rows:
        props = properties if isinstance(properties, dict) else json.loads(properties)
        assert customer_id == "c1"
        assert props["message_id"] == message["message_id"]
        assert (props["channel"], props["url"]) == ("sms", "https://shop.example/cart?c=c1")
    # signed by the store but on file no more (expired, erased): gone, said so, and counted
    unknown = links.short_token("not-a-message", 1, KEY)
    assert client.get(f"/c/{unknown}").status_code == 410
    assert ingest(store.location, inbox, datetime(2026, 3, 1, 11, 10)).expired_clicks == 1


def test_short_links_rendered_in_a_worker_process_are_registered_before_sending(
    store: Store, fake: FakeProvider, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A render worker shortens the links in a process of its own: what it registered reaches
    ``<inbox>/links/`` before the SMS goes out, so the click redirects rather than 404s."""
    inbox = tmp_path / "hooks"
    body = send_sms(store, fake, inbox, monkeypatch, workers=1)
    [token] = SHORT.findall(body)
    assert links.LinkRegistry(inbox / links.LINKS_FOLDER).find(token) is not None
    answer = receiver(inbox).get(f"/c/{token}", follow_redirects=False)
    assert answer.status_code == 302, answer.text
    assert answer.headers["location"] == "https://shop.example/cart?c=c1"


def test_without_an_inbox_sms_links_go_out_as_written(
    store: Store, fake: FakeProvider, monkeypatch: pytest.MonkeyPatch
) -> None:
    """No folder to register short links in: a short link would answer 404, so none is made."""
    body = send_sms(store, fake, None, monkeypatch)
    assert "https://shop.example/cart?c=c1." in body and not SHORT.search(body)


def test_shortening_leaves_own_links_and_punctuation(tmp_path: Path) -> None:
    shortener = links.ShortLinks("https://hooks.shop.example/", KEY, tmp_path / "links")
    text = ("See https://shop.example/a, (https://shop.example/b) or stop: "
            "https://hooks.shop.example/unsubscribe?token=x")  # fmt: skip
    out = shortener.shorten(text, "m1", "c1", "sms")
    first, second = (links.short_token("m1", n, KEY) for n in (1, 2))
    assert out == (f"See https://hooks.shop.example/c/{first}, "
                   f"(https://hooks.shop.example/c/{second}) or stop: "
                   "https://hooks.shop.example/unsubscribe?token=x")  # fmt: skip
    # the same message renders the same tokens (a retry registers the same links)
    assert shortener.shorten(text, "m1", "c1", "sms") == out
    shortener.flush()
    registry = links.LinkRegistry(tmp_path / "links")
    found = registry.find(first)
    assert found is not None and found.url == "https://shop.example/a"
    assert registry.find(links.short_token("m2", 1, KEY)) is None
    assert not links.check_short(first, "another key")


def test_click_tracking_can_be_switched_off() -> None:
    settings = Settings.model_validate(
        {"store": {"name": "S", "url": "https://shop.example"},
         "delivery": {"sms_click_tracking": False}}
    )  # fmt: skip
    assert short_links(settings, KEY, None) is None
