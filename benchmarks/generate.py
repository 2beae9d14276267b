"""Benchmark `flowhouse generate` (and, with --build, `flowhouse build`): wall time and peak memory.

    python benchmarks/generate.py                       # 1,000,000 customers, 60 days, seed 7
    python benchmarks/generate.py --customers 10000000  # the 10M store
    python benchmarks/generate.py --build               # then build every model twice

With --build, a first `flowhouse build` (every model and test) and a second, incremental
`flowhouse build --skip-tests` on the same data (nothing new landed) follow, each its own process.

The command runs in a subprocess (so its peak RSS is measured alone) into a fresh DuckDB file in a
temporary directory, removed afterwards unless --keep is given.
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
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

import duckdb


def main() -> None:
    args = parse_args()
    workdir = Path(tempfile.mkdtemp(prefix="flowhouse-bench-generate-", dir=args.dir))
    warehouse = workdir / "store.duckdb"
    command = [
        str(Path(sys.executable).with_name("flowhouse")), "generate",
        "--warehouse", str(warehouse),
        "--customers", str(args.customers), "--days", str(args.days), "--seed", str(args.seed),
    ]  # fmt: skip
    try:
        wall, peak_mb = measure(command)
        report(args, command, warehouse, wall, peak_mb)
        if args.build:
            build(warehouse)
    finally:
        if not args.keep:
            shutil.rmtree(workdir, ignore_errors=True)


@dataclass(frozen=True)
class Usage:
    """What one command cost: wall seconds, CPU seconds (user and system) and peak RSS in MB."""

    wall: float
    cpu: float
    peak_mb: float


def measure(command: list[str]) -> tuple[float, float]:
    """Run one command; return (wall seconds, peak RSS in MB) as os.wait4 reports for it alone."""
    usage = measure_usage(command)
    return usage.wall, usage.peak_mb


def measure_usage(command: list[str], env: Mapping[str, str] | None = None) -> Usage:
    """Run one command (its output discarded; `env` added to this process's environment); its wall
    time, and its CPU time and peak RSS as os.wait4 reports them for it alone. A failing command
    ends the benchmark."""
    started = time.perf_counter()
    proc = subprocess.Popen(command, stdout=subprocess.DEVNULL, env={**os.environ, **(env or {})})
    _, status, usage = os.wait4(proc.pid, 0)
    wall = time.perf_counter() - started
    if os.waitstatus_to_exitcode(status) != 0:
        sys.exit(f"failed: {shlex.join(command)}")
    return Usage(wall, usage.ru_utime + usage.ru_stime, usage.ru_maxrss / 1024)


def build(warehouse: Path) -> None:
    flowhouse = str(Path(sys.executable).with_name("flowhouse"))
    for name, extra in (
        ("build (all models, tests)", []),
        ("rebuild, nothing new", ["--skip-tests"]),
    ):
        wall, peak = measure([flowhouse, "build", *extra, "--warehouse", str(warehouse)])
        shown = shlex.join(["flowhouse", "build", *extra, "--warehouse", "bench.duckdb"])
        print(f"{name + ':':26s} {wall:.1f} s, peak RSS {peak:,.0f} MB   ({shown})")


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--customers", type=int, default=1_000_000)
    parser.add_argument("--days", type=int, default=60)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--dir", default=None, help="where the temporary warehouse goes")
    parser.add_argument("--keep", action="store_true", help="keep the generated warehouse")
    parser.add_argument("--build", action="store_true", help="also time flowhouse build, twice")
    return parser.parse_args()


def report(
    args: argparse.Namespace, command: list[str], warehouse: Path, wall: float, peak_mb: float
) -> None:
    with duckdb.connect(str(warehouse), read_only=True) as con:
        events, customers, products = con.execute(
            "select (select count(*) from raw.events), (select count(*) from raw.customers), "
            "(select count(*) from raw.products)"
        ).fetchone()  # type: ignore[misc]
    shown = ["flowhouse", *command[1:]]
    shown[shown.index("--warehouse") + 1] = "bench.duckdb"
    print(f"machine:    {platform.machine()}, {_cores()} cores, Python {platform.python_version()}")
    print(f"command:    {shlex.join(shown)}")
    print(f"wall time:  {wall:.1f} s")
    print(f"peak RSS:   {peak_mb:,.0f} MB")
    print(f"customers:  {customers:,}")
    print(f"products:   {products:,}")
    print(f"events:     {events:,}")
    print(f"events/s:   {events / wall:,.0f}")
    print(f"file size:  {warehouse.stat().st_size / 2**20:,.0f} MB")
    if args.keep:
        print(f"kept:       {warehouse}")


def _cores() -> int:
    return len(os.sched_getaffinity(0))


if __name__ == "__main__":
    main()
