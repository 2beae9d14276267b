"""Benchmark a tick end to end: the initial build, a refresh tick with new events, one with nothing
new, where each tick's time goes, and how late a derived trigger's message is queued.

    python benchmarks/ticks.py                          # 100,000 customers, 30 days, seed 7
    python benchmarks/ticks.py --sizes 100000,1000000   # two sizes in one run, and their ratio
    python benchmarks/ticks.py --sizes 1000000,10000000 --latency
    python benchmarks/ticks.py --customers 500 --latency --latency-ticks 2   # a smoke run
    python benchmarks/ticks.py --sizes 1000000,10000000 --stores /data/stores  # generated once

For each size, on a fresh DuckDB file, each step its own process (``flowhouse ...``, so Python's
start is included; wall, CPU and peak RSS as ``os.wait4`` reports them for that process):

1. ``flowhouse generate --customers N --days D --seed S`` (with ``--stores DIR``: the store that
   command wrote as ``DIR/store-N.duckdb``, copied to the work folder, the copy measured: the row
   says "reused"), then the initial build (``flowhouse build --skip-tests``, the models as of the
   data, recorded as a run of both refresh lanes);
2. the first tick, at the newest ``loaded_at`` of the store (``--no-build``: the flows go live);
3. a refresh tick with nothing new (``flowhouse tick --no-send`` at the end of the generated
   history: time moved on, no event arrived since the build);
4. 15 minutes of new events appended (``flowhouse generate --continue-until``), then a refresh tick
   (the fast lane: the enrichment lane is not due, docs/engine.md "Refresh lanes");
5. from the second size on: the previous size's new-event volume, then a refresh tick. The
   generator's event rate grows with the customers, so the window is 15 minutes times the
   previous size over this one (90 s at 1M after 100k): the new events are about as many as in
   the previous size's 15-minute tick (both counts are printed), and the ratio of the two ticks is
   the cost of the same new events over ten times the history;
6. 15 minutes of new events, then a refresh tick with the enrichment lane due (the flows folder's
   settings with ``refresh.enrichment_every: 15m``, so both lanes run);
7. 15 minutes of new events, then a tick with ``--no-build`` (the engine alone, no refresh);
8. with ``--latency``: ticks every 5 minutes of simulated time (``--latency-ticks`` of them), each
   after appending its 5 minutes of events, each with the refresh; then, for ``cart_abandoned``,
   the time from each event's decision moment (its ``loaded_at``) to its enrollment and to its
   first message being queued (``flowhouse.messages.queued_at``), in minutes of simulated time.

A tick's breakdown: "start" is the process's wall less the tick's own clock
(``flowhouse.ticks.seconds``: imports, reading the flow files, exit); "dbt start" is dbt's fixed
cost (the dbt command's wall less the wall of running its models, from the lines dbt appends to
``logs/dbt.log``, as ``dbt_ticks.py`` reads them); "models" the wall of running the models;
"engine" the engine's transaction (``flowhouse.ticks``: ``finished_at - started_at``); "other" the
rest of the tick's clock (the removal check, preparing the sources, taking the lock). Sending is not
measured (``--no-send``; ``benchmarks/sending.py`` measures it). Each model's own time (dbt's "OK
created ... in N s") follows in a second table; the "models" column splits the models' own time
by lane (fast + enrichment, by the models' dbt tags).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shlex
import shutil
import sys
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path

import duckdb
from dbt_ticks import DbtTimes, appended, dbt_times, log_offset
from generate import Usage, measure_usage

from flowhouse.core.lanes import ENRICHMENT_TAG
from flowhouse.core.paths import FLOWS
from flowhouse.core.project import current

START = datetime(2026, 9, 1)
TICK = timedelta(minutes=15)
LATENCY_STEP = timedelta(minutes=5)
#: the steps of each size, in the order they run and are printed
GENERATE = "generate"
BUILD = "initial build (`build --skip-tests`)"
FIRST = "first tick, `--no-build` (flows go live)"
NOTHING = "tick with refresh, nothing new"
NEW = "tick with refresh, 15 min of new events"
SAME = "tick with refresh, the previous size's new events"
SLOW_DUE = "tick with refresh, slow lane due, 15 min of new events"
NO_BUILD = "tick `--no-build`, 15 min of new events"
LATENCY = "tick with refresh, 5-minute schedule"
#: the flow and the first send steps whose messages the latency is measured on
FLOW = "cart_abandonment"
TRIGGER = "cart_abandoned"
#: the dbt profile's DuckDB memory limit (dbt_project/profiles.yml)
MEMORY_LIMIT_VAR = "FLOWHOUSE_DUCKDB_MEMORY_LIMIT"


@dataclass
class Row:
    """One step of one size: what it cost and, for a tick, where its time went."""

    customers: int
    step: str
    usage: Usage
    new_events: int | None = None
    dbt: DbtTimes | None = None
    tick_seconds: float | None = None
    engine: float | None = None
    note: str = ""
    #: the models' own time by lane (fast, enrichment), for a command that ran dbt
    lanes: tuple[float, float] | None = None

    @property
    def start(self) -> float | None:
        return None if self.tick_seconds is None else self.usage.wall - self.tick_seconds

    @property
    def other(self) -> float | None:
        if self.tick_seconds is None or self.engine is None:
            return None
        return self.tick_seconds - self.engine - (self.dbt.wall if self.dbt else 0.0)


@dataclass
class Latency:
    customers: int
    ticks: list[float] = field(default_factory=list)
    decided: int = 0
    enrolled: int = 0
    queued: int = 0
    #: (p50, p95, max) in minutes, from the decision moment to the enrollment and to the message
    to_enrollment: tuple[float, float, float] | None = None
    to_message: tuple[float, float, float] | None = None


class Store:
    """One size's warehouse and the commands run on it."""

    def __init__(self, workdir: Path, customers: int, args: argparse.Namespace) -> None:
        self.customers = customers
        self.args = args
        self.path = workdir / f"store-{customers}.duckdb"
        self.flowhouse = str(Path(sys.executable).with_name("flowhouse"))
        self.log = current().work_dir / "logs" / "dbt.log"
        self.rows: list[Row] = []

    def run(
        self, step: str, *cli: str, events: int | None = None, env: dict[str, str] | None = None
    ) -> Row:
        shown = "".join(f"{k}={v} " for k, v in (env or {}).items())
        progress(f"{self.customers:,} customers: {step}: {shown}flowhouse {shlex.join(cli)}")
        offset = log_offset(self.log)
        usage = measure_usage([self.flowhouse, *cli, "--warehouse", str(self.path)], env)
        row = Row(self.customers, step, usage, events)
        if cli[0] in {"build", "tick"} and "--no-build" not in cli:
            row.dbt = dbt_times(appended(self.log, offset))
            row.lanes = by_lane(row.dbt)
        if cli[0] == "tick":
            row.tick_seconds, row.engine = self.tick_times(cli[cli.index("--now") + 1])
        self.rows.append(row)
        progress(table_row(row))  # on the way, so a run stopped later keeps what it measured
        return row

    def tick(self, step: str, at: datetime, *extra: str, since: datetime) -> Row:
        events = self.events(since, at)
        return self.run(step, "tick", "--no-send", "--now", at.isoformat(), *extra, events=events)

    def reuse(self, stores: Path) -> Row:
        """The store ``flowhouse generate`` wrote as ``stores/store-N.duckdb``, copied (not
        timed), refused when it was built or ticked already."""
        found = stores / self.path.name
        if not found.exists():
            a = self.args
            sys.exit(
                f"--stores {stores}: no {found.name} (flowhouse generate --customers "
                f"{self.customers} --days {a.days} --seed {a.seed})"
            )
        progress(f"{self.customers:,} customers: copying {found}")
        shutil.copyfile(found, self.path)
        built = self.query(
            "select count(*) from information_schema.tables "
            "where table_schema in ('core', 'flowhouse')"
        )
        if built[0][0]:
            sys.exit(
                f"--stores: {found} was built or ticked already; give a store as "
                "flowhouse generate left it"
            )
        row = Row(self.customers, GENERATE, Usage(0.0, 0.0, 0.0), note="reused")
        self.rows.append(row)
        progress(table_row(row))
        return row

    def append(self, until: datetime) -> None:
        """The store's events up to `until` (not timed: the generator is not what is measured)."""
        progress(f"{self.customers:,} customers: generate --continue-until {until.isoformat()}")
        measure_usage(
            [self.flowhouse, "generate", "--continue-until", until.isoformat(),
             "--warehouse", str(self.path)]
        )  # fmt: skip

    def query(self, sql: str, *params: object) -> list[tuple[object, ...]]:
        with duckdb.connect(str(self.path), read_only=True) as con:
            return con.execute(sql, list(params)).fetchall()

    def events(self, since: datetime, until: datetime) -> int:
        """Raw events that arrived in (since, until]: what a tick at `until` sees as new."""
        rows = self.query(
            "select count(*) from raw.events where loaded_at > ? and loaded_at <= ?", since, until
        )
        return int(rows[0][0])  # type: ignore[call-overload]

    def tick_times(self, now: str) -> tuple[float, float]:
        """The tick's own clock and its engine's transaction, as ``flowhouse.ticks`` has them."""
        rows = self.query(
            "select seconds, epoch(finished_at - started_at) "
            "from flowhouse.ticks where tick_at = ?",
            datetime.fromisoformat(now),
        )
        if not rows:
            sys.exit(f"no row in flowhouse.ticks for the tick at {now}")
        seconds, engine = rows[0]
        return float(seconds), float(engine)  # type: ignore[arg-type]


def main() -> None:
    args = parse_args()
    workdir = Path(tempfile.mkdtemp(prefix="flowhouse-bench-ticks-", dir=args.dir))
    stores: list[Store] = []
    latencies: list[Latency] = []
    load = os.getloadavg()
    started = starts()
    try:
        previous = None
        for customers in args.sizes:
            store = Store(workdir, customers, args)
            stores.append(store)
            end = run_size(store, previous)
            if args.latency:
                latencies.append(latency(store, end))
            if not args.keep:
                store.path.unlink(missing_ok=True)
            previous = store
    finally:
        if not args.keep:
            shutil.rmtree(workdir, ignore_errors=True)
    report(args, stores, latencies, load, started)


def starts() -> tuple[float, float]:
    """The wall time of starting flowhouse's CLI, and of importing dbt, each in a fresh process."""
    flowhouse = str(Path(sys.executable).with_name("flowhouse"))
    cli = measure_usage([flowhouse, "--version"])
    dbt = measure_usage([sys.executable, "-c", "import dbt.cli.main"])
    return cli.wall, dbt.wall


def run_size(store: Store, previous: Store | None) -> datetime:
    """Steps 1-6 on one size; returns the time of its last tick."""
    args = store.args
    if args.stores is not None:
        store.reuse(args.stores)
    else:
        store.run(
            GENERATE, "generate",
            "--customers", str(store.customers), "--days", str(args.days),
            "--seed", str(args.seed),
        )  # fmt: skip
    build = store.run(BUILD, "build", "--skip-tests", env=build_env(args))
    if args.build_memory_limit is not None:
        build.note = f"DuckDB memory_limit {args.build_memory_limit}"
    newest = store.query("select max(loaded_at) from raw.events")[0][0]
    assert isinstance(newest, datetime), "the generated store has no events"
    end = START + timedelta(days=args.days)
    store.tick(FIRST, newest, "--no-build", since=newest)
    store.tick(NOTHING, end, since=newest)
    at = end + TICK
    store.append(at)
    store.tick(NEW, at, since=end)
    if previous is not None:
        window = TICK * previous.customers / store.customers
        window = max(timedelta(seconds=round(window.total_seconds())), timedelta(seconds=1))
        store.append(at + window)
        row = store.tick(SAME, at + window, since=at)
        row.note = f"{window.total_seconds():.0f} s of events"
        at += window
    store.append(at + TICK)
    due = slow_lane_due(store.path.parent)
    store.tick(SLOW_DUE, at + TICK, "--flows", str(due), since=at)
    at += TICK
    store.append(at + TICK)
    store.tick(NO_BUILD, at + TICK, "--no-build", since=at)
    return at + TICK


def build_env(args: argparse.Namespace) -> dict[str, str]:
    """The initial build's DuckDB memory limit, when --build-memory-limit gives one (the ticks
    keep the profile's default)."""
    if args.build_memory_limit is None:
        return {}
    return {MEMORY_LIMIT_VAR: args.build_memory_limit}


def slow_lane_due(workdir: Path) -> Path:
    """The shipped flows, with settings that make the enrichment lane due every 15 minutes (the
    same dbt vars: no re-parse)."""
    folder = workdir / "flows-slow-lane-due"
    if not folder.exists():
        shutil.copytree(FLOWS, folder)
        settings = folder / "_settings.yml"
        text = settings.read_text().replace("enrichment_every: 1h", "enrichment_every: 15m")
        if "enrichment_every: 15m" not in text:
            text += "\nrefresh:\n  enrichment_every: 15m\n"
        settings.write_text(text)
    return folder


def by_lane(times: DbtTimes) -> tuple[float, float]:
    """The models' own time in the fast lane and in the enrichment lane, by their dbt tags."""
    manifest = current().dbt_dir / "target-duckdb" / "manifest.json"
    enrichment: set[str] = set()
    if manifest.exists():
        nodes = json.loads(manifest.read_text())["nodes"].values()
        enrichment = {n["name"] for n in nodes if ENRICHMENT_TAG in n.get("tags", [])}
    slow = sum(s for name, s in times.per_model.items() if name in enrichment)
    return sum(times.per_model.values()) - slow, slow


def latency(store: Store, since: datetime) -> Latency:
    """Refresh ticks every 5 minutes after `since`, events appended before each; then how long
    each cart_abandoned decided in that time took to be enrolled and to have a message queued."""
    result = Latency(store.customers)
    at = since
    for _ in range(store.args.latency_ticks):
        store.append(at + LATENCY_STEP)
        row = store.tick(LATENCY, at + LATENCY_STEP, since=at)
        result.ticks.append(row.usage.wall)
        at += LATENCY_STEP
    store.rows = [r for r in store.rows if r.step != LATENCY]
    counts = store.query(
        f"""
        with decided as (
            select event_id, loaded_at from core.events
            where event_type = '{TRIGGER}' and loaded_at > ? and loaded_at <= ?
        ),
        enrolled as (
            select d.event_id, d.loaded_at, n.enrollment_id, n.enrolled_at_tick
            from decided as d
            join flowhouse.enrollments as n
                on n.trigger_event_id = d.event_id and n.flow_id = '{FLOW}'
        ),
        queued as (
            select e.event_id, min(m.queued_at) - e.loaded_at as waited
            from enrolled as e
            join flowhouse.messages as m
                on m.enrollment_id = e.enrollment_id and m.status = 'queued'
            group by e.event_id, e.loaded_at
        )
        select
            (select count(*) from decided),
            (select count(*) from enrolled),
            (select count(*) from queued),
            (select [quantile_cont(m, 0.5), quantile_cont(m, 0.95), max(m)] from (
                select epoch(enrolled_at_tick - loaded_at) / 60 as m from enrolled)),
            (select [quantile_cont(m, 0.5), quantile_cont(m, 0.95), max(m)] from (
                select epoch(waited) / 60 as m from queued))
        """,
        since,
        at,
    )
    decided, enrolled, queued, to_enrollment, to_message = counts[0]
    result.decided, result.enrolled, result.queued = int(decided), int(enrolled), int(queued)  # type: ignore[call-overload]
    result.to_enrollment = quantiles(to_enrollment)
    result.to_message = quantiles(to_message)
    progress(f"latency: {result}")
    return result


def quantiles(values: object) -> tuple[float, float, float] | None:
    if not isinstance(values, list) or values[0] is None:
        return None
    p50, p95, top = (float(v) for v in values)
    return p50, p95, top


def report(
    args: argparse.Namespace,
    stores: Sequence[Store],
    latencies: Sequence[Latency],
    load: tuple[float, float, float],
    starts: tuple[float, float],
) -> None:
    print(
        f"# {platform.machine()}, {len(os.sched_getaffinity(0))} cores; load average at the start "
        f"{load[0]:.2f} / {load[1]:.2f} / {load[2]:.2f}, at the end "
        "{:.2f} / {:.2f} / {:.2f}".format(*os.getloadavg())
    )
    print(f"# stores: flowhouse generate --days {args.days} --seed {args.seed}; sends not measured")
    print()
    print(
        "| customers | step | new events | wall | CPU | peak RSS | start | dbt start | models "
        "| engine | rest | send |"
    )
    print("|---|---|---|---|---|---|---|---|---|---|---|---|")
    for store in stores:
        for row in store.rows:
            print(table_row(row))
    print()
    print(
        "start: the process's wall less the tick's own clock (imports, the flow files, exit); "
        "dbt start: dbt's command wall less its models' (its start, parse, graph, cache); "
        "rest: the tick's clock less dbt and the engine (the removal check, the sources, "
        f"importing dbt). In fresh processes: `flowhouse --version` {starts[0]:.2f} s, "
        f"`import dbt.cli.main` {starts[1]:.2f} s."
    )
    print()
    print_models(stores)
    print_ratio(stores)
    if latencies:
        print_latency(latencies)
    print_build_models(stores)
    print()
    print(f"reproduce: {reproduce(args)}")


def table_row(row: Row) -> str:
    def s(value: float | None) -> str:
        return "-" if value is None else f"{value:.2f} s"

    events = "-" if row.new_events is None else f"{row.new_events:,}"
    if row.note:
        events += f" ({row.note})"
    dbt = row.dbt
    send = "not run" if row.step not in {GENERATE, BUILD} else "-"
    reparse = " (re-parsed)" if dbt and dbt.reparsed else ""
    split = ""
    if row.lanes is not None and row.step != BUILD:
        split = f" (own time: fast {row.lanes[0]:.2f} + enrichment {row.lanes[1]:.2f})"
    if row.note == "reused":
        return (
            f"| {row.customers:,} | {row.step} | - (reused) | - | - | - | - | - | - | - | - | - |"
        )
    return (
        f"| {row.customers:,} | {row.step} | {events} | {row.usage.wall:.2f} s "
        f"| {row.usage.cpu:.2f} s | {row.usage.peak_mb:,.0f} MB | {s(row.start)} "
        f"| {s(dbt.fixed if dbt else None)}{reparse} | {s(dbt.models if dbt else None)}{split} "
        f"| {s(row.engine)} | {s(row.other)} | {send} |"
    )


def print_models(stores: Sequence[Store]) -> None:
    """Each model's own time in each refresh tick (dbt's "OK created ... in N s")."""
    ticks = [r for s in stores for r in s.rows if r.dbt is not None and r.step != BUILD]
    if not ticks:
        return
    names = sorted(
        {name for r in ticks for name in r.dbt.per_model},  # type: ignore[union-attr]
        key=lambda n: -max(r.dbt.per_model.get(n, 0.0) for r in ticks),  # type: ignore[union-attr]
    )
    heads = [f"{r.customers:,}: {short(r.step)}" for r in ticks]
    print("Each model's time in the refresh ticks (dbt's own, seconds):")
    print()
    print("| model | " + " | ".join(heads) + " |")
    print("|---|" + "---|" * len(ticks))
    for name in names:
        cells = [r.dbt.per_model.get(name) for r in ticks]  # type: ignore[union-attr]
        print(f"| {name} | " + " | ".join("-" if c is None else f"{c:.2f}" for c in cells) + " |")
    totals = [sum(r.dbt.per_model.values()) for r in ticks]  # type: ignore[union-attr]
    print("| **sum** | " + " | ".join(f"{t:.2f}" for t in totals) + " |")
    print()


def print_build_models(stores: Sequence[Store], top: int = 15) -> None:
    """The initial build's slowest models at each size (dbt's own time), slowest at the largest
    size first: what a first build of a big history pays for."""
    builds = [r for s in stores for r in s.rows if r.dbt is not None and r.step == BUILD]
    if not builds:
        return
    last = builds[-1].dbt
    assert last is not None
    names = sorted(last.per_model, key=lambda n: -last.per_model[n])[:top]
    print()
    print(f"The initial build's {len(names)} slowest models (dbt's own time, seconds):")
    print()
    print("| model | " + " | ".join(f"{r.customers:,}" for r in builds) + " |")
    print("|---|" + "---|" * len(builds))
    for name in names:
        cells = [r.dbt.per_model.get(name) for r in builds]  # type: ignore[union-attr]
        print(f"| {name} | " + " | ".join("-" if c is None else f"{c:.2f}" for c in cells) + " |")
    totals = [sum(r.dbt.per_model.values()) for r in builds]  # type: ignore[union-attr]
    counts = [len(r.dbt.per_model) for r in builds]  # type: ignore[union-attr]
    print(
        "| **sum of all models** | "
        + " | ".join(f"{t:.2f} ({n} models)" for t, n in zip(totals, counts, strict=True))
        + " |"
    )
    print()


def short(step: str) -> str:
    return {
        NOTHING: "nothing new", NEW: "15 min new", SAME: "previous size's new",
        SLOW_DUE: "15 min new, slow lane due",
    }.get(step, step)  # fmt: skip


def print_ratio(stores: Sequence[Store]) -> None:
    """The largest size's tick over the previous size's, for the same new events."""
    if len(stores) < 2:
        return
    small, large = stores[-2], stores[-1]
    before = next(r for r in small.rows if r.step == NEW)
    after = next(r for r in large.rows if r.step == SAME)

    def ratio(a: float | None, b: float | None) -> str:
        return "-" if a is None or b is None or a <= 0 else f"{b / a:.2f}×"

    print(
        f"Same new events ({before.new_events:,} at {small.customers:,} customers, "
        f"{after.new_events:,} at {large.customers:,}): the tick at {large.customers:,} over the "
        f"tick at {small.customers:,}: wall {ratio(before.usage.wall, after.usage.wall)}, "
        f"CPU {ratio(before.usage.cpu, after.usage.cpu)}, "
        f"models {ratio(before.dbt and before.dbt.models, after.dbt and after.dbt.models)}, "
        f"engine {ratio(before.engine, after.engine)}, "
        f"peak RSS {ratio(before.usage.peak_mb, after.usage.peak_mb)}"
    )
    print()


def print_latency(latencies: Sequence[Latency]) -> None:
    def q(values: tuple[float, float, float] | None) -> str:
        return "-" if values is None else " / ".join(f"{v:.1f}" for v in values)

    print(
        f"Event-to-queue latency of `{TRIGGER}` ({FLOW}), refresh ticks every 5 minutes of "
        "simulated time, minutes from the decision moment (the event's loaded_at):"
    )
    print()
    print(
        "| customers | ticks | tick wall, median / max | decided | enrolled | with a message "
        "| to enrollment, p50 / p95 / max | to message queued, p50 / p95 / max |"
    )
    print("|---|---|---|---|---|---|---|---|")
    for lat in latencies:
        walls = sorted(lat.ticks)
        median = walls[len(walls) // 2] if walls else 0.0
        top = walls[-1] if walls else 0.0
        print(
            f"| {lat.customers:,} | {len(walls)} | {median:.2f} s / {top:.2f} s | {lat.decided:,} "
            f"| {lat.enrolled:,} | {lat.queued:,} | {q(lat.to_enrollment)} | {q(lat.to_message)} |"
        )


def progress(line: str) -> None:
    print(line, file=sys.stderr, flush=True)


def reproduce(args: argparse.Namespace) -> str:
    command = [
        "python", "benchmarks/ticks.py",
        "--sizes", ",".join(str(n) for n in args.sizes),
        "--days", str(args.days), "--seed", str(args.seed),
    ]  # fmt: skip
    if args.latency:
        command += ["--latency", "--latency-ticks", str(args.latency_ticks)]
    if args.stores is not None:
        command += ["--stores", str(args.stores)]
    if args.build_memory_limit is not None:
        command += ["--build-memory-limit", args.build_memory_limit]
    return shlex.join(command)


def sizes(text: str) -> list[int]:
    try:
        values = [int(part.replace("_", "")) for part in text.split(",")]
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"--sizes {text!r}: expected customer counts separated by commas, e.g. 100000,1000000"
        ) from None
    if not values or min(values) < 1 or values != sorted(values):
        raise argparse.ArgumentTypeError(
            f"--sizes {text!r}: expected increasing customer counts of at least 1"
        )
    return values


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--customers", type=int, default=None, help="one size (default 100000)")
    parser.add_argument("--sizes", type=sizes, default=None, help="sizes, e.g. 100000,1000000")
    parser.add_argument("--days", type=int, default=30)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--latency", action="store_true", help="also the 5-minute latency run")
    parser.add_argument("--latency-ticks", type=int, default=12, help="ticks of the latency run")
    parser.add_argument("--dir", default=None, help="where the temporary warehouses go")
    parser.add_argument(
        "--stores", type=Path, default=None,
        help="reuse DIR/store-N.duckdb as `flowhouse generate --customers N --days D --seed S` "
        "wrote it (copied; the copy is measured)",
    )  # fmt: skip
    parser.add_argument("--keep", action="store_true", help="keep the warehouses")
    parser.add_argument(
        "--build-memory-limit", default=None, metavar="SIZE",
        help=f"DuckDB memory_limit of the initial build only, e.g. 14GB ({MEMORY_LIMIT_VAR}; "
        "the ticks keep the profile's 4GB)",
    )  # fmt: skip
    args = parser.parse_args()
    if args.customers is not None and args.sizes is not None:
        parser.error("give --customers or --sizes, not both")
    if args.customers is not None and args.customers < 1:
        parser.error(f"--customers {args.customers}: expected at least 1")
    if args.latency_ticks < 1:
        parser.error(f"--latency-ticks {args.latency_ticks}: expected at least 1")
    if args.stores is not None and not args.stores.is_dir():
        parser.error(f"--stores {args.stores}: not a folder")
    args.sizes = args.sizes or [args.customers or 100_000]
    return args


if __name__ == "__main__":
    main()
