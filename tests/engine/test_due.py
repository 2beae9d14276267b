"""The staged due-time SQL (flowhouse.rules.due) agrees with the timing rules applied directly.

`due.py` computes every arrival's due time in a few statements over columns, so that the SQL does
not grow with the number of steps. The oracle here composes the functions of
flowhouse.rules.timing (tested against zoneinfo in test_timing.py) once per step, the
straightforward way, and both run over the same thousands of random arrivals across DST changes.
"""

from __future__ import annotations

import random
from datetime import date, datetime, timedelta
from pathlib import Path

from sqlglot import exp

from flowhouse.core.sql import statement
from flowhouse.core.state import ensure_state
from flowhouse.core.warehouse import Warehouse
from flowhouse.flows.compile import CompiledFlow, StepRow, compile_flow, quiet_window
from flowhouse.flows.files import parse_flow
from flowhouse.flows.settings import QuietHours, Settings
from flowhouse.rules import timing
from flowhouse.rules.context import Context, per_step
from flowhouse.rules.due import compute_arrivals

FLOW = """
flow: timing
name: Timing
trigger: {event: customer_created}
steps:
  - id: pause
    wait: 1d12h
  - id: birthday_eve
    wait_until: {date: customer.birthday, offset: 3d, before: true, time: "09:30"}
  - id: anniversary
    wait_until: {date: customer.birthday, offset: 2d, time: "00:30", yearly: true}
  - id: one_off
    wait_until: {date: customer.birthday, offset: 1d, time: "10:00", yearly: false}
  - id: weekday_morning
    wait_until: {weekdays: [mon, thu], time: "02:30"}
  - id: saturday
    wait_until: {weekdays: [sat]}
  - id: at_one_thirty
    wait_until: {time: "01:30"}
  - id: mail
    send: {channel: email, template: x.html.j2}
  - id: text
    send: {channel: sms, template: x.txt.j2}
"""

ZONES = [
    "America/New_York", "Europe/London", "Australia/Lord_Howe", "Asia/Kolkata",
    "Asia/Kathmandu", "Pacific/Auckland", "America/Sao_Paulo", "UTC", "Europe/Berlin",
]  # fmt: skip


def _oracle(ctx: Context) -> exp.Expr:
    """Each step's due time composed directly from the timing functions."""
    at = exp.column("at", "event")
    tz = exp.column("effective_timezone", "customer")

    def build(flow: CompiledFlow, step: StepRow) -> exp.Expr | None:
        p = step.params
        if step.kind == "wait":
            return statement(":at + :n * interval 1 second", at=at.copy(), n=p["seconds"])
        if step.kind == "wait_until" and p["date"]:
            target = timing.next_date_occurrence(
                at, tz, exp.cast(exp.column(p["date"], "customer"), "date"),
                p["offset_days"], p["time"] or "00:00", p["yearly"],
            )  # fmt: skip
            return exp.func("coalesce", target, at.copy())
        if step.kind == "wait_until":
            return timing.next_local_time(at, tz, p["time"], p["weekdays"])
        window = quiet_window(ctx.settings, flow.flow, p["channel"])
        return timing.quiet_hours_move(at, tz, *window) if window else None

    return per_step(ctx.flows, build, ("wait", "wait_until", "send"), at)


def test_staged_due_times_match_the_timing_rules(tmp_path: Path) -> None:
    path = tmp_path / "timing.yml"
    path.write_text(FLOW)
    flow, problems = parse_flow(path)
    assert flow is not None, problems
    settings = Settings(
        quiet_hours={
            "email": QuietHours(start="21:00", end="08:00"),
            "sms": QuietHours(start="12:00", end="13:30"),
        }
    )
    compiled = compile_flow(flow)
    rng = random.Random(7)
    steps = [s.step_id for s in compiled.steps]
    rows = []
    for i in range(3000):
        birthday = None if i % 11 == 0 else date(1960, 1, 1) + timedelta(days=rng.randrange(20000))
        if i % 13 == 0:
            birthday = date(2000, 2, 29)
        at = datetime(2025, 1, 1) + timedelta(minutes=rng.randrange(4 * 365 * 24 * 60))
        rows.append((f"c{i}", rng.choice(ZONES), birthday, steps[i % len(steps)], at))
    with Warehouse.open(str(tmp_path / "w.duckdb")) as wh:
        ensure_state(wh, "flowhouse")
        wh.ensure_schema("core")
        wh.execute(
            "create table core.customer_attributes "
            "(customer_id text, effective_timezone text, birthday date)"
        )
        wh.connection.executemany(
            "insert into core.customer_attributes values (?, ?, ?)", [r[:3] for r in rows]
        )
        wh.execute(
            'create temp table _fh_moves (enrollment_id text, next_step text, "at" timestamp)'
        )
        wh.connection.executemany(
            "insert into _fh_moves values (?, ?, ?)", [(r[0], r[3], r[4]) for r in rows]
        )
        wh.connection.executemany(
            "insert into flowhouse.enrollments (enrollment_id, flow_id, flow_version, customer_id,"
            " trigger_event_id, trigger_type, entered_at, enrolled_at_tick, is_holdout, status,"
            " updated_at_tick) values (?, 'timing', 'v', ?, 'e', 't', ?, ?, false, 'active', ?)",
            [(r[0], r[0], r[4], r[4], r[4]) for r in rows],
        )
        ctx = Context(wh, "flowhouse", datetime(2029, 1, 1), None, [compiled], settings)
        compute_arrivals(ctx)
        staged = dict(wh.query("select enrollment_id, due_at from _fh_arrivals"))
        oracle_sql = ctx.sql(
            "select event.enrollment_id, :due from (select m.enrollment_id, m.next_step as step_id,"
            " m.at, 'timing' as flow_id, m.enrollment_id as customer_id from _fh_moves as m)"
            " as event left join core.customer_attributes as customer"
            " on customer.customer_id = event.customer_id",
            due=_oracle(ctx),
        )
        direct = dict(wh.query(oracle_sql))
    assert len(staged) == len(rows)
    differing = {k: (staged[k], direct[k]) for k in staged if staged[k] != direct[k]}
    assert not differing, list(differing.items())[:5]
