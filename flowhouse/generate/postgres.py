"""Bulk-copies a generated window from the scratch DuckDB file into PostgreSQL's raw tables.

Rows stream out of DuckDB as Arrow batches, are written as CSV and fed to ``COPY ... FROM STDIN``;
JSON text lands in the ``jsonb`` columns.
"""

from __future__ import annotations

import io
from typing import Any

import pyarrow.csv as pa_csv
from psycopg2 import sql as pg_sql
from sqlglot import exp

from flowhouse.core.contract import INPUTS, RAW_SCHEMA, Input

BATCH_ROWS = 200_000
#: The order rows are copied in (events in loaded_at order, as DuckDB stores them).
ORDER = {
    "events": ("loaded_at", "event_id"), "customers": ("customer_id",), "products": ("sku",),
    "device_tokens": ("token",),
}  # fmt: skip


def copy_inputs(scratch: Any, target: Any) -> None:
    """Append every row of the scratch DuckDB's raw tables to the PostgreSQL ones."""
    for name in ("customers", "device_tokens", "products", "events"):
        copy_input(scratch, target, INPUTS[name])


def copy_input(scratch: Any, target: Any, spec: Input) -> None:
    query = (
        exp.select(*(_exported(c.name, c.type) for c in spec.columns))
        .from_(f"{RAW_SCHEMA}.{spec.name}")
        .order_by(*ORDER[spec.name])
    )
    copy = pg_sql.SQL("copy {} ({}) from stdin with (format csv)").format(
        pg_sql.Identifier(RAW_SCHEMA, spec.name),
        pg_sql.SQL(", ").join(pg_sql.Identifier(c.name) for c in spec.columns),
    )
    reader = scratch.sql(query.sql(dialect="duckdb")).to_arrow_reader(BATCH_ROWS)
    options = pa_csv.WriteOptions(include_header=False)
    with target.cursor() as cur:
        for batch in reader:
            buffer = io.BytesIO()
            pa_csv.write_csv(batch, buffer, options)
            buffer.seek(0)
            cur.copy_expert(copy, buffer)


def _exported(name: str, kind: str) -> exp.Expr:
    column = exp.column(name)
    if kind == "json":
        return exp.alias_(exp.cast(column, "varchar"), name)
    return column
