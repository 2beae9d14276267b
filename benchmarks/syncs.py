"""Benchmark audience syncs: a segment mirrored into a paid-ads audience at the fake provider.

    python benchmarks/syncs.py                        # 1,000,000 customers, 200,000 in the segment
    python benchmarks/syncs.py --customers 100000

A DuckDB store gets ``--customers`` customers (one statement) and a segment of a fifth of them;
the sync ``vip_to_ads`` (mirror, e-mail and phone hashed) runs three times against the fake
provider running in this process:

1. the first run: every member is added;
2. nothing changed: the diff alone (a run must send nothing);
3. a day of churn: 1% of the members change a field, 1% leave the segment, 1% join it.

Each run prints its wall time, what it sent and the peak memory; every run checks that the
audience at the fake provider equals the segment afterwards.
"""

from __future__ import annotations

import argparse
import importlib.util
import resource
import sys
import tempfile
import time
from datetime import datetime
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))
NOW = datetime(2026, 3, 4, 12, 0)


def _sending_benchmark() -> Any:
    """benchmarks/sending.py, for its store builder (loaded under its own name)."""
    spec = importlib.util.spec_from_file_location(
        "bench_sending", ROOT / "benchmarks" / "sending.py"
    )
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules["bench_sending"] = module  # its dataclasses look themselves up there
    spec.loader.exec_module(module)
    return module


SYNC = {
    "sync": "vip_to_ads",
    "name": "VIP customers for ads",
    "source": {"segment": "vip"},
    "fields": {"email": "email", "phone": "phone"},
    "destination": {"audience": {"audience": "vip_ads"}},
    "mode": "mirror",
}

_SEGMENT = """
insert into core.segment_members (customer_id, segment)
select customer_id, 'vip' from core.customer_attributes
where cast(substr(customer_id, 2) as integer) % 5 = 0
"""

_CHURN = [
    # 1% of the members change their phone
    "update core.customer_attributes set phone = phone || '9' "
    "where cast(substr(customer_id, 2) as integer) % 500 = 0",
    # 1% leave
    "delete from core.segment_members where cast(substr(customer_id, 2) as integer) % 500 = 5",
    # 1% join
    "insert into core.segment_members (customer_id, segment) select customer_id, 'vip' "
    "from core.customer_attributes where cast(substr(customer_id, 2) as integer) % 500 = 1",
]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--customers", type=int, default=1_000_000)
    args = parser.parse_args()
    bench = _sending_benchmark()
    bench._harness()
    from sending import sending_store  # type: ignore[import-not-found]

    from flowhouse.activation.fake.server import running
    from flowhouse.activation.sync.compare import in_sync
    from flowhouse.activation.sync.run import SyncOptions, run_sync
    from flowhouse.core.sql import render, statement
    from flowhouse.core.warehouse import Location
    from flowhouse.flows.settings import Settings
    from flowhouse.flows.sync.syncfile import Sync

    sync = Sync.model_validate(SYNC)
    with tempfile.TemporaryDirectory() as folder, running() as fake:
        store = sending_store(Location.parse(str(Path(folder) / "store.duckdb")), Path(folder))
        started = time.perf_counter()
        with store.wh.transaction():
            store.wh.execute(bench.customers_insert(args.customers))
            store.wh.execute(render(statement(_SEGMENT), "duckdb"))
        print(
            f"# {args.customers:,} customers, store built in {time.perf_counter() - started:.1f} s"
        )
        options = SyncOptions(provider_url=fake.url)
        for label, changes in (("first run", []), ("unchanged", []), ("1% churn", _CHURN)):
            with store.wh.transaction():
                for text in changes:
                    store.wh.execute(render(statement(text), "duckdb"))
            clock = time.perf_counter()
            report = run_sync(store.wh, store.schema, sync, Settings(), NOW, options)
            seconds = time.perf_counter() - clock
            ok, source, held = in_sync(store.wh, fake.state, sync)
            if not ok or report.status != "succeeded":
                sys.exit(f"{label}: the audience does not match the segment ({report.describe()})")
            sent = ", ".join(f"{k} {v:,}" for k, v in sorted(report.sent.items())) or "nothing"
            peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
            print(
                f"{label:<10} {seconds:7.2f} s  source {report.source_rows:,}  sent: {sent}  "
                f"audience {held:,} = segment {source:,}  peak RSS {peak:,.0f} MB"
            )
    print(f"reproduce: python benchmarks/syncs.py --customers {args.customers}")


if __name__ == "__main__":
    main()
