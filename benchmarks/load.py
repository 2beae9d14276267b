"""Benchmark `flowhouse load`: wall time, peak memory and rows/s for a large events file.

    python benchmarks/load.py                      # 10,000,000 events (CSV), 1 in 10,000 bad
    python benchmarks/load.py --rows 1000000 --format parquet

The script writes a customers file (100,000 customers) and an events file of --rows events with
some bad rows (an unknown customer, an unparsable timestamp, "12,50" as an order value), loads the
customers, then times `flowhouse load events` in a subprocess (so its peak RSS is measured alone)
into a fresh DuckDB file in a temporary directory, removed afterwards unless --keep is given.
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

import duckdb

CUSTOMERS = 100_000
EVENTS_SQL = """
copy (
    select 'e' || i as event_id,
           case when i % 10007 = 0 then 'nobody' else 'c' || (i % {customers}) end as customer_id,
           case when i % 3 = 0 then 'order_placed' when i % 3 = 1 then 'product_viewed'
                else 'searched' end as event_type,
           case when i % 10009 = 0 then 'yesterday'
                else strftime(timestamp '2026-01-01' + (i % 5000000) * interval 1 second,
                              '%Y-%m-%dT%H:%M:%SZ') end as occurred_at,
           case when i % 3 = 0 then json_object(
                    'order_id', 'o' || i, 'subtotal', 20, 'discount', 0, 'shipping', 5,
                    'value', case when i % 10037 = 0 then to_json('12,50') else to_json(25) end,
                    'currency', 'EUR',
                    'lines', json('[{{"sku": "s1", "quantity": 1, "price": 20}}]'))
                when i % 3 = 1 then json_object('sku', 's' || (i % 500), 'price', 20)
                else json_object('query', 'boots') end::varchar as properties
    from range({rows}) t(i)
) to '{path}' ({options})
"""


def main() -> None:
    args = parse_args()
    workdir = Path(tempfile.mkdtemp(prefix="flowhouse-bench-load-", dir=args.dir))
    warehouse = workdir / "store.duckdb"
    flowhouse = str(Path(sys.executable).with_name("flowhouse"))
    try:
        customers, events = write_files(workdir, args.rows, args.format)
        run([flowhouse, "load", "customers", str(customers), "--warehouse", str(warehouse)])
        command = [flowhouse, "load", "events", str(events), "--warehouse", str(warehouse)]
        wall, peak_mb = measure(command)
        size_mb = events.stat().st_size / 2**20
        print(f"events file:  {args.rows:,} rows, {size_mb:,.0f} MB {args.format}")
        print(f"wall time:    {wall:.1f} s")
        print(f"peak RSS:     {peak_mb:,.0f} MB")
        print(f"rows/s:       {args.rows / wall:,.0f}")
        machine = f"{platform.machine()}, {os.cpu_count()} cores, duckdb {duckdb.__version__}"
        print(f"machine:      {machine}")
        shown = ["python", "benchmarks/load.py", "--rows", str(args.rows), "--format", args.format]
        print(f"reproduce:    {shlex.join(shown)}")
    finally:
        if not args.keep:
            shutil.rmtree(workdir, ignore_errors=True)


def write_files(workdir: Path, rows: int, fmt: str) -> tuple[Path, Path]:
    con = duckdb.connect()
    customers = workdir / "customers.csv"
    con.execute(
        f"""copy (select 'c' || i as customer_id, 'c' || i || '@example.com' as email,
                  '2025-01-01' as created_at, '2025-01-01' as updated_at
                  from range({CUSTOMERS}) t(i)) to '{customers}' (header, delimiter ',')"""
    )
    events = workdir / f"events.{fmt}"
    options = "format parquet" if fmt == "parquet" else "header, delimiter ','"
    con.execute(EVENTS_SQL.format(customers=CUSTOMERS, rows=rows, path=events, options=options))
    return customers, events


def run(command: list[str]) -> None:
    if subprocess.run(
        command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    ).returncode not in (0, 2):
        sys.exit(f"failed: {shlex.join(command)}")


def measure(command: list[str]) -> tuple[float, float]:
    """Run one command; return (wall seconds, peak RSS in MB) as os.wait4 reports for it alone.
    Its progress lines (stderr) pass through; exit 2 (some rows rejected) is expected."""
    started = time.perf_counter()
    proc = subprocess.Popen(command, stdout=subprocess.DEVNULL)
    _, status, usage = os.wait4(proc.pid, 0)
    wall = time.perf_counter() - started
    if os.waitstatus_to_exitcode(status) not in (0, 2):
        sys.exit(f"failed: {shlex.join(command)}")
    return wall, usage.ru_maxrss / 1024


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=10_000_000)
    parser.add_argument("--format", choices=["csv", "parquet"], default="csv")
    parser.add_argument("--dir", default=None, help="where the temporary files go")
    parser.add_argument("--keep", action="store_true", help="keep the files and the warehouse")
    return parser.parse_args()


if __name__ == "__main__":
    main()
