"""Exits, flow filters, branches, splits and holdouts (DESIGN.md, "Exit and goals", "Branches and
experiments", "Exits", "Flow filter", "Holdout", "Nested steps")."""

from __future__ import annotations

import hashlib
from typing import Any

import pytest
from harness import EMAIL, Store, flow

WAIT_SEND = [
    {"id": "wait_1d", "wait": "1d"},
    {"id": "first", "send": EMAIL},
    {"id": "wait_2d", "wait": "2d"},
    {"id": "second", "send": EMAIL},
]


def _enrolled(
    store: Store, steps: Any = WAIT_SEND, customer: dict[str, Any] | None = None, **fields: Any
) -> None:
    store.customer("c1", **(customer or {}))
    store.flows(flow("cart", steps, **fields))
    store.tick("2026-03-01 00:00")
    store.event(
        "c1", "cart_abandoned", at="2026-03-01 10:00", event_id="t1", cart_id="k1", value=120
    )
    store.tick("2026-03-01 10:00")


EXIT_EVENTS = [
    # (order occurred, loaded, ticks, trail after entry)
    # an order after entry ends the enrollment before the next step, at that step's due time
    ("2026-03-01 12:00", None, ["2026-03-02 10:00"], [("wait_1d", "exited", "order_placed", "2026-03-02 10:00")]),
    # not strictly after the trigger: no exit
    ("2026-03-01 10:00", None, ["2026-03-02 10:00"], [("wait_1d", "waited", None, "2026-03-02 10:00"),
                                                      ("first", "queued", None, "2026-03-02 10:00")]),
    # after the due time, but known to the tick that runs the step: it counts
    ("2026-03-02 10:30", None, ["2026-03-02 11:00"], [("wait_1d", "exited", "order_placed", "2026-03-02 10:00")]),
    # happened before the due time, loaded late, still before the step's tick: it counts
    ("2026-03-02 09:00", "2026-03-02 10:45", ["2026-03-02 11:00"],
     [("wait_1d", "exited", "order_placed", "2026-03-02 10:00")]),
    # loaded after the step's tick: the step stands, the next step exits
    ("2026-03-02 09:00", "2026-03-02 11:30", ["2026-03-02 11:00", "2026-03-04 11:00"],
     [("wait_1d", "waited", None, "2026-03-02 10:00"), ("first", "queued", None, "2026-03-02 10:00"),
      ("wait_2d", "exited", "order_placed", "2026-03-04 10:00")]),
]  # fmt: skip


@pytest.mark.parametrize(("at", "loaded", "ticks", "after_entry"), EXIT_EVENTS)
def test_exit_events(
    store: Store, at: str, loaded: str | None, ticks: list[str], after_entry: list[Any]
) -> None:
    _enrolled(store, exit={"events": ["order_placed", "subscription_started"]})
    store.event("c1", "order_placed", at=at, loaded=loaded)
    for t in ticks:
        store.tick(t)
    assert store.trail("c1")[1:] == after_entry
    e = store.enrollment("c1")
    if after_entry[-1][1] == "exited":
        assert (e["status"], e["end_reason"], e["ended_at"]) == (
            "exited",
            "order_placed",
            e["due_at"],
        )


def test_exit_where_is_checked_before_every_step(store: Store) -> None:
    _enrolled(store, exit={"where": "customer.order_count > 0 or event.value < 100"})
    store.tick("2026-03-02 10:00")
    store.attributes("c1", order_count=1)
    store.tick("2026-03-05 00:00")
    assert store.trail("c1") == [
        ("_entry", "enrolled", "treatment", "2026-03-01 10:00"),
        ("wait_1d", "waited", None, "2026-03-02 10:00"),
        ("first", "queued", None, "2026-03-02 10:00"),
        ("wait_2d", "exited", "exit_condition", "2026-03-04 10:00"),
    ]


FILTERED = [{"id": "wait_1d", "wait": "1d"}, {"id": "first", "send": EMAIL}]


FILTER_CASES = [
    ("gold", ("first", "queued", None)),
    ("silver", ("first", "exited", "filter")),
    (None, ("first", "exited", "filter")),  # unknown is not a pass
]


def test_filter_is_rechecked_before_a_send(store: Store) -> None:
    store.flows(flow("cart", FILTERED, filter="customer.tier = 'gold'"))
    store.tick("2026-03-01 00:00")
    for i, _ in enumerate(FILTER_CASES):
        store.customer(f"c{i}", tier="gold")  # in the audience at entry
        store.event(f"c{i}", "cart_abandoned", at="2026-03-01 10:00")
    store.tick("2026-03-01 10:00")
    for i, (tier, _) in enumerate(FILTER_CASES):
        store.attributes(f"c{i}", tier=tier)
    store.tick("2026-03-02 10:00")
    assert {f"c{i}": store.trail(f"c{i}")[2][:3] for i in range(3)} == {
        f"c{i}": outcome for i, (_, outcome) in enumerate(FILTER_CASES)
    }
    assert [m["customer_id"] for m in store.messages()] == ["c0"]  # a filtered send leaves no row
    assert [(e["status"], e["end_reason"]) for e in store.enrollments()] == [
        ("completed", "completed"), ("exited", "filter"), ("exited", "filter")
    ]  # fmt: skip


def test_filter_is_not_checked_before_waits_and_exits_come_first(store: Store) -> None:
    _enrolled(store, FILTERED, customer={"tier": "gold"}, filter="customer.tier = 'gold'",
              exit={"events": ["order_placed"]})  # fmt: skip
    store.attributes("c1", tier="silver")
    store.tick("2026-03-01 12:00")  # nothing due: a failing filter does not end a wait
    assert store.enrollment("c1")["status"] == "active"
    store.event("c1", "order_placed", at="2026-03-01 13:00")
    store.tick("2026-03-02 10:00")
    assert store.trail("c1")[1:] == [("wait_1d", "exited", "order_placed", "2026-03-02 10:00")]


BRANCH = """
- id: by_value
  branch:
    - when: "customer.order_count = 0"
      steps: [{id: newcomer, send: {channel: email, template: t.html.j2}}]
    - when: "event.value >= 100 or customer.tier = 'vip'"
      steps:
        - {id: big_wait, wait: 1h}
        - {id: big, send: {channel: email, template: t.html.j2}}
    - else: true
      steps: [{id: other, send: {channel: email, template: t.html.j2}}]
- id: closing
  send: {channel: email, template: t.html.j2}
"""


BRANCH_CASES = [
    (0, 500, [("by_value", "branched", "path_1"), ("newcomer", "queued", None)]),  # first match
    (
        3,
        500,
        [("by_value", "branched", "path_2"), ("big_wait", "waited", None), ("big", "queued", None)],
    ),
    # false or unknown (tier is null) matches no path: the else takes it
    (3, 50, [("by_value", "branched", "else"), ("other", "queued", None)]),
]


def test_branch_first_match_wins_then_the_flow_continues(store: Store) -> None:
    store.flows(flow("cart", BRANCH))
    store.tick("2026-03-01 00:00")
    for i, (orders, value, _) in enumerate(BRANCH_CASES):
        store.customer(f"c{i}", order_count=orders)
        store.event(f"c{i}", "cart_abandoned", at="2026-03-01 10:00", value=value)
    store.tick("2026-03-01 12:00")
    found = {f"c{i}": [t[:3] for t in store.trail(f"c{i}")[1:]] for i in range(len(BRANCH_CASES))}
    assert found == {
        f"c{i}": [*path, ("closing", "queued", None), ("_end", "completed", None)]
        for i, (_, _, path) in enumerate(BRANCH_CASES)
    }


def test_branch_without_else_and_no_match_continues_after_it(store: Store) -> None:
    steps = """
    - id: only_vips
      branch: [{when: "customer.tier = 'vip'", steps: [{id: vip, send: {channel: email, template: t.html.j2}}]}]
    - id: closing
      send: {channel: email, template: t.html.j2}
    """
    store.customer("c1")
    store.flows(flow("cart", steps))
    store.tick("2026-03-01 00:00")
    store.event("c1", "cart_abandoned", at="2026-03-01 10:00")
    store.tick("2026-03-01 12:00")
    assert [t[:3] for t in store.trail("c1")] == [
        ("_entry", "enrolled", "treatment"),
        ("only_vips", "branched", "none"),
        ("closing", "queued", None),
        ("_end", "completed", None),
    ]


def unit_hash(text: str) -> float:
    """The engine's hash in [0, 1), read independently: the first 6 hex digits of md5."""
    return int(hashlib.md5(text.encode()).hexdigest()[:6], 16) / 16**6


def md5(text: str) -> str:
    return hashlib.md5(text.encode()).hexdigest()


SPLIT = """
- id: test
  split:
    - {name: a, weight: 1, steps: [{id: send_a, send: {channel: email, template: t.html.j2}}]}
    - {name: b, weight: 2, steps: [{id: send_b, send: {channel: email, template: t.html.j2}}]}
    - {name: c, weight: 1, steps: []}
- id: closing
  send: {channel: email, template: t.html.j2}
"""


def test_split_assigns_by_a_deterministic_hash(store: Store) -> None:
    customers = [f"c{i:02d}" for i in range(24)]
    for c in customers:
        store.customer(c)
    store.flows(flow("cart", SPLIT))
    store.tick("2026-03-01 00:00")
    for c in customers:
        store.event(c, "cart_abandoned", at="2026-03-01 10:00", event_id=f"t_{c}")
    store.tick("2026-03-01 10:00")
    expected = {}
    for c in customers:
        bucket = unit_hash(md5(f"cart:t_{c}") + ":test")
        expected[c] = "a" if bucket < 0.25 else "b" if bucket < 0.75 else "c"
    assert {e["customer_id"]: e["variant"] for e in store.enrollments()} == expected
    assert len(set(expected.values())) == 3  # the case exercises every arm
    for c in customers:
        arm = expected[c]
        steps = [t[:3] for t in store.trail(c)[1:]]
        assert steps[0] == ("test", "split", arm)
        assert steps[1:] == ([(f"send_{arm}", "queued", None)] if arm != "c" else []) + [
            ("closing", "queued", None),
            ("_end", "completed", None),
        ]
    variants = {(m["customer_id"], m["step_id"]): m["variant"] for m in store.messages()}
    assert all(variants[(c, "closing")] == expected[c] for c in customers)


def test_holdout_walks_the_same_path_and_receives_nothing(store: Store) -> None:
    steps = [
        {"id": "tag", "action": {"type": "add_tag", "tag": "cart"}},
        {"id": "hook", "action": {"type": "webhook", "url": "https://hooks.example/x"}},
        {"id": "wait_1h", "wait": "1h"},
        {"id": "reminder", "send": EMAIL},
    ]
    customers = [f"c{i:02d}" for i in range(16)]
    for c in customers:
        store.customer(c, tz="America/New_York")
    store.flows(flow("cart", steps, holdout="50%"), settings=QUIET_EMAIL)
    store.tick("2026-03-01 00:00")
    for c in customers:
        store.event(c, "cart_abandoned", at="2026-03-02 01:00")  # 20:00 local: quiet from 21:00
    store.tick("2026-03-02 16:00")
    held = {c for c in customers if unit_hash(f"cart:{c}") < 0.5}
    assert 0 < len(held) < len(customers)
    assert {e["customer_id"] for e in store.enrollments() if e["is_holdout"]} == held
    for c in customers:
        outcome = "held_out" if c in held else None
        assert store.trail(c) == [
            ("_entry", "enrolled", "holdout" if c in held else "treatment", "2026-03-02 01:00"),
            ("tag", outcome or "applied", None, "2026-03-02 01:00"),
            ("hook", outcome or "queued", None, "2026-03-02 01:00"),
            ("wait_1h", "waited", None, "2026-03-02 02:00"),
            ("reminder", outcome or "queued", None, "2026-03-02 13:00"),  # 08:00 local, moved
            ("_end", "completed", None, "2026-03-02 13:00"),
        ]
        assert store.outbox(c) == [
            ("hook", "webhook", "held_out" if c in held else "queued", None, "2026-03-02 01:00"),
            ("reminder", "email", "held_out" if c in held else "queued", None, "2026-03-02 13:00"),
        ]
    tagged = {u["customer_id"] for u in store.rows("profile_updates")}
    assert tagged == set(customers) - held


QUIET_EMAIL = """
store: {name: Test, timezone: UTC, postal_address: 1 Main St}
smart_sending: {}
quiet_hours:
  email: {start: "21:00", end: "08:00"}
"""


AWAIT = """
- id: await_order
  wait_for: {event: order_placed, timeout: 2d}
  on_event: [{id: thanks, send: {channel: email, template: t.html.j2}}]
  on_timeout: [{id: nudge, send: {channel: email, template: t.html.j2}}]
"""


def test_exits_are_checked_when_a_wait_for_is_decided(store: Store) -> None:
    """Not at whichever tick first sees the exit event: the step is decided at the awaited event
    or at the deadline, and its exit check with it, so the journal does not depend on when ticks
    run."""
    store.flows(flow("cart", AWAIT, exit={"events": ["subscription_started"]}))
    store.tick("2026-03-01 00:00")
    for c in ("timeout", "event"):
        store.customer(c)
        store.event(c, "cart_abandoned", at="2026-03-01 10:00")
        store.event(c, "subscription_started", at="2026-03-01 11:00")
    store.event("event", "order_placed", at="2026-03-02 10:00")
    for t in ("2026-03-01 10:00", "2026-03-01 11:30", "2026-03-02 10:30", "2026-03-03 10:00"):
        store.tick(t)
    assert store.trail("timeout")[1:] == [
        ("await_order", "exited", "subscription_started", "2026-03-03 10:00")
    ]
    assert store.trail("event")[1:] == [
        ("await_order", "exited", "subscription_started", "2026-03-02 10:00")
    ]
