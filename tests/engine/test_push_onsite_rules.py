"""Send-time rules on the push and onsite channels, decided by the engine when it queues (on
DuckDB and PostgreSQL): push routed to FCM needs a device token (``no_address``) and push consent
(``consent``, ``unsubscribed``); push routed to the store's own webhook keeps the customer id as
its address and needs no push consent; onsite needs no opt-in but honours an onsite opt-out;
onsite messages spend no cross-channel cap and have smart sending only when the store sets it
for onsite; quiet hours cannot be set for onsite."""

from __future__ import annotations

from typing import Any

import pytest
from harness import EMAIL, Store, case_trigger, flow

from flowhouse.core.errors import ConfigError

PUSH = {"channel": "push", "template": "t.txt.j2", "title": "Hi"}
ONSITE = {"channel": "onsite", "template": "t.txt.j2", "title": "Hi"}
BASE = "store: {name: Test, timezone: UTC, postal_address: 1 Main St}\nsmart_sending: {}\n"
NATIVE = BASE + "delivery: {routes: {push: fcm}}\n"

#: (case, channel, the customer's attributes, status, skip reason, address)
CASES: list[tuple[str, dict[str, Any], dict[str, Any], str, str | None, str | None]] = [
    ("push ok", PUSH, {"push_token": "tok-a", "has_push_consent": True}, "queued", None, "tok-a"),
    ("push no token", PUSH, {"has_push_consent": True}, "skipped", "no_address", None),
    ("push never opted in", PUSH, {"push_token": "tok-c", "has_push_consent": False},
     "skipped", "consent", "tok-c"),
    ("push unsubscribed", PUSH,
     {"push_token": "tok-d", "has_push_consent": False, "has_push_opt_in": True,
      "push_unsubscribed_at": "2026-03-01 08:00"}, "skipped", "unsubscribed", "tok-d"),
    ("onsite ok", ONSITE, {}, "queued", None, "c4"),
    ("onsite opted out", ONSITE, {"onsite_unsubscribed_at": "2026-03-01 08:00"},
     "skipped", "unsubscribed", "c5"),
]  # fmt: skip


def _decide(store: Store, settings: str, cases: list[Any], **flow_fields: Any) -> list[Any]:
    flows = [
        flow(f"f{i}", [{"id": "s", "send": channel}], trigger=case_trigger(f"k{i}"), **flow_fields)
        for i, (_, channel, *_) in enumerate(cases)
    ]
    store.flows(*flows, settings=settings)
    store.tick("2026-03-01 00:00")
    for i, (_, _, attributes, *_) in enumerate(cases):
        store.customer(f"c{i}", **attributes)
        store.event(f"c{i}", "cart_abandoned", at="2026-03-01 10:00", case=f"k{i}")
    store.tick("2026-03-01 12:00")
    found = {m["customer_id"]: m for m in store.messages()}
    return [
        (found[f"c{i}"]["status"], found[f"c{i}"]["skip_reason"], found[f"c{i}"]["address"])
        for i in range(len(cases))
    ]


def test_consent_and_skip_reasons_per_channel(store: Store) -> None:
    expected = [(status, reason, address) for *_, status, reason, address in CASES]
    assert _decide(store, NATIVE, CASES) == expected


def test_transactional_push_needs_a_token_but_no_consent(store: Store) -> None:
    cases = [CASES[1], CASES[2], CASES[3]]
    assert _decide(store, NATIVE, cases, transactional=True) == [
        ("skipped", "no_address", None), ("queued", None, "tok-c"), ("queued", None, "tok-d"),
    ]  # fmt: skip


def test_push_through_the_webhook_keeps_the_customer_id_and_needs_no_push_consent(
    store: Store,
) -> None:
    cases = [("webhook push", PUSH, {"has_push_consent": False}, "queued", None, "c0")]
    assert _decide(store, BASE, cases) == [("queued", None, "c0")]


def test_onsite_spends_no_cross_channel_cap(store: Store) -> None:
    caps = BASE + "caps:\n  - {channel: any, limit: 1, period: 1d}\n"
    store.flows(
        flow("banner", [{"id": "b", "send": ONSITE}]),
        flow("mail", [{"id": "wait", "wait": "1h"}, {"id": "m", "send": EMAIL}]),
        flow("mail2", [{"id": "wait", "wait": "2h"}, {"id": "m2", "send": EMAIL}]),
        settings=caps,
    )
    store.tick("2026-03-01 00:00")
    store.customer("c1")
    store.event("c1", "cart_abandoned", at="2026-03-01 10:00")
    store.tick("2026-03-01 13:00")
    assert [m[:4] for m in store.outbox("c1")] == [
        ("b", "onsite", "queued", None),
        ("m", "email", "queued", None),  # the onsite banner did not spend the budget
        ("m2", "email", "skipped", "frequency_cap"),
    ]


def test_onsite_smart_sending_only_when_the_store_sets_it(store: Store) -> None:
    steps = [
        {"id": "b1", "send": ONSITE},
        {"id": "wait", "wait": "1h"},
        {"id": "b2", "send": ONSITE},
    ]
    store.flows(flow("banner", steps, smart_sending="6h"), settings=BASE + "")
    store.tick("2026-03-01 00:00")
    store.customer("c1")
    store.event("c1", "cart_abandoned", at="2026-03-01 10:00")
    store.tick("2026-03-01 12:00")
    assert [m[2] for m in store.outbox("c1")] == ["queued", "queued"]  # the flow's 6h: not onsite
    store.flows(
        flow("banner2", steps, trigger="browse_abandoned"),
        settings=BASE.replace("smart_sending: {}", "smart_sending: {onsite: 6h}"),
    )
    store.tick("2026-03-01 12:00")
    store.event("c1", "browse_abandoned", at="2026-03-01 12:30")
    store.tick("2026-03-01 14:00")
    assert [m[2:4] for m in store.outbox("c1")][2:] == [
        ("skipped", "smart_sending"), ("skipped", "smart_sending"),
    ]  # fmt: skip


def test_quiet_hours_cannot_be_set_for_onsite(store: Store) -> None:
    quiet = BASE + "quiet_hours: {onsite: {start: '21:00', end: '08:00'}}\n"
    with pytest.raises(ConfigError, match=r"quiet_hours\.onsite"):
        store.flows(flow("banner", [{"id": "b", "send": ONSITE}]), settings=quiet)
