"""The engine's time rules in SQL against a plain zoneinfo reference of DESIGN.md's rules.

Hand-checked cases around DST nights run on DuckDB and PostgreSQL; a hypothesis property compares
DuckDB (and, with a server, PostgreSQL) with the reference on random instants in 2025-2028, in zones
chosen for odd offsets, midnight transitions and the southern hemisphere.
"""

from __future__ import annotations

import calendar
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from functools import cache
from typing import Any
from zoneinfo import ZoneInfo

import duckdb
import psycopg2
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlglot import exp

from flowhouse.rules import timing

WEEKDAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")

# -- the reference: the rules read literally, with zoneinfo ------------------------------------


def local(instant: datetime, tz: str) -> datetime:
    """Wall clock in ``tz`` of a naive UTC instant."""
    return instant.replace(tzinfo=UTC).astimezone(ZoneInfo(tz)).replace(tzinfo=None)


def utc(wall: datetime, tz: str, fold: int) -> datetime:
    return wall.replace(tzinfo=ZoneInfo(tz), fold=fold).astimezone(UTC).replace(tzinfo=None)


def readings(wall: datetime, tz: str) -> list[datetime]:
    """The instants whose wall clock reads ``wall``, earliest first; in a gap, the one instant
    reading it with the offset before the jump (fold=0), which is the wall clock moved forward."""
    found = sorted({u for u in (utc(wall, tz, 0), utc(wall, tz, 1)) if local(u, tz) == wall})
    return found or [utc(wall, tz, 0)]


def ref_from_local(wall: datetime, tz: str) -> datetime:
    return readings(wall, tz)[0]


def at_clock(day: date, clock: str) -> datetime:
    return datetime.combine(day, time.fromisoformat(clock))


def ref_next_local_time(
    start: datetime, tz: str, clock: str | None, weekdays: Sequence[str] | None
) -> datetime:
    """The first instant at or after ``start`` with wall clock ``clock`` on an allowed day."""
    today = local(start, tz).date()
    days = [today + timedelta(n) for n in range(8)]
    allowed = [day for day in days if weekdays is None or WEEKDAYS[day.weekday()] in weekdays]
    if clock is None:
        return start if allowed[0] == today else ref_from_local(at_clock(allowed[0], "00:00"), tz)
    return next(u for day in allowed for u in readings(at_clock(day, clock), tz) if u >= start)


def ref_quiet_hours_move(due: datetime, tz: str, start: str, end: str) -> datetime:
    clock, first, last = local(due, tz).time(), time.fromisoformat(start), time.fromisoformat(end)
    inside = first <= clock < last if first <= last else clock >= first or clock < last
    return ref_next_local_time(due, tz, end, None) if inside else due


def ref_next_date_occurrence(
    start: datetime, tz: str, day: date | None, offset: int, clock: str, yearly: bool
) -> datetime | None:
    if day is None:
        return None
    if not yearly:
        return ref_from_local(at_clock(day + timedelta(offset), clock), tz)
    year = local(start, tz).year
    for occurrence in (in_year(day, y) for y in range(year - 3, year + 4)):
        for u in readings(at_clock(occurrence + timedelta(offset), clock), tz):
            if u >= start:
                return u
    raise AssertionError("no occurrence within three years")


def in_year(day: date, year: int) -> date:
    if (day.month, day.day) == (2, 29) and not calendar.isleap(year):
        return date(year, 2, 28)
    return day.replace(year=year)


# -- rules: one call of a timing function, in SQL and in the reference -------------------------


@dataclass(frozen=True)
class Row:
    """Inputs of one evaluation: start/due instant, zone, a wall clock, a date attribute."""

    tz: str
    start: datetime = datetime(2026, 1, 1)
    wall: datetime = datetime(2026, 1, 1)
    day: date | None = None


@dataclass(frozen=True)
class Columns:
    """The inputs as the query's columns."""

    start: exp.Expr
    tz: exp.Expr
    wall: exp.Expr
    day: exp.Expr


COLUMNS = Columns(exp.column("s"), exp.column("tz"), exp.column("l"), exp.column("d"))


@dataclass(frozen=True)
class Rule:
    name: str
    sql: Callable[[Columns], exp.Expr]
    ref: Callable[[Row], datetime | None]


TO_LOCAL = Rule(
    "to_local", lambda c: timing.to_local(c.start, c.tz), lambda r: local(r.start, r.tz)
)
FROM_LOCAL = Rule(
    "from_local", lambda c: timing.from_local(c.wall, c.tz), lambda r: ref_from_local(r.wall, r.tz)
)


def until(clock: str | None, weekdays: Sequence[str] | None = None) -> Rule:
    return Rule(
        f"until {clock} on {weekdays}",
        lambda c: timing.next_local_time(c.start, c.tz, clock, weekdays),
        lambda r: ref_next_local_time(r.start, r.tz, clock, weekdays),
    )


def quiet(start: str, end: str) -> Rule:
    return Rule(
        f"quiet {start}-{end}",
        lambda c: timing.quiet_hours_move(c.start, c.tz, start, end),
        lambda r: ref_quiet_hours_move(r.start, r.tz, start, end),
    )


def on_date(offset: int, clock: str, yearly: bool) -> Rule:
    return Rule(
        f"date {offset:+d}d at {clock}{' yearly' if yearly else ''}",
        lambda c: timing.next_date_occurrence(c.start, c.tz, c.day, offset, clock, yearly),
        lambda r: ref_next_date_occurrence(r.start, r.tz, r.day, offset, clock, yearly),
    )


# -- evaluation: one select over a VALUES list, on DuckDB or PostgreSQL -------------------------

Run = Callable[[str], list[tuple[Any, ...]]]


def typed(value: datetime | date | str | int | None, kind: str) -> exp.Expr:
    text = None if value is None else str(value)
    return exp.cast(exp.null() if text is None else exp.Literal.string(text), kind)


def query(rules: Sequence[Rule], rows: Sequence[Row]) -> exp.Select:
    values = exp.values(
        [
            (
                typed(i, "int"),
                typed(row.start, "timestamp"),
                typed(row.tz, "text"),
                typed(row.wall, "timestamp"),
                typed(row.day, "date"),
            )
            for i, row in enumerate(rows)
        ],
        alias="v",
        columns=["id", "s", "tz", "l", "d"],
    )
    columns = [rule.sql(COLUMNS).as_(f"r{i}") for i, rule in enumerate(rules)]
    return exp.select(*columns).from_(values).order_by("id")


def mismatches(run: Run, dialect: str, rules: Sequence[Rule], rows: Sequence[Row]) -> list[str]:
    """Every (rule, row) whose SQL result differs from the reference."""
    results = run(query(rules, rows).sql(dialect=dialect))
    assert len(results) == len(rows)
    return [
        f"{rule.name} {row}: sql {got}, reference {rule.ref(row)}"
        for row, values in zip(rows, results, strict=True)
        for rule, got in zip(rules, values, strict=True)
        if got != rule.ref(row)
    ]


@pytest.fixture(scope="module")
def duck() -> Iterator[Run]:
    with duckdb.connect() as con:
        yield lambda sql: list(con.execute(sql).fetchall())


@pytest.fixture
def pg(pg_url: str) -> Iterator[Run]:
    con = psycopg2.connect(pg_url)

    def run(sql: str) -> list[tuple[Any, ...]]:
        with con.cursor() as cur:
            cur.execute(sql)
            return list(cur.fetchall())

    try:
        yield run
    finally:
        con.close()


# -- hand-checked cases --------------------------------------------------------------------------

NY, LONDON, LORD_HOWE = "America/New_York", "Europe/London", "Australia/Lord_Howe"
KOLKATA, KATHMANDU, AUCKLAND = "Asia/Kolkata", "Asia/Kathmandu", "Pacific/Auckland"


def at(text: str) -> datetime:
    return datetime.fromisoformat(text)


@dataclass(frozen=True)
class Case:
    id: str
    rule: Rule
    row: Row
    expected: datetime | None


# fmt: off
TO_LOCAL_CASES = [  # id, zone, UTC instant, local wall clock
    ("ny fall-back, first 01:30", NY, "2026-11-01 05:30", "2026-11-01 01:30"),
    ("ny fall-back, second 01:30", NY, "2026-11-01 06:30", "2026-11-01 01:30"),
    ("lord howe summer +11", LORD_HOWE, "2026-01-15 00:00", "2026-01-15 11:00"),
    ("kathmandu +05:45", KATHMANDU, "2026-06-01 00:00", "2026-06-01 05:45"),
]
FROM_LOCAL_CASES = [  # id, zone, local wall clock, UTC instant
    ("ny gap 02:30 moves forward", NY, "2026-03-08 02:30", "2026-03-08 07:30"),
    ("ny repeated 01:30, first", NY, "2026-11-01 01:30", "2026-11-01 05:30"),
    ("ny summer noon", NY, "2026-07-01 12:00", "2026-07-01 16:00"),
    ("london gap 01:30", LONDON, "2026-03-29 01:30", "2026-03-29 01:30"),
    ("london repeated 01:30", LONDON, "2026-10-25 01:30", "2026-10-25 00:30"),
    ("lord howe 30-min gap", LORD_HOWE, "2026-10-04 02:15", "2026-10-03 15:45"),
    ("lord howe 30-min repeat", LORD_HOWE, "2026-04-05 01:45", "2026-04-04 14:45"),
    ("kolkata", KOLKATA, "2026-03-08 02:30", "2026-03-07 21:00"),
    ("kathmandu new year", KATHMANDU, "2026-01-01 00:00", "2025-12-31 18:15"),
    ("auckland repeated 02:30", AUCKLAND, "2026-04-05 02:30", "2026-04-04 13:30"),
    ("auckland gap 02:30", AUCKLAND, "2026-09-27 02:30", "2026-09-26 14:30"),
    ("utc", "UTC", "2026-03-08 02:30", "2026-03-08 02:30"),
]
UNTIL_CASES = [  # id, time of day, weekdays, zone, start, due
    ("02:30 on spring-forward night", "02:30", None, NY, "2026-03-08 06:00", "2026-03-08 07:30"),
    ("02:30 from 03:10 EDT: moved time ahead", "02:30", None, NY, "2026-03-08 07:10", "2026-03-08 07:30"),
    ("02:30 exactly at the moved time", "02:30", None, NY, "2026-03-08 07:30", "2026-03-08 07:30"),
    ("02:30 after the moved time", "02:30", None, NY, "2026-03-08 07:31", "2026-03-09 06:30"),
    ("01:30 on fall-back night: first", "01:30", None, NY, "2026-11-01 04:00", "2026-11-01 05:30"),
    ("01:30 from between the two", "01:30", None, NY, "2026-11-01 06:10", "2026-11-01 06:30"),
    ("01:30 after both", "01:30", None, NY, "2026-11-01 06:31", "2026-11-02 06:30"),
    ("16:00 at 16:00 is no wait", "16:00", None, NY, "2026-06-10 20:00", "2026-06-10 20:00"),
    ("09:00 in kolkata, passed", "09:00", None, KOLKATA, "2026-06-10 04:00", "2026-06-11 03:30"),
    ("09:00 in kathmandu", "09:00", None, KATHMANDU, "2026-06-10 00:00", "2026-06-10 03:15"),
    ("monday across DST", None, ["mon"], NY, "2026-03-07 15:00", "2026-03-09 04:00"),
    ("saturday on a saturday", None, ["sat"], NY, "2026-03-07 15:00", "2026-03-07 15:00"),
    ("any day", None, WEEKDAYS, NY, "2026-03-07 15:00", "2026-03-07 15:00"),
    ("friday 09:00, passed", "09:00", ["fri"], LONDON, "2026-03-27 10:00", "2026-04-03 08:00"),
    ("friday 09:00, ahead", "09:00", ["fri"], LONDON, "2026-03-27 08:00", "2026-03-27 09:00"),
    ("sunday 02:30 in an auckland gap", "02:30", ["sun"], AUCKLAND, "2026-09-26 12:00", "2026-09-26 14:30"),
    ("02:15 in a lord howe gap", "02:15", None, LORD_HOWE, "2026-10-03 12:00", "2026-10-03 15:45"),
    ("mon/wed 09:00 on wed at 09:00", "09:00", ["mon", "wed"], "UTC", "2026-03-11 09:00", "2026-03-11 09:00"),
    ("mon/wed 09:00 on wed after", "09:00", ["mon", "wed"], "UTC", "2026-03-11 10:00", "2026-03-16 09:00"),
]
QUIET_CASES = [  # id, window, zone, due, moved due
    ("overnight across spring-forward", "21:00-08:00", NY, "2026-03-08 03:00", "2026-03-08 12:00"),
    ("after the end", "21:00-08:00", NY, "2026-03-08 13:00", "2026-03-08 13:00"),
    ("end is exclusive", "21:00-08:00", NY, "2026-03-08 12:00", "2026-03-08 12:00"),
    ("start is inclusive", "21:00-08:00", NY, "2026-06-10 01:00", "2026-06-10 12:00"),
    ("midday, inside", "12:00-14:00", LONDON, "2026-06-10 11:30", "2026-06-10 13:00"),
    ("midday, at the end", "12:00-14:00", LONDON, "2026-06-10 13:00", "2026-06-10 13:00"),
    ("midday, before", "12:00-14:00", LONDON, "2026-06-10 10:59", "2026-06-10 10:59"),
    ("none when start == end", "08:00-08:00", NY, "2026-06-10 03:00", "2026-06-10 03:00"),
    ("until 01:30 on fall-back night", "21:00-01:30", NY, "2026-11-01 06:10", "2026-11-01 06:30"),
    ("until 02:30 on spring-forward night", "21:00-02:30", NY, "2026-03-08 06:59", "2026-03-08 07:30"),
    ("kathmandu", "22:00-07:00", KATHMANDU, "2026-06-10 17:00", "2026-06-11 01:15"),
    ("utc", "21:00-08:00", "UTC", "2026-06-10 23:00", "2026-06-11 08:00"),
    ("auckland fall-back night", "21:00-08:00", AUCKLAND, "2026-04-04 09:00", "2026-04-04 20:00"),
]
DATE_CASES = [  # id, (offset days, time of day, yearly), zone, start, date, target
    ("birthday 29 feb in 2027", (0, "09:00", True), NY, "2027-01-10 00:00", "2000-02-29", "2027-02-28 14:00"),
    ("birthday 29 feb in 2028", (0, "09:00", True), NY, "2028-01-10 00:00", "2000-02-29", "2028-02-29 14:00"),
    ("birthday 29 feb -3 days in 2027", (-3, "09:00", True), NY, "2027-01-10 00:00", "2000-02-29", "2027-02-25 14:00"),
    ("birthday -3 days into december", (-3, "09:00", True), LONDON, "2026-12-01 00:00", "1990-01-02", "2026-12-30 09:00"),
    ("birthday -3 days passed: next year", (-3, "09:00", True), LONDON, "2026-12-31 00:00", "1990-01-02", "2027-12-30 09:00"),
    ("anniversary +3 days into january", (3, "09:00", True), LONDON, "2027-01-01 00:00", "1990-12-30", "2027-01-02 09:00"),
    ("birthday at the start is no wait", (0, "09:00", True), KOLKATA, "2026-06-10 03:30", "1995-06-10", "2026-06-10 03:30"),
    ("birthday at 02:30 in a gap", (0, "02:30", True), AUCKLAND, "2026-09-01 00:00", "1980-09-27", "2026-09-26 14:30"),
    ("no date", (-3, "09:00", True), NY, "2026-06-01 00:00", None, None),
    ("no date, one-off", (0, "09:00", False), NY, "2026-06-01 00:00", None, None),
    ("one-off date in the past", (7, "10:00", False), NY, "2026-06-01 00:00", "2026-01-15", "2026-01-22 15:00"),
]
# fmt: on

CASES = (
    [Case(id, TO_LOCAL, Row(tz, start=at(u)), at(want)) for id, tz, u, want in TO_LOCAL_CASES]
    + [Case(id, FROM_LOCAL, Row(tz, wall=at(w)), at(want)) for id, tz, w, want in FROM_LOCAL_CASES]
    + [
        Case(f"until {id}", until(clock, days), Row(tz, at(start)), at(want))
        for id, clock, days, tz, start, want in UNTIL_CASES
    ]
    + [
        Case(f"quiet {id}", quiet(*window.split("-")), Row(tz, at(due)), at(want))
        for id, window, tz, due, want in QUIET_CASES
    ]
    + [
        Case(
            f"date {id}",
            on_date(*args),
            Row(tz, at(start), day=None if day is None else date.fromisoformat(day)),
            None if want is None else at(want),
        )
        for id, args, tz, start, day, want in DATE_CASES
    ]
)


@pytest.mark.parametrize("case", CASES, ids=[case.id for case in CASES])
def test_reference_agrees_with_hand_checked_case(case: Case) -> None:
    assert case.rule.ref(case.row) == case.expected


@pytest.mark.parametrize("case", CASES, ids=[case.id for case in CASES])
def test_duckdb_case(duck: Run, case: Case) -> None:
    assert duck(query([case.rule], [case.row]).sql(dialect="duckdb")) == [(case.expected,)]


@pytest.mark.postgres
def test_postgres_cases(pg: Run) -> None:
    failed = [
        f"{case.id}: {got}, expected {case.expected}"
        for case in CASES
        for ((got,),) in [pg(query([case.rule], [case.row]).sql(dialect="postgres"))]
        if got != case.expected
    ]
    assert not failed, "\n".join(failed)


def test_to_local_is_the_standard_form_on_both_dialects() -> None:
    expr = timing.to_local(exp.column("s"), exp.column("tz"))
    for dialect in ("duckdb", "postgres"):
        assert expr.sql(dialect=dialect) == "(s AT TIME ZONE 'UTC') AT TIME ZONE tz"


@pytest.mark.parametrize(
    "build",
    [
        lambda c: timing.next_local_time(c.start, c.tz, "9:00", None),
        lambda c: timing.next_local_time(c.start, c.tz, "24:00", None),
        lambda c: timing.next_local_time(c.start, c.tz, None, ["monday"]),
        lambda c: timing.next_local_time(c.start, c.tz, "09:00", []),
        lambda c: timing.quiet_hours_move(c.start, c.tz, "21:00", "08:60"),
        lambda c: timing.next_date_occurrence(c.start, c.tz, c.day, 0, "noon", True),
    ],
)
def test_bad_clock_or_weekday_is_refused(build: Callable[[Columns], exp.Expr]) -> None:
    with pytest.raises(ValueError, match=r"HH:MM|weekdays"):
        build(COLUMNS)


# -- the property: random instants, zones, times and windows ----------------------------------

ZONES = [
    "UTC",
    NY,
    LONDON,
    LORD_HOWE,
    KOLKATA,
    KATHMANDU,
    AUCKLAND,
    "Pacific/Chatham",  # +12:45 / +13:45
    "America/St_Johns",  # -03:30 / -02:30
    "America/Havana",  # jumps at midnight
    "America/Santiago",  # 00:00 does not exist on the spring-forward day
    "Asia/Beirut",  # falls back from 00:00 to 23:00 of the day before
    "Europe/Dublin",
    "Pacific/Kiritimati",  # +14
]
SPAN_START, SPAN_END = datetime(2025, 1, 1), datetime(2028, 12, 31, 23, 59)
CLOCKS = ["00:00", "00:30", "01:00", "01:30", "01:59", "02:00", "02:15", "02:30", "03:00", "23:30"]


@cache
def transitions(tz: str) -> tuple[datetime, ...]:
    """The instants in the span where the zone's offset changes, to the minute."""
    found = []
    step = timedelta(hours=6)
    at = SPAN_START - step
    while at < SPAN_END:
        if local(at, tz) - at != local(at + step, tz) - at - step:
            low, high = at, at + step
            while high - low > timedelta(minutes=1):
                mid = low + (high - low) / 2
                low, high = (
                    (mid, high) if local(mid, tz) - mid == local(low, tz) - low else (low, mid)
                )
            found.append(high)
        at += step
    return tuple(found)


@st.composite
def instants(draw: st.DrawFn, tz: str) -> datetime:
    """A minute in the span, half the time within a day and a half of one of the zone's changes."""
    near, close_to_one = transitions(tz), draw(st.booleans())
    if near and close_to_one:
        return draw(st.sampled_from(near)) + timedelta(minutes=draw(st.integers(-2160, 2160)))
    minutes = int((SPAN_END - SPAN_START).total_seconds() // 60)
    return SPAN_START + timedelta(minutes=draw(st.integers(0, minutes)))


@st.composite
def rows(draw: st.DrawFn) -> Row:
    tz = draw(st.sampled_from(ZONES))
    wall = local(draw(instants(tz)), tz) + timedelta(minutes=draw(st.integers(-120, 120)))
    day = draw(
        st.one_of(
            st.none(),
            st.just(date(2000, 2, 29)),
            st.dates(date(1940, 1, 1), date(2028, 12, 31)),
        )
    )
    return Row(tz, draw(instants(tz)), wall, day)


clocks = st.one_of(
    st.sampled_from(CLOCKS),
    st.builds(lambda h, m: f"{h:02d}:{m:02d}", st.integers(0, 23), st.integers(0, 59)),
)


@st.composite
def rule_sets(draw: st.DrawFn) -> list[Rule]:
    weekdays = draw(
        st.one_of(st.none(), st.lists(st.sampled_from(WEEKDAYS), min_size=1, unique=True))
    )
    clock = draw(st.none() if weekdays is None else st.one_of(st.none(), clocks))
    offset = draw(st.one_of(st.integers(-10, 10), st.integers(-364, 364)))
    return [
        TO_LOCAL,
        FROM_LOCAL,
        until(draw(clocks) if weekdays is None else clock, weekdays),
        quiet(draw(clocks), draw(clocks)),
        on_date(offset, draw(clocks), draw(st.booleans())),
    ]


PROPERTY = settings(
    max_examples=60,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)


@PROPERTY
@given(rules=rule_sets(), batch=st.lists(rows(), min_size=40, max_size=40))
def test_duckdb_matches_reference(duck: Run, rules: list[Rule], batch: list[Row]) -> None:
    failed = mismatches(duck, "duckdb", rules, batch)
    assert not failed, "\n".join(failed[:10])


@pytest.mark.postgres
def test_postgres_matches_reference(pg: Run) -> None:
    @settings(PROPERTY, max_examples=20)
    @given(rules=rule_sets(), batch=st.lists(rows(), min_size=40, max_size=40))
    def check(rules: list[Rule], batch: list[Row]) -> None:
        failed = mismatches(pg, "postgres", rules, batch)
        assert not failed, "\n".join(failed[:10])

    check()
