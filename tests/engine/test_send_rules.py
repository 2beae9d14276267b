"""The send-time rules are one set of rules: the same customer state stops a message with the same
reason whether the engine meets it when queueing or activation when about to send.

Each customer gets a cart reminder by e-mail and by SMS. In the first store the state holds before
the message is queued (the tick skips it); in the second it arrives after queueing (the send-time
re-check skips it). Both decide at the same moment, so lateness matches too.
"""

from __future__ import annotations

from datetime import datetime
from pathlib import Path
from typing import Any

from harness import EMAIL, SMS, Store, flow
from sqlglot import exp

from flowhouse.activation.outbox import Bucket, claim, recheck
from flowhouse.core.warehouse import Location
from flowhouse.rules.context import Context
from flowhouse.rules.sendtime import REASONS, Checked, early_checks, volume_checks

DECIDED = "2026-03-01 12:00"
#: Due long enough before the decision to be stale (max lateness 1h), or just before it.
LATE, ON_TIME = "2026-03-01 10:00", "2026-03-01 11:59"
BOUNCED, LEFT = "2026-02-01 00:00", "2026-02-02 00:00"

NO_CONSENT = {"has_email_consent": False, "has_sms_consent": False}
UNSUBSCRIBED = NO_CONSENT | {"email_unsubscribed_at": LEFT, "sms_unsubscribed_at": LEFT}
SUPPRESSED = {"email_suppressed_at": BOUNCED, "sms_suppressed_at": BOUNCED}

#: customer -> (attributes, due, the reason on each channel)
STATES: dict[str, tuple[dict[str, Any], str, str | None]] = {
    "clean": ({}, ON_TIME, None),
    "no_consent": (NO_CONSENT, ON_TIME, "consent"),
    "unsubscribed": (UNSUBSCRIBED, ON_TIME, "unsubscribed"),
    "suppressed": (SUPPRESSED, ON_TIME, "suppressed"),
    "stale": ({}, LATE, "stale"),
    "no_consent_suppressed": (NO_CONSENT | SUPPRESSED, ON_TIME, "consent"),
    "unsubscribed_suppressed_stale": (UNSUBSCRIBED | SUPPRESSED, LATE, "unsubscribed"),
    "suppressed_stale": (SUPPRESSED, LATE, "suppressed"),
    "no_consent_stale": (NO_CONSENT, LATE, "consent"),
}


def _store(tmp_path: Path, name: str) -> Store:
    """A DuckDB store with the cart flow live and every customer, as yet in good standing."""
    store = Store(Location.parse(str(tmp_path / f"{name}.duckdb")), tmp_path / name)
    steps = [{"id": "mail", "send": EMAIL}, {"id": "text", "send": SMS}]
    store.flows(flow("cart", steps=steps, max_lateness="1h"))
    store.tick("2026-03-01 00:00")
    for customer in STATES:
        store.customer(customer, phone="+15550000", sms_consent=True)
    return store


def _apply_states(store: Store) -> None:
    for customer, (attributes, _, _) in STATES.items():
        if attributes:
            store.attributes(customer, **attributes)


def _reasons(store: Store) -> dict[tuple[str, str], str | None]:
    return {(m["customer_id"], m["channel"]): m["skip_reason"] for m in store.rows("messages")}


def _when_queued(tmp_path: Path) -> dict[tuple[str, str], str | None]:
    """The states hold before the tick that queues (or skips) the messages."""
    store = _store(tmp_path, "queued")
    try:
        _apply_states(store)
        for customer, (_, due, _) in STATES.items():
            store.event(customer, "cart_abandoned", at=due, cart_id=customer)
        store.tick(DECIDED)
        return _reasons(store)
    finally:
        store.close()


def _when_sent(tmp_path: Path) -> dict[tuple[str, str], str | None]:
    """The messages are queued on time; the states arrive before the send-time re-check."""
    store = _store(tmp_path, "sent")
    try:
        for due in (LATE, ON_TIME):
            for customer in (c for c, (_, when, _) in STATES.items() if when == due):
                store.event(customer, "cart_abandoned", at=due, cart_id=customer)
            store.tick(due)
        assert set(_reasons(store).values()) == {None}
        _apply_states(store)
        now = datetime.fromisoformat(DECIDED)
        ctx = Context(store.wh, store.schema, now, None, store.compiled, store.settings)
        claim(ctx, "check", Bucket(), 1000)
        recheck(ctx, "check", scheduling=())
        return _reasons(store)
    finally:
        store.close()


def test_the_same_states_skip_with_the_same_reasons_when_queued_and_when_sent(
    tmp_path: Path,
) -> None:
    expected = {(c, ch): r for c, (_, _, r) in STATES.items() for ch in ("email", "sms")}
    assert _when_queued(tmp_path) == expected
    assert _when_sent(tmp_path) == expected


def _row() -> Checked:
    return Checked(
        kind=exp.column("kind", "o"),
        channel=exp.column("channel", "o"),
        is_marketing=exp.column("is_marketing", "o"),
        due_at=exp.column("due_at", "o"),
        lateness=exp.column("lateness", "o"),
    )


def test_checks_come_in_the_order_of_the_skip_reasons() -> None:
    """Reasons first appear in the order of :data:`REASONS` on both sides (consent and
    unsubscribes repeat per channel: a message has one channel)."""
    now = datetime(2026, 3, 1)
    since = exp.true()
    sides = {
        "queue": early_checks(_row(), now, address=True, flow_suppressed=since),
        "send": early_checks(_row(), now, unsubscribed_since=since, suppressed_since=since),
    }
    volume = volume_checks(exp.column("is_marketing", "o"), exp.true(), exp.true())
    firsts = {
        side: list(dict.fromkeys(r for _, r in checks + volume)) for side, checks in sides.items()
    }
    assert firsts["queue"] == list(REASONS[:7])
    assert firsts["send"] == list(REASONS[1:7])
