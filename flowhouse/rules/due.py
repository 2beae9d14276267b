"""Due times of the steps enrollments arrive at, computed in stages over columns.

Each step's timing parameters (wait length, quiet-hours window, time of day, weekdays, date
attribute and offset) are a row of ``_fh_step_timing``, so one statement serves every flow: the
SQL does not grow with the number of steps. Stage A reads the arrival's local wall clock in the
customer's zone; stage B proposes local target times (the end of quiet hours; the time of day
today or on the next allowed weekday; the date's occurrence around this year); stage C turns them
into UTC instants with the DST rules of :func:`flowhouse.rules.timing.from_local` and picks
the first at or after the arrival.

:func:`retime` is the entry point: the due times of the arrivals a query selects, in a temp
table whose name it returns (the engine moves enrollments with it; activation re-times a message
out of quiet hours at the moment of sending).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from sqlglot import exp

from flowhouse.core.sql import literal, statement
from flowhouse.flows.compile import CompiledFlow, StepRow, quiet_window
from flowhouse.rules import timing
from flowhouse.rules.context import Context, per_step

#: The arrivals to time: (enrollment_id, next_step, at), and any other columns.
MOVES = "_fh_moves"
#: Their due times: (enrollment_id, next_step, at, due_at).
ARRIVALS = "_fh_arrivals"

WEEKDAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")

_TIMING_COLUMNS = (
    "flow_id", "step_id", "kind", "wait_seconds", "quiet_start", "quiet_end", "until_minutes",
    "weekday_mask", "offset_days", "is_yearly",
)  # fmt: skip

_STAGE_A = """
select mv.enrollment_id, mv.next_step, mv.at, mv.flow_id, mv.step_id,
    coalesce(p.kind, 'end') as kind, p.wait_seconds, p.quiet_start, p.quiet_end,
    p.until_minutes, p.weekday_mask, p.offset_days, p.is_yearly,
    :tz as tz, cast(:date_value as date) as date_value, :local_at as local_at
from (
    select m.enrollment_id, m.next_step, m.next_step as step_id, m.at, e.flow_id, e.customer_id
    from _fh_moves as m
    join flowhouse.enrollments as e on e.enrollment_id = m.enrollment_id
) as mv
left join _fh_step_timing as p on p.flow_id = mv.flow_id and p.step_id = mv.step_id
left join core.customer_attributes as customer on customer.customer_id = mv.customer_id
"""

_STAGE_B = """
select a.*,
    extract(hour from a.local_at) * 60 + extract(minute from a.local_at) as local_minutes,
    cast(cast(a.local_at as date) as timestamp) as local_day,
    extract(isodow from a.local_at) as local_dow,
    extract(year from a.local_at) - extract(year from a.date_value) as years_since
from _fh_arr_a as a
"""

_STAGE_C = """
select b.*,
    case
        when b.kind = 'send' and b.quiet_start is not null and (
            (b.quiet_start < b.quiet_end
                and b.local_minutes >= b.quiet_start and b.local_minutes < b.quiet_end)
            or (b.quiet_start > b.quiet_end
                and (b.local_minutes >= b.quiet_start or b.local_minutes < b.quiet_end))
        )
        then b.local_day + (b.quiet_end + case when b.local_minutes >= b.quiet_end then 1440
            else 0 end) * interval 1 minute
    end as quiet_target,
    case when b.kind = 'wait_until' and b.date_value is null then
        b.local_day + coalesce(b.until_minutes, 0) * interval 1 minute
    end as today_target,
    case when b.kind = 'wait_until' and b.date_value is null then
        b.local_day + (:days_to_next * 1440 + coalesce(b.until_minutes, 0)) * interval 1 minute
    end as next_day_target,
    case when b.weekday_mask is null then true
        else substr(b.weekday_mask, cast(b.local_dow as integer), 1) = '1'
    end as today_allowed,
    :occurrence_prev as date_prev,
    :occurrence_this as date_this,
    :occurrence_next as date_next
from _fh_arr_b as b
"""

_STAGE_D = """
select c.enrollment_id, c.next_step, c.at, c.kind, c.is_yearly, c.until_minutes,
    c.today_allowed, c.date_value, c.wait_seconds,
    :quiet_utc as quiet_utc, :today_utc as today_utc, :next_day_utc as next_day_utc,
    :prev_utc as prev_utc, :this_utc as this_utc, :next_utc as next_utc
from _fh_arr_c as c
"""

_ARRIVALS = """
select d.enrollment_id, d.next_step, d.at,
    case d.kind
        when 'wait' then d.at + d.wait_seconds * interval 1 second
        when 'wait_for' then d.at + d.wait_seconds * interval 1 second
        when 'send' then coalesce(d.quiet_utc, d.at)
        when 'wait_until' then case
            when d.is_yearly is not null and d.date_value is null then d.at
            when d.is_yearly is not null and not d.is_yearly then d.this_utc
            when d.is_yearly is not null then case
                when d.prev_utc >= d.at then d.prev_utc
                when d.this_utc >= d.at then d.this_utc
                else d.next_utc end
            when d.until_minutes is null and d.today_allowed then d.at
            when d.until_minutes is null then d.next_day_utc
            when d.today_allowed and d.today_utc >= d.at then d.today_utc
            else d.next_day_utc end
        else d.at
    end as due_at
from _fh_arr_d as d
"""


_MOVES_WITH_STEPS = """
from _fh_moves as m
join flowhouse.enrollments as e on e.enrollment_id = m.enrollment_id
left join _fh_step_timing as p on p.flow_id = e.flow_id and p.step_id = m.next_step
"""

#: Whether any arrival needs the customer's zone (quiet hours, a local time, a date).
_NEEDS_ZONES = (
    "select count(*) "
    + _MOVES_WITH_STEPS
    + "where p.kind = 'wait_until' or (p.kind = 'send' and p.quiet_start is not null)"
)

#: Arrivals that need no zone: waits add their length, everything else is due at once.
_PLAIN = (
    "select m.enrollment_id, m.next_step, m.at, case when p.kind in ('wait', 'wait_for') "
    "then m.at + p.wait_seconds * interval 1 second else m.at end as due_at " + _MOVES_WITH_STEPS
)


@dataclass(frozen=True)
class Arrivals:
    """Timed arrivals: ``table`` holds (enrollment_id, next_step, at, due_at), ``count`` rows."""

    table: str
    count: int


def retime(ctx: Context, query: str, **values: Any) -> Arrivals:
    """The due times of the arrivals `query` selects — (enrollment_id, next_step, at): the
    enrollment arrives at ``next_step`` at ``at``; a wait adds its length, a send moves out of
    quiet hours, a ``wait_until`` finds its local time or date. The table is replaced by the next
    call; with no arrivals it is not computed (``count`` 0)."""
    count = ctx.temp(MOVES, query, **values)
    if count:
        compute_arrivals(ctx)
    return Arrivals(ARRIVALS, count)


def compute_arrivals(ctx: Context) -> None:
    """``_fh_arrivals`` (enrollment_id, next_step, at, due_at) from ``_fh_moves``.

    The statements depend only on the flows, so each is rendered once per tick."""
    if "_fh_step_timing" not in ctx.rendered:
        _timing_table(ctx)
        ctx.rendered["_fh_step_timing"] = ""
    if not ctx.value(_NEEDS_ZONES):
        ctx.temp(ARRIVALS, _PLAIN)
        return
    for name, text, values in _stages(ctx):
        ctx.wh.execute(f"drop table if exists {name}")
        if name not in ctx.rendered:
            ctx.rendered[name] = ctx.sql(f"create temp table {name} as {text}", **values())
        ctx.wh.execute(ctx.rendered[name])


def _stages(ctx: Context) -> list[tuple[str, str, Callable[[], dict[str, Any]]]]:
    def stage_a() -> dict[str, Any]:
        tz = exp.func(
            "coalesce",
            exp.column("effective_timezone", "customer"),
            literal(ctx.settings.store.timezone),
        )
        return {
            "tz": tz,
            "local_at": timing.to_local(exp.column("at", "mv"), tz.copy()),
            "date_value": per_step(ctx.flows, _date_column, ("wait_until",), on="mv"),
        }

    def stage_c() -> dict[str, Any]:
        years = (("prev", -1), ("this", 0), ("next", 1))
        return {"days_to_next": _days_to_next()} | {
            f"occurrence_{k}": _occurrence(n) for k, n in years
        }

    def stage_d() -> dict[str, Any]:
        tzc = exp.column("tz", "c")
        columns = {
            "quiet_utc": "quiet_target", "today_utc": "today_target",
            "next_day_utc": "next_day_target", "prev_utc": "date_prev",
            "this_utc": "date_this", "next_utc": "date_next",
        }  # fmt: skip
        return {k: timing.from_local(exp.column(c, "c"), tzc) for k, c in columns.items()}

    return [
        ("_fh_arr_a", _STAGE_A, stage_a),
        ("_fh_arr_b", _STAGE_B, dict),
        ("_fh_arr_c", _STAGE_C, stage_c),
        ("_fh_arr_d", _STAGE_D, stage_d),
        (ARRIVALS, _ARRIVALS, dict),
    ]


def _date_column(flow: CompiledFlow, step: StepRow) -> exp.Expr | None:
    date = step.params.get("date")
    return exp.cast(exp.column(date, "customer"), "date") if date else None


def _days_to_next() -> exp.Expr:
    """Days from the local day to the next allowed weekday strictly after it (1..7)."""
    case = exp.Case()
    dow = exp.cast(exp.column("local_dow", "b"), "int")
    for n in range(1, 8):
        # the weekday n days ahead, as a 1-based position in the mask
        position = statement_expr("(:dow - 1 + :n) % 7 + 1", dow=dow, n=n)
        case = case.when(
            exp.func("substr", exp.column("weekday_mask", "b"), position, literal(1)).eq("1"),
            literal(n),
        )
    return case.else_(literal(1))


def _occurrence(years: int) -> exp.Expr:
    """The local target of a date wait in the year of the arrival plus `years` (yearly dates) or
    on the date itself: the date, plus the offset in days, at the time of day."""
    b = "b"
    date = exp.cast(exp.column("date_value", b), "timestamp")
    shift = statement_expr(
        "case when :yearly then cast(:since + :years as integer) else 0 end",
        yearly=exp.column("is_yearly", b),
        since=exp.column("years_since", b),
        years=years,
    )
    return statement_expr(
        "case when :date is not null then :date + :shift * interval 1 year "
        "+ coalesce(:offset, 0) * interval 1 day + coalesce(:minutes, 0) * interval 1 minute end",
        date=date,
        shift=shift,
        offset=exp.column("offset_days", b),
        minutes=exp.column("until_minutes", b),
    )


def statement_expr(text: str, **values: Any) -> exp.Expr:
    return statement(text, **values)


def _timing_table(ctx: Context) -> None:
    rows = [_timing_row(ctx, f, s) for f in ctx.flows for s in f.steps]
    if not rows:
        rows = [dict.fromkeys(_TIMING_COLUMNS, None) | {"flow_id": "", "step_id": "", "kind": ""}]
    values = exp.values(
        [tuple(_typed(c, r[c]) for c in _TIMING_COLUMNS) for r in rows],
        alias="v",
        columns=list(_TIMING_COLUMNS),
    )
    ctx.wh.execute("drop table if exists _fh_step_timing")
    ctx.run("create temp table _fh_step_timing as select * from :v", v=values)


def _typed(column: str, value: Any) -> exp.Expr:
    if column in ("wait_seconds", "quiet_start", "quiet_end", "until_minutes", "offset_days"):
        return exp.cast(literal(value), "bigint")
    if column == "is_yearly":
        return exp.cast(literal(value), "boolean")
    return exp.cast(literal(value), "text")


def _minutes(clock: str | None) -> int | None:
    if clock is None:
        return None
    hours, minutes = clock.split(":")
    return int(hours) * 60 + int(minutes)


def _timing_row(ctx: Context, f: CompiledFlow, s: StepRow) -> dict[str, Any]:
    row: dict[str, Any] = dict.fromkeys(_TIMING_COLUMNS)
    row.update(flow_id=f.id, step_id=s.step_id, kind=s.kind)
    p = s.params
    if s.kind == "wait":
        row["wait_seconds"] = p["seconds"]
    elif s.kind == "wait_for":
        row["wait_seconds"] = p["timeout_seconds"]
    elif s.kind == "send":
        window = quiet_window(ctx.settings, f.flow, p["channel"])
        if window:
            row["quiet_start"], row["quiet_end"] = _minutes(window[0]), _minutes(window[1])
    elif s.kind == "wait_until":
        row["until_minutes"] = _minutes(p["time"])
        if p["weekdays"]:
            row["weekday_mask"] = "".join("1" if d in p["weekdays"] else "0" for d in WEEKDAYS)
        if p["date"]:
            row.update(offset_days=p["offset_days"], is_yearly=p["yearly"])
            row["until_minutes"] = row["until_minutes"] or 0
    return row
