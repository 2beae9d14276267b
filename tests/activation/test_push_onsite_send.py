"""Sending native push through FCM (the fake provider, over real HTTP) and writing onsite messages
to the warehouse, on DuckDB and PostgreSQL: a push reaches each usable device token, a token FCM
answers dead is recorded and never used again; onsite messages are written once, then seen,
dismissed or expired with the reason."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import pytest
from harness import Store, flow
from sending import deploy
from sqlglot import exp

from flowhouse.activation import deliver, onsite
from flowhouse.activation.deliver import Options, SendReport, send_open
from flowhouse.activation.fake.server import FakeProvider
from flowhouse.activation.sender import Policy
from flowhouse.core.warehouse import create_table

FAST = Policy(base_backoff=0.01, max_wait=2.0, seed=1)
SETTINGS = """
store: {name: Test, url: https://shop.example, timezone: UTC, postal_address: 1 Main St}
smart_sending: {}
delivery:
  routes: {push: fcm}
  fcm: {project_id: shop-app}
  links_url: https://hooks.shop.example
"""
PUSH = {"channel": "push", "template": "t.txt.j2", "title": "Hi {{ customer.first_name }}"}
ONSITE = {"channel": "onsite", "template": "t.txt.j2", "title": "Saved", "expires_after": "2h"}
DEVICES = (
    ("customer_id", "text", True), ("token", "text", True), ("platform", "text", True),
    ("created_at", "timestamp", True), ("revoked_at", "timestamp", False),
)  # fmt: skip


def tokens(store: Store, *rows: tuple[str, str, str, str | None]) -> None:
    """``staging.stg_device_tokens`` rows (customer, token, platform, revoked_at)."""
    store.wh.execute(create_table("staging.stg_device_tokens", DEVICES, store.dialect))
    for customer, token, platform, revoked in rows:
        values = {"customer_id": customer, "token": token, "platform": platform,
                  "created_at": "2026-02-01 00:00", "revoked_at": revoked}  # fmt: skip
        kinds = {name: kind for name, kind, _ in DEVICES}
        row = tuple(store._value(v, kinds[k]) for k, v in values.items())  # type: ignore[arg-type]
        store.wh.execute(exp.insert(exp.values([row]), "staging.stg_device_tokens"))
    store.wh.commit()


def send(
    store: Store, fake: FakeProvider, folder: Any, now: str, workers: int | None = None
) -> SendReport:
    return send_open(
        store.wh, store.schema, datetime.fromisoformat(now), store.compiled, store.settings,
        folder, Options(provider_url=fake.url, policy=FAST, workers=workers),
    )  # fmt: skip


def queue(store: Store, send_step: dict[str, Any], *customers: str) -> Any:
    cart = flow("cart", [{"id": "s", "send": send_step}], entry={"reentry": "always"})
    folder = deploy(store, cart, settings=SETTINGS)
    store.tick("2026-03-01 00:00")
    for c in customers:
        store.customer(c, first_name="Ann", push_token=f"{c}-ios", has_push_consent=True)
        store.event(c, "cart_abandoned", at="2026-03-01 10:00", cart_id=f"k-{c}")
    store.tick("2026-03-01 10:00")
    return folder


def test_a_push_reaches_each_usable_token_and_a_dead_one_is_retired(
    store: Store, fake: FakeProvider
) -> None:
    folder = queue(store, PUSH, "c1", "c2")
    tokens(
        store,
        ("c1", "c1-ios", "ios", None),
        ("c1", "unregistered-c1-android", "android", None),
        ("c1", "c1-web-old", "web", "2026-02-15 00:00"),  # revoked: not used
        ("c2", "unregistered-c2", "ios", None),  # the only one, dead
    )
    report = send(store, fake, folder, "2026-03-01 10:01")
    assert report.outcomes["sent"] == 1 and report.outcomes["failed"] == 1
    assert report.dead_tokens == 2
    found = {m["customer_id"]: m for m in store.messages()}
    assert found["c1"]["status"] == "sent"
    assert found["c2"]["status"] == "failed"
    assert found["c2"]["failure_reason"].startswith("no valid device token: 404 UNREGISTERED")
    dead = {r["token"]: r for r in store.rows("invalid_device_tokens")}
    assert set(dead) == {"unregistered-c1-android", "unregistered-c2"}
    assert dead["unregistered-c2"]["customer_id"] == "c2"
    received = fake.state.messages("fcm")
    assert sorted(r.address for r in received) == ["c1-ios"]
    assert [r.subject for r in received] == ["Hi Ann"]


@pytest.mark.parametrize("workers", [0, 1])
def test_rendered_chunk_by_chunk_each_push_has_its_own_devices_and_onsite_is_written_once(
    store: Store, fake: FakeProvider, monkeypatch: pytest.MonkeyPatch, workers: int
) -> None:
    """One message a chunk, rendered in the sending process or a worker process: each push
    carries its own customer's tokens (read with the claim, handed over with the chunk), and
    each onsite message is written once."""
    monkeypatch.setattr(deliver, "CHUNK", 1)
    folder = queue(store, PUSH, "c1", "c2", "c3")
    tokens(store, ("c1", "c1-ios", "ios", None), ("c2", "c2-web", "web", None),
           ("c2", "c2-android", "android", None))  # fmt: skip
    report = send(store, fake, folder, "2026-03-01 10:01", workers=workers)
    assert report.by_destination == {"fcm": {"sent": 2}}, report.describe()
    received = sorted((r.address, r.subject) for r in fake.state.messages("fcm"))
    assert received == [("c1-ios", "Hi Ann"), ("c2-android", "Hi Ann"), ("c2-web", "Hi Ann")]
    [c3] = [m for m in store.messages() if m["customer_id"] == "c3"]
    assert (c3["status"], c3["skip_reason"]) == ("skipped", "no_address")  # no token at all

    cart = flow("cart", [{"id": "s", "send": ONSITE}], entry={"reentry": "always"})
    folder = deploy(store, cart, settings=SETTINGS)
    for c in ("c1", "c2", "c3"):
        store.event(c, "cart_abandoned", at="2026-03-01 11:00", cart_id=f"k2-{c}")
    store.tick("2026-03-01 11:00")
    report = send(store, fake, folder, "2026-03-01 11:01", workers=workers)
    assert report.by_destination == {"onsite": {"sent": 3}}, report.describe()
    posted = store.rows("onsite_messages")
    assert sorted(r["customer_id"] for r in posted) == ["c1", "c2", "c3"]


def test_a_retired_token_is_not_used_again(store: Store, fake: FakeProvider) -> None:
    folder = queue(store, PUSH, "c1")
    tokens(store, ("c1", "c1-ios", "ios", None), ("c1", "unregistered-x", "web", None))
    send(store, fake, folder, "2026-03-01 10:01")
    store.event("c1", "cart_abandoned", at="2026-03-01 11:00", cart_id="k-2")
    store.tick("2026-03-01 11:00")
    again = send(store, fake, folder, "2026-03-01 11:01")
    assert (again.outcomes["sent"], again.dead_tokens) == (1, 0)
    assert len(store.rows("invalid_device_tokens")) == 1


def _event(store: Store, event_type: str, message_id: str, at: str) -> None:
    row = {"event_id": f"{event_type}-{message_id}", "customer_id": "c1",
           "event_type": event_type, "occurred_at": at, "loaded_at": at,
           "properties": {"message_id": message_id, "channel": "onsite"}}  # fmt: skip
    kinds = {"event_id": "text", "customer_id": "text", "event_type": "text",
             "occurred_at": "timestamp", "loaded_at": "timestamp", "properties": "json"}  # fmt: skip
    values = tuple(store._value(v, kinds[k]) for k, v in row.items())  # type: ignore[arg-type]
    store.wh.execute(exp.insert(exp.values([values]), "raw.events", columns=list(row)))
    store.wh.commit()


def test_onsite_messages_are_written_once_then_seen_dismissed_or_expired(
    store: Store, fake: FakeProvider
) -> None:
    folder = queue(store, ONSITE, "c1", "c2", "c3")
    report = send(store, fake, folder, "2026-03-01 10:01")
    assert report.by_destination == {"onsite": {"sent": 3}}
    posted = {r["customer_id"]: r for r in store.rows("onsite_messages")}
    assert {c: (r["status"], r["title"]) for c, r in posted.items()} == dict.fromkeys(
        ("c1", "c2", "c3"), ("pending", "Saved")
    )
    assert str(posted["c1"]["expires_at"])[:16] == "2026-03-01 12:00"  # due + the step's 2h
    assert posted["c1"]["body"].startswith("Hi Ann, your cart misses you")
    assert posted["c1"]["body_format"] == "text"
    [shown] = onsite.pending(store.wh, "c1", datetime(2026, 3, 1, 10, 30), 20)
    assert (shown["title"], shown["status"]) == ("Saved", "pending")
    c1, c2 = posted["c1"]["message_id"], posted["c2"]["message_id"]
    _event(store, "message_opened", c1, "2026-03-01 10:20")
    _event(store, "message_opened", c2, "2026-03-01 10:20")
    _event(store, "message_dismissed", c2, "2026-03-01 10:25")
    later = send(store, fake, folder, "2026-03-01 11:00")
    assert later.onsite == {"seen": 2, "dismissed": 1}
    assert send(store, fake, folder, "2026-03-01 12:30").onsite == {"expired": 2}
    ended = {
        r["customer_id"]: (r["status"], r["end_reason"]) for r in store.rows("onsite_messages")
    }
    assert ended == {
        "c1": ("expired", "expired: seen, never dismissed, past its time to live"),
        "c2": ("dismissed", "dismissed by the customer"),
        "c3": ("expired", "expired: never seen within its time to live"),
    }
    assert onsite.pending(store.wh, "c1", datetime(2026, 3, 1, 12, 30), 20) == []
    assert len(store.rows("onsite_messages")) == 3  # never written twice
