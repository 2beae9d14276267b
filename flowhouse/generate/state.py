"""``raw.generator_runs``: one row per generated window, where ``continue_store`` goes on from."""

from __future__ import annotations

from dataclasses import astuple, fields
from datetime import datetime
from typing import Any

from sqlglot import exp

from flowhouse.core.contract import RAW_SCHEMA, ColumnType
from flowhouse.core.warehouse import Warehouse, create_table
from flowhouse.generate.plan import Run

TABLE = f"{RAW_SCHEMA}.generator_runs"

COLUMNS: tuple[tuple[str, ColumnType, bool], ...] = (
    ("run_no", "integer", True),
    ("seed", "bigint", True),
    ("store_start_at", "timestamp", True),
    ("window_start_at", "timestamp", True),
    ("window_end_at", "timestamp", True),
    ("pre_store_customers", "bigint", True),
    ("first_customer", "bigint", True),
    ("last_customer", "bigint", True),
    ("products", "integer", True),
    ("signups_per_day", "decimal", True),
    ("events", "bigint", True),
    ("max_loaded_at", "timestamp", False),
)
assert [c[0] for c in COLUMNS] == [f.name for f in fields(Run)]


def ensure_table(wh: Warehouse) -> None:
    wh.ensure_schema(RAW_SCHEMA)
    wh.execute(create_table(TABLE, COLUMNS, wh.dialect))


def read_runs(wh: Warehouse) -> list[Run]:
    """Every generated window, oldest first (empty when no store was generated)."""
    if not wh.table_exists(RAW_SCHEMA, "generator_runs"):
        return []
    query = exp.select(*(name for name, _, _ in COLUMNS)).from_(TABLE).order_by("run_no")
    return [_run(row) for row in wh.query(query)]


def append_run(wh: Warehouse, run: Run) -> None:
    values = exp.values([tuple(_literal(v) for v in astuple(run))])
    wh.execute(exp.insert(values, TABLE, columns=[name for name, _, _ in COLUMNS]))


def clear(wh: Warehouse) -> None:
    wh.execute(exp.delete(TABLE))


def _run(row: tuple[Any, ...]) -> Run:
    values = list(row)
    values[9] = float(values[9])
    return Run(*values)


def _literal(value: object) -> exp.Expression:
    if value is None:
        return exp.null()
    if isinstance(value, datetime):
        return exp.cast(exp.Literal.string(value.isoformat(sep=" ")), "timestamp")
    if isinstance(value, bool):
        return exp.Boolean(this=value)
    if isinstance(value, int | float):
        return exp.Literal.number(value)
    return exp.Literal.string(str(value))
