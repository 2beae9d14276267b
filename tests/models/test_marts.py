"""The performance marts on a hand-made flow history, on DuckDB and PostgreSQL.

One flow, ``f``: an A/B split (``a`` is the control), a send per arm, a one-day wait, a branch whose
first path sends an SMS. 40 enrollments per arm in treatment, 20 in the holdout, 2 still waiting. The
engine's tables are written by hand so that every number is known: who converted (an order within the
goal's five days), which orders the last-touch rule credits (opens and clicks within the windows), and
the statistics, recomputed here with the textbook formulas. Then new events arrive and an incremental
build must equal a full rebuild.
"""

from __future__ import annotations

import json
import math
import statistics
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

import pytest
from sqlglot import exp

from flowhouse.core.build import MARTS, build_models
from flowhouse.core.dbt import run_dbt
from flowhouse.core.errors import DbtError
from flowhouse.core.state import TABLES, ensure_state
from flowhouse.core.warehouse import Location, Warehouse
from flowhouse.flows.compile import compile_flow
from flowhouse.flows.flowfile import Flow

pytestmark = pytest.mark.slow

T0 = datetime(2026, 9, 10, 10, 0)
NOW = datetime(2026, 9, 20)
GOAL = timedelta(days=5)
Z = 1.959963984540054

FLOW = Flow.model_validate(
    {
        "flow": "f",
        "name": "Test flow",
        "trigger": {"event": "cart_abandoned"},
        "goal": {"event": "order_placed", "within": "5d"},
        "steps": [
            {"id": "pick", "split": [
                {"name": "a", "weight": 1, "steps": [{"id": "send_a", "send": {"channel": "email", "template": "t.html.j2", "subject": "A"}}]},
                {"name": "b", "weight": 1, "steps": [{"id": "send_b", "send": {"channel": "email", "template": "t.html.j2", "subject": "B"}}]},
            ]},
            {"id": "wait_1d", "wait": "1d"},
            {"id": "route", "branch": [
                {"when": "customer.has_sms_consent", "steps": [{"id": "send_sms", "send": {"channel": "sms", "template": "t.txt.j2"}}]},
                {"else": True, "steps": []},
            ]},
        ],
    }
)  # fmt: skip


@dataclass
class Store:
    """The rows to write, and what the marts must say about them."""

    rows: dict[str, list[dict[str, Any]]] = field(default_factory=dict)
    events: list[tuple[str, str, str, datetime, dict[str, Any]]] = field(default_factory=list)
    customers: list[str] = field(default_factory=list)
    orders: list[tuple[str, str, datetime, float]] = field(
        default_factory=list
    )  # id, cust, at, value
    enrollments: list[tuple[str, str, bool, datetime]] = field(
        default_factory=list
    )  # cust, arm, holdout, at
    prefix: str = "o"

    def add(self, table: str, **values: Any) -> None:
        self.rows.setdefault(table, []).append(values)

    def order(self, customer: str, at: datetime, value: float) -> None:
        order_id = f"{self.prefix}{len(self.orders)}"
        self.orders.append((order_id, customer, at, value))
        self.events.append(
            (order_id, customer, "order_placed", at, {"order_id": order_id, "value": value})
        )

    def touch(self, customer: str, message_id: str, kind: str, at: datetime, channel: str) -> None:
        event_id = f"{kind}-{message_id}-{at:%H%M%S}"
        props = {"message_id": message_id, "channel": channel}
        self.events.append((event_id, customer, f"message_{kind}", at, props))


def message_id(enrollment_id: str, step_id: str) -> str:
    return f"{enrollment_id}:{step_id}"


def enroll(store: Store, customer: str, arm: str, holdout: bool, sms: bool, waiting: bool) -> str:
    """One enrollment walking the flow: entry, split, the arm's send, then (unless still waiting)
    the wait, the branch (path_1 when `sms`) and the SMS."""
    eid = f"e-{customer}"
    at = T0
    store.customers.append(customer)
    store.enrollments.append((customer, arm, holdout, at))
    common = {"enrollment_id": eid, "flow_id": "f", "flow_version": "v1", "customer_id": customer}
    end = at + timedelta(days=1)
    store.add("enrollments", **common, trigger_event_id=f"t-{customer}", trigger_type="cart_abandoned",
              entered_at=at, enrolled_at_tick=at, is_holdout=holdout, variant=arm,
              status="active" if waiting else "completed", step_id="wait_1d" if waiting else None,
              due_at=end if waiting else None, ended_at=None if waiting else end,
              end_reason=None if waiting else "completed", updated_at_tick=at)  # fmt: skip
    group = "holdout" if holdout else "treatment"
    decide(store, common, "_entry", "entry", at, "enrolled", group)
    decide(store, common, "pick", "split", at, "split", arm)
    send(store, common, f"send_{arm}", "email", at, holdout)
    if waiting:
        return eid
    decide(store, common, "wait_1d", "wait", end, "waited", None)
    decide(store, common, "route", "branch", end, "branched", "path_1" if sms else "else")
    if sms:
        send(store, common, "send_sms", "sms", end, holdout)
    decide(store, common, "_end", "end", end, "completed", None)
    return eid


def decide(store: Store, common: dict[str, Any], step: str, kind: str, at: datetime,
           outcome: str, reason: str | None, detail: str | None = None) -> None:  # fmt: skip
    store.add("decisions", decision_id=f"{common['enrollment_id']}:{step}", **common, step_id=step,
              step_kind=kind, effective_at=at, decided_at=at, outcome=outcome, reason=reason,
              detail=detail)  # fmt: skip


def send(store: Store, common: dict[str, Any], step: str, channel: str, at: datetime,
         holdout: bool) -> None:  # fmt: skip
    mid = message_id(common["enrollment_id"], step)
    decide(store, common, step, "send", at, "held_out" if holdout else "queued", None, mid)
    delivery = {} if holdout else {"sent_at": at, "delivered_at": at + timedelta(seconds=30),
                                    "provider": "fake", "provider_message_id": f"p-{mid}"}  # fmt: skip
    store.add("messages", message_id=mid, **common, step_id=step, channel=channel, kind="message",
              is_marketing=True, due_at=at, queued_at=at, updated_at=at,
              status="held_out" if holdout else "delivered", **delivery)  # fmt: skip


def scenario() -> Store:
    s = Store()
    h = timedelta(hours=1)
    for arm, converters, value in (("a", 10, 50.0), ("b", 20, 60.0)):
        for i in range(40):
            customer = f"{arm}{i:02d}"
            enroll(s, customer, arm, holdout=False, sms=i % 2 == 0, waiting=False)
            if i < converters:
                s.order(customer, T0 + timedelta(days=1), value + i)
    for i in range(20):
        customer = f"h{i:02d}"
        enroll(s, customer, "ab"[i % 2], holdout=True, sms=i % 2 == 0, waiting=False)
        if i < 2:
            s.order(customer, T0 + timedelta(days=2), 40.0)
    for i in range(2):
        enroll(s, f"w{i}", "b", holdout=False, sms=False, waiting=True)
    mid = {c: message_id(f"e-{c}", f"send_{c[0]}") for c in s.customers}
    for i in range(5):  # opens 2 h after the send: their orders a day later are credited
        s.touch(f"a{i:02d}", mid[f"a{i:02d}"], "opened", T0 + 2 * h, "email")
    for i in range(10):  # clicks
        s.touch(f"b{i:02d}", mid[f"b{i:02d}"], "clicked", T0 + 3 * h, "email")
    # a10: an order exactly at the end of its click's window is credited (outside the goal window)
    s.touch("a10", mid["a10"], "clicked", T0 + 2 * h, "email")
    s.order("a10", T0 + 2 * h + timedelta(days=5), 70.0)
    # a11: a minute after the window, not credited
    s.touch("a11", mid["a11"], "clicked", T0 + 2 * h, "email")
    s.order("a11", T0 + 2 * h + timedelta(days=5, minutes=1), 80.0)
    # a12: opened the e-mail, then clicked the SMS: the latest touch (the SMS) takes the order
    s.touch("a12", mid["a12"], "opened", T0 + 2 * h, "email")
    s.touch("a12", message_id("e-a12", "send_sms"), "clicked", T0 + timedelta(days=1) + h, "sms")
    s.order("a12", T0 + timedelta(days=1) + 2 * h, 90.0)
    # a13: ordered before opening: a conversion, but nothing to credit
    s.order("a13", T0 + h, 30.0)
    s.touch("a13", mid["a13"], "opened", T0 + 2 * h, "email")
    # b21: an SMS open is not a touch (no sms_open window)
    s.touch("b20", message_id("e-b20", "send_sms"), "opened", T0 + timedelta(days=1) + h, "sms")
    s.order("b20", T0 + timedelta(days=1) + 2 * h, 25.0)
    return s


CREDITED = {  # customer -> (step credited, touch)
    **{f"a{i:02d}": ("send_a", "open") for i in range(5)},
    **{f"b{i:02d}": ("send_b", "click") for i in range(10)},
    "a10": ("send_a", "click"),
    "a12": ("send_sms", "click"),
}


def write(store: Store, location: Location) -> None:
    with Warehouse.open(location) as wh:
        wh.ensure_raw_tables()
        ensure_state(wh, "flowhouse")
        at = "2026-08-01 00:00:00"
        customers = [(c, f"{c}@example.com", True, True, at, at) for c in store.customers]
        columns = ["customer_id", "email", "email_opt_in", "sms_opt_in", "created_at", "updated_at"]
        wh.execute(exp.insert(exp.values(customers), "raw.customers", columns=columns))
        insert_events(wh, store.events)
        insert(wh, "flows", [_flow_row()])
        compiled = compile_flow(FLOW)
        steps = [{"flow_id": "f", "step_id": r.step_id, "kind": r.kind, "position": r.position,
                  "next_step": r.next_step, "params": json.dumps(r.params)} for r in compiled.steps]  # fmt: skip
        insert(wh, "steps", steps)
        for table in ("enrollments", "decisions", "messages"):
            insert(wh, table, store.rows[table])
        wh.commit()


def _flow_row() -> dict[str, Any]:
    return {"flow_id": "f", "version": "v1", "name": "Test flow", "transactional": False,
            "holdout": 0.2, "priority": 0, "goal_event": "order_placed",
            "goal_within_seconds": int(GOAL.total_seconds()), "went_live_at": T0, "updated_at": T0}  # fmt: skip


def insert(wh: Warehouse, table: str, rows: Sequence[dict[str, Any]]) -> None:
    columns = [name for name, _, _ in TABLES[table]]
    values = [tuple(_literal(row.get(c)) for c in columns) for row in rows]
    wh.execute(exp.insert(exp.values(values), f"flowhouse.{table}", columns=columns))


def insert_events(
    wh: Warehouse,
    events: Sequence[tuple[str, str, str, datetime, dict[str, Any]]],
    loaded: datetime | None = None,
) -> None:
    rows = [(i, c, t, _literal(at), _literal(loaded or at + timedelta(minutes=5)), json.dumps(p))
            for i, c, t, at, p in events]  # fmt: skip
    columns = ["event_id", "customer_id", "event_type", "occurred_at", "loaded_at", "properties"]
    wh.execute(exp.insert(exp.values(rows), "raw.events", columns=columns))


def _literal(value: Any) -> Any:
    return f"{value:%Y-%m-%d %H:%M:%S}" if isinstance(value, datetime) else value


def read(
    wh: Warehouse, table: str, columns: Sequence[str], where: str | None = None
) -> list[dict[str, Any]]:
    query = exp.select(*columns).from_(f"marts.{table}")
    if where:
        query = query.where(where)
    return [dict(zip(columns, row, strict=True)) for row in wh.query(query)]


# -- what the marts must say, recomputed here --------------------------------------------------------


def converted(store: Store, customer: str, since: datetime) -> tuple[bool, float]:
    """An order after `since` within the goal window of an entry at T0, and their revenue."""
    inside = [v for _, c, at, v in store.orders if c == customer and since < at <= T0 + GOAL]
    return bool(inside), sum(inside)


def wilson(x: int, n: int) -> tuple[float, float]:
    p = x / n
    center = (p + Z * Z / (2 * n)) / (1 + Z * Z / n)
    half = Z / (1 + Z * Z / n) * math.sqrt(p * (1 - p) / n + Z * Z / (4 * n * n))
    return center - half, center + half


def proportion(x1: int, n1: int, x0: int, n0: int) -> tuple[float, float, float, float]:
    """Difference, Newcombe's hybrid score interval, pooled z-test p-value."""
    p1, p0 = x1 / n1, x0 / n0
    (l1, u1), (l0, u0) = wilson(x1, n1), wilson(x0, n0)
    low = p1 - p0 - math.sqrt((p1 - l1) ** 2 + (u0 - p0) ** 2)
    high = p1 - p0 + math.sqrt((u1 - p1) ** 2 + (p0 - l0) ** 2)
    pooled = (x1 + x0) / (n1 + n0)
    z = (p1 - p0) / math.sqrt(pooled * (1 - pooled) * (1 / n1 + 1 / n0))
    return p1 - p0, low, high, math.erfc(abs(z) / math.sqrt(2))


def means(v1: list[float], v0: list[float]) -> tuple[float, float, float, float]:
    diff = statistics.mean(v1) - statistics.mean(v0)
    se = math.sqrt(statistics.variance(v1) / len(v1) + statistics.variance(v0) / len(v0))
    return diff, diff - Z * se, diff + Z * se, math.erfc(abs(diff / se) / math.sqrt(2))


def close(actual: Any, expected: float) -> bool:
    return actual is not None and abs(float(actual) - expected) < 1e-6


# -- checks -------------------------------------------------------------------------------------------


def check_attribution(wh: Warehouse, store: Store) -> None:
    rows = read(wh, "order_attribution", ["customer_id", "step_id", "touch", "order_value"])
    assert {r["customer_id"]: (r["step_id"], r["touch"]) for r in rows} == CREDITED
    assert len(rows) == len(CREDITED)
    credited = sum(v for _, c, _, v in store.orders if c in CREDITED)
    daily = read(wh, "flow_daily", ["day", "conversions", "attributed_revenue"], "conversions > 0")
    assert sum(int(r["conversions"]) for r in daily) == len(CREDITED)
    assert close(sum(r["attributed_revenue"] for r in daily), credited)
    steps = {
        r["step_id"]: r
        for r in read(wh, "flow_steps", ["step_id", "attributed_orders", "attributed_revenue"])
    }
    assert (
        int(steps["send_a"]["attributed_orders"]) == 6
        and int(steps["send_sms"]["attributed_orders"]) == 1
    )


def check_steps(wh: Warehouse, store: Store) -> None:
    cols = ["step_id", "reached", "executed", "waiting_now", "exited_here", "messages_sent",
            "messages_held_out", "messages_opened", "messages_clicked", "open_rate"]  # fmt: skip
    steps = {r["step_id"]: r for r in read(wh, "flow_steps", cols)}
    total = len(store.enrollments)
    assert steps["pick"]["reached"] == total
    assert steps["wait_1d"]["waiting_now"] == 2 and steps["wait_1d"]["executed"] == total - 2
    arm_a = [e for e in store.enrollments if e[1] == "a"]
    assert steps["send_a"]["executed"] == len(arm_a)
    assert steps["send_a"]["messages_sent"] == sum(not e[2] for e in arm_a)
    assert steps["send_a"]["messages_held_out"] == sum(e[2] for e in arm_a)
    # a00-a04, a12, a13 opened; a10, a11 clicked
    assert steps["send_a"]["messages_opened"] == 7 and steps["send_a"]["messages_clicked"] == 2
    assert close(steps["send_a"]["open_rate"], 7 / 40)
    paths = {
        r["path"]: r
        for r in read(
            wh, "flow_branches", ["step_id", "path", "position", "enrollments"], "step_id = 'route'"
        )
    }
    walked = [c for c, *_ in store.enrollments if not c.startswith("w")]
    sms = sum(int(c[1:]) % 2 == 0 for c in walked)
    assert (paths["path_1"]["enrollments"], paths["else"]["enrollments"]) == (
        sms,
        len(walked) - sms,
    )
    assert (paths["path_1"]["position"], paths["else"]["position"]) == (1, 2)


def check_variants(wh: Warehouse, store: Store) -> None:
    cols = ["arm", "is_control", "recipients", "conversions", "conversion_rate_lift",
            "conversion_rate_lift_ci_low", "conversion_rate_lift_ci_high", "conversion_rate_p_value",
            "revenue_per_recipient_lift", "revenue_per_recipient_lift_ci_low",
            "revenue_per_recipient_p_value"]  # fmt: skip
    arms = {r["arm"]: r for r in read(wh, "flow_variants", cols)}
    outcome = {arm: [converted(store, c, T0) for c, a, holdout, _ in store.enrollments if a == arm and not holdout]
               for arm in "ab"}  # fmt: skip
    x = {arm: sum(hit for hit, _ in outcome[arm]) for arm in "ab"}
    n = {arm: len(outcome[arm]) for arm in "ab"}
    assert (arms["a"]["recipients"], arms["b"]["recipients"]) == (n["a"], n["b"]) == (40, 42)
    assert (arms["a"]["conversions"], arms["b"]["conversions"]) == (x["a"], x["b"]) == (12, 21)
    assert arms["a"]["is_control"] and arms["a"]["conversion_rate_lift"] is None
    lift, low, high, p = proportion(x["b"], n["b"], x["a"], n["a"])
    b = arms["b"]
    assert close(b["conversion_rate_lift"], lift) and close(b["conversion_rate_p_value"], p)
    assert close(b["conversion_rate_lift_ci_low"], low) and close(
        b["conversion_rate_lift_ci_high"], high
    )
    diff, low, _, p = means([v for _, v in outcome["b"]], [v for _, v in outcome["a"]])
    assert close(b["revenue_per_recipient_lift"], diff) and close(
        b["revenue_per_recipient_lift_ci_low"], low
    )
    assert close(b["revenue_per_recipient_p_value"], p)


def check_holdout(wh: Warehouse, store: Store) -> None:
    cols = ["treatment_enrollees", "holdout_enrollees", "treatment_conversions", "holdout_conversions",
            "conversion_rate_lift", "conversion_rate_lift_ci_low", "conversion_rate_p_value",
            "revenue_per_enrollee_lift", "revenue_per_enrollee_lift_ci_high", "incremental_conversions",
            "incremental_revenue", "attributed_revenue", "enrollees_window_open"]  # fmt: skip
    [row] = read(wh, "flow_holdout_lift", cols, "period = 'all'")
    groups = {g: [converted(store, c, T0) for c, _, holdout, _ in store.enrollments if holdout == g]
              for g in (False, True)}  # fmt: skip
    x1, n1 = sum(h for h, _ in groups[False]), len(groups[False])
    x0, n0 = sum(h for h, _ in groups[True]), len(groups[True])
    assert (row["treatment_enrollees"], row["holdout_enrollees"]) == (n1, n0) == (82, 20)
    assert (row["treatment_conversions"], row["holdout_conversions"]) == (x1, x0) == (33, 2)
    lift, low, _, p = proportion(x1, n1, x0, n0)
    assert close(row["conversion_rate_lift"], lift) and close(
        row["conversion_rate_lift_ci_low"], low
    )
    assert close(row["conversion_rate_p_value"], p) and close(
        row["incremental_conversions"], lift * n1
    )
    diff, _, high, _ = means([v for _, v in groups[False]], [v for _, v in groups[True]])
    assert close(row["revenue_per_enrollee_lift"], diff) and close(
        row["incremental_revenue"], diff * n1
    )
    assert close(row["revenue_per_enrollee_lift_ci_high"], high)
    assert close(row["attributed_revenue"], sum(v for _, c, _, v in store.orders if c in CREDITED))
    assert row["enrollees_window_open"] == 0


def check_holdout_received_nothing(wh: Warehouse) -> None:
    rows = read(wh, "enrollment_facts", ["messages_sent", "messages_held_out"], "is_holdout")
    assert len(rows) == 20 and all(
        r["messages_sent"] == 0 and r["messages_held_out"] >= 1 for r in rows
    )


def snapshot(wh: Warehouse) -> dict[str, list[tuple[Any, ...]]]:
    out = {}
    for table in (
        "message_facts",
        "enrollment_facts",
        "order_attribution",
        "flow_daily",
        "flow_holdout_lift",
    ):
        columns = [c for c in wh.columns("marts", table) if not c.startswith("_")]
        out[table] = sorted(
            map(
                tuple, (map(str, r) for r in wh.query(exp.select(*columns).from_(f"marts.{table}")))
            )
        )
    return out


def check_marts(location: Location) -> None:
    store = scenario()
    write(store, location)
    build_models(location, select=[f"+{MARTS}"], now=NOW)
    with Warehouse.open(location) as wh:
        check_attribution(wh, store)
        check_steps(wh, store)
        check_variants(wh, store)
        check_holdout(wh, store)
        check_holdout_received_nothing(wh)
    # new events: a14 opens and orders; an incremental build must equal a rebuild from scratch
    late = Store(prefix="late")  # loaded just before NOW, long after they happened
    late.touch("a14", message_id("e-a14", "send_a"), "opened", T0 + timedelta(days=3), "email")
    late.order("a14", T0 + timedelta(days=3, hours=1), 55.0)
    with Warehouse.open(location) as wh:
        insert_events(wh, late.events, loaded=NOW - timedelta(hours=1))
        wh.commit()
    build_models(location, select=[f"+{MARTS}"], now=NOW)  # staging reads the new order too
    with Warehouse.open(location) as wh:
        incremental = snapshot(wh)
        credited = wh.scalar(
            "select count(*) from marts.order_attribution where customer_id = 'a14'"
        )
    build_models(location, select=[MARTS], now=NOW, full_refresh=True)
    with Warehouse.open(location) as wh:
        assert snapshot(wh) == incremental
    assert credited == 1


def test_marts_on_a_known_history(tmp_warehouse: Location) -> None:
    check_marts(tmp_warehouse)


@pytest.mark.postgres
def test_marts_on_postgres(pg_url: str) -> None:
    check_marts(Location.parse(pg_url))


def test_attribution_windows_come_from_dbt_vars(tmp_warehouse: Location) -> None:
    """Opens count for half an hour only, SMS clicks not at all: only the e-mail clicks keep
    their orders. A malformed window stops the build, naming the entry."""
    write(scenario(), tmp_warehouse)
    build_models(tmp_warehouse, select=[f"+{MARTS}"], now=NOW, tests=False)
    windows = {"email_click": 5, "email_open": 0.02, "sms_click": None}
    args = ["--select", "order_attribution", "--full-refresh"]
    run_dbt("run", tmp_warehouse, args, {"now": str(NOW), "attribution_window_days": windows})
    with Warehouse.open(tmp_warehouse) as wh:
        credited = {r["customer_id"] for r in read(wh, "order_attribution", ["customer_id"])}
    assert credited == {c for c, (_, touch) in CREDITED.items() if touch == "click"} - {"a12"}
    for bad, named in (({"email_opened": 5}, "email_opened"), ({"email_open": "5d"}, "email_open")):
        with pytest.raises(DbtError, match=f"attribution_window_days.{named}"):
            run_dbt("run", tmp_warehouse, args, {"attribution_window_days": bad})


def test_days_are_the_stores_days(tmp_warehouse: Location) -> None:
    check_days(tmp_warehouse)


@pytest.mark.postgres
def test_days_are_the_stores_days_on_postgres(pg_url: str) -> None:
    check_days(Location.parse(pg_url))


def check_days(tmp_warehouse: Location) -> None:
    """Everything here happens at 10:00 UTC or later: in a store 14 hours ahead of UTC every
    day is the next one."""
    write(scenario(), tmp_warehouse)
    build_models(tmp_warehouse, select=[f"+{MARTS}"], now=NOW, tests=False)
    with Warehouse.open(tmp_warehouse) as wh:
        utc = wh.query("select day, enrolled from marts.flow_daily where enrolled > 0")
    for zone in ("Pacific/Kiritimati", "UTC"):
        args = ["--select", MARTS, "--full-refresh"]
        run_dbt("run", tmp_warehouse, args, {"now": str(NOW), "store_timezone": zone})
        with Warehouse.open(tmp_warehouse) as wh:
            local = wh.query("select day, enrolled from marts.flow_daily where enrolled > 0")
            entered = wh.query("select distinct day from marts.enrollment_facts")
        shift = timedelta(days=1 if zone != "UTC" else 0)
        assert local == [(day + shift, n) for day, n in utc] == [((T0 + shift).date(), 102)]
        assert entered == [((T0 + shift).date(),)]


REFUSED = "400 personalizations.0.to.0.email: Does not contain a valid address."


def check_failures(location: Location) -> None:
    """Failed messages are counted per step and day, and their reasons listed."""
    store = scenario()
    failing = {f"b{i:02d}" for i in range(30, 33)}
    for row in store.rows["messages"]:
        if row["customer_id"] in failing and row["step_id"] == "send_b":
            row.update(status="failed", failure_reason=REFUSED, sent_at=None, delivered_at=None)
    write(store, location)
    build_models(location, select=[f"+{MARTS}"], now=NOW)
    with Warehouse.open(location) as wh:
        steps = {r["step_id"]: r for r in read(wh, "flow_steps", ["step_id", "messages_failed"])}
        assert steps["send_b"]["messages_failed"] == 3
        assert sum(r["messages_failed"] for r in steps.values()) == 3
        daily = read(wh, "flow_daily", ["messages_failed"])
        assert sum(r["messages_failed"] for r in daily) == 3
        reasons = read(wh, "flow_reasons", ["reason", "count"], "stage = 'failed'")
        assert reasons == [{"reason": REFUSED, "count": 3}]


def test_failed_messages_in_the_marts(tmp_warehouse: Location) -> None:
    check_failures(tmp_warehouse)


@pytest.mark.postgres
def test_failed_messages_in_the_marts_on_postgres(pg_url: str) -> None:
    check_failures(Location.parse(pg_url))
