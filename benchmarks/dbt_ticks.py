"""Measure dbt's fixed cost per tick: what a refresh tick pays in dbt beyond running the models.

    python benchmarks/dbt_ticks.py                    # 2,000 customers, 30 days, three ticks
    python benchmarks/dbt_ticks.py --customers 100000 --ticks 5
    python benchmarks/dbt_ticks.py --customers 100000 --per-model   # incremental vs full, per model

On a fresh DuckDB file: generate the store, build it once (``flowhouse build --skip-tests``), then
run ``flowhouse tick --no-send`` at three times 15 minutes apart, each its own process. For each
tick it reads the lines dbt appended to its log (``logs/dbt.log`` of the project): the dbt
command's wall and CPU time (dbt's resource report), the wall time of running the models
("Finished running ... in N s"), the difference (dbt's fixed cost: start, parse, graph, cache),
and whether dbt re-parsed the whole project ("Unable to do partial parsing").

With ``--per-model``: before each tick, 15 minutes of new events are appended
(``flowhouse generate --continue-until``); after it, the models incremental by what changed are
rebuilt in full on the same data at the same now (``flowhouse build --skip-tests --full-refresh
--select ...``, what a tick paid when they were tables), and each model's time in the tick and in
the full rebuild is printed side by side.
"""

from __future__ import annotations

import argparse
import json
import re
import shutil
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path

from generate import measure

from flowhouse.core.project import current

START = datetime(2026, 9, 1)
FINISHED = re.compile(r"Finished running .* in .*\(([\d.]+)s\)")
REPORT = re.compile(r"Resource report: (\{.*\})")
MODEL = re.compile(r"OK created sql \w+ model (\S+) .* in ([\d.]+)s\]")
#: the models incremental by what changed (docs/engine.md "Incremental models"), and the attributes
INCREMENTAL = [
    "stg_orders",
    "stg_order_lines",
    "int_customer_orders",
    "int_customer_last_activity",
    "int_customer_consent",
    "int_customer_suppression",
    "int_customer_category_affinity",
    "product_interest",
    "customer_attributes",
]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--customers", type=int, default=2_000)
    parser.add_argument("--days", type=int, default=30)
    parser.add_argument("--ticks", type=int, default=3)
    parser.add_argument("--dir", default=None, help="where the temporary warehouse goes")
    parser.add_argument(
        "--per-model",
        action="store_true",
        help="append 15 minutes of events before each tick; time each model incremental and full",
    )
    args = parser.parse_args()
    workdir = Path(tempfile.mkdtemp(prefix="flowhouse-bench-dbt-", dir=args.dir))
    warehouse = str(workdir / "store.duckdb")
    flowhouse = str(Path(sys.executable).with_name("flowhouse"))
    log = current().work_dir / "logs" / "dbt.log"
    try:
        (per_model if args.per_model else run)(args, flowhouse, warehouse, log)
    finally:
        shutil.rmtree(workdir, ignore_errors=True)


def run(args: argparse.Namespace, flowhouse: str, warehouse: str, log: Path) -> None:
    def step(*cli: str) -> tuple[float, float]:
        return measure([flowhouse, *cli, "--warehouse", warehouse])

    print(f"# {args.customers:,} customers / {args.days} days")
    step("generate", "--customers", str(args.customers), "--days", str(args.days))
    wall, _ = step("build", "--skip-tests")
    print(f"first build: {wall:.1f} s")
    first = START + timedelta(days=args.days)
    print(
        "| tick | tick wall | dbt wall | process CPU at dbt's end | models wall "
        "| dbt fixed cost (wall) | full re-parse |"
    )
    print("|---|---|---|---|---|---|---|")
    for n in range(args.ticks):
        at = first + timedelta(minutes=15 * (n + 1))
        offset = log_offset(log)
        started = time.perf_counter()
        step("tick", "--no-send", "--now", at.isoformat())
        wall = time.perf_counter() - started
        dbt = dbt_times(appended(log, offset))
        print(
            f"| {at:%H:%M} | {wall:.1f} s | {dbt.wall:.1f} s | {dbt.cpu:.1f} s "
            f"| {dbt.models:.1f} s | {dbt.fixed:.1f} s | {'yes' if dbt.reparsed else 'no'} |"
        )


@dataclass(frozen=True)
class DbtTimes:
    """One dbt command as its log tells it: the command's wall and the process CPU at its end
    (dbt's resource report), the wall of running the models ("Finished running ... in N s"),
    each model's own time ("OK created ... in N s"), and whether dbt re-parsed the project."""

    wall: float
    cpu: float
    models: float
    per_model: dict[str, float]
    reparsed: bool

    @property
    def fixed(self) -> float:
        """dbt's fixed cost: its start, the parse, the graph and the relation cache."""
        return self.wall - self.models


def dbt_times(text: str) -> DbtTimes:
    """The last dbt command in ``text`` (lines of dbt's log); exits when the log has none."""
    reports, finished = REPORT.findall(text), FINISHED.findall(text)
    if not reports or not finished:
        sys.exit("no finished dbt command in dbt's log (logs/dbt.log of the project)")
    report = json.loads(reports[-1])
    return DbtTimes(
        wall=float(report["command_wall_clock_time"]),
        cpu=float(report["process_user_time"]) + float(report["process_kernel_time"]),
        models=float(finished[-1]),
        per_model={name.split(".")[-1]: float(s) for name, s in MODEL.findall(text)},
        reparsed="Unable to do partial parsing" in text,
    )


def log_offset(log: Path) -> int:
    return log.stat().st_size if log.exists() else 0


def appended(log: Path, offset: int) -> str:
    """What dbt appended to its log since it was ``offset`` long (also across a rotation of the
    log, to ``dbt.log.1``, past 10 MB)."""
    text = log.read_bytes()
    if len(text) >= offset:
        return text[offset:].decode(errors="replace")
    rotated = log.with_name(log.name + ".1").read_bytes()[offset:]
    return (rotated + text).decode(errors="replace")


def logged(log: Path, step: Callable[..., object], *cli: str) -> str:
    """What dbt appended to its log while ``step(*cli)`` ran (also across a rotation of the log, to
    ``dbt.log.1``, past 10 MB)."""
    offset = log_offset(log)
    step(*cli)
    return appended(log, offset)


def per_model(args: argparse.Namespace, flowhouse: str, warehouse: str, log: Path) -> None:
    def step(*cli: str) -> tuple[float, float]:
        return measure([flowhouse, *cli, "--warehouse", warehouse])

    print(f"# {args.customers:,} customers / {args.days} days, 15 minutes of new events per tick")
    step("generate", "--customers", str(args.customers), "--days", str(args.days))
    wall, _ = step("build", "--skip-tests")
    print(f"first build: {wall:.1f} s")
    first = START + timedelta(days=args.days)
    selected = [flag for name in INCREMENTAL for flag in ("--select", name)]
    for n in range(args.ticks):
        at = (first + timedelta(minutes=15 * (n + 1))).isoformat()
        step("generate", "--continue-until", at)
        tick = logged(log, step, "tick", "--no-send", "--now", at)
        full = logged(log, step, "build", "--skip-tests", "--full-refresh", "--now", at, *selected)
        incremental, rebuilt = dict(MODEL.findall(tick)), dict(MODEL.findall(full))
        print(f"\ntick at {at}: every model {float(FINISHED.findall(tick)[-1]):.1f} s wall")
        print("| model | incremental (tick) | full rebuild, same data |")
        print("|---|---|---|")
        for name in INCREMENTAL:
            key = next((k for k in incremental if k.endswith("." + name)), name)
            print(f"| {name} | {incremental.get(key, '-')} s | {rebuilt.get(key, '-')} s |")
        total = sum(float(incremental.get(k, 0)) for k in rebuilt)
        print(f"| total | {total:.2f} s | {sum(float(v) for v in rebuilt.values()):.2f} s |")


if __name__ == "__main__":
    main()
