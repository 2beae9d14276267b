"""Filters beyond a predicate (issue 18): an audience or filter outside a segment or a list, and a
filter or suppression that looks at the customer's own recent events before a message's due time
("no messaging to customers with a refund or an open support ticket within 14 days")."""

from __future__ import annotations

from typing import Any

import pytest
from harness import EMAIL, Store, flow

HELLO = [{"id": "hello", "send": EMAIL}]
SLOW = [{"id": "wait_1d", "wait": "1d"}, {"id": "hello", "send": EMAIL}]

OUTSIDE: list[tuple[str, dict[str, Any]]] = [
    ("not_segment", {"not_segment": "vip"}),
    ("not_list", {"not_list": "newsletter"}),
    ("with_a_predicate", {"where": "customer.order_count = 0", "not_segment": "vip"}),
]


@pytest.mark.parametrize(("name", "audience"), OUTSIDE, ids=[a[0] for a in OUTSIDE])
def test_audience_outside_a_segment_or_list_refuses_members(
    store: Store, name: str, audience: dict[str, Any]
) -> None:
    store.customer("member", order_count=0)
    store.customer("other", order_count=0)
    store.segment("member", "vip")
    store.list_member("member", "newsletter")
    store.flows(flow("cart", HELLO, audience=audience))
    store.tick("2026-03-01 00:00")
    store.event("member", "cart_abandoned", at="2026-03-01 09:00", event_id="t_member")
    store.event("other", "cart_abandoned", at="2026-03-01 10:00", event_id="t_other")
    store.tick("2026-03-01 12:00")
    assert store.entries() == [
        ("member", "t_member", "refused", "audience"),
        ("other", "t_other", "enrolled", "treatment"),
    ]


def test_filter_outside_a_segment_ends_an_enrollment_that_joined_it(store: Store) -> None:
    store.customer("joins")
    store.customer("stays")
    store.flows(flow("cart", SLOW, filter={"not_segment": "vip", "not_list": "newsletter"}))
    store.tick("2026-03-01 00:00")
    store.event("joins", "cart_abandoned", at="2026-03-01 10:00")
    store.event("stays", "cart_abandoned", at="2026-03-01 10:00")
    store.tick("2026-03-01 10:05")
    store.segment("joins", "vip")  # joined after entry: the re-check before the send stops it
    store.tick("2026-03-02 10:05")
    assert store.trail("joins")[-1] == ("hello", "exited", "filter", "2026-03-02 10:00")
    assert [m[:4] for m in store.outbox("stays")] == [("hello", "email", "queued", None)]
    assert store.outbox("joins") == []


REFUND_14D = {"recent_event": ["order_refunded", "support_ticket_opened"], "within": "14d"}


def _recent(store: Store) -> None:
    """Customers with a refund or a ticket at some time before the send, due 03-10 10:00."""
    for customer in ("refund_13d", "ticket_1h", "refund_15d", "refund_after", "order_13d"):
        store.customer(customer)
    store.event("refund_13d", "order_refunded", at="2026-02-25 10:00")
    store.event("ticket_1h", "support_ticket_opened", at="2026-03-10 09:00")
    store.event("refund_15d", "order_refunded", at="2026-02-23 10:00")
    store.event("refund_after", "order_refunded", at="2026-03-10 11:00")
    store.event("order_13d", "order_placed", at="2026-02-25 10:00")


EXPECTED_SKIPS = {
    "refund_13d": True, "ticket_1h": True, "refund_15d": False, "refund_after": False,
    "order_13d": False,
}  # fmt: skip


def test_suppress_on_a_recent_event_before_the_due_time(store: Store) -> None:
    _recent(store)
    store.flows(flow("cart", HELLO, suppress=REFUND_14D))
    store.tick("2026-03-10 00:00")
    for customer in EXPECTED_SKIPS:
        store.event(customer, "cart_abandoned", at="2026-03-10 10:00")
    store.tick("2026-03-10 12:00")
    reasons = {m["customer_id"]: m["skip_reason"] for m in store.messages()}
    assert reasons == {c: "suppressed" if skip else None for c, skip in EXPECTED_SKIPS.items()}


def test_filter_without_recent_events_ends_the_enrollment(store: Store) -> None:
    _recent(store)
    store.flows(
        flow("cart", HELLO, filter={"no_recent_event": REFUND_14D["recent_event"], "within": "14d"})
    )
    store.tick("2026-03-10 00:00")
    for customer in EXPECTED_SKIPS:
        store.event(customer, "cart_abandoned", at="2026-03-10 10:00")
    store.tick("2026-03-10 12:00")
    sent = {m["customer_id"] for m in store.messages()}
    assert sent == {c for c, skip in EXPECTED_SKIPS.items() if not skip}
    assert store.trail("ticket_1h")[-1] == ("hello", "exited", "filter", "2026-03-10 10:00")


def test_suppress_where_and_recent_event_either_holds(store: Store) -> None:
    store.customer("wholesale", is_wholesale=True)
    store.customer("refunded")
    store.customer("clean")
    store.event("refunded", "order_refunded", at="2026-03-09 10:00")
    store.flows(flow("cart", HELLO, suppress={"where": "customer.is_wholesale"} | REFUND_14D))
    store.tick("2026-03-10 00:00")
    for customer in ("wholesale", "refunded", "clean"):
        store.event(customer, "cart_abandoned", at="2026-03-10 10:00")
    store.tick("2026-03-10 12:00")
    reasons = {m["customer_id"]: m["skip_reason"] for m in store.messages()}
    assert reasons == {"wholesale": "suppressed", "refunded": "suppressed", "clean": None}
