"""The tick as a whole: idempotency, time only moving forward, one tick at a time, and editing
live flows (DESIGN.md, "Idempotency", "Editing a live flow", "Decisions")."""

from __future__ import annotations

from pathlib import Path

import pytest
from harness import EMAIL, SMS, Store, flow, ts, write_templates

from flowhouse.core.errors import ConfigError
from flowhouse.core.locks import TickBusy, tick_lock
from flowhouse.orchestration.engine.tick import tick

SETTINGS = """
store: {name: Test, timezone: America/New_York, postal_address: 1 Main St}
smart_sending: {email: 16h}
caps: [{channel: any, limit: 3, period: 1d}]
quiet_hours: {sms: {start: "20:00", end: "09:00"}}
coupon_pools: {cart10: {discount: 10%}}
"""

CART = """
- id: await_order
  wait_for: {event: order_placed, timeout: 4h}
  on_timeout:
    - {id: reminder, send: {channel: email, template: t.html.j2, coupon_pool: cart10}}
    - {id: wait_1d, wait: 1d}
    - {id: nudge, send: {channel: sms, template: t.txt.j2}}
- id: tag
  action: {type: add_tag, tag: carted}
"""

WELCOME = """
- {id: hello, send: {channel: email, template: t.html.j2}}
- {id: morning, wait_until: {time: "10:00"}}
- {id: tips, send: {channel: sms, template: t.txt.j2}}
- id: ab
  split:
    - {name: a, weight: 1, steps: [{id: hook, action: {type: webhook, url: "https://h.example"}}]}
    - {name: b, weight: 1, steps: []}
"""


def _busy_store(store: Store) -> None:
    """Several flows, customers and events, so that a tick does a bit of everything."""
    store.flows(
        flow("cart", CART, exit={"events": ["subscription_started"]}, holdout="20%"),
        flow("welcome", WELCOME, trigger="customer_created", entry={"reentry": "always"}),
        settings=SETTINGS,
    )
    store.codes("cart10", "C1", "C2")
    for i in range(6):
        store.customer(f"c{i}", tz="Europe/Paris" if i % 2 else "America/New_York", phone=f"+1555000{i}",
                       sms_consent=bool(i % 3))  # fmt: skip
    store.tick("2026-03-01 00:00")
    for i in range(6):
        store.event(f"c{i}", "customer_created", at=f"2026-03-0{1 + i % 2} 0{i}:30")
        store.event(
            f"c{i}", "cart_abandoned", at=f"2026-03-01 1{i}:00", loaded=f"2026-03-01 1{i}:20"
        )
    store.event("c1", "order_placed", at="2026-03-01 12:00")
    store.event("c2", "subscription_started", at="2026-03-01 13:00", loaded="2026-03-02 09:00")


@pytest.mark.parametrize("times", [["2026-03-01 12:00"], ["2026-03-01 12:00", "2026-03-02 15:00"]])
def test_a_second_tick_at_the_same_time_changes_nothing(store: Store, times: list[str]) -> None:
    _busy_store(store)
    for t in times:
        store.tick(t)
    before = store.snapshot()
    assert before["decisions"] and before["messages"]
    store.tick(times[-1])
    assert store.snapshot() == before


def test_a_tick_cannot_go_back_in_time(store: Store) -> None:
    _busy_store(store)
    store.tick("2026-03-01 12:00")
    before = store.snapshot()
    with pytest.raises(ConfigError, match="cannot go back in time"):
        store.tick("2026-03-01 11:59")
    assert store.snapshot() == before


def test_one_tick_at_a_time(store: Store) -> None:
    with tick_lock(store.location, "flowhouse"):
        with pytest.raises(TickBusy), tick_lock(store.location, "flowhouse"):
            pass
        with tick_lock(store.location, "other_schema"):  # another state schema is another lock
            pass
    with tick_lock(store.location, "flowhouse"):  # released
        pass


def test_tick_runs_the_flow_folder(store: Store, tmp_path: Path) -> None:
    store.customer("c1")
    store.event("c1", "cart_abandoned", at="2026-03-01 10:00")
    folder = tmp_path / "deployed"
    folder.mkdir()
    write_templates(folder)
    (folder / "_settings.yml").write_text("store: {postal_address: 1 Main St}\n")
    (folder / "cart.yml").write_text(
        flow("cart", [{"id": "hello", "send": EMAIL}], entry={"past_triggers": True})
    )
    store.wh.commit()
    result = tick(store.location, folder, now=ts("2026-03-01 10:05"), build=False)
    assert result.counts["enrolled"] == 1 and result.counts["messages"] == 1
    assert "1 enrolled" in result.describe()
    assert store.outbox() == [("hello", "email", "queued", None, "2026-03-01 10:00")]


V1 = [
    {"id": "wait_1d", "wait": "1d"},
    {"id": "first", "send": EMAIL},
    {"id": "wait_2d", "wait": "2d"},
    {"id": "second", "send": EMAIL},
]
V2 = [
    {"id": "wait_1d", "wait": "1d"},
    {"id": "first", "send": EMAIL},
    {"id": "pause", "wait": "1d"},
    {"id": "second", "send": {**EMAIL, "subject": "New subject"}},
    {"id": "third", "send": SMS},
]


def test_editing_a_live_flow(store: Store) -> None:
    (v1,) = store.flows(flow("cart", V1))
    store.tick("2026-03-01 00:00")
    for c, at in (("early", "2026-03-01 10:00"), ("late", "2026-03-02 09:00")):
        store.customer(c, phone="+15550001", sms_consent=True)
        store.event(c, "cart_abandoned", at=at)
    store.tick("2026-03-02 10:00")  # early sits on wait_2d, late on wait_1d
    (v2,) = store.flows(flow("cart", V2))
    store.tick("2026-03-02 11:00", allow_removals=True)
    store.customer("new", phone="+15550002", sms_consent=True)
    store.event("new", "cart_abandoned", at="2026-03-02 12:00")
    for t in ("2026-03-02 12:00", "2026-03-03 12:00", "2026-03-04 12:00"):
        store.tick(t)
    assert v1.version != v2.version
    assert [(r["flow_id"], r["version"]) for r in store.rows("flow_versions", "deployed_at")] == [
        ("cart", v1.version),
        ("cart", v2.version),
    ]
    versions = {(d["customer_id"], d["step_id"]): d["flow_version"] for d in store.decisions()}
    # a step removed from under an enrollment ends it when the new version goes live
    assert store.trail("early") == [
        ("_entry", "enrolled", "treatment", "2026-03-01 10:00"),
        ("wait_1d", "waited", None, "2026-03-02 10:00"),
        ("first", "queued", None, "2026-03-02 10:00"),
        ("wait_2d", "exited", "step_removed", "2026-03-02 11:00"),
    ]
    assert versions[("early", "first")] == v1.version
    assert versions[("early", "wait_2d")] == v2.version
    # an enrollment on a kept step carries on along the new version
    assert store.trail("late") == [
        ("_entry", "enrolled", "treatment", "2026-03-02 09:00"),
        ("wait_1d", "waited", None, "2026-03-03 09:00"),
        ("first", "queued", None, "2026-03-03 09:00"),
        ("pause", "waited", None, "2026-03-04 09:00"),
        ("second", "queued", None, "2026-03-04 09:00"),
        ("third", "queued", None, "2026-03-04 09:00"),
        ("_end", "completed", None, "2026-03-04 09:00"),
    ]
    assert {versions[("late", s)] for s in ("_entry",)} == {v1.version}
    assert {versions[("late", s)] for s in ("wait_1d", "first", "second", "third")} == {v2.version}
    assert [m["flow_version"] for m in store.messages("late")] == [v2.version] * 3
    assert store.enrollment("late")["flow_version"] == v1.version  # the version it entered
    assert [t[0] for t in store.trail("new")] == [
        "_entry",
        "wait_1d",
        "first",
        "pause",
        "second",
        "third",
        "_end",
    ]
    assert store.enrollment("new")["flow_version"] == v2.version


def test_removing_a_flow_ends_its_enrollments(store: Store) -> None:
    (gone,) = store.flows(
        flow("cart", V1), flow("other", [{"id": "hi", "send": EMAIL}], trigger="opted_in")
    )[:1]
    store.tick("2026-03-01 00:00")
    store.customer("c1")
    store.event("c1", "cart_abandoned", at="2026-03-01 10:00")
    store.tick("2026-03-01 11:00")
    store.flows(flow("other", [{"id": "hi", "send": EMAIL}], trigger="opted_in"))
    store.tick("2026-03-01 12:00", allow_removals=True)
    assert store.trail("c1") == [
        ("_entry", "enrolled", "treatment", "2026-03-01 10:00"),
        ("wait_1d", "exited", "flow_removed", "2026-03-01 12:00"),
    ]
    (row,) = [f for f in store.rows("flows") if f["flow_id"] == "cart"]
    assert str(row["removed_at"]) == "2026-03-01 12:00:00"
    store.event("c1", "cart_abandoned", at="2026-03-01 13:00")
    store.tick("2026-03-01 14:00")
    assert len(store.enrollments("c1")) == 1  # a removed flow enrolls no one
    assert gone.id == "cart"


def test_a_restored_flow_goes_live_again(store: Store) -> None:
    """Triggers from while a flow was removed do not enroll when it comes back: restoring a flow
    is a launch, and a launch does not blast old triggers."""
    other = flow("other", [{"id": "hi", "send": EMAIL}], trigger="opted_in")
    cart = flow("cart", [{"id": "hello", "send": EMAIL}], entry={"reentry": "always"})
    store.flows(cart, other)
    store.tick("2026-03-01 00:00")
    store.customer("c1")
    store.flows(other)
    store.tick("2026-03-01 01:00")  # cart removed
    store.event("c1", "cart_abandoned", at="2026-03-01 02:00", event_id="absent")
    store.tick("2026-03-01 03:00")
    store.event("c1", "cart_abandoned", at="2026-03-01 03:30", event_id="just_before")
    store.flows(cart, other)
    store.tick("2026-03-01 04:00")  # cart restored
    store.event("c1", "cart_abandoned", at="2026-03-01 05:00", event_id="after")
    store.tick("2026-03-01 06:00")
    assert store.entries("cart") == [
        ("c1", "just_before", "refused", "before_live"),
        ("c1", "after", "enrolled", "treatment"),
    ]
