"""Time: durations, local times of day, weekdays, date attributes and waits for an event
(DESIGN.md, "Time", "Durations", "Dates" and "Wait until an event, with a time-out").

Each case walks an enrollment through a wait and a send and asserts the send's due time; the due
time is the wait's effective time, so it is what the journal records for the wait.
"""

from __future__ import annotations

from typing import Any

from harness import EMAIL, Store, case_trigger, flow

NY = "America/New_York"
#: (zone, entered UTC, wait step, customer attributes)
Case = tuple[str, str, dict[str, Any], dict[str, Any]]


def _due_times(store: Store, cases: list[Case]) -> dict[str, Any]:
    """Each case (zone, entered UTC, wait step, customer attributes) is one customer and one flow
    `wait` -> send in a shared store; returns each case's trail as the due time every decision
    after entry records, or the whole trail when the walk went otherwise."""
    store.flows(
        *[
            flow(f"f{i}", [{"id": "pause", **wait}, {"id": "hello", "send": EMAIL}],
                 trigger=case_trigger(f"k{i}"), max_lateness="3000d")
            for i, (_, _, wait, _) in enumerate(cases)
        ]
    )  # fmt: skip
    store.tick("2026-01-01 00:00")
    for i, (tz, entered, _, attrs) in enumerate(cases):
        store.customer(f"c{i}", tz=tz, **attrs)
        store.event(f"c{i}", "cart_abandoned", at=entered, case=f"k{i}")
    store.tick("2029-12-31 00:00")
    found = {}
    for i in range(len(cases)):
        trail = store.trail(f"c{i}")
        walked = [t[:2] for t in trail] == [
            ("_entry", "enrolled"), ("pause", "waited"), ("hello", "queued"), ("_end", "completed")
        ]  # fmt: skip
        found[f"c{i}"] = trail[1][3] if walked and len({t[3] for t in trail[1:]}) == 1 else trail
    return found


DURATIONS = [
    # a day is 24 h also across spring-forward (10:00 EST -> 11:00 EDT) and fall-back
    (NY, "2026-03-07 15:00", "1d", "2026-03-08 15:00"),
    (NY, "2026-10-31 14:00", "1d", "2026-11-01 14:00"),
    (NY, "2026-03-08 06:30", "1h", "2026-03-08 07:30"),
    ("Europe/Berlin", "2026-03-28 12:00", "1w", "2026-04-04 12:00"),
    ("UTC", "2026-03-01 10:00", "1d12h", "2026-03-02 22:00"),
    ("UTC", "2026-03-01 10:00", "90m", "2026-03-01 11:30"),
]


def test_durations_are_elapsed_time(store: Store) -> None:
    cases: list[Case] = [(tz, entered, {"wait": wait}, {}) for tz, entered, wait, _ in DURATIONS]
    assert _due_times(store, cases) == {f"c{i}": case[-1] for i, case in enumerate(DURATIONS)}


LOCAL_TIMES = [
    # (zone, entered UTC, wait_until, due UTC)
    (NY, "2026-03-02 21:00", {"time": "16:00"}, "2026-03-02 21:00"),  # exactly 16:00 EST: no wait
    (NY, "2026-03-02 21:01", {"time": "16:00"}, "2026-03-03 21:00"),
    (NY, "2026-03-02 20:00", {"time": "16:00"}, "2026-03-02 21:00"),
    (
        NY,
        "2026-03-08 01:00",
        {"time": "09:00"},
        "2026-03-08 13:00",
    ),  # Sat 20:00 EST -> Sun 09:00 EDT
    (
        NY,
        "2026-03-08 05:00",
        {"time": "02:30"},
        "2026-03-08 07:30",
    ),  # 02:30 does not exist: 03:30 EDT
    (NY, "2026-11-01 04:00", {"time": "01:30"}, "2026-11-01 05:30"),  # 01:30 twice: the first (EDT)
    ("Asia/Kolkata", "2026-03-02 03:00", {"time": "09:00"}, "2026-03-02 03:30"),
    ("UTC", "2026-03-04 12:00", {"weekdays": ["mon"], "time": "09:00"}, "2026-03-09 09:00"),
    ("UTC", "2026-03-09 08:00", {"weekdays": ["mon"], "time": "09:00"}, "2026-03-09 09:00"),
    ("UTC", "2026-03-09 09:00", {"weekdays": ["mon"], "time": "09:00"}, "2026-03-09 09:00"),
    ("UTC", "2026-03-09 10:00", {"weekdays": ["mon"], "time": "09:00"}, "2026-03-16 09:00"),
    ("UTC", "2026-03-07 10:00", {"weekdays": ["sat", "sun"]}, "2026-03-07 10:00"),  # an allowed day
    ("UTC", "2026-03-09 10:00", {"weekdays": ["sat", "sun"]}, "2026-03-14 00:00"),
    (
        NY,
        "2026-03-06 15:00",
        {"weekdays": ["mon"], "time": "08:00"},
        "2026-03-09 12:00",
    ),  # EST -> EDT
]


def test_wait_until_a_local_time_or_weekday(store: Store) -> None:
    cases: list[Case] = [
        (tz, entered, {"wait_until": until}, {}) for tz, entered, until, _ in LOCAL_TIMES
    ]
    assert _due_times(store, cases) == {f"c{i}": case[-1] for i, case in enumerate(LOCAL_TIMES)}


DATES = [
    # (zone, entered UTC, birthday, wait_until, due UTC)
    ("Europe/Paris", "2026-03-01 10:00", "1990-06-15",
     {"date": "customer.birthday", "offset": "3d", "before": True, "time": "09:00"}, "2026-06-12 07:00"),
    ("UTC", "2026-06-20 10:00", "1990-06-15",
     {"date": "customer.birthday", "time": "09:00"}, "2027-06-15 09:00"),  # this year's has passed
    ("UTC", "2026-06-15 09:00", "1990-06-15",
     {"date": "customer.birthday", "time": "09:00"}, "2026-06-15 09:00"),  # inclusive
    # 29 February is 28 February in other years; the offset counts from there
    ("UTC", "2026-03-01 10:00", "2000-02-29",
     {"date": "customer.birthday", "offset": "3d", "before": True, "time": "09:00"}, "2027-02-25 09:00"),
    ("UTC", "2027-12-01 10:00", "2000-02-29",
     {"date": "customer.birthday", "offset": "3d", "before": True, "time": "09:00"}, "2028-02-26 09:00"),
    ("UTC", "2026-02-20 10:00", "2000-02-29",
     {"date": "customer.birthday", "time": "10:00"}, "2026-02-28 10:00"),
    # calendar days in the customer's zone, across a DST change, landing at the local time
    (NY, "2026-03-01 10:00", "1985-03-10",
     {"date": "customer.birthday", "offset": "2d", "before": True, "time": "09:00"}, "2026-03-08 13:00"),
    (NY, "2026-03-01 10:00", "1985-03-06",
     {"date": "customer.birthday", "offset": "2d", "time": "09:00"}, "2026-03-08 13:00"),
    # not yearly: the date itself, once
    ("UTC", "2026-03-01 10:00", "2026-04-01",
     {"date": "customer.birthday", "offset": "1d", "time": "12:00", "yearly": False}, "2026-04-02 12:00"),
]  # fmt: skip


def test_wait_until_a_date_attribute(store: Store) -> None:
    cases = [(tz, at, {"wait_until": until}, {"birthday": day}) for tz, at, day, until, _ in DATES]
    assert _due_times(store, cases) == {f"c{i}": case[-1] for i, case in enumerate(DATES)}


def test_a_missing_date_ends_the_enrollment_with_no_date(store: Store) -> None:
    until = {"wait_until": {"date": "customer.birthday", "time": "09:00"}}
    found = _due_times(store, [("UTC", "2026-03-01 10:00", until, {})])
    assert found == {
        "c0": [
            ("_entry", "enrolled", "treatment", "2026-03-01 10:00"),
            ("pause", "exited", "no_date", "2026-03-01 10:00"),
        ]
    }
    e = store.enrollment("c0")
    assert (e["status"], e["end_reason"]) == ("exited", "no_date")
    assert store.outbox() == []


WAIT_FOR = """
- id: await_order
  wait_for: {event: order_placed, timeout: 2d}
  on_event:
    - id: settle
      wait: 1h
    - id: thanks
      send: {channel: email, template: t.html.j2}
  on_timeout:
    - id: nudge
      send: {channel: email, template: t.html.j2}
- id: after
  send: {channel: email, template: t.html.j2}
"""


def _wait_for_store(store: Store, steps: str = WAIT_FOR, **fields: Any) -> None:
    store.customer("c1")
    store.flows(flow("f", steps, **fields))
    store.tick("2026-03-01 00:00")
    store.event("c1", "cart_abandoned", at="2026-03-01 10:00", cart_id="k1")
    store.tick("2026-03-01 10:00")


def test_wait_for_the_event_continues_from_its_time(store: Store) -> None:
    _wait_for_store(store)
    store.event("c1", "order_placed", at="2026-03-02 08:20")
    store.tick("2026-03-02 08:30")
    store.tick("2026-03-02 09:30")
    assert store.trail("c1") == [
        ("_entry", "enrolled", "treatment", "2026-03-01 10:00"),
        ("await_order", "event_received", None, "2026-03-02 08:20"),
        ("settle", "waited", None, "2026-03-02 09:20"),
        ("thanks", "queued", None, "2026-03-02 09:20"),
        ("after", "queued", None, "2026-03-02 09:20"),
        ("_end", "completed", None, "2026-03-02 09:20"),
    ]


def test_wait_for_times_out_at_the_deadline(store: Store) -> None:
    _wait_for_store(store)
    store.event("c1", "product_viewed", at="2026-03-02 08:20")  # not the awaited type
    store.tick("2026-03-02 08:30")
    store.tick("2026-03-03 10:00")
    assert store.trail("c1") == [
        ("_entry", "enrolled", "treatment", "2026-03-01 10:00"),
        ("await_order", "timed_out", None, "2026-03-03 10:00"),
        ("nudge", "queued", None, "2026-03-03 10:00"),
        ("after", "queued", None, "2026-03-03 10:00"),
        ("_end", "completed", None, "2026-03-03 10:00"),
    ]


WINDOW = [
    # (order occurred, loaded, -, outcome, effective); the deciding tick runs at 03-03 12:00
    (
        "2026-03-01 10:00",
        None,
        "2026-03-03 12:00",
        "timed_out",
        "2026-03-03 10:00",
    ),  # not after start
    (
        "2026-03-03 10:00",
        None,
        "2026-03-03 12:00",
        "event_received",
        "2026-03-03 10:00",
    ),  # at deadline
    ("2026-03-03 10:01", None, "2026-03-03 12:00", "timed_out", "2026-03-03 10:00"),
    # late data the deciding tick knows counts; after that tick, the time-out stands
    (
        "2026-03-02 10:00",
        "2026-03-03 11:00",
        "2026-03-03 12:00",
        "event_received",
        "2026-03-02 10:00",
    ),
    ("2026-03-02 10:00", "2026-03-03 13:00", "2026-03-03 12:00", "timed_out", "2026-03-03 10:00"),
]


def test_wait_for_window_and_late_events(store: Store) -> None:
    """Only events after the wait starts and up to the deadline count; the first tick able to
    decide journals the outcome with everything it knows."""
    store.flows(
        *[flow(f"f{i}", WAIT_FOR, trigger=case_trigger(f"k{i}")) for i in range(len(WINDOW))]
    )
    store.tick("2026-03-01 00:00")
    for i, (at, loaded, _, _, _) in enumerate(WINDOW):
        store.customer(f"c{i}")
        store.event(f"c{i}", "cart_abandoned", at="2026-03-01 10:00", case=f"k{i}")
        store.event(f"c{i}", "order_placed", at=at, loaded=loaded)
    store.tick("2026-03-01 10:00")
    store.tick("2026-03-03 12:00")
    store.tick("2026-03-03 14:00")
    found = {
        f"c{i}": [t for t in store.trail(f"c{i}") if t[0] == "await_order"]
        for i in range(len(WINDOW))
    }
    assert found == {
        f"c{i}": [("await_order", outcome, None, effective)]
        for i, (_, _, _, outcome, effective) in enumerate(WINDOW)
    }


SAME_KEY = """
- id: await_order
  wait_for: {event: order_placed, timeout: 2d, same_key: true, where: "event.value > 50"}
  on_event: [{id: thanks, send: {channel: email, template: t.html.j2}}]
  on_timeout: [{id: nudge, send: {channel: email, template: t.html.j2}}]
"""


SAME_KEY_CASES: list[tuple[dict[str, Any], str]] = [
    ({"cart_id": "k1", "value": 80}, "event_received"),
    ({"cart_id": "k2", "value": 80}, "timed_out"),  # another cart
    ({"value": 80}, "timed_out"),  # no key
    ({"cart_id": "k1", "value": 20}, "timed_out"),  # fails the where
]


def test_wait_for_same_key_and_where(store: Store) -> None:
    store.flows(flow("f", SAME_KEY, entry={"key": "cart_id"}))
    store.tick("2026-03-01 00:00")
    for i, (props, _) in enumerate(SAME_KEY_CASES):
        store.customer(f"c{i}")
        store.event(f"c{i}", "cart_abandoned", at="2026-03-01 10:00", cart_id="k1")
        store.event(f"c{i}", "order_placed", at="2026-03-02 10:00", **props)
    store.tick("2026-03-01 10:00")
    store.tick("2026-03-02 11:00")
    store.tick("2026-03-04 00:00")
    found = {
        f"c{i}": [t[1] for t in store.trail(f"c{i}") if t[0] == "await_order"] for i in range(4)
    }
    assert found == {f"c{i}": [outcome] for i, (_, outcome) in enumerate(SAME_KEY_CASES)}
