"""Measure dbt's fixed cost per tick: what a refresh tick pays in dbt beyond running the models.

    python benchmarks/dbt_ticks.py                    # 2,000 customers, 30 days, three ticks
    python benchmarks/dbt_ticks.py --customers 100000 --ticks 5

On a fresh DuckDB file: generate the store, build it once (``flowhouse build --skip-tests``), then
run ``flowhouse tick --no-send`` at three times 15 minutes apart, each its own process. For each
tick it reads the lines dbt appended to its log (``logs/dbt.log`` of the project): the dbt
command's wall and CPU time (dbt's resource report), the wall time of running the models
("Finished running ... in N s"), the difference (dbt's fixed cost: start, parse, graph, cache),
and whether dbt re-parsed the whole project ("Unable to do partial parsing").
"""

from __future__ import annotations

import argparse
import json
import re
import shutil
import sys
import tempfile
import time
from datetime import datetime, timedelta
from pathlib import Path

from generate import measure

from flowhouse.core.project import current

START = datetime(2026, 9, 1)
FINISHED = re.compile(r"Finished running .* in .*\(([\d.]+)s\)")
REPORT = re.compile(r"Resource report: (\{.*\})")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--customers", type=int, default=2_000)
    parser.add_argument("--days", type=int, default=30)
    parser.add_argument("--ticks", type=int, default=3)
    parser.add_argument("--dir", default=None, help="where the temporary warehouse goes")
    args = parser.parse_args()
    workdir = Path(tempfile.mkdtemp(prefix="flowhouse-bench-dbt-", dir=args.dir))
    warehouse = str(workdir / "store.duckdb")
    flowhouse = str(Path(sys.executable).with_name("flowhouse"))
    log = current().work_dir / "logs" / "dbt.log"
    try:
        run(args, flowhouse, warehouse, log)
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
        offset = log.stat().st_size if log.exists() else 0
        started = time.perf_counter()
        step("tick", "--no-send", "--now", at.isoformat())
        wall = time.perf_counter() - started
        with log.open(errors="replace") as handle:
            handle.seek(offset)
            text = handle.read()
        report = json.loads(REPORT.findall(text)[-1])
        models = float(FINISHED.findall(text)[-1])
        dbt_wall = float(report["command_wall_clock_time"])
        cpu = float(report["process_user_time"]) + float(report["process_kernel_time"])
        reparsed = "yes" if "Unable to do partial parsing" in text else "no"
        print(
            f"| {at:%H:%M} | {wall:.1f} s | {dbt_wall:.1f} s | {cpu:.1f} s | {models:.1f} s "
            f"| {dbt_wall - models:.1f} s | {reparsed} |"
        )


if __name__ == "__main__":
    main()
