"""Benchmark `flowhouse generate`: wall time, peak memory and throughput of one generated store.

    python benchmarks/generate.py                       # 1,000,000 customers, 60 days, seed 7
    python benchmarks/generate.py --customers 10000000  # the 10M store

The command runs in a subprocess (so its peak RSS is measured alone) into a fresh DuckDB file in a
temporary directory, removed afterwards unless --keep is given.
"""

from __future__ import annotations

import argparse
import os
import platform
import resource
import shlex
import shutil
import subprocess
import sys
import tempfile
import time
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
        started = time.perf_counter()
        subprocess.run(command, check=True, stdout=subprocess.DEVNULL)
        wall = time.perf_counter() - started
        peak_mb = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
        report(args, command, warehouse, wall, peak_mb)
    finally:
        if not args.keep:
            shutil.rmtree(workdir, ignore_errors=True)


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--customers", type=int, default=1_000_000)
    parser.add_argument("--days", type=int, default=60)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--dir", default=None, help="where the temporary warehouse goes")
    parser.add_argument("--keep", action="store_true", help="keep the generated warehouse")
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
