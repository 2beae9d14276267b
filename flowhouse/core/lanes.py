"""The model refresh in two lanes: what a tick needs fresh, and the heavy enrichment that can lag.

- ``fast``: every model but ``tag:enrichment``: what a tick decides on (``core.events`` and the
  derived triggers, the customer attributes and their inputs, segment and list members,
  ``product_interest``, which the engine's fan-out reads) and all their parents. Every tick.
- ``enrichment``: ``tag:enrichment``: the category affinity (:data:`LAGGING_INPUTS`) and the
  performance marts (``tag:marts``). By a tick when its last success is older than
  ``refresh.enrichment_every``, or on its own (``flowhouse refresh --lane enrichment``, the
  Dagster job ``flowhouse_enrichment``).

The lanes are dbt tags (``enrichment``, ``dbt_project/dbt_project.yml``) read through this one
definition by the CLI, the engine's tick and the Dagster assets. Every lane run is recorded in
``flowhouse.lane_runs`` (:mod:`flowhouse.core.state`): the lane, the ``now`` it ran as of, when it
started and finished, whether it succeeded and, when not, why. A failed enrichment lane never
stops the fast lane nor the engine: it is recorded, shown, and tried again at the next tick.

When a tick finds the enrichment lane due it runs both lanes in one dbt invocation (so the
category affinity is built before the customer attributes that read it, at the same ``now``); a
failure in the enrichment lane then leaves the fast models dbt skipped behind it, which run again
at once without it.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, Literal

from sqlglot import exp

from flowhouse.core.build import BuildSummary, build_models
from flowhouse.core.clock import utc, utcnow
from flowhouse.core.dbt import NodeResult
from flowhouse.core.errors import ConfigError, DbtError
from flowhouse.core.sql import STATE_SCHEMA, literal
from flowhouse.core.warehouse import Location, Warehouse

LaneName = Literal["fast", "enrichment"]
#: The dbt tag of the enrichment lane's models.
ENRICHMENT_TAG = "enrichment"
#: The enrichment models a fast-lane model reads (customer_attributes' ``top_category``,
#: ``top_category_source`` and ``top_category_share``): those columns lag by up to the lane's
#: interval. No other model of the enrichment lane is a parent of what the engine reads (a test
#: checks it on the dbt graph).
LAGGING_INPUTS = ("int_customer_category_affinity",)
#: The schema the lagging inputs land in.
LAGGING_SCHEMA = "core"
#: ``refresh.enrichment_every`` when the settings give none.
DEFAULT_ENRICHMENT_EVERY = timedelta(hours=1)
RUNS_TABLE = f"{STATE_SCHEMA}.lane_runs"


@dataclass(frozen=True)
class Lane:
    """One lane: its dbt selection (`select` less `exclude`) and what it is for."""

    name: LaneName
    select: tuple[str, ...]
    exclude: tuple[str, ...]
    holds: str

    def has(self, node: NodeResult) -> bool:
        """Whether a node of a run belongs to this lane (by its tags)."""
        return (ENRICHMENT_TAG in node.tags) == (self.name == "enrichment")


FAST = Lane(
    "fast",
    select=(),
    exclude=(f"tag:{ENRICHMENT_TAG}",),
    holds="events and the derived triggers, customer attributes, segment and list members, "
    "product interest, and their parents",
)
ENRICHMENT = Lane(
    "enrichment",
    select=(f"tag:{ENRICHMENT_TAG}",),
    exclude=(),
    holds="category affinity (customer_attributes' top_category columns lag by up to the "
    "lane's interval) and the performance marts",
)
LANES: dict[str, Lane] = {"fast": FAST, "enrichment": ENRICHMENT}
#: What ``--lane`` takes: one lane, or ``all`` (both in one dbt run).
LANE_CHOICES = ("fast", "enrichment", "all")


def lanes_of(choice: str) -> tuple[Lane, ...]:
    """The lanes ``--lane choice`` runs."""
    if choice == "all":
        return (FAST, ENRICHMENT)
    if choice not in LANES:
        raise ConfigError("unknown lane", value=choice, expected=", ".join(LANE_CHOICES))
    return (LANES[choice],)


@dataclass(frozen=True)
class LaneRun:
    """One lane's run as recorded in ``flowhouse.lane_runs``."""

    lane: str
    now: datetime
    started_at: datetime
    finished_at: datetime
    status: str
    models: int = 0
    error: str | None = None
    ran_by: str = "tick"

    @property
    def ok(self) -> bool:
        return self.status == "succeeded"


@dataclass
class RefreshReport:
    """What a refresh did: each lane's run (or why it did not run) and dbt's node results."""

    runs: list[LaneRun] = field(default_factory=list)
    results: list[NodeResult] = field(default_factory=list)
    #: Why the enrichment lane did not run, when it did not.
    enrichment_skipped: str | None = None

    @property
    def failed(self) -> list[LaneRun]:
        return [r for r in self.runs if not r.ok]

    def seconds(self, lane: Lane) -> float:
        return sum(r.seconds for r in self.results if lane.has(r))

    def lines(self) -> list[str]:
        """One line per lane: ran (models, seconds), failed (why), or not due (why)."""
        out = []
        for run in self.runs:
            lane = LANES[run.lane]
            if run.ok:
                out.append(f"  {run.lane} lane: {run.models} models in {self.seconds(lane):.1f} s")
            else:
                out.append(
                    f"  {run.lane} lane FAILED (recorded in {RUNS_TABLE}; the fast lane and the "
                    f"engine ran on): {_first_line(run.error)}"
                    if lane is ENRICHMENT
                    else f"  {run.lane} lane FAILED: {_first_line(run.error)}"
                )
        if self.enrichment_skipped:
            out.append(f"  enrichment lane: {self.enrichment_skipped}")
        return out

    def summary(self) -> BuildSummary:
        return BuildSummary(self.results)


def _first_line(text: str | None) -> str:
    lines = [line.strip() for line in (text or "").splitlines() if line.strip()]
    return " / ".join(lines[:3]) or "no reason given"


# -- the recorded runs ---------------------------------------------------------------------------


@dataclass(frozen=True)
class LaneState:
    """What the recorded runs say about one lane."""

    lane: str
    last_success: datetime | None
    last_run: LaneRun | None
    #: The `now` of its recent successful runs, newest first (the cadence it actually runs at).
    recent: tuple[datetime, ...] = ()


def record(wh: Warehouse, runs: Sequence[LaneRun]) -> None:
    """Write `runs` to ``flowhouse.lane_runs`` and commit."""
    for run in runs:
        values = [
            run.lane, run.now, run.started_at, run.finished_at, run.status, run.models,
            run.error, run.ran_by,
        ]  # fmt: skip
        insert = exp.insert(
            exp.values([exp.Tuple(expressions=[literal(v) for v in values])]),
            RUNS_TABLE,
            columns=[
                "lane",
                "now_at",
                "started_at",
                "finished_at",
                "status",
                "models",
                "error",
                "ran_by",
            ],
        )
        wh.execute(insert)
    wh.commit()


def lane_states(wh: Warehouse, history: int = 10) -> dict[str, LaneState]:
    """Each lane's last success (its `now`) and last run, from ``flowhouse.lane_runs``."""
    if not wh.table_exists(STATE_SCHEMA, "lane_runs"):
        return {name: LaneState(name, None, None) for name in LANES}
    rows = wh.query(
        exp.select(
            "lane", "now_at", "started_at", "finished_at", "status", "models", "error", "ran_by"
        )
        .from_(RUNS_TABLE)
        .order_by("finished_at desc", "now_at desc")
    )
    runs = [LaneRun(*row) for row in rows]
    states = {}
    for name in LANES:
        mine = [r for r in runs if r.lane == name]
        ok = sorted({r.now for r in mine if r.ok}, reverse=True)
        states[name] = LaneState(
            name, ok[0] if ok else None, mine[0] if mine else None, tuple(ok[:history])
        )
    return states


def enrichment_due(state: LaneState, now: datetime, every: timedelta | None) -> tuple[bool, str]:
    """Whether a tick at `now` runs the enrichment lane, and a line saying why or why not."""
    if every is None:
        return False, (
            "runs only on its own schedule (refresh.enrichment_every: never): "
            "flowhouse refresh --lane enrichment, or the Dagster job flowhouse_enrichment"
        )
    last = state.last_success
    if last is None:
        return True, "never refreshed"
    if now - last >= every:
        return True, f"last refreshed as of {last:%Y-%m-%d %H:%M:%S}, every {_words(every)}"
    return False, (
        f"not due (last refreshed as of {last:%Y-%m-%d %H:%M:%S}; every {_words(every)}, "
        f"next at {last + every:%Y-%m-%d %H:%M:%S})"
    )


def _words(every: timedelta) -> str:
    seconds = int(every.total_seconds())
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if seconds % size == 0:
            return f"{seconds // size}{unit}"
    return f"{seconds}s"


def lagging_missing(wh: Warehouse) -> list[str]:
    """The lagging inputs not built yet (a fresh store): the fast lane builds them first."""
    return [m for m in LAGGING_INPUTS if not wh.table_exists(LAGGING_SCHEMA, m)]


# -- running the lanes ---------------------------------------------------------------------------


@dataclass(frozen=True)
class Options:
    """How a lane run invokes dbt: tests (``dbt build``) or not, a full refresh, artifacts."""

    tests: bool = False
    full_refresh: bool = False
    artifacts: bool = False


def run_lanes(
    location: Location,
    lanes: Sequence[Lane],
    now: datetime | None,
    dbt_vars: Mapping[str, Any],
    ran_by: str = "refresh",
    options: Options = Options(),
) -> RefreshReport:
    """Run `lanes` in one dbt invocation as of `now` (None: as of the data, as the models take
    it) and record each lane's run. A failed lane raises :class:`DbtError` once recorded, except
    the enrichment lane of a tick (``ran_by="tick"``): that one is reported, and the fast models
    dbt skipped behind it run again without it."""
    with Warehouse.open(location) as wh:
        missing = lagging_missing(wh) if ENRICHMENT not in lanes else []
        now_at = utc(now) if now is not None else data_now(wh)
    report = RefreshReport()
    started = utcnow()
    errors: list[DbtError] = []
    if missing:  # a fresh store: the fast lane reads what the enrichment lane builds
        try:
            report.results += _build(location, [f"+{m}" for m in missing], (), now, dbt_vars)
        except DbtError as err:
            errors.append(err)
            report.results += err.results
    select, exclude = _selection(lanes)
    try:
        report.results += _build(location, select, exclude, now, dbt_vars, options)
    except DbtError as err:
        errors.append(err)
        report.results += err.results
        if FAST in lanes:
            report.results += _rerun_skipped_fast(location, report.results, now, dbt_vars)
    error = errors[0] if errors else None
    finished = utcnow()
    report.runs = [
        _lane_run(lane, report.results, error, now_at, started, finished, ran_by) for lane in lanes
    ]
    with Warehouse.open(location) as wh:
        record(wh, report.runs)
    fatal = [r for r in report.runs if not r.ok and (r.lane == "fast" or ran_by != "tick")]
    if fatal:
        raise error or DbtError(f"the {fatal[0].lane} lane failed: {fatal[0].error}")
    return report


def data_now(wh: Warehouse) -> datetime:
    """The `now` of a build given none (``dbt_project/macros/now.sql``): the newest loaded_at of
    the raw events, never past the wall clock."""
    wall = utcnow()
    if not wh.table_exists("raw", "events"):
        return wall
    newest = wh.scalar(exp.select("max(loaded_at)").from_("raw.events"))
    return min(newest, wall) if isinstance(newest, datetime) else wall


def _selection(lanes: Sequence[Lane]) -> tuple[list[str], list[str]]:
    """One lane's selection; both lanes: every model."""
    if len(lanes) == 1:
        return list(lanes[0].select), list(lanes[0].exclude)
    return [], []


def _build(
    location: Location,
    select: Sequence[str],
    exclude: Sequence[str],
    now: datetime | None,
    dbt_vars: Mapping[str, Any],
    options: Options = Options(),
) -> list[NodeResult]:
    summary = build_models(
        location, select=select, exclude=exclude, now=now, dbt_vars=dbt_vars,
        tests=options.tests, full_refresh=options.full_refresh, artifacts=options.artifacts,
    )  # fmt: skip
    return summary.results


#: dbt's statuses of a node that did not succeed.
FAILED = frozenset({"error", "fail", "runtime error"})


def _rerun_skipped_fast(
    location: Location,
    results: Sequence[NodeResult],
    now: datetime | None,
    dbt_vars: Mapping[str, Any],
) -> list[NodeResult]:
    """The fast models dbt skipped because an enrichment model they read failed, run again
    without it (they read its table as last built). Nothing when a fast model failed itself."""
    if any(FAST.has(r) for r in results if r.status in FAILED):
        return []
    skipped = [r.name.split(".")[-1] for r in results if r.status == "skipped" and FAST.has(r)]
    if not skipped:
        return []
    try:
        return _build(location, skipped, (), now, dbt_vars)
    except DbtError as err:
        return err.results


def _lane_run(
    lane: Lane,
    results: Sequence[NodeResult],
    error: DbtError | None,
    now: datetime,
    started: datetime,
    finished: datetime,
    ran_by: str,
) -> LaneRun:
    """A lane's outcome from the node results: failed when one of its nodes failed or was
    skipped (the last result of a node counts: a skipped fast model may have run again), or when
    dbt failed before any of its nodes ran."""
    last = {r.name: r for r in results if lane.has(r)}
    bad = [r for r in last.values() if r.status in FAILED or r.status == "skipped"]
    models = sum(1 for r in last.values() if r.name.startswith("model.") and r.status == "success")
    if bad:
        why: str | None = "\n".join(
            f"{r.name}: {r.status}: {r.message or ''}".rstrip() for r in bad
        )
    elif error is not None and not last:
        why = str(error)
    else:
        why = None
    status = "succeeded" if why is None else "failed"
    return LaneRun(lane.name, now, started, finished, status, models, why, ran_by)


def refresh(
    location: Location,
    now: datetime,
    dbt_vars: Mapping[str, Any],
    enrichment_every: timedelta | None = DEFAULT_ENRICHMENT_EVERY,
) -> RefreshReport:
    """A tick's refresh as of `now`: the fast lane, and the enrichment lane with it when due
    (:func:`enrichment_due`); no tests, no dbt JSON artifacts."""
    with Warehouse.open(location) as wh:
        state = lane_states(wh)["enrichment"]
    due, why = enrichment_due(state, utc(now), enrichment_every)
    report = run_lanes(location, (FAST, ENRICHMENT) if due else (FAST,), now, dbt_vars, "tick")
    if not due:
        report.enrichment_skipped = why
    return report
