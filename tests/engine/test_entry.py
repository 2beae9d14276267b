"""Entry: trigger predicates, audiences, re-entry, concurrency, going live, entry keys, and the
order triggers are considered in (DESIGN.md, "Entry" and "Order of consideration")."""

from __future__ import annotations

import hashlib
from typing import Any

import pytest
from harness import EMAIL, Store, case_trigger, flow, ts

HELLO = [{"id": "hello", "send": EMAIL}]


def md5(text: str) -> str:
    return hashlib.md5(text.encode()).hexdigest()


SLOW = [{"id": "wait_3d", "wait": "3d"}, {"id": "hello", "send": EMAIL}]


def test_trigger_predicate_selects_events_and_others_are_not_triggers(store: Store) -> None:
    store.customer("c1")
    store.customer("c2")
    store.flows(
        flow("cart", HELLO, trigger={"event": "cart_abandoned", "where": "event.value >= 20"})
    )
    store.tick("2026-03-01 00:00")
    store.event("c1", "cart_abandoned", at="2026-03-01 10:00", event_id="small", value=10)
    store.event("c2", "cart_abandoned", at="2026-03-01 10:00", event_id="big", value=30)
    store.event("c1", "product_viewed", at="2026-03-01 10:00", event_id="view", value=50)
    store.tick("2026-03-01 10:05")
    # A non-matching event is not a trigger at all: nothing is journaled for it.
    assert store.entries() == [("c2", "big", "enrolled", "treatment")]
    assert store.outbox() == [("hello", "email", "queued", None, "2026-03-01 10:00")]


AUDIENCES: list[tuple[str, dict[str, Any]]] = [
    ("where", {"where": "customer.order_count = 0"}),
    ("segment", {"segment": "vip"}),
    ("list", {"list": "newsletter"}),
    ("all_given_must_hold", {"where": "customer.order_count = 0", "segment": "vip"}),
]


@pytest.mark.parametrize(("name", "audience"), AUDIENCES, ids=[a[0] for a in AUDIENCES])
def test_audience_refuses_outsiders(store: Store, name: str, audience: dict[str, Any]) -> None:
    store.customer("inside", order_count=0)
    store.customer("outside", order_count=2)
    store.segment("inside", "vip")
    store.list_member("inside", "newsletter")
    if name == "all_given_must_hold":  # in the segment but fails the predicate
        store.segment("outside", "vip")
    store.flows(flow("cart", HELLO, audience=audience))
    store.tick("2026-03-01 00:00")
    store.event("outside", "cart_abandoned", at="2026-03-01 09:00", event_id="t_out")
    store.event("inside", "cart_abandoned", at="2026-03-01 10:00", event_id="t_in")
    store.event("nobody", "cart_abandoned", at="2026-03-01 11:00", event_id="t_none")
    store.tick("2026-03-01 12:00")
    assert store.entries() == [
        ("outside", "t_out", "refused", "audience"),
        ("inside", "t_in", "enrolled", "treatment"),
        ("nobody", "t_none", "refused", "audience"),  # no attributes at all
    ]
    assert [e["customer_id"] for e in store.enrollments()] == ["inside"]


def test_audience_is_judged_once_at_entry(store: Store) -> None:
    store.customer("c1", order_count=2)
    store.flows(flow("cart", SLOW, audience={"where": "customer.order_count = 0"}))
    store.tick("2026-03-01 00:00")
    store.event("c1", "cart_abandoned", at="2026-03-01 10:00", event_id="t1")
    store.tick("2026-03-01 10:05")
    store.attributes("c1", order_count=0)  # joins the audience later: the trigger stays dropped
    store.tick("2026-03-05 00:00")
    assert store.entries() == [("c1", "t1", "refused", "audience")]
    assert store.enrollments() == []


def test_refusal_is_journaled_with_every_field(store: Store) -> None:
    store.customer("c1", order_count=2)
    (compiled,) = store.flows(flow("cart", HELLO, audience={"where": "customer.order_count = 0"}))
    store.tick("2026-03-01 00:00")
    store.event("c1", "cart_abandoned", at="2026-03-01 10:00", event_id="t1")
    store.tick("2026-03-01 10:05")
    (row,) = store.decisions()
    enrollment_id = md5("cart:t1")  # one trigger event enrolls at most once in a flow
    assert row == {
        "decision_id": md5(f"{enrollment_id}:_entry"),
        "enrollment_id": enrollment_id,
        "flow_id": "cart",
        "flow_version": compiled.version,
        "customer_id": "c1",
        "step_id": "_entry",
        "step_kind": "entry",
        "effective_at": ts("2026-03-01 10:00"),
        "decided_at": ts("2026-03-01 10:05"),
        "outcome": "refused",
        "reason": "audience",
        "detail": "t1",
    }
    assert store.last["refused"] == 1 and store.last.get("enrolled", 0) == 0


REENTRY = [
    # policy, trigger times, expected outcome per trigger
    ("once", ["03-01 10:00", "03-02 10:00", "03-09 10:00"], ["enrolled", "reentry", "reentry"]),
    ("always", ["03-01 10:00", "03-01 11:00", "03-09 10:00"], ["enrolled", "enrolled", "enrolled"]),
    # "after" counts from the last trigger that enrolled, not from the refused one
    (
        "after 2d",
        ["03-01 10:00", "03-02 22:00", "03-03 10:00"],
        ["enrolled", "reentry", "enrolled"],
    ),
    (
        "after 2d",
        ["03-01 10:00", "03-03 09:59", "03-03 10:00"],
        ["enrolled", "reentry", "enrolled"],
    ),
]


@pytest.mark.parametrize("together", [False, True], ids=["a_tick_each", "one_tick"])
def test_reentry_policy(store: Store, together: bool) -> None:
    """Judged on occurred_at, so one tick seeing every trigger decides as a tick each does. Case
    i is customer c{i} in flow f{i}."""
    store.flows(*[
        flow(f"f{i}", HELLO, trigger=case_trigger(f"k{i}"), entry={"reentry": policy, "concurrent": True})
        for i, (policy, _, _) in enumerate(REENTRY)
    ])  # fmt: skip
    store.tick("2026-02-28 00:00")
    triggers = sorted(
        (at, i, j) for i, (_, times, _) in enumerate(REENTRY) for j, at in enumerate(times)
    )
    for i in range(len(REENTRY)):
        store.customer(f"c{i}")
    for n, (at, i, j) in enumerate(triggers):
        store.event(f"c{i}", "cart_abandoned", at=f"2026-{at}", event_id=f"t{i}_{j}", case=f"k{i}")
        if not together and (n + 1 == len(triggers) or triggers[n + 1][0] != at):
            store.tick(f"2026-{at}")  # once everything loaded at that time is in
    store.tick("2026-03-10 00:00")
    found: dict[str | None, list[str | None]] = {f"c{i}": [] for i in range(len(REENTRY))}
    for customer, _, outcome, reason in store.entries():
        found[customer].append(reason if outcome == "refused" else outcome)
    assert found == {f"c{i}": expected for i, (_, _, expected) in enumerate(REENTRY)}


def test_concurrency_off_refuses_while_active_and_drops_for_good(store: Store) -> None:
    store.customer("c1")
    store.flows(flow("cart", SLOW, entry={"reentry": "always"}))
    store.tick("2026-03-01 00:00")
    store.event("c1", "cart_abandoned", at="2026-03-01 10:00", event_id="t1")
    store.tick("2026-03-01 10:00")
    store.event("c1", "cart_abandoned", at="2026-03-02 10:00", event_id="t2")
    store.tick("2026-03-02 10:00")
    store.tick("2026-03-04 10:00")  # the first enrollment completes; t2 stays refused
    store.event("c1", "cart_abandoned", at="2026-03-05 10:00", event_id="t3")
    store.tick("2026-03-05 10:00")
    assert store.entries() == [
        ("c1", "t1", "enrolled", "treatment"),
        ("c1", "t2", "refused", "concurrency"),
        ("c1", "t3", "enrolled", "treatment"),
    ]
    assert [e["trigger_event_id"] for e in store.enrollments()] == ["t1", "t3"]


def test_concurrency_in_one_tick_uses_the_state_when_considered(store: Store) -> None:
    store.customer("c1")
    store.flows(flow("cart", SLOW, entry={"reentry": "always"}))
    store.tick("2026-03-01 00:00")
    store.event("c1", "cart_abandoned", at="2026-03-01 11:00", event_id="t2")
    store.event("c1", "cart_abandoned", at="2026-03-01 10:00", event_id="t1")
    store.tick("2026-03-01 12:00")
    assert store.entries() == [
        ("c1", "t1", "enrolled", "treatment"),
        ("c1", "t2", "refused", "concurrency"),
    ]


def test_concurrency_on_enrolls_alongside(store: Store) -> None:
    store.customer("c1")
    store.flows(flow("cart", SLOW, entry={"reentry": "always", "concurrent": True}))
    store.tick("2026-03-01 00:00")
    store.event("c1", "cart_abandoned", at="2026-03-01 10:00", event_id="t1")
    store.event("c1", "cart_abandoned", at="2026-03-01 11:00", event_id="t2")
    store.tick("2026-03-01 12:00")
    assert store.entries() == [
        ("c1", "t1", "enrolled", "treatment"),
        ("c1", "t2", "enrolled", "treatment"),
    ]
    assert [e["status"] for e in store.enrollments()] == ["active", "active"]


@pytest.mark.parametrize("past_triggers", [False, True])
def test_triggers_before_going_live(store: Store, past_triggers: bool) -> None:
    store.customer("c1")
    store.event("c1", "cart_abandoned", at="2026-03-01 08:00", event_id="old")
    store.tick("2026-03-01 09:00")  # no flows yet
    store.event("c1", "cart_abandoned", at="2026-03-01 10:00", event_id="recent")
    store.event(
        "c1", "cart_abandoned", at="2026-03-01 07:00", loaded="2026-03-01 11:00", event_id="late"
    )
    store.flows(
        flow(
            "cart",
            HELLO,
            entry={"reentry": "always", "concurrent": True, "past_triggers": past_triggers},
        )
    )
    store.tick("2026-03-01 12:00")  # the flow goes live
    store.event("c1", "cart_abandoned", at="2026-03-01 13:00", event_id="new")
    store.event(
        "c1", "cart_abandoned", at="2026-03-01 11:30", loaded="2026-03-01 13:00", event_id="late2"
    )
    store.tick("2026-03-01 14:00")
    if past_triggers:
        assert store.entries() == [
            ("c1", "late", "enrolled", "treatment"),
            ("c1", "old", "enrolled", "treatment"),
            ("c1", "recent", "enrolled", "treatment"),
            ("c1", "late2", "enrolled", "treatment"),
            ("c1", "new", "enrolled", "treatment"),
        ]
    else:
        # "old" was loaded before the flow's first tick: never its business, never journaled.
        # "late" and "late2" happened before going live, however late they were loaded.
        assert store.entries() == [
            ("c1", "late", "refused", "before_live"),
            ("c1", "recent", "refused", "before_live"),
            ("c1", "late2", "refused", "before_live"),
            ("c1", "new", "enrolled", "treatment"),
        ]


@pytest.mark.parametrize("together", [False, True], ids=["a_tick_each", "one_tick"])
def test_entry_key_one_enrollment_per_key_per_customer(store: Store, together: bool) -> None:
    for c in ("c1", "c2"):
        store.customer(c)
    store.flows(
        flow("cart", HELLO, entry={"reentry": "always", "concurrent": True, "key": "cart_id"})
    )
    store.tick("2026-03-01 00:00")
    triggers = [
        ("c1", "03-01 10:00", "a", "k1"),
        ("c1", "03-01 11:00", "b", "k1"),
        ("c1", "03-01 12:00", "c", "k2"),
        ("c2", "03-01 13:00", "d", "k1"),
        ("c1", "03-02 10:00", "e", None),  # no key: the policy alone decides
        ("c1", "03-02 11:00", "f", None),
    ]
    for customer, at, event_id, key in triggers:
        props = {"cart_id": key} if key else {}
        store.event(customer, "cart_abandoned", at=f"2026-{at}", event_id=event_id, **props)
        if not together:
            store.tick(f"2026-{at}")
    store.tick("2026-03-03 00:00")
    assert store.entries() == [
        ("c1", "a", "enrolled", "treatment"),
        ("c1", "b", "refused", "duplicate_key"),
        ("c1", "c", "enrolled", "treatment"),
        ("c2", "d", "enrolled", "treatment"),
        ("c1", "e", "enrolled", "treatment"),
        ("c1", "f", "enrolled", "treatment"),
    ]
    assert [e["entry_key"] for e in store.enrollments()] == ["k1", "k2", "k1", None, None]


def test_entry_key_applies_on_top_of_the_reentry_policy(store: Store) -> None:
    store.customer("c1")
    store.flows(flow("cart", HELLO, entry={"reentry": "once", "key": "cart_id"}))
    store.tick("2026-03-01 00:00")
    store.event("c1", "cart_abandoned", at="2026-03-01 10:00", event_id="a", cart_id="k1")
    store.event("c1", "cart_abandoned", at="2026-03-01 11:00", event_id="b", cart_id="k2")
    store.event("c1", "cart_abandoned", at="2026-03-01 12:00", event_id="c", cart_id="k1")
    store.tick("2026-03-01 13:00")
    assert store.entries() == [
        ("c1", "a", "enrolled", "treatment"),
        ("c1", "b", "refused", "reentry"),
        ("c1", "c", "refused", "duplicate_key"),
    ]


def test_triggers_seen_together_are_taken_in_occurred_at_order(store: Store) -> None:
    store.customer("c1")
    store.customer("c2")
    store.flows(flow("cart", HELLO, entry={"reentry": "once"}))
    store.tick("2026-03-01 00:00")
    # c1: the later trigger was loaded first, but one tick sees both: the earlier one enrolls.
    store.event(
        "c1", "cart_abandoned", at="2026-03-01 11:00", loaded="2026-03-01 11:20", event_id="c1_late"
    )
    store.event(
        "c1",
        "cart_abandoned",
        at="2026-03-01 10:00",
        loaded="2026-03-01 11:30",
        event_id="c1_early",
    )
    # c2: two ticks see them apart: the first tick's trigger enrolls, whatever came before.
    store.event("c2", "cart_abandoned", at="2026-03-01 11:00", event_id="c2_late")
    store.tick("2026-03-01 11:15")
    store.event(
        "c2",
        "cart_abandoned",
        at="2026-03-01 10:00",
        loaded="2026-03-01 11:30",
        event_id="c2_early",
    )
    store.tick("2026-03-01 12:00")
    assert sorted(store.entries()) == [
        ("c1", "c1_early", "enrolled", "treatment"),
        ("c1", "c1_late", "refused", "reentry"),
        ("c2", "c2_early", "refused", "reentry"),
        ("c2", "c2_late", "enrolled", "treatment"),
    ]
    assert {e["customer_id"]: str(e["entered_at"]) for e in store.enrollments()} == {
        "c1": "2026-03-01 10:00:00",
        "c2": "2026-03-01 11:00:00",
    }


def test_one_trigger_enrolls_at_most_once(store: Store) -> None:
    store.customer("c1")
    store.flows(
        flow("cart", SLOW, entry={"reentry": "always", "concurrent": True, "past_triggers": True})
    )
    store.event("c1", "cart_abandoned", at="2026-03-01 10:00", event_id="t1")
    store.tick("2026-03-01 10:00")
    store.tick("2026-03-01 11:00")
    store.tick("2026-03-02 11:00")
    assert store.entries() == [("c1", "t1", "enrolled", "treatment")]
    assert len(store.enrollments()) == 1


def test_catalog_events_fan_out_to_interested_customers(store: Store) -> None:
    for c in ("viewer", "carter", "long_ago", "bought", "other_sku"):
        store.customer(c)
    store.interest("viewer", "sku1", viewed="2026-02-20 10:00")
    store.interest("carter", "sku1", viewed="2026-02-20 10:00", carted="2026-02-25 10:00")
    store.interest("long_ago", "sku1", viewed="2026-01-01 10:00")
    store.interest("bought", "sku1", viewed="2026-02-20 10:00", ordered="2026-02-21 10:00")
    store.interest("other_sku", "sku2", viewed="2026-02-20 10:00")
    store.flows(flow("back", HELLO, trigger="back_in_stock"))
    store.tick("2026-03-01 00:00")
    store.event(None, "back_in_stock", at="2026-03-01 10:00", event_id="bis", sku="sku1")
    store.tick("2026-03-01 10:05")
    assert sorted(store.entries()) == [
        ("carter", "bis", "enrolled", "treatment"),
        ("viewer", "bis", "enrolled", "treatment"),
    ]
    interest = {e["customer_id"]: e["trigger_properties"]["interest"] for e in store.enrollments()}
    assert interest == {"carter": "cart", "viewer": "view"}
