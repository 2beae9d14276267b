"""Runs the generator's SQL (``sql/*.sql``) on a DuckDB connection and writes the run's rows.

The numbered files build the store in temp tables (``gen_*``). The bulk of the events is kept
compact (``gen_step_events``, ``gen_order_events``) and turned into JSON only as it is written; the
rest is in ``gen_events``; the view ``gen_all_events`` shows them all. ``write_rows.sql`` appends
the customers and the catalog, ``write_events.sql`` the events in ``loaded_at`` order, slice by
slice, so no sort has to hold the whole run.
"""

from __future__ import annotations

import itertools
import logging
import time
from dataclasses import dataclass
from datetime import datetime
from importlib import resources
from pathlib import Path
from typing import Any

from flowhouse.core.errors import WarehouseError
from flowhouse.generate.plan import Run, epoch_us, parameters

log = logging.getLogger(__name__)

STEPS = (
    "00_macros.sql",
    "01_reference.sql",
    "02_customers.sql",
    "03_catalog.sql",
    "04_sessions.sql",
    "05_orders.sql",
    "06_subscriptions.sql",
    "07_lifecycle.sql",
    "08_events.sql",
)
#: Events per slice written to raw.events (each slice is sorted on its own).
SLICE_ROWS = 2_500_000
MEMORY_LIMIT = "2500MB"
THREADS = 2


@dataclass(frozen=True)
class EventCount:
    event_type: str
    events: int
    late_events: int
    first_loaded_at: datetime
    last_loaded_at: datetime


def sql(name: str) -> str:
    return resources.files("flowhouse.generate").joinpath("sql", name).read_text(encoding="utf-8")


def configure(con: Any, temp_directory: Path) -> None:
    """Bound DuckDB's memory and threads; spill to ``temp_directory`` beyond that."""
    con.execute("set memory_limit = ?", [MEMORY_LIMIT])
    con.execute("set threads = ?", [THREADS])
    con.execute("set temp_directory = ?", [str(temp_directory)])
    con.execute("set preserve_insertion_order = true")


def build(con: Any, run: Run, history: list[Run]) -> list[EventCount]:
    """Generate ``run`` (after the runs in ``history``) into temp tables; count its events."""
    _execute(con, "params.sql", parameters(run))
    _execute(con, "variables.sql")
    for past in [*history, run]:
        _execute(con, "insert_run.sql", _run_parameters(past))
    for step in STEPS:
        _execute(con, step)
    return [EventCount(*row) for row in _execute(con, "summary.sql").fetchall()]


def write(con: Any) -> None:
    """Append what ``build`` generated to raw.customers, raw.products and raw.events."""
    _execute(con, "write_rows.sql")
    starts = [row[0] for row in _execute(con, "chunks.sql", {"slice_rows": SLICE_ROWS}).fetchall()]
    edges = [-(2**62), *starts[1:], 2**62]
    for low, high in itertools.pairwise(edges):
        _execute(con, "write_events.sql", {"from_us": low, "to_us": high})


def checkpoint(con: Any) -> None:
    """Fold the write-ahead log into the database file."""
    _execute(con, "checkpoint.sql")


def _run_parameters(run: Run) -> dict[str, int]:
    return {
        "run_no": run.run_no,
        "first_customer": run.first_customer,
        "last_customer": run.last_customer,
        "window_start_us": epoch_us(run.window_start_at),
        "window_end_us": epoch_us(run.window_end_at),
    }


def _execute(con: Any, name: str, params: dict[str, Any] | None = None) -> Any:
    started = time.perf_counter()
    try:
        result = con.execute(sql(name), params) if params is not None else con.execute(sql(name))
    except Exception as err:  # duckdb's own error types
        raise WarehouseError(f"generator step {name} failed: {type(err).__name__}: {err}") from err
    log.debug("%s in %.2f s", name, time.perf_counter() - started)
    return result
