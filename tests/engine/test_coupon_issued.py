"""``coupon_issued`` as a trigger (issue 18): a code one flow hands out is an event another flow
enrolls on (UltraCart's "Shared Coupon" trigger). The model that derives the event from
``flowhouse.coupon_codes`` is tested on both warehouses in tests/models/test_action_attributes.py;
here the engine takes the event as that model writes it."""

from __future__ import annotations

import pytest
from harness import EMAIL, NEUTRAL_SETTINGS, Store, flow

from flowhouse.core.errors import FlowhouseError

SETTINGS = NEUTRAL_SETTINGS + "coupon_pools: {vip20: {discount: 20%}}\n"
ISSUE = [{"id": "discount", "action": {"type": "coupon", "pool": "vip20"}}]
ANNOUNCE = [{"id": "announce", "send": EMAIL}]


def test_a_flow_triggers_on_the_coupon_another_issued(store: Store) -> None:
    store.customer("c1")
    store.customer("c2")
    store.codes("vip20", "VIP-1")
    store.flows(
        flow("issue", ISSUE),
        flow("announce", ANNOUNCE,
             trigger={"event": "coupon_issued", "where": "event.pool = 'vip20'"}),
        settings=SETTINGS,
    )  # fmt: skip
    store.tick("2026-03-01 00:00")
    store.event("c1", "cart_abandoned", at="2026-03-01 09:00")
    store.tick("2026-03-01 09:05")
    (issued,) = [r for r in store.rows("coupon_codes") if r["customer_id"]]
    assert (issued["customer_id"], issued["code"]) == ("c1", "VIP-1")
    # the next refresh derives the event (derived_coupon_issued), loaded at its now
    store.event("c1", "coupon_issued", at=issued["issued_at"], loaded="2026-03-01 09:10",
                event_id="ci1", pool="vip20", code="VIP-1")  # fmt: skip
    store.event("c2", "coupon_issued", at="2026-03-01 09:00", loaded="2026-03-01 09:10",
                event_id="ci2", pool="other", code="X")  # fmt: skip
    store.tick("2026-03-01 09:15")
    assert store.entries("announce") == [("c1", "ci1", "enrolled", "treatment")]
    assert [m[:3] for m in store.outbox("c1") if m[0] == "announce"] == [
        ("announce", "email", "queued")
    ]


def test_a_property_coupon_issued_lacks_is_an_error(store: Store) -> None:
    with pytest.raises(FlowhouseError, match="coupon_issued events have no property poll"):
        store.flows(
            flow("announce", ANNOUNCE,
                 trigger={"event": "coupon_issued", "where": "event.poll = 'vip20'"}),
            settings=SETTINGS,
        )  # fmt: skip
