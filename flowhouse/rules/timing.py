"""The engine's time rules as SQL expressions: local wall clocks, waits until a local time or
weekday, quiet hours and date attributes.

Every function returns a sqlglot expression that renders for DuckDB and PostgreSQL. Instants are
naive UTC ``timestamp`` values; a time zone is an SQL expression yielding an IANA zone name (the
caller substitutes the store's default for a customer without a valid one). The rules are those of
DESIGN.md:

- a local time that does not exist (DST gap) moves forward by the gap; one that occurs twice takes
  the first occurrence;
- a wait until a local time ends at the first instant at or after its start with that wall-clock
  time (inclusive: a wait starting exactly then does not wait). When the start falls between the
  two occurrences of a repeated local time, that is the second occurrence;
- quiet hours are ``[start, end)`` in local time; a due time inside them moves to the next end.

DuckDB and PostgreSQL read ambiguous and nonexistent local times differently, so local-to-UTC is
never left to them. Only UTC-to-local, which is unambiguous, is asked of the database; a local time
is read with the zone's offset a day before and a day after, and the reading that maps back to the
same wall clock wins (see :func:`from_local`). This assumes a zone changes its offset at most once
within a day either side of a local time (DST changes are months apart).

The expressions repeat their inputs many times (a reading of a local time converts it four times),
so pass columns rather than large expressions, and materialise an instant computed by one rule in a
CTE before another rule takes it as input.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass

from sqlglot import exp

WEEKDAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")  # ISO day numbers 1..7
_CLOCK = re.compile(r"([01][0-9]|2[0-3]):([0-5][0-9])")
_NEAREST_YEARS = (-1, 0, 1, 2)  # years around the start: enough for offsets up to 364 days


def to_local(ts_utc: exp.Expr, tz: exp.Expr) -> exp.Expr:
    """The naive local wall-clock time in zone ``tz`` of the naive UTC instant ``ts_utc``."""
    as_utc = exp.AtTimeZone(this=_atom(ts_utc), zone=exp.Literal.string("UTC"))
    return exp.AtTimeZone(this=exp.paren(as_utc, copy=False), zone=_atom(tz))


def from_local(local_ts: exp.Expr, tz: exp.Expr) -> exp.Expr:
    """The naive UTC instant of the local wall-clock time ``local_ts`` in zone ``tz``.

    A time that occurs twice (the clock goes back) takes the first occurrence; one that does not
    exist (the clock jumps forward) moves forward by the gap (02:30 on a New York spring-forward
    night is 03:30 EDT).
    """
    r = _readings(local_ts, tz)
    return exp.Case(ifs=[exp.If(this=r.early_stands(), true=r.early)], default=r.late)


def next_local_time(
    start_utc: exp.Expr,
    tz: exp.Expr,
    time_of_day: str | None,
    weekdays: Sequence[str] | None,
) -> exp.Expr:
    """The first instant at or after ``start_utc`` whose local wall clock reads ``time_of_day``
    ("HH:MM") on one of ``weekdays`` ("mon".."sun"); either may be None (no constraint).

    With weekdays only, the start itself when its local day is allowed, else 00:00 local of the
    next allowed day. A local time that does not exist that day moves forward by the gap; when the
    start falls between the two occurrences of a repeated local time, the second one is next.
    """
    days = _iso_days(weekdays)
    if time_of_day is None and len(days) == 7:
        return start_utc.copy()
    today = _local_midnight(start_utc, tz)
    clock = 0 if time_of_day is None else _minutes(time_of_day)
    later = from_local(_clock_on(_plus_days(today, _days_to_next(today, days)), clock), tz)
    if time_of_day is None:
        on_start_day = start_utc.copy()
    else:
        on_start_day = _first_reading_from(_clock_on(today, clock), tz, start_utc)
    return exp.Coalesce(this=_only_on(today, days, on_start_day), expressions=[later])


def quiet_hours_move(due_utc: exp.Expr, tz: exp.Expr, start: str, end: str) -> exp.Expr:
    """``due_utc`` moved out of the local quiet hours ``[start, end)`` ("HH:MM", wrapping midnight
    when start > end) to the window's next end, the first instant at or after it whose wall clock
    reads ``end``; unchanged outside them, or when start == end (no quiet hours)."""
    start_min, end_min = _minutes(start), _minutes(end)
    if start_min == end_min:
        return due_utc.copy()
    clock = exp.cast(to_local(due_utc, tz), exp.DataType.Type.TIME)
    after_start = exp.GTE(this=clock, expression=_time_literal(start))
    before_end = exp.LT(this=clock.copy(), expression=_time_literal(end))
    inside = (
        exp.and_(after_start, before_end)
        if start_min < end_min
        else exp.or_(after_start, before_end)
    )
    moved = next_local_time(due_utc, tz, end, None)
    return exp.Case(ifs=[exp.If(this=inside, true=moved)], default=due_utc.copy())


def next_date_occurrence(
    start_utc: exp.Expr,
    tz: exp.Expr,
    date_expr: exp.Expr,
    offset_days: int,
    time_of_day: str,
    yearly: bool,
) -> exp.Expr:
    """The instant of local ``time_of_day`` on the date ``date_expr`` + ``offset_days``; NULL when
    the date is NULL.

    Yearly dates (birthdays, anniversaries) recur: the date's month and day in the year that gives
    the first such instant at or after ``start_utc`` (29 February is 28 February in other years;
    ``offset_days`` up to 364 either way). A one-off date is returned as it is, even when in the
    past (the engine treats a past target as due now).
    """
    clock = _minutes(time_of_day)
    date_ts = exp.cast(_atom(date_expr), exp.DataType.Type.TIMESTAMP)
    if not yearly:
        return from_local(_clock_on(_plus_days(date_ts, offset_days), clock), tz)
    years_to_start = exp.Sub(
        this=_extract("YEAR", _local_midnight(start_utc, tz)),
        expression=_extract("YEAR", date_ts),
    )
    readings = [
        _first_reading_from(
            _clock_on(_plus_days(_plus_years(date_ts, years_to_start, k), offset_days), clock),
            tz,
            start_utc,
        )
        for k in _NEAREST_YEARS
    ]
    return exp.Coalesce(this=readings[0], expressions=readings[1:])


# -- reading a local time ------------------------------------------------------------------------


@dataclass(frozen=True)
class _Readings:
    """A local time read with the zone's offset a day before (early) and a day after (late), and
    whether each reading maps back to that wall clock.

    Around a fall-back both are valid and the early one is the first occurrence; in a
    spring-forward gap neither is, and the early one (read with the old offset) is the time moved
    forward by the gap. So the early reading stands unless only the late one is valid.
    """

    early: exp.Expr
    late: exp.Expr
    early_valid: exp.Expr
    late_valid: exp.Expr

    def early_stands(self) -> exp.Expr:
        return exp.or_(self.early_valid.copy(), exp.not_(self.late_valid.copy()))


def _readings(local_ts: exp.Expr, tz: exp.Expr) -> _Readings:
    early, late = (_read_with_offset_at(local_ts, tz, days) for days in (-1, 1))
    return _Readings(early, late, _reads_as(early, local_ts, tz), _reads_as(late, local_ts, tz))


def _read_with_offset_at(local_ts: exp.Expr, tz: exp.Expr, days: int) -> exp.Expr:
    """``local_ts`` minus the zone's offset at the instant ``local_ts + days`` (taken as UTC)."""
    probe = _plus_days(local_ts, days)
    offset = exp.Sub(this=to_local(probe, tz), expression=_atom(probe))
    return exp.Sub(this=_atom(local_ts), expression=exp.paren(offset, copy=False))


def _reads_as(instant: exp.Expr, local_ts: exp.Expr, tz: exp.Expr) -> exp.Expr:
    return exp.EQ(this=to_local(instant, tz), expression=_atom(local_ts))


def _first_reading_from(local_ts: exp.Expr, tz: exp.Expr, start_utc: exp.Expr) -> exp.Expr:
    """The first instant at or after ``start_utc`` that reads as ``local_ts`` (or as the gap's
    forward move of it); NULL when there is none."""
    r = _readings(local_ts, tz)
    early = exp.and_(r.early_stands(), _at_or_after(r.early, start_utc))
    late = exp.and_(r.late_valid.copy(), _at_or_after(r.late, start_utc))
    return exp.Case(
        ifs=[exp.If(this=early, true=r.early.copy()), exp.If(this=late, true=r.late.copy())]
    )


def _at_or_after(instant: exp.Expr, start: exp.Expr) -> exp.Expr:
    return exp.GTE(this=_atom(instant), expression=_atom(start))


# -- days, clocks and arithmetic -----------------------------------------------------------------


def _minutes(clock: str) -> int:
    """Minutes after midnight of an "HH:MM" time of day."""
    match = _CLOCK.fullmatch(clock)
    if match is None:
        raise ValueError(f"time of day {clock!r} is not HH:MM (00:00 to 23:59)")
    return int(match[1]) * 60 + int(match[2])


def _time_literal(clock: str) -> exp.Expr:
    return exp.cast(exp.Literal.string(f"{clock}:00"), exp.DataType.Type.TIME)


def _iso_days(weekdays: Sequence[str] | None) -> frozenset[int]:
    """ISO day numbers (1 = Monday) of the weekday names; every day when None."""
    if weekdays is None:
        return frozenset(range(1, 8))
    unknown = sorted(set(weekdays) - set(WEEKDAYS))
    if unknown or not weekdays:
        raise ValueError(f"weekdays {list(weekdays)!r}: expected a non-empty list of {WEEKDAYS}")
    return frozenset(WEEKDAYS.index(day) + 1 for day in weekdays)


def _only_on(local_ts: exp.Expr, days: frozenset[int], value: exp.Expr) -> exp.Expr:
    """``value`` when the local day of ``local_ts`` is one of ``days``, else NULL."""
    if len(days) == 7:
        return value
    numbers = [exp.Literal.number(day) for day in sorted(days)]
    allowed = exp.In(this=_extract("ISODOW", local_ts), expressions=numbers)
    return exp.Case(ifs=[exp.If(this=allowed, true=value)])


def _days_to_next(local_ts: exp.Expr, days: frozenset[int]) -> exp.Expr | int:
    """Days from the local day of ``local_ts`` to the next allowed day strictly after it."""
    ahead = {day: _days_ahead(day, days) for day in range(1, 8)}
    if len(set(ahead.values())) == 1:
        return ahead[1]
    return exp.Case(
        this=_extract("ISODOW", local_ts),
        ifs=[
            exp.If(this=exp.Literal.number(day), true=exp.Literal.number(n))
            for day, n in ahead.items()
        ],
    )


def _days_ahead(day: int, days: frozenset[int]) -> int:
    return next(n for n in range(1, 8) if (day - 1 + n) % 7 + 1 in days)


def _local_midnight(ts_utc: exp.Expr, tz: exp.Expr) -> exp.Expr:
    """00:00 of the local day of ``ts_utc``, as a naive local timestamp."""
    day = exp.cast(to_local(ts_utc, tz), exp.DataType.Type.DATE)
    return exp.cast(day, exp.DataType.Type.TIMESTAMP)


def _clock_on(day_ts: exp.Expr, minutes: int) -> exp.Expr:
    """``day_ts`` (a local midnight) at ``minutes`` after midnight."""
    return _plus(day_ts, minutes, "MINUTE")


def _plus_days(ts: exp.Expr, days: exp.Expr | int) -> exp.Expr:
    return _plus(ts, days, "DAY")


def _plus_years(ts: exp.Expr, base: exp.Expr, extra: int) -> exp.Expr:
    """``ts`` plus ``base + extra`` calendar years (29 February lands on 28 February)."""
    years: exp.Expr = exp.paren(base.copy(), copy=False)
    if extra:
        years = exp.Add(this=years, expression=exp.Literal.number(extra))
    return _plus(ts, exp.cast(years, exp.DataType.Type.INT), "YEAR")


def _plus(ts: exp.Expr, count: exp.Expr | int, unit: str) -> exp.Expr:
    """``ts + count * interval '1 unit'``; ``ts`` itself when ``count`` is the number 0."""
    step = exp.Interval(this=exp.Literal.string("1"), unit=exp.var(unit))
    if isinstance(count, int):
        if count == 0:
            return ts.copy()
        move = exp.Add if count > 0 else exp.Sub
        steps = exp.Mul(this=exp.Literal.number(abs(count)), expression=step)
        return move(this=_atom(ts), expression=steps)
    return exp.Add(this=_atom(ts), expression=exp.Mul(this=_atom(count), expression=step))


def _extract(part: str, value: exp.Expr) -> exp.Expr:
    return exp.Extract(this=exp.var(part), expression=value.copy())


def _atom(node: exp.Expr) -> exp.Expr:
    """A copy of ``node``, parenthesised when an operator around it could bind into it."""
    node = node.copy()
    if isinstance(node, exp.Binary | exp.AtTimeZone | exp.Not | exp.Neg):
        return exp.paren(node, copy=False)
    return node
