"""Skip reasons in the documented order, for every pair of reasons that can apply together.

DESIGN lists the reasons in order (``flowhouse.rules.sendtime.REASONS``); where several apply, the
first is recorded. Each case below is one customer for whom exactly two reasons hold, and the
earlier one must be recorded: when the engine queues the message, and (for the reasons the send
re-checks: consent, unsubscribes, suppression, staleness, caps and smart sending) when activation
is about to send it after the two conditions arrived.

``quiet_hours`` takes part in no pair: a send inside quiet hours is moved to the next allowed
time, which always exists, so it is never a skip in practice.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from itertools import combinations
from typing import Any

import pytest
from harness import EMAIL, Store, flow, ts

from flowhouse.activation.outbox import Bucket, claim, recheck
from flowhouse.core.sql import render, statement
from flowhouse.rules.context import Context
from flowhouse.rules.sendtime import REASONS

DECIDED = ts("2026-03-01 12:00")
ON_TIME, LATE = ts("2026-03-01 11:59"), ts("2026-03-01 10:00")  # max lateness 1h
LEFT, BOUNCED = "2026-02-02 00:00", "2026-02-01 00:00"
SETTINGS = """
store: {name: Test, timezone: UTC, postal_address: 1 Main St}
smart_sending: {email: 16h}
caps: [{channel: email, limit: 1, period: 2h}]
coupon_pools: {full: {discount: 10%}, empty: {discount: 10%}, old: {discount: 5%}}
"""

QUEUE_REASONS = [r for r in REASONS if r != "quiet_hours"]
SEND_REASONS = [r for r in QUEUE_REASONS if r not in ("no_address", "discount_active",
                                                      "coupon_pool_empty")]  # fmt: skip
QUEUE_PAIRS = list(combinations(QUEUE_REASONS, 2))
SEND_PAIRS = list(combinations(SEND_REASONS, 2))


def _offer(pool: str) -> dict[str, Any]:
    return {"id": "offer", "send": {**EMAIL, "coupon_pool": pool}}


def _flows(store: Store) -> None:
    """``prior``: an earlier marketing e-mail (for caps and smart sending); ``full`` and ``empty``:
    the message judged, with a coupon from a stocked or an empty pool."""
    store.flows(
        flow("prior", [{"id": "news", "send": EMAIL}], trigger="opted_in", max_lateness="400d"),
        *[
            flow(pool, [_offer(pool)], max_lateness="1h",
                 trigger={"event": "cart_abandoned", "where": f"event.pool = '{pool}'"})
            for pool in ("full", "empty")
        ],
        settings=SETTINGS,
    )  # fmt: skip
    store.codes("full", *[f"F{i}" for i in range(100)])


def _customer(pair: tuple[str, str]) -> str:
    return "+".join(pair)


def _attributes(pair: tuple[str, str]) -> dict[str, Any]:
    """The customer attributes that make the pair's reasons hold."""
    attrs: dict[str, Any] = {}
    if "no_address" in pair:
        attrs["email"] = None
    if "consent" in pair:  # never opted in (with an unsubscribe on record if paired with it)
        attrs |= {"has_email_consent": False, "has_email_opt_in": False}
    if "unsubscribed" in pair:  # opted in once, unsubscribed since
        attrs |= {"has_email_consent": False, "email_unsubscribed_at": LEFT}
    if "suppressed" in pair:
        attrs["email_suppressed_at"] = BOUNCED
    return attrs


def _due(pair: tuple[str, str]) -> datetime:
    assert ON_TIME is not None and LATE is not None
    return LATE if "stale" in pair else ON_TIME


def _prior_at(pair: tuple[str, str], before: datetime) -> datetime | None:
    """When the earlier marketing e-mail went: within the cap's 2 h (so both the cap and smart
    sending hold) or 10 h before (smart sending only)."""
    if "frequency_cap" in pair:
        return before - timedelta(minutes=30)
    if "smart_sending" in pair:
        return before - timedelta(hours=10)
    return None


def _active_coupon(store: Store, customer: str) -> None:
    code = f"OLD-{customer}"
    store.codes("old", code)
    _run(
        store,
        "update flowhouse.coupon_codes set customer_id = :customer, message_id = :message, "
        "issued_at = cast('2026-02-20 00:00' as timestamp), "
        "expires_at = cast('2026-04-01 00:00' as timestamp) where code = :code",
        customer=customer,
        message=f"m-{customer}",
        code=code,
    )


def _run(store: Store, text: str, **values: Any) -> None:
    """A statement with bound values, written for the store's warehouse."""
    store.wh.execute(render(statement(text, **values), store.wh.dialect))


def _reasons(store: Store, flows: tuple[str, ...]) -> dict[str, str | None]:
    return {m["customer_id"]: m["skip_reason"] for m in store.messages() if m["flow_id"] in flows}


@pytest.mark.parametrize("pairs", [QUEUE_PAIRS], ids=["all pairs"])
def test_the_first_reason_is_recorded_when_queued(
    store: Store, pairs: list[tuple[str, str]]
) -> None:
    _flows(store)
    assert DECIDED is not None
    store.tick("2026-01-01 00:00")
    for pair in pairs:
        store.customer(_customer(pair))
    priors = {p: _prior_at(p, _due(p)) for p in pairs}
    for pair, at in priors.items():
        if at is not None:
            store.event(_customer(pair), "opted_in", at=at)
    store.tick(min(at for at in priors.values() if at is not None))
    store.tick(max(at for at in priors.values() if at is not None))
    assert set(_reasons(store, ("prior",)).values()) == {None}  # the earlier e-mails were queued
    for pair in pairs:
        customer = _customer(pair)
        if _attributes(pair):
            store.attributes(customer, **_attributes(pair))
        if "discount_active" in pair:
            _active_coupon(store, customer)
        pool = "empty" if "coupon_pool_empty" in pair else "full"
        store.event(customer, "cart_abandoned", at=_due(pair), loaded=DECIDED, pool=pool)
    store.tick(DECIDED)
    recorded = _reasons(store, ("full", "empty"))
    assert recorded == {_customer(p): p[0] for p in pairs}


@pytest.mark.parametrize("pairs", [SEND_PAIRS], ids=["all pairs"])
def test_the_first_reason_is_recorded_when_sent(store: Store, pairs: list[tuple[str, str]]) -> None:
    _flows(store)
    assert DECIDED is not None
    store.tick("2026-01-01 00:00")
    for pair in pairs:
        store.customer(_customer(pair))
    for due in sorted({_due(p) for p in pairs}):  # queued on time, in good standing
        for pair in (p for p in pairs if _due(p) == due):
            store.event(_customer(pair), "cart_abandoned", at=due, pool="full")
        store.tick(due)
    assert set(_reasons(store, ("full",)).values()) == {None}
    for pair in pairs:  # then both conditions arrive before the send
        customer = _customer(pair)
        if _attributes(pair):
            store.attributes(customer, **_attributes(pair))
        sent = _prior_at(pair, DECIDED)
        if sent is not None:  # an earlier marketing e-mail that went out
            _run(
                store,
                "insert into flowhouse.messages (message_id, enrollment_id, flow_id, flow_version, "
                "step_id, customer_id, channel, kind, is_marketing, due_at, queued_at, status, "
                "sent_at, updated_at) values (:id, :enrollment, 'prior', 'v1', 'news', :customer, "
                "'email', 'message', true, :sent, :sent, 'sent', :sent, :sent)",
                id=f"p-{customer}",
                enrollment=f"e-{customer}",
                customer=customer,
                sent=sent,
            )
    ctx = Context(store.wh, store.schema, DECIDED, None, store.compiled, store.settings)
    claim(ctx, "check", Bucket(), 10_000)
    recheck(ctx, "check", scheduling=())
    recorded = _reasons(store, ("full",))
    assert recorded == {_customer(p): p[0] for p in pairs}
