"""Flow states and removals that need intent, on the engine (DuckDB and PostgreSQL).

- ``state: draft``: validated, never deployed; a deployed flow going back to draft is a removal.
- ``state: paused``: triggers are refused with ``paused``; enrollments in flight hold their steps;
  on resume the steps due by then are executed, and a message due longer ago than the flow's
  ``max_lateness`` is skipped ``stale``.
- A tick never ends enrollments in flight by removing their flow or step unless the removal was
  approved (``allow_removals``, or a reviewed plan); otherwise it stops and changes nothing.
"""

from __future__ import annotations

from datetime import datetime
from pathlib import Path

import pytest
from harness import EMAIL, Store, flow

from flowhouse.activation.outbox import Bucket, claim, recheck
from flowhouse.core.errors import ConfigError
from flowhouse.orchestration.engine.intent import Approval, RemovalsNeedIntent, plan_json, read_plan
from flowhouse.orchestration.engine.plan import plan
from flowhouse.rules.context import Context

STEPS = [
    {"id": "wait_1h", "wait": "1h"},
    {"id": "first", "send": EMAIL},
    {"id": "wait_1d", "wait": "1d"},
    {"id": "second", "send": EMAIL},
]
MADE_AT = datetime(2026, 3, 1, 12, 30)
OTHER = flow("other", [{"id": "hi", "send": EMAIL}], trigger="opted_in")


def cart(**fields: object) -> str:
    return flow("cart", STEPS, entry={"reentry": "always"}, **fields)


def _statuses(store: Store) -> dict[str, str]:
    return {p.flow_id: p.status for p in plan(store.wh, store.compiled, store.schema)}


# -- paused --------------------------------------------------------------------------------------


def test_a_paused_flow_refuses_triggers_and_holds_its_enrollments(store: Store) -> None:
    store.flows(cart())
    store.tick("2026-03-01 00:00")
    for c in ("c1", "c2", "c3"):
        store.customer(c)
    store.event("c1", "cart_abandoned", at="2026-03-01 10:00", event_id="before")
    store.tick("2026-03-01 10:00")  # c1 waits on wait_1h, due 11:00
    store.flows(cart(state="paused"))
    assert _statuses(store) == {"cart": "paused"}
    store.tick("2026-03-01 10:30")
    store.event("c2", "cart_abandoned", at="2026-03-01 10:45", event_id="while_paused")
    store.tick("2026-03-01 12:00")
    store.tick("2026-03-02 12:00")
    assert store.entries() == [
        ("c1", "before", "enrolled", "treatment"),
        ("c2", "while_paused", "refused", "paused"),
    ]
    e = store.enrollment("c1")
    assert (e["status"], e["step_id"], str(e["due_at"])) == (
        "active",
        "wait_1h",
        "2026-03-01 11:00:00",
    )
    assert store.outbox() == []  # the send due at 11:00 was held
    (row,) = store.rows("flows")
    assert str(row["paused_at"]) == "2026-03-01 10:30:00"

    # resumed 25 h after the first send was due: it is stale; the second (due 1 h ago) goes out
    store.flows(cart())
    assert _statuses(store) == {"cart": "resumed"}
    store.tick("2026-03-02 12:00:01")
    assert store.outbox("c1") == [
        ("first", "email", "skipped", "stale", "2026-03-01 11:00"),
        ("second", "email", "queued", None, "2026-03-02 11:00"),
    ]
    assert [t[:3] for t in store.trail("c1")][1:] == [
        ("wait_1h", "waited", None),
        ("first", "skipped", "stale"),
        ("wait_1d", "waited", None),
        ("second", "queued", None),
        ("_end", "completed", None),
    ]
    assert store.rows("flows")[0]["paused_at"] is None
    # triggers after the resume enroll again; the one refused while paused stays refused
    store.event("c3", "cart_abandoned", at="2026-03-02 13:00", event_id="after")
    store.tick("2026-03-02 13:00")
    assert store.entries()[-1] == ("c3", "after", "enrolled", "treatment")
    assert len(store.enrollments("c2")) == 0


def test_a_held_message_goes_out_on_resume_within_max_lateness(store: Store) -> None:
    store.flows(cart(max_lateness="6h"))
    store.tick("2026-03-01 00:00")
    store.customer("c1")
    store.event("c1", "cart_abandoned", at="2026-03-01 10:00")
    store.tick("2026-03-01 10:00")
    store.flows(cart(max_lateness="6h", state="paused"))
    store.tick("2026-03-01 10:30")
    store.tick("2026-03-01 14:00")
    assert store.outbox() == []
    store.flows(cart(max_lateness="6h"))
    store.tick("2026-03-01 16:00")  # 5 h after the send was due: within 6 h
    assert store.outbox("c1") == [("first", "email", "queued", None, "2026-03-01 11:00")]
    e = store.enrollment("c1")
    assert (e["step_id"], str(e["due_at"])) == ("wait_1d", "2026-03-02 11:00:00")  # unmoved


WAIT_FOR = [
    {
        "id": "await_order",
        "wait_for": {"event": "order_placed", "timeout": "2d"},
        "on_event": [{"id": "thanks", "send": EMAIL}],
        "on_timeout": [{"id": "nudge", "send": EMAIL}],
    }
]


def test_an_event_awaited_while_paused_is_seen_when_the_flow_resumes(store: Store) -> None:
    store.flows(flow("f", WAIT_FOR))
    store.tick("2026-03-01 00:00")
    store.customer("c1")
    store.event("c1", "cart_abandoned", at="2026-03-01 10:00")
    store.tick("2026-03-01 10:00")
    store.flows(flow("f", WAIT_FOR, state="paused"))
    store.tick("2026-03-01 11:00")
    store.event("c1", "order_placed", at="2026-03-01 12:00")
    store.tick("2026-03-01 12:00")  # the event comes while paused: nothing is decided
    assert [t[0] for t in store.trail("c1")] == ["_entry"]
    store.flows(flow("f", WAIT_FOR))
    store.tick("2026-03-01 13:00")  # resumed: decided now, not at the deadline
    assert store.trail("c1")[1:] == [
        ("await_order", "event_received", None, "2026-03-01 12:00"),
        ("thanks", "queued", None, "2026-03-01 12:00"),
        ("_end", "completed", None, "2026-03-01 12:00"),
    ]


def test_a_flow_launched_paused_refuses_until_resumed(store: Store) -> None:
    store.customer("c1")
    store.flows(OTHER, cart(state="paused"))
    assert _statuses(store) == {"other": "new", "cart": "new"}
    assert plan(store.wh, store.compiled)[1].pause == "paused"
    store.tick("2026-03-01 00:00")
    store.event("c1", "cart_abandoned", at="2026-03-01 10:00", event_id="e1")
    store.tick("2026-03-01 10:00")
    assert store.entries("cart") == [("c1", "e1", "refused", "paused")]


# -- draft ---------------------------------------------------------------------------------------


def test_a_draft_is_never_deployed_and_going_back_to_draft_needs_intent(store: Store) -> None:
    store.customer("c1")
    store.flows(OTHER, cart(state="draft"))
    assert _statuses(store) == {"other": "new", "cart": "draft"}
    store.tick("2026-03-01 00:00")
    store.event("c1", "cart_abandoned", at="2026-03-01 09:00")
    store.tick("2026-03-01 09:00")
    assert [f["flow_id"] for f in store.rows("flows")] == ["other"]
    assert store.entries() == [] and store.rows("flow_versions")[0]["flow_id"] == "other"

    store.flows(OTHER, cart())  # live: it goes live now, the draft-time trigger does not enroll
    store.tick("2026-03-01 10:00")
    store.event("c1", "cart_abandoned", at="2026-03-01 10:30", event_id="live")
    store.tick("2026-03-01 10:30")
    assert store.entries("cart") == [("c1", "live", "enrolled", "treatment")]

    store.flows(OTHER, cart(state="draft"))
    assert _statuses(store) == {"other": "unchanged", "cart": "removed"}
    before = store.snapshot()
    with pytest.raises(RemovalsNeedIntent, match=r"flow cart: 1 enrollment\(s\) in flight"):
        store.tick("2026-03-01 11:00")
    assert store.snapshot() == before
    store.tick("2026-03-01 11:00", allow_removals=True)
    assert store.trail("c1")[-1] == ("wait_1h", "exited", "flow_removed", "2026-03-01 11:00")


# -- removals ------------------------------------------------------------------------------------


def _in_flight(store: Store) -> None:
    """c1 waiting on ``wait_1d`` of cart, beside flow ``other``."""
    store.flows(cart(), OTHER)
    store.tick("2026-03-01 00:00")
    store.customer("c1")
    store.event("c1", "cart_abandoned", at="2026-03-01 10:00")
    store.tick("2026-03-01 12:00")
    assert store.enrollment("c1")["step_id"] == "wait_1d"


def test_removing_a_step_with_enrollments_in_flight_stops_the_tick(store: Store) -> None:
    _in_flight(store)
    store.customer("c2")
    store.event("c2", "cart_abandoned", at="2026-03-01 12:30")
    edited = [s for s in STEPS if s["id"] != "wait_1d"]
    store.flows(flow("cart", edited, entry={"reentry": "always"}), OTHER)
    before = store.snapshot()
    with pytest.raises(RemovalsNeedIntent) as refused:
        store.tick("2026-03-01 13:00")
    assert [str(r) for r in refused.value.removals] == [
        "step cart.wait_1d: 1 enrollment(s) in flight would exit (step_removed)"
    ]
    assert "--allow-removals" in str(refused.value)
    assert store.snapshot() == before  # no deploy, no enrollment, no tick recorded
    store.tick("2026-03-01 13:00", allow_removals=True)
    assert store.trail("c1")[-1] == ("wait_1d", "exited", "step_removed", "2026-03-01 13:00")
    assert store.enrollment("c2")["status"] == "active"


def test_removing_a_flow_or_step_nobody_is_on_needs_no_intent(store: Store) -> None:
    _in_flight(store)
    edited = [s for s in STEPS if s["id"] != "wait_1h"]  # c1 is past it
    store.flows(flow("cart", edited, entry={"reentry": "always"}))  # other: no enrollments
    store.tick("2026-03-01 13:00")
    assert {f["flow_id"]: f["removed_at"] is not None for f in store.rows("flows")} == {
        "cart": False,
        "other": True,
    }


def test_a_reviewed_plan_approves_exactly_its_removals(store: Store, tmp_path: Path) -> None:
    _in_flight(store)
    edited = [s for s in STEPS if s["id"] != "wait_1d"]
    store.flows(flow("cart", edited, entry={"reentry": "always"}), OTHER)
    path = tmp_path / "plan.json"
    path.write_text(plan_json(plan(store.wh, store.compiled), store.compiled, MADE_AT))
    reviewed = Approval(reviewed=read_plan(path))

    # the files changed after the review: refused, nothing changed
    store.flows(flow("cart", edited, entry={"reentry": "always"}, priority=2), OTHER)
    before = store.snapshot()
    with pytest.raises(ConfigError, match="the flow files changed since the plan was made"):
        store.tick("2026-03-01 13:00", approval=reviewed)
    assert store.snapshot() == before

    # the reviewed files: the plan's removal goes through
    store.flows(flow("cart", edited, entry={"reentry": "always"}), OTHER)
    store.tick("2026-03-01 13:00", approval=reviewed)
    assert store.trail("c1")[-1] == ("wait_1d", "exited", "step_removed", "2026-03-01 13:00")


def test_a_plan_made_before_enrollments_arrived_does_not_approve_them(
    store: Store, tmp_path: Path
) -> None:
    store.flows(cart(), OTHER)
    store.tick("2026-03-01 00:00")
    store.flows(OTHER)
    path = tmp_path / "plan.json"
    path.write_text(plan_json(plan(store.wh, store.compiled), store.compiled, MADE_AT))
    assert read_plan(path).removals == frozenset()  # nobody in flight when it was made
    store.flows(cart(), OTHER)
    store.customer("c1")
    store.event("c1", "cart_abandoned", at="2026-03-01 10:00")
    store.tick("2026-03-01 10:00")
    store.flows(OTHER)
    with pytest.raises(RemovalsNeedIntent, match="flow cart"):
        store.tick("2026-03-01 11:00", approval=Approval(reviewed=read_plan(path)))


def test_no_flows_at_all_never_removes_every_flow(store: Store) -> None:
    _in_flight(store)
    store.flows()
    before = store.snapshot()
    with pytest.raises(ConfigError, match="never takes none to mean 'remove every flow'"):
        store.tick("2026-03-01 13:00", allow_removals=True)
    assert store.snapshot() == before


def test_messages_already_queued_are_held_while_the_flow_is_paused(store: Store) -> None:
    """A message in the outbox when its flow is paused is not claimed; on resume it goes out if
    still within the flow's max lateness, else the send-time re-check skips it ``stale``."""
    store.flows(flow("now", [{"id": "hi", "send": EMAIL}], max_lateness="2h"))
    store.tick("2026-03-01 00:00")
    for c in ("c1", "c2"):
        store.customer(c)
    store.event("c1", "cart_abandoned", at="2026-03-01 10:00")
    store.event("c2", "cart_abandoned", at="2026-03-01 11:30")
    store.tick("2026-03-01 11:30")
    assert {m["customer_id"]: m["status"] for m in store.messages()} == {
        "c1": "queued",
        "c2": "queued",
    }
    store.flows(flow("now", [{"id": "hi", "send": EMAIL}], max_lateness="2h", state="paused"))
    store.tick("2026-03-01 11:31")
    assert _claimed(store, "2026-03-01 11:32") == 0  # held
    store.flows(flow("now", [{"id": "hi", "send": EMAIL}], max_lateness="2h"))
    store.tick("2026-03-01 12:30")
    assert _claimed(store, "2026-03-01 12:30") == 2
    recheck(_context(store, "2026-03-01 12:30"), "claim", scheduling=())
    reasons = {m["customer_id"]: (m["status"], m["skip_reason"]) for m in store.messages()}
    assert reasons == {"c1": ("skipped", "stale"), "c2": ("claimed", None)}


def _context(store: Store, at: str) -> Context:
    return Context(store.wh, store.schema, datetime.fromisoformat(at), None, store.compiled,
                   store.settings)  # fmt: skip


def _claimed(store: Store, at: str) -> int:
    return claim(_context(store, at), "claim", Bucket(), 100)
