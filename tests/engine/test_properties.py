"""Invariants of DESIGN.md, checked on small random stores (hypothesis).

A scenario is a few customers in zones with and without DST, random events at whole hours around a
DST change, and two flows covering waits, a wait for an event, waits until a local time and
weekday, branches, a holdout, quiet hours, caps and smart sending. Everything lands on whole
hours (events occur and load at whole hours, waits and local times are whole hours, zones have
whole-hour offsets), so ticks on every whole hour see each due time exactly, which is DESIGN's
condition for "due times do not depend on when or how often ticks run".

- (a) a second tick at the same time changes nothing;
- (b) ticking every 5 minutes and every hour over the same span decides the same; and when every
  event is known from the start (and nothing goes stale), one late tick decides as hourly ticks
  do: the set-based rounds of a catch-up tick keep the order of due times;
- (c) message ids never repeat;
- (d) no marketing message is queued on a channel the customer has no consent for;
- (e) no message is queued or held out inside its channel's quiet hours, in the customer's zone.
"""

from __future__ import annotations

import tempfile
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, time, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from harness import Store, flow
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from flowhouse.core.warehouse import Location

#: Whole-hour zones: with and without DST, north and south.
ZONES = ("UTC", "America/New_York", "Europe/Berlin", "Australia/Sydney", "America/Sao_Paulo")
#: Hours just before a DST change somewhere (UTC): the span starts a few hours earlier.
CHANGES = (
    datetime(2026, 3, 8, 7),  # New York springs forward
    datetime(2026, 3, 29, 1),  # Berlin springs forward
    datetime(2026, 4, 4, 16),  # Sydney falls back
    datetime(2026, 10, 25, 1),  # Berlin falls back
    datetime(2026, 11, 1, 6),  # New York falls back
)
SPAN_HOURS = 6
EVENT_TYPES = (
    "cart_abandoned",
    "cart_abandoned",
    "order_placed",
    "customer_created",
    "product_viewed",
)
WEEKDAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")


@dataclass(frozen=True)
class Customer:
    customer_id: str
    tz: str
    email: bool
    email_consent: bool
    phone: bool
    sms_consent: bool


@dataclass(frozen=True)
class Scenario:
    start: datetime
    customers: list[Customer]
    events: list[tuple[int, str, int, int]]  # customer, type, occurred hour, load delay (hours)
    wait_hours: int
    timeout_hours: int
    until_hour: int
    weekdays: list[str]
    quiet: dict[str, tuple[int, int]]  # channel -> (start hour, end hour)
    smart_hours: int
    holdout: float
    cap_any: int
    gap_hours: int

    @property
    def end(self) -> datetime:
        return self.start + timedelta(hours=SPAN_HOURS)


@st.composite
def scenarios(draw: st.DrawFn) -> Scenario:
    start = draw(st.sampled_from(CHANGES)) - timedelta(hours=draw(st.integers(0, SPAN_HOURS - 2)))
    customers = [
        Customer(f"c{i}", draw(st.sampled_from(ZONES)), draw(st.booleans()) or i == 0,
                 draw(st.booleans()), draw(st.booleans()), draw(st.booleans()))
        for i in range(draw(st.integers(1, 3)))
    ]  # fmt: skip
    event = st.tuples(
        st.integers(0, len(customers) - 1),
        st.sampled_from(EVENT_TYPES),
        st.integers(1, SPAN_HOURS - 1),
        st.integers(0, 2),
    )
    hour = st.integers(0, 23)
    return Scenario(
        start=start,
        customers=customers,
        events=draw(st.lists(event, min_size=1, max_size=7)),
        wait_hours=draw(st.integers(1, 4)),
        timeout_hours=draw(st.integers(1, 5)),
        until_hour=draw(hour),
        weekdays=draw(st.lists(st.sampled_from(WEEKDAYS), min_size=1, max_size=7, unique=True)),
        quiet={"email": (draw(hour), draw(hour)), "sms": (draw(hour), draw(hour))},
        smart_hours=draw(st.integers(1, 6)),
        holdout=draw(st.sampled_from([0.0, 0.5])),
        cap_any=draw(st.integers(1, 3)),
        gap_hours=draw(st.integers(0, 2)),
    )


def _flows(s: Scenario, lateness: str = "2h") -> tuple[list[str], str]:
    cart = f"""
    - {{id: pause, wait: {s.wait_hours}h}}
    - {{id: reminder, send: {{channel: email, template: t.html.j2}}}}
    - id: await_order
      wait_for: {{event: order_placed, timeout: {s.timeout_hours}h}}
      on_event: [{{id: thanks, send: {{channel: sms, template: t.txt.j2}}}}]
      on_timeout:
        - {{id: by_clock, wait_until: {{time: "{s.until_hour:02d}:00"}}}}
        - {{id: nudge, send: {{channel: sms, template: t.txt.j2}}}}
    - {{id: last, send: {{channel: push, template: t.txt.j2}}}}
    """
    welcome = f"""
    - {{id: hello, send: {{channel: email, template: t.html.j2}}}}
    - {{id: on_days, wait_until: {{weekdays: {s.weekdays}, time: "{s.until_hour:02d}:00"}}}}
    - id: by_consent
      branch:
        - when: "customer.has_sms_consent"
          steps: [{{id: text, send: {{channel: sms, template: t.txt.j2}}}}]
        - else: true
          steps: [{{id: mail, send: {{channel: email, template: t.html.j2}}}}]
    - {{id: later, wait: {s.wait_hours + 1}h}}
    - {{id: tag, action: {{type: add_tag, tag: welcomed}}}}
    """
    browse = f"""
    - {{id: look, send: {{channel: push, template: t.txt.j2}}}}
    - {{id: gap, wait: {s.gap_hours}h}}
    - {{id: look_again, send: {{channel: push, template: t.txt.j2}}}}
    """
    flows = [
        flow("browse", browse, trigger="product_viewed", entry={"reentry": "always"},
             max_lateness=lateness),
        flow("cart", cart, entry={"reentry": "always"}, exit={"events": ["customer_created"]},
             holdout=s.holdout, max_lateness=lateness),
        flow("welcome", welcome, trigger="customer_created", entry={"reentry": "once"}, priority=5,
             max_lateness=lateness),
    ]  # fmt: skip
    quiet = "".join(
        f"  {ch}: {{start: '{a:02d}:00', end: '{b:02d}:00'}}\n" for ch, (a, b) in s.quiet.items()
    )
    text = (
        "store: {name: Test, timezone: UTC, postal_address: 1 Main St}\n"
        f"smart_sending: {{email: {s.smart_hours}h}}\n"
        f"caps: [{{channel: any, limit: {s.cap_any}, period: 4h}}, {{channel: sms, limit: 1, period: 3h}}]\n"
        f"quiet_hours:\n{quiet}"
    )
    return flows, text


@contextmanager
def _store() -> Iterator[Store]:
    with tempfile.TemporaryDirectory() as folder:
        store = Store(Location.parse(f"{folder}/store.duckdb"), Path(folder))
        try:
            yield store
        finally:
            store.close()


def _fill(store: Store, s: Scenario, known_from_start: bool = False) -> None:
    flows, text = _flows(s, "30d" if known_from_start else "2h")
    store.flows(*flows, settings=text)
    for c in s.customers:
        store.customer(
            c.customer_id, tz=c.tz, email="" if c.email else None, email_consent=c.email_consent,
            phone="+15550001" if c.phone else None, sms_consent=c.sms_consent,
        )  # fmt: skip
    for n, (i, kind, hour, delay) in enumerate(s.events):
        at = s.start + timedelta(hours=hour)
        loaded = s.start + timedelta(hours=1) if known_from_start else at + timedelta(hours=delay)
        store.event(f"c{i}", kind, at=at, loaded=loaded, event_id=f"e{n}")


def _ticks(s: Scenario, minutes: int) -> list[datetime]:
    return [s.start + timedelta(minutes=m) for m in range(0, SPAN_HOURS * 60 + 1, minutes)]


def _decided(store: Store) -> tuple[list[tuple[Any, ...]], list[tuple[Any, ...]]]:
    """Decisions without decided_at, and messages without queued_at and updated_at."""
    decisions = sorted(
        tuple(v for k, v in d.items() if k != "decided_at") for d in store.rows("decisions")
    )
    messages = sorted(
        tuple(v for k, v in m.items() if k not in ("queued_at", "updated_at"))
        for m in store.rows("messages")
    )
    return decisions, messages


def _check_messages(store: Store, s: Scenario) -> None:
    """(c), (d) and (e) on what a run queued."""
    messages = store.rows("messages")
    ids = Counter(m["message_id"] for m in messages)
    assert all(n == 1 for n in ids.values()), ids  # (c)
    customers = {c.customer_id: c for c in s.customers}
    for m in messages:
        c = customers[m["customer_id"]]
        if m["status"] == "queued" and m["is_marketing"]:  # (d)
            assert m["channel"] != "email" or c.email_consent, m
            assert m["channel"] != "sms" or c.sms_consent, m
        window = s.quiet.get(m["channel"])
        if window and m["status"] in ("queued", "held_out"):  # (e)
            local = m["due_at"].replace(tzinfo=UTC).astimezone(ZoneInfo(c.tz)).time()
            start, end = time(window[0]), time(window[1])
            inside = start <= local < end if start <= end else local >= start or local < end
            assert start == end or not inside, (m, local)


COMMON = settings(
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
)


@settings(COMMON, max_examples=6)
@given(scenarios(), st.sets(st.integers(0, SPAN_HOURS), max_size=4))
def test_a_second_tick_at_the_same_time_changes_nothing(s: Scenario, again: set[int]) -> None:
    """(a), with (c)-(e) on the way."""
    with _store() as store:
        _fill(store, s)
        for t in _ticks(s, 60):
            store.tick(t)
            if (t - s.start).total_seconds() // 3600 in again:
                before = store.snapshot()
                store.tick(t)
                assert store.snapshot() == before
        _check_messages(store, s)


@settings(COMMON, max_examples=3)
@given(scenarios())
def test_due_times_do_not_depend_on_the_tick_cadence(s: Scenario) -> None:
    """(b): every 5 minutes decides as every hour; (c)-(e) hold for both."""
    outcomes = []
    for minutes in (60, 5):
        with _store() as store:
            _fill(store, s)
            for t in _ticks(s, minutes):
                store.tick(t)
            _check_messages(store, s)
            outcomes.append(_decided(store))
    assert outcomes[0] == outcomes[1]


#: A catch-up tick where a flow's next step (10:00 push, 1 h gap, push) makes a message due before
#: another flow's (11:00 e-mail) that was due when the first push was decided: with a cap of two
#: per 4 h, the 11:00 e-mail must be the one capped.
CHAINED = Scenario(
    start=datetime(2026, 3, 8, 8),
    customers=[Customer("c0", "UTC", True, True, False, False)],
    events=[(0, "cart_abandoned", 1, 0), (0, "product_viewed", 2, 0)],
    wait_hours=2,
    timeout_hours=1,
    until_hour=0,
    weekdays=list(WEEKDAYS),
    quiet={"email": (0, 0), "sms": (0, 0)},
    smart_hours=1,
    holdout=0.0,
    cap_any=2,
    gap_hours=1,
)


@settings(COMMON, max_examples=5)
@given(scenarios())
@example(CHAINED)
def test_a_late_tick_decides_as_hourly_ticks_when_everything_is_known(s: Scenario) -> None:
    """(b), catching up: every event is loaded an hour after the flows go live, so hourly ticks
    and one tick at the end know the same; (c)-(e) hold for both."""
    outcomes = []
    for ticks in (_ticks(s, 60), [s.start, s.start + timedelta(hours=1), s.end]):
        with _store() as store:
            _fill(store, s, known_from_start=True)
            for t in ticks:
                store.tick(t)
            _check_messages(store, s)
            outcomes.append(_decided(store))
    assert outcomes[0] == outcomes[1]
