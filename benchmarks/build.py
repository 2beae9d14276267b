"""Benchmark generating and building a store: wall time and peak memory of each step.

    python benchmarks/build.py                         # 1,000,000 customers, 60 days, seed 7
    python benchmarks/build.py --customers 100000 --days 30
    python benchmarks/build.py --warehouse store.duckdb   # build an existing store (no generate)

Each step runs as its own process, measured alone (wall time and the peak RSS os.wait4 reports):
`flowhouse generate`, a first `flowhouse build` (every model and test), and a second, incremental
`flowhouse build --skip-tests` on the same data (what a tick pays when nothing new has landed).
"""

from __future__ import annotations

import argparse
import os
import platform
import shlex
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

FLOWHOUSE = str(Path(sys.executable).with_name("flowhouse"))


def measure(command: list[str]) -> tuple[float, float]:
    """Run one command; return (wall seconds, peak RSS in MB) as os.wait4 reports for it."""
    started = time.perf_counter()
    proc = subprocess.Popen(command, stdout=subprocess.DEVNULL)
    _, status, usage = os.wait4(proc.pid, 0)
    wall = time.perf_counter() - started
    if os.waitstatus_to_exitcode(status) != 0:
        sys.exit(f"failed: {shlex.join(command)}")
    return wall, usage.ru_maxrss / 1024


def main() -> None:
    args = parse_args()
    workdir = Path(tempfile.mkdtemp(prefix="flowhouse-bench-build-", dir=args.dir))
    warehouse = Path(args.warehouse) if args.warehouse else workdir / "store.duckdb"
    steps: list[tuple[str, list[str]]] = []
    if not args.warehouse:
        steps.append(("generate", [FLOWHOUSE, "generate", "--warehouse", str(warehouse),
                                   "--customers", str(args.customers), "--days", str(args.days),
                                   "--seed", str(args.seed)]))  # fmt: skip
    steps.append(
        ("build (all models and tests)", [FLOWHOUSE, "build", "--warehouse", str(warehouse)])
    )
    steps.append(("rebuild, nothing new (no tests)",
                  [FLOWHOUSE, "build", "--skip-tests", "--warehouse", str(warehouse)]))  # fmt: skip
    print(f"machine: {platform.machine()}, {len(os.sched_getaffinity(0))} cores, "
          f"Python {platform.python_version()}")  # fmt: skip
    try:
        for name, command in steps:
            wall, peak = measure(command)
            shown = shlex.join(["flowhouse", *command[1:]]).replace(str(warehouse), "bench.duckdb")
            print(f"{name:34s} {wall:8.1f} s  peak RSS {peak:8,.0f} MB   {shown}")
    finally:
        if not args.keep and not args.warehouse:
            shutil.rmtree(workdir, ignore_errors=True)


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--customers", type=int, default=1_000_000)
    parser.add_argument("--days", type=int, default=60)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--warehouse", default=None, help="build this existing store instead")
    parser.add_argument("--dir", default=None, help="where the temporary warehouse goes")
    parser.add_argument("--keep", action="store_true", help="keep the generated warehouse")
    return parser.parse_args()


if __name__ == "__main__":
    main()
