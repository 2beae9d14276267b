"""An order placed after a click on an SMS short link is credited to that SMS through the
``sms_click`` attribution window: the click goes through the receiver and the ingest like a real
one, then the marts are built."""

from __future__ import annotations

import warnings
from datetime import datetime, timedelta
from pathlib import Path

import pytest
from starlette.exceptions import StarletteDeprecationWarning
from test_marts import NOW, T0, Store, enroll, message_id, read, write

from flowhouse.activation import links, receiver
from flowhouse.activation.engagement import ingest
from flowhouse.activation.receiver import Verification, create_app
from flowhouse.core.build import build_models
from flowhouse.core.warehouse import Location, Warehouse

with warnings.catch_warnings():
    warnings.simplefilter("ignore", StarletteDeprecationWarning)
    from starlette.testclient import TestClient

pytestmark = pytest.mark.slow

KEY = "test-signing-key"
CLICKED = T0 + timedelta(days=1, hours=2)


def test_an_order_after_an_sms_click_is_attributed_through_sms_click(
    tmp_warehouse: Location, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    store = Store()
    enroll(store, "s1", "a", holdout=False, sms=True, waiting=False)
    store.order("s1", CLICKED + timedelta(hours=3), 80.0)
    write(store, tmp_warehouse)
    sms = message_id("e-s1", "send_sms")

    inbox = tmp_path / "inbox"
    shortener = links.ShortLinks("https://hooks.shop.example", KEY, inbox / links.LINKS_FOLDER)
    body = shortener.shorten("Back in stock: https://shop.example/p/1", sms, "s1", "sms")
    shortener.flush()
    monkeypatch.setattr(receiver, "received_at", lambda: f"{CLICKED:%Y-%m-%dT%H:%M:%S}.000000Z")
    client = TestClient(create_app(inbox, KEY, Verification(unverified=frozenset({"twilio",
                                                                                  "sendgrid"}))))  # fmt: skip
    path = body.split("https://hooks.shop.example", 1)[1]
    assert client.get(path, follow_redirects=False).status_code == 302
    report = ingest(tmp_warehouse, inbox, CLICKED + timedelta(minutes=1))
    assert report.loaded == 1, report.describe()

    build_models(tmp_warehouse, select=["+order_attribution"], now=NOW, tests=False)
    with Warehouse.open(tmp_warehouse) as wh:
        credited = read(wh, "order_attribution",
                        ["customer_id", "message_id", "channel", "touch", "touched_at",
                         "window_hours"])  # fmt: skip
    assert credited == [{"customer_id": "s1", "message_id": sms, "channel": "sms",
                         "touch": "click", "touched_at": CLICKED,
                         "window_hours": 5 * 24.0}]  # fmt: skip
    assert isinstance(credited[0]["touched_at"], datetime)
