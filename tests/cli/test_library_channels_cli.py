"""Every channel end to end from the shipped flow library, through the command line: a small
generated store, customers with each channel's consent given, missing and withdrawn, the behaviour
that triggers the library's flows, then `flowhouse tick` with sending to the fake provider (which
validates every request against the vendored documents). Push goes to FCM from the cart
abandonment flow, WhatsApp to Twilio with the approved template from price_drop, Viber to Vonage
from welcome (on day 3), and browse abandonment's onsite card is served to the storefront by `flowhouse
receive`; each channel's skips are recorded with their reasons."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "activation"))

from sending import fake_provider_running, free_port, serve, wait_for

from flowhouse.activation.providers.onsite.token import sign
from flowhouse.core.sql import render, statement
from flowhouse.core.warehouse import Location, Warehouse

pytestmark = pytest.mark.slow

SECRET = "library-onsite-secret"
#: The receiver judges onsite expiry by the wall clock, so the store lives in the recent past.
TODAY = datetime.now(UTC).replace(tzinfo=None, hour=0, minute=0, second=0, microsecond=0)
LAUNCH = TODAY - timedelta(days=4)
START = LAUNCH - timedelta(days=14)
SKU = "SKU-00002"

#: Our customers, by the channel they test: (phone, device token, consent events before launch).
PEOPLE: dict[str, tuple[str | None, str | None, tuple[tuple[str, str], ...]]] = {
    # push (cart_abandonment.cart_push): a token, no token, a token and push turned off
    "xpush_ok": (None, "fcm-xpush-ok", ()),
    "xpush_none": (None, None, ()),
    "xpush_off": (None, "fcm-xpush-off", (("unsubscribed", "push"),)),
    # onsite (browse_abandonment.last_viewed_card): no opt-in needed
    "xsite": (None, None, ()),
    # WhatsApp (price_drop.whatsapp_reminder): opted in, never asked, opted in then left
    "xwa_ok": ("+14155550101", None, (("opted_in", "whatsapp"),)),
    "xwa_none": ("+14155550102", None, ()),
    "xwa_off": ("+14155550103", None, (("opted_in", "whatsapp"), ("unsubscribed", "whatsapp"))),
    "xwa_nophone": (None, None, (("opted_in", "whatsapp"),)),
}
#: New customers for welcome.viber_welcome (day 3, 10:00), signing up after launch, with their
#: Viber choices.
NEWCOMERS: dict[str, tuple[str | None, tuple[tuple[str, str], ...]]] = {
    "xvb_ok": ("+447700900101", (("opted_in", "viber"),)),
    "xvb_none": ("+447700900102", ()),
    "xvb_off": ("+447700900103", (("opted_in", "viber"), ("unsubscribed", "viber"))),
}
EXPECTED = {
    ("xpush_ok", "push"): ("sent", None),
    ("xpush_none", "push"): ("skipped", "no_address"),
    ("xpush_off", "push"): ("skipped", "unsubscribed"),
    ("xsite", "onsite"): ("sent", None),
    ("xwa_ok", "whatsapp"): ("sent", None),
    ("xwa_none", "whatsapp"): ("skipped", "consent"),
    ("xwa_off", "whatsapp"): ("skipped", "unsubscribed"),
    ("xwa_nophone", "whatsapp"): ("skipped", "no_address"),
    ("xvb_ok", "viber"): ("sent", None),
    ("xvb_none", "viber"): ("skipped", "consent"),
    ("xvb_off", "viber"): ("skipped", "unsubscribed"),
}


def run(*args: str) -> str:
    """A command in its own process, as a scheduler runs it (dbt in-process keeps the DuckDB file
    open, which would keep the receiver below from reading it)."""
    done = subprocess.run([sys.executable, "-m", "flowhouse.cli", *args], capture_output=True,
                          text=True, timeout=600, check=False)  # fmt: skip
    assert done.returncode == 0, done.stdout + done.stderr
    return done.stdout


def iso(moment: datetime) -> str:
    return moment.isoformat(timespec="seconds")


def ts(moment: datetime) -> str:
    return moment.strftime("%Y-%m-%d %H:%M:%S")


_CUSTOMER = """
insert into raw.customers (customer_id, email, phone, first_name, created_at, timezone, country,
    email_opt_in, sms_opt_in, properties, updated_at)
values (:id, :email, :phone, :name, cast(:at as timestamp), 'UTC', 'US', true, false,
    cast('{}' as json), cast(:at as timestamp))
"""
_EVENT = """
insert into raw.events (event_id, customer_id, event_type, occurred_at, loaded_at, properties)
values (:id, :customer, :type, cast(:at as timestamp), cast(:loaded as timestamp),
    cast(:properties as json))
"""
_TOKEN = """
insert into raw.device_tokens (customer_id, token, platform, created_at)
values (:customer, :token, 'ios', cast(:at as timestamp))
"""


class Store:
    def __init__(self, wh: Warehouse) -> None:
        self.wh = wh
        self.n = 0

    def run(self, text: str, **values: Any) -> None:
        self.wh.execute(render(statement(text, **values), self.wh.dialect))

    def customer(self, customer_id: str, phone: str | None, at: datetime) -> None:
        email = f"{customer_id}@example.com"
        name = customer_id.split("_")[0][1:].title()  # xwa_ok: Wa
        self.run(_CUSTOMER, id=customer_id, email=email, phone=phone, name=name, at=ts(at))

    def event(self, customer: str | None, kind: str, at: datetime, **properties: Any) -> None:
        """An event loaded a minute after it happened, or, when it happened before the launch,
        loaded just after it (late: the store's export of consent arrives with the launch)."""
        self.n += 1
        loaded = max(at, LAUNCH + timedelta(minutes=30)) + timedelta(minutes=1)
        self.run(_EVENT, id=f"x-{self.n}", customer=customer, type=kind, at=ts(at),
                 loaded=ts(loaded), properties=json.dumps(properties))  # fmt: skip


def people(location: Location) -> None:
    """Our customers with their consent, and the behaviour that enrolls them after launch."""
    with Warehouse.open(location) as wh:
        store = Store(wh)
        [(price,)] = wh.query(f"select price from raw.products where sku = '{SKU}'")
        joined = LAUNCH - timedelta(days=10)
        for customer_id, (phone, token, consent) in PEOPLE.items():
            store.customer(customer_id, phone, joined)
            if token:
                store.run(_TOKEN, customer=customer_id, token=token, at=ts(joined))
            for i, (kind, channel) in enumerate(consent):
                store.event(customer_id, kind, joined + timedelta(days=1 + i), channel=channel)
        for i, customer_id in enumerate(("xpush_ok", "xpush_none", "xpush_off")):
            at = LAUNCH + timedelta(hours=1, minutes=i)
            store.event(customer_id, "added_to_cart", at, session_id=f"s-{customer_id}",
                        cart_id=f"k-{customer_id}", sku=SKU, quantity=1, price=float(price))  # fmt: skip
        # the WhatsApp customers look at the sku before its price drops; the onsite customer on
        # day 3, so that the card is still showing when the storefront polls (now)
        viewers = {c: LAUNCH + timedelta(hours=1) for c in PEOPLE if c.startswith("xwa")}
        viewers["xsite"] = LAUNCH + timedelta(days=3, hours=1)
        for customer_id, start in viewers.items():
            for minute in (0, 2, 4):
                at = start + timedelta(minutes=minute)
                store.event(customer_id, "product_viewed", at, session_id=f"s-{customer_id}",
                            sku=SKU, category="kitchen", price=float(price))  # fmt: skip
        dropped = round(float(price) * 0.7, 2)
        store.event(None, "price_changed", LAUNCH + timedelta(hours=3), sku=SKU,
                    price=dropped, previous_price=float(price))  # fmt: skip
        for i, (customer_id, (phone, consent)) in enumerate(NEWCOMERS.items()):
            at = LAUNCH + timedelta(hours=1, minutes=10 * i)
            store.customer(customer_id, phone, at)
            store.event(customer_id, "customer_created", at, source="web", wholesale=False)
            for j, (kind, channel) in enumerate(consent):
                store.event(customer_id, kind, at + timedelta(minutes=2 + j), channel=channel)
        wh.commit()


@pytest.fixture
def fake_provider(tmp_path: Path) -> Iterator[str]:
    with fake_provider_running("--inbox", str(tmp_path / "inbox")) as url:
        yield url


def test_every_channel_from_the_library_reaches_the_fake_provider_or_the_storefront(
    tmp_path: Path, fake_provider: str
) -> None:
    warehouse = str(tmp_path / "store.duckdb")
    location = Location.parse(warehouse)
    run("generate", "--warehouse", warehouse, "--customers", "300", "--days", "14",
        "--start", iso(START))  # fmt: skip
    inbox = tmp_path / "inbox"
    base = ["--warehouse", warehouse, "--inbox", str(inbox), "--provider-url", fake_provider]
    run("tick", *base, "--now", iso(LAUNCH))  # the library goes live
    people(location)
    for hours, build in ((4, True), (6, False), (13, False), (38, True), (76, True), (82, False)):
        now = LAUNCH + timedelta(hours=hours)
        httpx.post(f"{fake_provider}/_fake/clock", json={"now": iso(now)})
        run("tick", *base, "--now", iso(now), *([] if build else ["--no-build"]))

    with Warehouse.open(location) as wh:
        outbox = wh.query(
            "select customer_id, channel, status, skip_reason, flow_id, step_id, address, "
            "failure_reason from flowhouse.messages where customer_id like 'x%' "
            "and channel in ('push', 'onsite', 'whatsapp', 'viber')"
        )
    # sent, or delivered once the fake's status callback was ingested by a later tick
    found = {(r[0], r[1]): ("sent" if r[2] == "delivered" else r[2], r[3]) for r in outbox}
    assert {k: v for k, v in found.items() if k in EXPECTED} == EXPECTED, outbox
    # the others (a cart holder also hears of the price drop, a viewer gets the onsite card)
    # are sent or skipped with a reason too
    assert all(status == "sent" or (status == "skipped" and reason) for status, reason in
               found.values()), outbox  # fmt: skip
    steps = {(r[1], r[4], r[5]) for r in outbox}
    assert steps == {
        ("push", "cart_abandonment", "cart_push"),
        ("onsite", "browse_abandonment", "last_viewed_card"),
        ("whatsapp", "price_drop", "whatsapp_reminder"),
        ("viber", "welcome", "viber_welcome"),
    }
    addresses = {(r[0], r[1]): r[6] for r in outbox if found[r[0], r[1]][0] == "sent"}
    assert addresses[("xpush_ok", "push")] == "fcm-xpush-ok"

    stats = httpx.get(f"{fake_provider}/_fake/stats").json()
    assert not set(stats["rejected"]) - {"unregistered"}, stats  # every request was valid
    received = httpx.get(f"{fake_provider}/_fake/messages").json()["messages"]
    ours = {(m["provider"], m["address"]): m for m in received}
    assert ("fcm", "fcm-xpush-ok") in ours
    assert not any(m["address"] in ("fcm-xpush-off",) for m in received)
    whatsapp = ours[("twilio", "whatsapp:+14155550101")]
    assert whatsapp["body"].startswith("HX00000000000000000000000000000000 ")
    # the rendered ContentVariables (the fake keeps the first 200 characters)
    variables = whatsapp["body"].split(" ", 1)[1].replace(" ", "")
    assert variables.startswith('{"1":"Wa","2":"'), whatsapp
    assert [m["address"] for m in received if m["provider"] == "vonage"] == ["447700900101"]
    assert not any(m["address"].endswith(("0102", "0103")) for m in received)

    port = free_port()
    env = {"FLOWHOUSE_SIGNING_KEY": "k", "FLOWHOUSE_ONSITE_SECRET": SECRET}
    proc = serve("receive", "--port", str(port), "--warehouse", warehouse, "--inbox", str(inbox),
                 "--unverified", "sendgrid", "--unverified", "twilio", env=env)  # fmt: skip
    url = f"http://127.0.0.1:{port}"
    try:
        wait_for(f"{url}/unsubscribe", proc)
        token = sign(SECRET, "xsite", int(time.time()) + 600)
        polled = httpx.get(f"{url}/onsite/messages", params={"customer": "xsite", "token": token})
        assert polled.status_code == 200, polled.text
        [card] = polled.json()["messages"]
        assert (card["flow_id"], card["step_id"]) == ("browse_abandonment", "last_viewed_card")
        assert card["title"] == "Still on your mind?" and card["body_format"] == "html"
        assert "Site, still thinking about" in card["body"]
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(timeout=15)
