"""Benchmark the flow engine: `flowhouse tick` with the whole flow library, and `backtest`.

    python benchmarks/engine.py                          # 1,000,000 customers, 30 days, seed 7
    python benchmarks/engine.py --customers 100000 --backtest-days 7

Steps, each its own process (so its peak RSS is measured alone), on a fresh DuckDB file:
1. generate the store, then build the models as of the last day's start (`--now`);
2. the first tick (every flow goes live), then hourly ticks through the last day with `--no-build`:
   each sees the raw events that landed in its hour, enrolls, advances and queues (derived events
   decided in these hours wait for the refresh of step 3, which materialises them: the engine's
   watermark is when a row became visible, so none is skipped, docs/engine.md "Cadence");
3. one tick that also refreshes the models (dbt run, then the engine): it enrolls the derived
   triggers of the hours before. Between refreshes, derived triggers are late by up to the
   refresh interval: refresh as often as the flows' `max_lateness` allows;
4. `flowhouse backtest cart_abandonment` over `--backtest-days` days, ticking hourly.
"""

from __future__ import annotations

import argparse
import platform
import shutil
import statistics
import sys
import tempfile
from datetime import datetime, timedelta
from pathlib import Path

from generate import measure

START = datetime(2026, 9, 1)


def main() -> None:
    args = parse_args()
    workdir = Path(tempfile.mkdtemp(prefix="flowhouse-bench-engine-", dir=args.dir))
    warehouse = str(workdir / "store.duckdb")
    flowhouse = str(Path(sys.executable).with_name("flowhouse"))
    launch = START + timedelta(days=args.days - 1)
    try:
        run_all(args, flowhouse, warehouse, launch)
    finally:
        if not args.keep:
            shutil.rmtree(workdir, ignore_errors=True)


def run_all(args: argparse.Namespace, flowhouse: str, warehouse: str, launch: datetime) -> None:
    def step(*cli: str) -> tuple[float, float]:
        return measure([flowhouse, *cli, "--warehouse", warehouse])

    def ts(at: datetime) -> str:
        return at.isoformat()

    print(f"# {platform.machine()}, {args.customers:,} customers / {args.days} days")
    wall, peak = step("generate", "--customers", str(args.customers), "--days", str(args.days))
    print(f"generate: {wall:.1f} s, {peak:,.0f} MB")
    wall, peak = step("build", "--skip-tests", "--now", ts(launch))
    print(f"build as of {launch:%Y-%m-%d}: {wall:.1f} s, {peak:,.0f} MB")
    wall, peak = step("tick", "--no-build", "--no-send", "--now", ts(launch))
    print(f"first tick (flows go live): {wall:.1f} s, {peak:,.0f} MB")
    walls, peaks = [], []
    for hour in range(1, args.hours + 1):
        w, p = step("tick", "--no-build", "--no-send", "--now", ts(launch + timedelta(hours=hour)))
        walls.append(w)
        peaks.append(p)
    print(
        f"{args.hours} hourly ticks (--no-build, process start included): median "
        f"{statistics.median(walls):.2f} s, max {max(walls):.2f} s, peak {max(peaks):,.0f} MB"
    )
    end = launch + timedelta(hours=args.hours + 1)
    wall, peak = step("tick", "--no-send", "--now", ts(end))
    print(f"tick with model refresh (dbt run + engine): {wall:.1f} s, {peak:,.0f} MB")
    frm = end - timedelta(days=args.backtest_days)
    wall, peak = step(
        "backtest", "cart_abandonment", "--from", ts(frm), "--to", ts(end), "--every", "1h"
    )
    print(
        f"backtest cart_abandonment, {args.backtest_days} days hourly "
        f"({args.backtest_days * 24 + 1} ticks): {wall:.1f} s, {peak:,.0f} MB"
    )
    print(
        f"reproduce: python benchmarks/engine.py --customers {args.customers} --days {args.days} "
        f"--hours {args.hours} --backtest-days {args.backtest_days}"
    )


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--customers", type=int, default=1_000_000)
    parser.add_argument("--days", type=int, default=30)
    parser.add_argument("--hours", type=int, default=12, help="hourly ticks to time")
    parser.add_argument("--backtest-days", type=int, default=30)
    parser.add_argument("--dir", default=None, help="where to put the temporary warehouse")
    parser.add_argument("--keep", action="store_true")
    return parser.parse_args()


if __name__ == "__main__":
    main()
