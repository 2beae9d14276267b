"""``flowhouse demo``: the main job end to end on a fresh synthetic store."""

from __future__ import annotations

import shutil
import time
from collections.abc import Callable
from datetime import datetime

from flowhouse.build import build_models
from flowhouse.summary import render_summary
from flowhouse.warehouse import Location

DEMO_START = datetime(2026, 9, 1)


def run_demo(
    location: Location, customers: int, days: int, seed: int, echo: Callable[[str], None]
) -> None:
    from flowhouse.generate import generate_store

    if location.path is not None:
        for stale in (location.path, location.path.with_suffix(location.path.suffix + ".wal")):
            stale.unlink(missing_ok=True)
        shutil.rmtree(location.path.parent / "tmp", ignore_errors=True)
    started = time.perf_counter()
    echo(f"1/3 generating a store of {customers:,} customers over {days} days (seed {seed}) ...")
    stats = generate_store(location, customers=customers, days=days, seed=seed, start=DEMO_START)
    echo("    " + stats.describe().replace("\n", "\n    "))
    echo("2/3 building the dbt models and running their tests ...")
    echo("    " + build_models(location).describe())
    echo("3/3 summary")
    echo(render_summary(location))
    echo(f"\nDone in {time.perf_counter() - started:.0f} s. Warehouse: {location}")
    echo("Explore it: flowhouse summary --warehouse " + str(location))
