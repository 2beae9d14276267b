"""Split weights: a single arm, and arms weighted 0 to end a test while keeping their history
(issue 15, item 8)."""

from __future__ import annotations

from harness import Store, flow

SEND = "{channel: email, template: t.html.j2}"


def split(*arms: tuple[str, int]) -> str:
    lines = "".join(
        f"    - {{name: {name}, weight: {weight}, steps: [{{id: send_{name}, send: {SEND}}}]}}\n"
        for name, weight in arms
    )
    return f"- id: test\n  split:\n{lines}"


def _enroll(store: Store, customers: list[str], at: str, tag: str) -> None:
    for c in customers:
        store.event(c, "cart_abandoned", at=at, event_id=f"{tag}_{c}")


def test_a_single_arm_split_routes_everyone_to_it(store: Store) -> None:
    customers = [f"c{i:02d}" for i in range(8)]
    for c in customers:
        store.customer(c)
    store.flows(flow("cart", split(("only", 100))), flow("other", split(("a", 1), ("b", 1))))
    store.tick("2026-03-01 00:00")
    _enroll(store, customers, "2026-03-01 10:00", "t")
    store.tick("2026-03-01 10:00")
    variants = {(e["flow_id"], e["customer_id"]): e["variant"] for e in store.enrollments()}
    assert {v for (f, _), v in variants.items() if f == "cart"} == {"only"}
    assert {v for (f, _), v in variants.items() if f == "other"} <= {"a", "b"}


def test_an_arm_weighted_0_is_never_routed_to(store: Store) -> None:
    customers = [f"c{i:02d}" for i in range(24)]
    later = [f"d{i:02d}" for i in range(24)]
    for c in customers + later:
        store.customer(c)
    store.flows(flow("cart", split(("a", 1), ("b", 1))))
    store.tick("2026-03-01 00:00")
    _enroll(store, customers, "2026-03-01 10:00", "t")
    store.tick("2026-03-01 10:00")
    before = {e["customer_id"]: e["variant"] for e in store.enrollments()}
    assert set(before.values()) == {"a", "b"}
    # The marketer ends the test: 100/0, both arms and their history kept.
    store.flows(flow("cart", split(("a", 0), ("b", 100))))
    _enroll(store, later, "2026-03-02 10:00", "u")
    store.tick("2026-03-02 10:00")
    after = {
        e["customer_id"]: e["variant"]
        for e in store.enrollments()
        if e["trigger_event_id"].startswith("u_")
    }
    assert set(after.values()) == {"b"}
    old = {
        e["customer_id"]: e["variant"]
        for e in store.enrollments()
        if e["trigger_event_id"].startswith("t_")
    }
    assert old == before
    sent = {(m["customer_id"], m["step_id"]) for m in store.messages()}
    assert any(step == "send_a" for _, step in sent)  # the history of arm a stays


def test_a_last_arm_weighted_0_gets_nobody(store: Store) -> None:
    customers = [f"c{i:02d}" for i in range(24)]
    for c in customers:
        store.customer(c)
    store.flows(flow("cart", split(("a", 3), ("b", 0))))
    store.tick("2026-03-01 00:00")
    _enroll(store, customers, "2026-03-01 10:00", "t")
    store.tick("2026-03-01 10:00")
    assert {e["variant"] for e in store.enrollments()} == {"a"}
