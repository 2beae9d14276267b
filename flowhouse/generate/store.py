"""``generate_store`` and ``continue_store``: write a synthetic store into a warehouse.

On DuckDB the generator runs inside the warehouse file (temp tables, spilling next to it). On
PostgreSQL it runs in a scratch DuckDB file and the rows are bulk-copied over. Either way a run is
all-or-nothing: the raw tables and ``raw.generator_runs`` change together or not at all.
"""

from __future__ import annotations

import shutil
import tempfile
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import replace
from datetime import datetime
from pathlib import Path

from sqlglot import exp

from flowhouse.core.contract import INPUTS, RAW_SCHEMA
from flowhouse.core.errors import ConfigError
from flowhouse.core.warehouse import Location, Warehouse
from flowhouse.generate import engine, state
from flowhouse.generate.plan import Run, first_run, next_run
from flowhouse.generate.postgres import copy_inputs
from flowhouse.generate.stats import GenerateStats

#: Chooses the run to generate (and the runs before it) from the runs already in the warehouse.
Planner = Callable[[list[Run]], tuple[Run, list[Run]]]


def generate_store(
    location: Location, *, customers: int, days: int, seed: int, start: datetime
) -> GenerateStats:
    """Replace any store in ``location`` with ``customers`` over ``days`` from ``start`` (UTC)."""
    run = first_run(customers, days, seed, start)
    return _generate(location, lambda _runs: (run, []))


def continue_store(location: Location, until: datetime) -> GenerateStats:
    """Append the window after the last generated one, up to ``until`` (UTC)."""

    def plan(runs: list[Run]) -> tuple[Run, list[Run]]:
        if not runs:
            raise ConfigError(
                "no generated store to continue in this warehouse",
                value=str(location),
                expected="a warehouse written by `flowhouse generate` first",
            )
        return next_run(runs[-1], until), runs

    return _generate(location, plan)


def _generate(location: Location, plan: Planner) -> GenerateStats:
    if location.dialect == "duckdb":
        return _generate_duckdb(location, plan)
    return _generate_postgres(location, plan)


def _generate_duckdb(location: Location, plan: Planner) -> GenerateStats:
    assert location.path is not None
    with Warehouse.open(location) as wh, _spill_directory(location.path) as spill:
        engine.configure(wh.connection, spill)
        run, history = plan(state.read_runs(wh))
        _prepare(wh)
        stats = _build(wh, run, history)
        with wh.transaction():
            _clear(wh, first=run.is_first)
            engine.write(wh.connection)
            state.append_run(wh, stats.run)
        engine.checkpoint(wh.connection)
    return stats


def _generate_postgres(location: Location, plan: Planner) -> GenerateStats:
    with Warehouse.open(location) as target:
        run, history = plan(state.read_runs(target))
        _prepare(target)
        with tempfile.TemporaryDirectory(prefix="flowhouse-generate-") as tmp:
            scratch_location = Location("duckdb", path=Path(tmp) / "scratch.duckdb")
            with Warehouse.open(scratch_location) as scratch:
                engine.configure(scratch.connection, Path(tmp) / "spill")
                scratch.ensure_raw_tables()
                stats = _build(scratch, run, history)
                engine.write(scratch.connection)
                with target.transaction():
                    _clear(target, first=run.is_first)
                    copy_inputs(scratch.connection, target.connection)
                    state.append_run(target, stats.run)
    return stats


def _prepare(wh: Warehouse) -> None:
    wh.ensure_raw_tables()
    state.ensure_table(wh)
    wh.commit()


def _clear(wh: Warehouse, *, first: bool) -> None:
    """A first run replaces the store; a later one replaces only the catalog's current state."""
    names = ("events", "customers", "products", "device_tokens") if first else ("products",)
    for name in names:
        wh.execute(exp.delete(f"{RAW_SCHEMA}.{INPUTS[name].name}"))
    if first:
        state.clear(wh)


def _build(wh: Warehouse, run: Run, history: list[Run]) -> GenerateStats:
    counts = engine.build(wh.connection, run, history)
    finished = replace(
        run,
        events=sum(c.events for c in counts),
        max_loaded_at=max((c.last_loaded_at for c in counts), default=None),
    )
    return GenerateStats(run=finished, events=tuple(counts))


@contextmanager
def _spill_directory(database: Path) -> Iterator[Path]:
    spill = database.with_name(database.name + ".generate.tmp")
    try:
        yield spill
    finally:
        shutil.rmtree(spill, ignore_errors=True)
