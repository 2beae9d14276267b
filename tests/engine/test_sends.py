"""Send-time rules: skip reasons and their order, transactional exemptions, quiet hours, caps,
smart sending, competition in one tick, staleness, coupons and actions (DESIGN.md, "Send-time
rules", "Skip reasons", "Quiet hours", "Caps and smart sending", "Staleness", "Transactional
flows", "Actions", "Discounts")."""

from __future__ import annotations

import hashlib
import json
from typing import Any

from harness import EMAIL, PUSH, SMS, Store, case_trigger, flow

BASE = """
store: {name: Test, timezone: UTC, postal_address: 1 Main St}
coupon_pools:
  cart10: {discount: 10%, expires_in: 3d}
  empty: {discount: 5%}
"""


def settings(
    smart: str | None = None, caps: list[dict[str, Any]] | None = None, quiet: str = ""
) -> str:
    text = BASE + f"smart_sending: {{{'email: ' + smart if smart else ''}}}\n"
    if caps:
        text += "caps:\n" + "".join(f"  - {json.dumps(c)}\n" for c in caps)
    return text + quiet


# -- skip reasons and their order ----------------------------------------------------------------

#: Each skip reason, and how a scenario brings it about (in DESIGN.md's order of precedence).
REASONS = [
    ("no_address", "no_address"),
    ("consent", "consent"),
    ("unsubscribed", "unsubscribed"),
    ("bounced", "suppressed"),
    ("flow_suppress", "suppressed"),
    ("stale", "stale"),
    ("frequency_cap", "frequency_cap"),
    ("smart_sending", "smart_sending"),
    ("discount_active", "discount_active"),
    ("coupon_pool_empty", "coupon_pool_empty"),
]


def _skip_cases(store: Store, cases: list[tuple[set[str], bool]]) -> list[tuple[Any, ...]]:
    """Each case (conditions, transactional) is a customer who got a marketing e-mail at 06:00
    from another flow, then a cart at 10:00 whose e-mail carries a coupon, in a flow of its own;
    the conditions switch on the causes of each skip. One tick at 12:00 decides every case;
    returns each case's (status, skip reason, whether it got a code)."""
    flows = [flow("prior", [{"id": "news", "send": EMAIL}], trigger="opted_in")]
    for i, (conditions, transactional) in enumerate(cases):
        pool = "empty" if "coupon_pool_empty" in conditions else "cart10"
        caps = [
            {"channel": "email", "limit": 1 if "frequency_cap" in conditions else 9, "period": "1d"}
        ]
        flows.append(flow(
            f"main{i}", [{"id": "offer", "send": {**EMAIL, "coupon_pool": pool}}],
            trigger=case_trigger(f"k{i}"),
            max_lateness="1h" if "stale" in conditions else "3h",
            suppress="customer.refunded_amount > 0",
            transactional=transactional,
            caps=caps,
            smart_sending="6h" if "smart_sending" in conditions else False,
        ))  # fmt: skip
    store.flows(*flows, settings=settings())
    store.tick("2026-03-01 00:00")
    for i in range(len(cases)):
        store.customer(f"c{i}")
        store.event(f"c{i}", "opted_in", at="2026-03-01 06:00")
    store.tick("2026-03-01 06:00")
    assert {m[:4] for m in store.outbox()} == {("news", "email", "queued", None)}
    for i, (conditions, _) in enumerate(cases):
        _bring_about(store, f"c{i}", conditions)
        store.event(f"c{i}", "cart_abandoned", at="2026-03-01 10:00", case=f"k{i}")
    store.codes("cart10", *[f"FREE{i}" for i in range(len(cases))])
    store.tick("2026-03-01 12:00")
    offers = {m["customer_id"]: m for m in store.messages() if m["step_id"] == "offer"}
    return [
        (o["status"], o["skip_reason"], o["coupon_code"] is not None)
        for o in (offers[f"c{i}"] for i in range(len(cases)))
    ]


def _bring_about(store: Store, customer: str, conditions: set[str]) -> None:
    """The customer's side of the conditions, known by the 12:00 tick."""
    if "no_address" in conditions:
        store.attributes(customer, email=None)
    if "consent" in conditions:
        store.attributes(customer, has_email_consent=False)
    if "unsubscribed" in conditions:
        store.unsubscribe(customer, "email", at="2026-03-01 08:00")
    if "bounced" in conditions:
        store.bounce(customer, "email", at="2026-03-01 08:00")
    if "flow_suppress" in conditions:
        store.attributes(customer, refunded_amount=25)
    if "discount_active" in conditions:
        code = f"HELD-{customer}"
        store.codes("cart10", code)
        store.wh.execute(
            f"update flowhouse.coupon_codes set customer_id = '{customer}', message_id = 'm0', "
            "issued_at = timestamp '2026-02-28 00:00', expires_at = timestamp '2026-03-05 00:00' "
            f"where code = '{code}'"
        )


def test_each_skip_reason_alone(store: Store) -> None:
    cases: list[tuple[set[str], bool]] = [(set(), False)]
    cases += [({condition}, False) for condition, _ in REASONS]
    assert _skip_cases(store, cases) == [("queued", None, True)] + [
        ("skipped", reason, False) for _, reason in REASONS
    ]


def test_the_first_applicable_reason_is_recorded(store: Store) -> None:
    """Case i has every condition from the i-th reason on; the i-th reason is recorded."""
    cases = []
    for first in range(len(REASONS)):
        conditions = {c for c, _ in REASONS[first:]}
        if REASONS[first][0] == "consent":
            # An unsubscribe is itself a missing consent: 'consent' names consent never given.
            conditions.discard("unsubscribed")
        cases.append((conditions, False))
    assert _skip_cases(store, cases) == [("skipped", reason, False) for _, reason in REASONS]


def test_skip_journal_and_the_enrollment_goes_on(store: Store) -> None:
    store.customer("c1", email_consent=False)
    store.flows(flow("main", [{"id": "one", "send": EMAIL}, {"id": "wait", "wait": "1h"},
                              {"id": "two", "send": {**PUSH, "subject": "Hi"}}]))  # fmt: skip
    store.tick("2026-03-01 00:00")
    store.event("c1", "cart_abandoned", at="2026-03-01 10:00", event_id="t1")
    store.tick("2026-03-01 11:00")
    assert store.trail("c1") == [
        ("_entry", "enrolled", "treatment", "2026-03-01 10:00"),
        ("one", "skipped", "consent", "2026-03-01 10:00"),
        ("wait", "waited", None, "2026-03-01 11:00"),
        ("two", "queued", None, "2026-03-01 11:00"),  # push needs no e-mail consent
        ("_end", "completed", None, "2026-03-01 11:00"),
    ]
    (one, two) = store.messages("c1")
    enrollment_id = store.enrollment("c1")["enrollment_id"]
    assert enrollment_id == md5("main:t1")  # flow and trigger event
    assert (one["message_id"], two["message_id"]) == (
        md5(f"{enrollment_id}:one"),
        md5(f"{enrollment_id}:two"),
    )
    assert [d["detail"] for d in store.decisions("c1") if d["step_id"] in ("one", "two")] == [
        one["message_id"],
        two["message_id"],
    ]


def md5(text: str) -> str:
    return hashlib.md5(text.encode()).hexdigest()


UNSUBSCRIBES = [
    ("email", ("skipped", "unsubscribed")),
    ("all", ("skipped", "unsubscribed")),
    ("sms", ("queued", None)),
]


def test_unsubscribe_suppresses_its_channel(store: Store) -> None:
    store.flows(flow("main", [{"id": "wait", "wait": "1h"}, {"id": "mail", "send": EMAIL}]))
    store.tick("2026-03-01 00:00")
    for i, _ in enumerate(UNSUBSCRIBES):
        store.customer(f"c{i}", phone="+15550001", sms_consent=True)
        store.event(f"c{i}", "cart_abandoned", at="2026-03-01 10:00")
    store.tick("2026-03-01 10:00")
    for i, (channel, _) in enumerate(UNSUBSCRIBES):
        # after the due time (11:00), but known to the tick that runs the send: it counts
        store.unsubscribe(f"c{i}", channel, at="2026-03-01 11:10")
    store.tick("2026-03-01 11:15")
    found = [(m["status"], m["skip_reason"]) for m in store.messages()]
    assert sorted(found) == sorted(outcome for _, outcome in UNSUBSCRIBES)
    assert {m["customer_id"]: (m["status"], m["skip_reason"]) for m in store.messages()} == {
        f"c{i}": outcome for i, (_, outcome) in enumerate(UNSUBSCRIBES)
    }


def test_stale_boundary_is_exclusive_and_a_stale_send_does_not_end_the_walk(store: Store) -> None:
    for c in ("on_time", "late"):
        store.customer(c)
    steps = [
        {"id": "mail", "send": EMAIL},
        {"id": "wait", "wait": "3h"},
        {"id": "again", "send": EMAIL},
    ]
    store.flows(flow("main", steps, max_lateness="2h"))
    store.tick("2026-03-01 00:00")
    store.event("on_time", "cart_abandoned", at="2026-03-01 10:00")
    store.event("late", "cart_abandoned", at="2026-03-01 09:59")
    store.tick("2026-03-01 12:00")
    store.tick("2026-03-01 13:00")
    assert store.outbox("on_time")[0] == ("mail", "email", "queued", None, "2026-03-01 10:00")
    assert store.outbox("late") == [
        ("mail", "email", "skipped", "stale", "2026-03-01 09:59"),
        ("again", "email", "queued", None, "2026-03-01 12:59"),
    ]


# -- transactional flows ---------------------------------------------------------------------------

TRANSACTIONAL = [
    ("consent", ("queued", None)),
    ("unsubscribed", ("queued", None)),
    ("frequency_cap", ("queued", None)),
    ("smart_sending", ("queued", None)),
    ("no_address", ("skipped", "no_address")),
    ("bounced", ("skipped", "suppressed")),
    ("stale", ("skipped", "stale")),
]


def test_transactional_exemptions(store: Store) -> None:
    found = _skip_cases(store, [({condition}, True) for condition, _ in TRANSACTIONAL])
    assert [f[:2] for f in found] == [outcome for _, outcome in TRANSACTIONAL]


def test_transactional_messages_do_not_count_toward_caps(store: Store) -> None:
    store.customer("c1")
    receipts = flow(
        "receipt", [{"id": "receipt", "send": EMAIL}], trigger="order_placed", transactional=True
    )
    news = flow("news", [{"id": "news", "send": EMAIL}], trigger="opted_in")
    store.flows(
        receipts, news, settings=settings("16h", [{"channel": "email", "limit": 1, "period": "1d"}])
    )
    store.tick("2026-03-01 00:00")
    store.event("c1", "order_placed", at="2026-03-01 08:00")
    store.event("c1", "opted_in", at="2026-03-01 09:00")
    store.tick("2026-03-01 10:00")
    assert store.outbox("c1") == [
        ("receipt", "email", "queued", None, "2026-03-01 08:00"),
        ("news", "email", "queued", None, "2026-03-01 09:00"),
    ]


# -- quiet hours -----------------------------------------------------------------------------------

QUIET = """
quiet_hours:
  email: {start: "21:00", end: "08:00"}
  sms: {start: "20:00", end: "09:00"}
"""

QUIET_CASES = [
    # (zone, trigger UTC, channel, first send due UTC, second send due UTC: 1 h later, moved)
    (
        "America/New_York",
        "2026-03-03 02:00",
        "email",
        "03-03 13:00",
        "03-03 14:00",
    ),  # 21:00 EST -> 08:00
    (
        "America/New_York",
        "2026-03-03 01:59",
        "email",
        "03-03 01:59",
        "03-03 13:00",
    ),  # 20:59 is free
    ("America/New_York", "2026-03-03 13:00", "email", "03-03 13:00", "03-03 14:00"),  # so is 08:00
    ("America/New_York", "2026-03-03 01:00", "sms", "03-03 14:00", "03-03 15:00"),  # 20:00 -> 09:00
    ("America/New_York", "2026-03-08 03:00", "email", "03-08 12:00", "03-08 13:00"),  # -> 08:00 EDT
    (
        "America/New_York",
        "2026-11-01 04:30",
        "email",
        "11-01 13:00",
        "11-01 14:00",
    ),  # 00:30 EDT -> EST
    (
        "Europe/Berlin",
        "2026-03-28 22:00",
        "email",
        "03-29 06:00",
        "03-29 07:00",
    ),  # 23:00 CET -> CEST
    ("Australia/Sydney", "2026-04-04 12:00", "email", "04-04 22:00", "04-04 23:00"),  # AEDT -> AEST
]


def test_quiet_hours_move_the_send_and_the_next_wait_counts_from_there(store: Store) -> None:
    flows = []
    for i, (_, _, channel, _, _) in enumerate(QUIET_CASES):
        message, second = (EMAIL, "u.html.j2") if channel == "email" else (SMS, "u.txt.j2")
        steps = [{"id": "first", "send": message}, {"id": "wait_1h", "wait": "1h"},
                 {"id": "second", "send": {**message, "template": second}}]  # fmt: skip
        flows.append(flow(f"f{i}", steps, trigger=case_trigger(f"k{i}"), max_lateness="400d"))
    store.flows(*flows, settings=settings(quiet=QUIET))
    store.tick("2026-01-01 00:00")
    for i, (tz, at, _, _, _) in enumerate(QUIET_CASES):
        store.customer(f"c{i}", tz=tz, phone="+15550001", sms_consent=True)
        store.event(f"c{i}", "cart_abandoned", at=at, case=f"k{i}")
    store.tick("2026-12-31 00:00")
    found = {
        f"c{i}": [(*t[:2], t[3][5:]) for t in store.trail(f"c{i}")[1:]]
        for i in range(len(QUIET_CASES))
    }
    assert found == {
        f"c{i}": [
            ("first", "queued", first),
            ("wait_1h", "waited", _plus_hour(first)),
            ("second", "queued", second),
            ("_end", "completed", second),
        ]
        for i, (_, _, _, first, second) in enumerate(QUIET_CASES)
    }


def _plus_hour(value: str) -> str:
    from datetime import datetime, timedelta

    return f"{datetime.fromisoformat('2026-' + value) + timedelta(hours=1):%m-%d %H:%M}"


def test_a_moved_send_is_not_stale_when_sent_at_the_moved_time(store: Store) -> None:
    store.customer("c1", tz="America/New_York")
    store.flows(flow("main", [{"id": "first", "send": EMAIL}], max_lateness="1h"),
                settings=settings(quiet=QUIET))  # fmt: skip
    store.tick("2026-03-03 00:00")
    store.event("c1", "cart_abandoned", at="2026-03-03 03:00")  # 22:00 local
    store.tick("2026-03-03 03:00")
    store.tick("2026-03-03 12:59")
    assert store.outbox() == []  # not due before 08:00 local
    store.tick("2026-03-03 13:30")
    assert store.outbox() == [("first", "email", "queued", None, "2026-03-03 13:00")]


def test_a_flow_may_opt_out_of_quiet_hours(store: Store) -> None:
    store.customer("c1", tz="America/New_York")
    store.flows(flow("main", [{"id": "first", "send": EMAIL}], quiet_hours=False),
                settings=settings(quiet=QUIET))  # fmt: skip
    store.tick("2026-03-03 00:00")
    store.event("c1", "cart_abandoned", at="2026-03-03 03:00")
    store.tick("2026-03-03 03:00")
    assert store.outbox() == [("first", "email", "queued", None, "2026-03-03 03:00")]


# -- caps and smart sending ------------------------------------------------------------------------


def _by_channel(
    store: Store, setting: str, sends: list[tuple[str, str]], **fields: Any
) -> list[Any]:
    """One customer; each (time, channel) is a cart that sends on that channel at once."""
    store.customer("c1", phone="+15550001", sms_consent=True)
    flows = [
        flow(f"{ch}_flow", [{"id": f"{ch}_send", "send": msg}],
             trigger={"event": "cart_abandoned", "where": f"event.ch = '{ch}'"},
             entry={"reentry": "always", "concurrent": True}, **fields)
        for ch, msg in (("email", EMAIL), ("sms", SMS))
    ]  # fmt: skip
    store.flows(*flows, settings=setting)
    store.tick("2026-03-01 00:00")
    for at, ch in sends:
        store.event("c1", "cart_abandoned", at=f"2026-03-{at}", ch=ch)
        store.tick(f"2026-03-{at}")
    return [(m[1], m[2], m[3], m[4][8:]) for m in store.outbox("c1")]


def test_caps_per_channel_and_across_channels(store: Store) -> None:
    caps = [
        {"channel": "email", "limit": 2, "period": "1d"},
        {"channel": "any", "limit": 3, "period": "1d"},
    ]
    sends = [("01 08:00", "email"), ("01 09:00", "email"), ("01 10:00", "email"), ("01 11:00", "sms"),
             ("01 12:00", "sms"), ("02 08:00", "email"), ("02 08:30", "email"), ("02 09:00", "email")]  # fmt: skip
    assert _by_channel(store, settings(caps=caps), sends) == [
        ("email", "queued", None, "01 08:00"),
        ("email", "queued", None, "01 09:00"),
        ("email", "skipped", "frequency_cap", "01 10:00"),  # skipped ones do not count
        ("sms", "queued", None, "01 11:00"),
        ("sms", "skipped", "frequency_cap", "01 12:00"),  # three on any channel
        ("email", "queued", None, "02 08:00"),  # window (due - 1d, due]: yesterday 08:00 is out
        ("email", "skipped", "frequency_cap", "02 08:30"),  # yesterday 09:00 and today 08:00
        ("email", "queued", None, "02 09:00"),  # yesterday 09:00 is out
    ]


def test_a_flow_overrides_the_store_caps(store: Store) -> None:
    caps = [{"channel": "email", "limit": 1, "period": "1d"}]
    sends = [("01 08:00", "email"), ("01 09:00", "email"), ("01 10:00", "email")]
    mine = [{"channel": "email", "limit": 2, "period": "1d"}]
    assert _by_channel(store, settings(caps=caps), sends, caps=mine) == [
        ("email", "queued", None, "01 08:00"),
        ("email", "queued", None, "01 09:00"),
        ("email", "skipped", "frequency_cap", "01 10:00"),
    ]


def test_smart_sending_per_channel(store: Store) -> None:
    sends = [("01 08:00", "email"), ("01 09:00", "sms"), ("01 23:59", "email"), ("02 00:00", "email"),
             ("02 00:01", "email")]  # fmt: skip
    assert _by_channel(store, settings(smart="16h"), sends) == [
        ("email", "queued", None, "01 08:00"),
        ("sms", "queued", None, "01 09:00"),  # another channel
        ("email", "skipped", "smart_sending", "01 23:59"),
        ("email", "queued", None, "02 00:00"),  # 16 h after 08:00: out of (due - 16h, due]
        ("email", "skipped", "smart_sending", "02 00:01"),
    ]


def test_smart_sending_off_for_a_flow(store: Store) -> None:
    sends = [("01 08:00", "email"), ("01 09:00", "email")]
    assert _by_channel(store, settings(smart="16h"), sends, smart_sending=False) == [
        ("email", "queued", None, "01 08:00"),
        ("email", "queued", None, "01 09:00"),
    ]


def test_held_out_messages_do_not_count(store: Store) -> None:
    store.customer("c1")
    held = flow("held", [{"id": "held_send", "send": EMAIL}], trigger="opted_in", holdout="100%")
    news = flow("news", [{"id": "news_send", "send": EMAIL}])
    store.flows(
        held, news, settings=settings("16h", [{"channel": "email", "limit": 1, "period": "1d"}])
    )
    store.tick("2026-03-01 00:00")
    store.event("c1", "opted_in", at="2026-03-01 08:00")
    store.event("c1", "cart_abandoned", at="2026-03-01 09:00")
    store.tick("2026-03-01 10:00")
    assert store.outbox("c1") == [
        ("held_send", "email", "held_out", None, "2026-03-01 08:00"),
        ("news_send", "email", "queued", None, "2026-03-01 09:00"),
    ]


# -- competition in one tick -----------------------------------------------------------------------

COMPETITION = [
    # (a's delay, a's priority, b's delay, b's priority, winner)
    ("0m", 0, "30m", 10, "a"),  # earlier due wins over priority
    ("30m", 10, "0m", 0, "b"),
    ("0m", 0, "0m", 10, "b"),  # same due: higher priority
    ("0m", 10, "0m", 0, "a"),
    ("0m", 5, "0m", 5, "a"),  # then flow id
]


def test_competing_messages_in_one_tick(store: Store) -> None:
    """Case i is customer c{i} between flows a{i} and b{i}; smart sending lets one through."""
    flows = [
        flow(f"{name}{i}", ([{"id": "pause", "wait": wait}] if wait != "0m" else [])
             + [{"id": "hello", "send": EMAIL}], priority=priority, trigger=case_trigger(f"k{i}"))
        for i, (a_wait, a_priority, b_wait, b_priority, _) in enumerate(COMPETITION)
        for name, wait, priority in (("a", a_wait, a_priority), ("b", b_wait, b_priority))
    ]  # fmt: skip
    store.flows(*flows, settings=settings("16h"))
    store.tick("2026-03-01 00:00")
    for i, _ in enumerate(COMPETITION):
        store.customer(f"c{i}")
        store.event(f"c{i}", "cart_abandoned", at="2026-03-01 10:00", case=f"k{i}")
    store.tick("2026-03-01 11:00")
    found = {
        (m["customer_id"], m["flow_id"][0]): (m["status"], m["skip_reason"])
        for m in store.messages()
    }
    expected: dict[tuple[str, str], tuple[str, str | None]] = {}
    for i, (*_, winner) in enumerate(COMPETITION):
        expected[(f"c{i}", winner)] = ("queued", None)
        expected[(f"c{i}", "b" if winner == "a" else "a")] = ("skipped", "smart_sending")
    assert found == expected


def test_competition_follows_due_times_through_chained_steps(store: Store) -> None:
    """A message that a flow's later step makes due at 10:15 is decided before another flow's
    10:30 message: a late tick decides as ticks every few minutes would."""
    steps_a = [
        {"id": "a1", "send": EMAIL},
        {"id": "a_wait", "wait": "15m"},
        {"id": "a2", "send": EMAIL},
    ]
    steps_b = [{"id": "b_wait", "wait": "30m"}, {"id": "b1", "send": EMAIL}]
    caps = [{"channel": "email", "limit": 2, "period": "1d"}]
    expected = [
        ("a1", "email", "queued", None, "2026-03-01 10:00"),
        ("a2", "email", "queued", None, "2026-03-01 10:15"),
        ("b1", "email", "skipped", "frequency_cap", "2026-03-01 10:30"),
    ]
    store.customer("c1")
    store.flows(
        flow("a_flow", steps_a), flow("b_flow", steps_b, priority=10), settings=settings(caps=caps)
    )
    store.tick("2026-03-01 00:00")
    store.event("c1", "cart_abandoned", at="2026-03-01 10:00")
    store.tick("2026-03-01 11:00")
    assert store.outbox() == expected


# -- coupons ---------------------------------------------------------------------------------------


def test_coupons_are_assigned_in_due_order_and_redeemed_by_orders(store: Store) -> None:
    for c in ("c1", "c2", "c3"):
        store.customer(c)
    steps = [{"id": "offer", "send": {**EMAIL, "coupon_pool": "cart10"}}]
    store.flows(flow("main", steps, entry={"reentry": "always"}), settings=settings())
    store.codes("cart10", "B-CODE", added="2026-01-02 00:00")
    store.codes("cart10", "A-CODE", added="2026-01-01 00:00")
    store.tick("2026-03-01 00:00")
    store.event("c2", "cart_abandoned", at="2026-03-01 10:30")
    store.event("c1", "cart_abandoned", at="2026-03-01 10:00")
    store.event("c3", "cart_abandoned", at="2026-03-01 11:00")
    store.tick("2026-03-01 11:00")
    assert [
        (m["customer_id"], m["status"], m["skip_reason"], m["coupon_code"])
        for m in store.messages()
    ] == [
        ("c1", "queued", None, "A-CODE"),
        ("c2", "queued", None, "B-CODE"),
        ("c3", "skipped", "coupon_pool_empty", None),
    ]
    codes = {c["code"]: c for c in store.rows("coupon_codes")}
    assert (codes["A-CODE"]["customer_id"], str(codes["A-CODE"]["issued_at"]), str(codes["A-CODE"]["expires_at"])) == (
        "c1", "2026-03-01 10:00:00", "2026-03-04 10:00:00")  # fmt: skip
    # c1 redeems; c2 does not: c1 may get a new code, c2 still holds an active one
    store.codes("cart10", "C-CODE", "D-CODE")
    store.event("c1", "order_placed", at="2026-03-02 09:00", coupon_code="A-CODE")
    store.event("c1", "cart_abandoned", at="2026-03-02 10:00")
    store.event("c2", "cart_abandoned", at="2026-03-02 10:00")
    store.tick("2026-03-02 10:00")
    assert str(store.rows("coupon_codes", "code")[0]["redeemed_at"]) == "2026-03-02 09:00:00"
    latest = [(m["customer_id"], m["status"], m["skip_reason"], m["coupon_code"])
              for m in store.messages() if str(m["due_at"]) == "2026-03-02 10:00:00"]  # fmt: skip
    assert latest == [("c1", "queued", None, "C-CODE"), ("c2", "skipped", "discount_active", None)]
    # after its expiry (10:30, three days after issue) the code is no longer active
    store.event("c2", "cart_abandoned", at="2026-03-04 10:30")
    store.tick("2026-03-04 10:30")
    assert store.outbox("c2")[-1][2:4] == ("queued", None)
    assert store.messages("c2")[-1]["coupon_code"] == "D-CODE"


def test_coupon_action_and_holdouts_use_no_code(store: Store) -> None:
    store.customer("c1")
    store.customer("c2")
    steps = [{"id": "gift", "action": {"type": "coupon", "pool": "cart10"}}]
    store.flows(flow("main", steps), flow("control", [{"id": "offer", "send": {**EMAIL, "coupon_pool": "cart10"}}],
                                      trigger="opted_in", holdout="100%"), settings=settings())  # fmt: skip
    store.codes("cart10", "ONLY")
    store.tick("2026-03-01 00:00")
    store.event("c2", "opted_in", at="2026-03-01 09:00")
    store.event("c1", "cart_abandoned", at="2026-03-01 10:00")
    store.tick("2026-03-01 10:00")
    assert store.trail("c2")[1][:3] == ("offer", "held_out", None)
    assert store.trail("c1")[1][:3] == ("gift", "applied", None)
    (update,) = store.rows("profile_updates")
    assert (update["customer_id"], update["action"], update["name"], update["value"]) == (
        "c1",
        "coupon",
        "cart10",
        "ONLY",
    )
    assert store.rows("coupon_codes")[0]["customer_id"] == "c1"


# -- actions ---------------------------------------------------------------------------------------


def test_actions_go_to_profile_updates_or_the_outbox(store: Store) -> None:
    steps = [
        {"id": "tag", "action": {"type": "add_tag", "tag": "vip"}},
        {"id": "prop", "action": {"type": "set_property", "property": "welcome", "value": "done"}},
        {"id": "points", "action": {"type": "loyalty_points", "points": 50}},
        {"id": "tier", "action": {"type": "change_tier", "tier": "gold"}},
        {"id": "listed", "action": {"type": "add_to_list", "list": "newsletter"}},
        {"id": "hook", "action": {"type": "webhook", "url": "https://hooks.example/a"}},
        {"id": "task", "action": {"type": "admin_task", "task": "call them"}},
        {"id": "audience", "action": {"type": "audience_sync", "audience": "lookalike"}},
    ]
    store.customer("c1", email_consent=False)  # actions need no marketing consent
    store.flows(flow("main", steps), settings=settings("16h"))
    store.tick("2026-03-01 00:00")
    store.event("c1", "cart_abandoned", at="2026-03-01 10:00")
    store.tick("2026-03-01 10:00")
    updates = [(u["step_id"], u["action"], u["name"], u["value"], str(u["updated_at"]))
               for u in store.rows("profile_updates", "step_id")]  # fmt: skip
    assert updates == [
        ("listed", "add_to_list", "newsletter", None, "2026-03-01 10:00:00"),
        ("points", "loyalty_points", None, "50", "2026-03-01 10:00:00"),
        ("prop", "set_property", "welcome", "done", "2026-03-01 10:00:00"),
        ("tag", "add_tag", "vip", None, "2026-03-01 10:00:00"),
        ("tier", "change_tier", None, "gold", "2026-03-01 10:00:00"),
    ]
    outbox = [(m["step_id"], m["channel"], m["kind"], m["status"], json.loads(m["payload"]))
              for m in store.messages()]  # fmt: skip
    assert sorted(outbox) == [
        ("audience", "audience_sync", "action", "queued", {"audience": "lookalike"}),
        ("hook", "webhook", "action", "queued", {"url": "https://hooks.example/a"}),
        ("task", "admin_task", "action", "queued", {"task": "call them"}),
    ]
    assert [t[1] for t in store.trail("c1")[1:-1]] == ["applied"] * 5 + ["queued"] * 3
