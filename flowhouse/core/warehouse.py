"""One connection to the warehouse: an embedded DuckDB file (the default) or a PostgreSQL server.

Statements Python emits are sqlglot expressions, rendered for the connection's dialect at the last
moment::

with Warehouse.open("warehouse.duckdb") as wh:
wh.ensure_raw_tables()
rows = wh.query(exp.select("count(*)").from_("raw.events"))

A location is a file path (DuckDB) or a ``postgresql://user:pass@host:port/db`` URL. DuckDB allows a
single writing process per file, so open a warehouse for as short a time as the work needs and close
it.
"""

from __future__ import annotations

import os
import threading
import warnings
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import Any, Literal
from urllib.parse import unquote, urlparse

import sqlglot
from sqlglot import exp

from flowhouse.core.contract import INPUTS, RAW_SCHEMA, ColumnType, Input
from flowhouse.core.errors import ConfigError, WarehouseError

Dialect = Literal["duckdb", "postgres"]
DEFAULT_LOCATION = "warehouse.duckdb"
#: Schemas flowhouse writes: a DuckDB file named after one makes every name in it ambiguous.
RESERVED_NAMES = frozenset({"flowhouse", "flowhouse_backtest", "raw", "core", "staging"})
ENV_VAR = "FLOWHOUSE_WAREHOUSE"

_TYPES: dict[ColumnType, str] = {
    "text": "text",
    "timestamp": "timestamp",
    "date": "date",
    "boolean": "boolean",
    "json": "json",
    "decimal": "decimal(12, 2)",
    "integer": "integer",
    "bigint": "bigint",
    "double": "double",
}


@dataclass(frozen=True)
class Location:
    """Where the warehouse is, parsed from ``--warehouse`` / ``FLOWHOUSE_WAREHOUSE``."""

    dialect: Dialect
    path: Path | None = None
    url: str | None = None

    @classmethod
    def parse(cls, value: str | None) -> Location:
        raw = value or os.environ.get(ENV_VAR) or DEFAULT_LOCATION
        if raw.startswith(("postgres://", "postgresql://")):
            return cls("postgres", url=raw)
        if "://" in raw:
            raise ConfigError(
                "unsupported warehouse location",
                value=raw,
                expected="a DuckDB file path or a postgresql:// URL",
            )
        path = Path(raw).expanduser().resolve()
        stem = path.name.split(".")[0].lower()
        if stem in RESERVED_NAMES:
            raise ConfigError(
                "DuckDB names a database after its file, and a database called "
                f"{stem!r} clashes with flowhouse's schema of that name",
                value=raw,
                expected=f"a file name other than {', '.join(sorted(RESERVED_NAMES))} "
                "(such as warehouse.duckdb)",
            )
        return cls("duckdb", path=path)

    def __str__(self) -> str:
        if self.path is not None:
            return str(self.path)
        parsed = urlparse(self.url or "")
        return f"postgresql://{parsed.hostname}:{parsed.port or 5432}{parsed.path}"

    def dbt_env(self) -> dict[str, str]:
        """Environment variables that point the dbt profile (``dbt_project/profiles.yml``) here."""
        if self.path is not None:
            return {"FLOWHOUSE_DBT_TARGET": "duckdb", "FLOWHOUSE_DUCKDB_PATH": str(self.path)}
        parsed = urlparse(self.url or "")
        return {
            "FLOWHOUSE_DBT_TARGET": "postgres",
            "FLOWHOUSE_PG_HOST": parsed.hostname or "localhost",
            "FLOWHOUSE_PG_PORT": str(parsed.port or 5432),
            "FLOWHOUSE_PG_USER": unquote(parsed.username or "postgres"),
            "FLOWHOUSE_PG_PASSWORD": unquote(parsed.password or ""),
            "FLOWHOUSE_PG_DATABASE": parsed.path.lstrip("/") or "postgres",
        }


def column_type(kind: ColumnType, dialect: Dialect) -> exp.DataType:
    if kind == "json" and dialect == "postgres":
        return exp.DataType.build("jsonb", dialect="postgres")
    return exp.DataType.build(_TYPES[kind])


def create_table(
    table: str, columns: Sequence[tuple[str, ColumnType, bool]], dialect: Dialect
) -> exp.Create:
    """``create table if not exists`` for (name, type, not null) columns."""
    defs = [
        exp.ColumnDef(
            this=exp.to_identifier(name),
            kind=column_type(kind, dialect),
            constraints=[exp.ColumnConstraint(kind=exp.NotNullColumnConstraint())]
            if not_null
            else [],
        )
        for name, kind, not_null in columns
    ]
    return exp.Create(
        this=exp.Schema(this=exp.to_table(table), expressions=defs), kind="TABLE", exists=True
    )


#: The columns the models' incremental reads bound with a timestamp literal (``loaded_at >= mark``,
#: an ``occurred_at`` look-back): on PostgreSQL each raw table flowhouse creates gets a B-tree index
#: on those of them it has, so a bound is an index range scan, not a scan of the whole table.
BOUNDED_COLUMNS = ("loaded_at", "occurred_at")


class IndexWarning(UserWarning):
    """A raw table's bounded column has no index and flowhouse could not create one."""


#: (table, column) of each index in the raw schema, by its leading column (PostgreSQL's catalog).
_LEADING_COLUMNS = sqlglot.parse_one(
    "select t.relname, a.attname from pg_index as i "
    "join pg_class as t on t.oid = i.indrelid "
    "join pg_namespace as n on n.oid = t.relnamespace "
    "join pg_attribute as a on a.attrelid = i.indrelid and a.attnum = i.indkey[0] "
    f"where n.nspname = '{RAW_SCHEMA}'",
    read="postgres",
)


def bound_indexes(table: str, columns: Sequence[str]) -> list[exp.Create]:
    """``create index if not exists <table>_<column>_idx`` on each of `columns` that is bounded.

    PostgreSQL only: DuckDB keeps min-max zone maps of every row group, which already skip the
    row groups outside a timestamp bound (``raw.events`` is appended in load order), and an ART
    index there would slow every load for reads the zone maps already prune."""
    name = table.split(".")[-1]
    return [
        exp.Create(
            this=exp.Index(
                this=exp.to_identifier(f"{name}_{column}_idx"),
                table=exp.to_table(table),
                params=exp.IndexParameters(columns=[exp.Ordered(this=exp.column(column))]),
            ),
            kind="INDEX",
            exists=True,
        )
        for column in BOUNDED_COLUMNS
        if column in columns
    ]


def input_table_ddl(spec: Input, dialect: Dialect) -> exp.Create:
    return create_table(
        f"{RAW_SCHEMA}.{spec.name}",
        [(c.name, c.type, c.required) for c in spec.columns],
        dialect,
    )


REJECTS_COLUMNS: tuple[tuple[str, ColumnType, bool], ...] = (
    ("load_id", "text", True),
    ("input", "text", True),
    ("source_file", "text", True),
    ("row_number", "bigint", True),
    ("field", "text", False),
    ("value", "text", False),
    ("reason", "text", True),
    ("record", "text", False),
    ("rejected_at", "timestamp", True),
    ("action", "text", False),  # rejected (the row was left out) or field_dropped (kept without it)
)

LOADS_COLUMNS: tuple[tuple[str, ColumnType, bool], ...] = (
    ("load_id", "text", True),
    ("input", "text", True),
    ("source_file", "text", True),
    ("rows_read", "bigint", True),
    ("rows_loaded", "bigint", True),
    ("rows_unchanged", "bigint", True),
    ("rows_rejected", "bigint", True),
    ("loaded_at", "timestamp", True),
)


class Warehouse:
    """A connection plus the dialect its SQL is written in."""

    def __init__(self, location: Location, connection: Any) -> None:
        self.location = location
        self.dialect: Dialect = location.dialect
        self._con = connection
        #: Seconds one DuckDB statement may run before it is interrupted (None: no bound;
        #: PostgreSQL bounds its statements itself, see :mod:`flowhouse.core.bounds`).
        self.statement_timeout: float | None = None

    # -- opening and closing -------------------------------------------------------------------
    @classmethod
    def open(cls, location: str | Location | None = None, read_only: bool = False) -> Warehouse:
        loc = location if isinstance(location, Location) else Location.parse(location)
        if loc.dialect == "duckdb":
            return cls(loc, _connect_duckdb(loc, read_only))
        return cls(loc, _connect_postgres(loc))

    def close(self) -> None:
        self._con.close()

    def __enter__(self) -> Warehouse:
        return self

    def __exit__(
        self, kind: type[BaseException] | None, err: BaseException | None, tb: TracebackType | None
    ) -> None:
        if kind is None and self.dialect == "postgres":
            self._con.commit()
        self.close()

    @property
    def connection(self) -> Any:
        """The DB-API connection (``duckdb.DuckDBPyConnection`` or a psycopg2 connection)."""
        return self._con

    # -- statements ------------------------------------------------------------------------------
    def render(self, statement: exp.Expr) -> str:
        return statement.sql(dialect=self.dialect)

    def execute(self, statement: exp.Expr | str, params: Sequence[Any] = ()) -> None:
        """Run one statement. A ``str`` is a whole SQL file's text written for this dialect."""
        sql = statement if isinstance(statement, str) else self.render(statement)
        try:
            if self.dialect == "duckdb":
                self._duckdb(sql, params)
            else:
                with self._con.cursor() as cur:
                    cur.execute(sql, tuple(params) or None)
        except Exception as err:  # the driver's own error types differ per warehouse
            raise WarehouseError(f"{type(err).__name__}: {err}\n  in: {_excerpt(sql)}") from err

    def execute_count(self, statement: exp.Expr | str, params: Sequence[Any] = ()) -> int:
        """Run one statement that writes rows (insert, create table as) and return how many."""
        sql = statement if isinstance(statement, str) else self.render(statement)
        try:
            if self.dialect == "duckdb":
                rows = self._duckdb(sql, params).fetchall()
                return int(rows[0][0]) if rows else 0
            with self._con.cursor() as cur:
                cur.execute(sql, tuple(params) or None)
                return max(int(cur.rowcount), 0)
        except Exception as err:
            raise WarehouseError(f"{type(err).__name__}: {err}\n  in: {_excerpt(sql)}") from err

    def query(self, statement: exp.Expr | str, params: Sequence[Any] = ()) -> list[tuple[Any, ...]]:
        sql = statement if isinstance(statement, str) else self.render(statement)
        try:
            if self.dialect == "duckdb":
                return list(self._duckdb(sql, params).fetchall())
            with self._con.cursor() as cur:
                cur.execute(sql, tuple(params) or None)
                return list(cur.fetchall())
        except Exception as err:
            raise WarehouseError(f"{type(err).__name__}: {err}\n  in: {_excerpt(sql)}") from err

    def _duckdb(self, sql: str, params: Sequence[Any]) -> Any:
        """Run on DuckDB, interrupted past :attr:`statement_timeout` (DuckDB has no setting)."""
        if self.statement_timeout is None:
            return self._con.execute(sql, list(params))
        timer = threading.Timer(self.statement_timeout, self._con.interrupt)
        timer.start()
        try:
            # fetched within the bound: DuckDB may run part of a query at fetch time
            return _Fetched(self._con.execute(sql, list(params)).fetchall())
        finally:
            timer.cancel()

    def scalar(self, statement: exp.Expr | str, params: Sequence[Any] = ()) -> Any:
        rows = self.query(statement, params)
        return rows[0][0] if rows else None

    def commit(self) -> None:
        if self.dialect == "postgres":
            self._con.commit()

    @contextmanager
    def transaction(self) -> Iterator[None]:
        """All-or-nothing: statements inside commit together or not at all."""
        if self.dialect == "duckdb":
            self._con.execute("begin transaction")
            try:
                yield
            except BaseException:
                self._con.execute("rollback")
                raise
            self._con.execute("commit")
        else:
            try:
                yield
            except BaseException:
                self._con.rollback()
                raise
            self._con.commit()

    # -- catalog ---------------------------------------------------------------------------------
    def table_exists(self, schema: str, table: str) -> bool:
        q = (
            exp.select("count(*)")
            .from_("information_schema.tables")
            .where(exp.column("table_schema").eq(exp.Literal.string(schema)))
            .where(exp.column("table_name").eq(exp.Literal.string(table)))
        )
        return bool(self.scalar(q))

    def columns(self, schema: str, table: str) -> list[str]:
        q = (
            exp.select("column_name")
            .from_("information_schema.columns")
            .where(exp.column("table_schema").eq(exp.Literal.string(schema)))
            .where(exp.column("table_name").eq(exp.Literal.string(table)))
            .order_by("ordinal_position")
        )
        return [r[0] for r in self.query(q)]

    def ensure_schema(self, name: str) -> None:
        self.execute(exp.Create(this=exp.to_table(name), kind="SCHEMA", exists=True))

    def ensure_raw_tables(self) -> None:
        """Create the canonical inputs and the load bookkeeping tables if they are missing, and on
        PostgreSQL the indexes of their bounded columns (:func:`bound_indexes`): a store made
        before them gets them at its next load, build or refresh."""
        self.ensure_schema(RAW_SCHEMA)
        for spec in INPUTS.values():
            self.execute(input_table_ddl(spec, self.dialect))
        self.execute(create_table(f"{RAW_SCHEMA}.rejects", REJECTS_COLUMNS, self.dialect))
        self.execute(f"alter table {RAW_SCHEMA}.rejects add column if not exists action text")
        self.execute(create_table(f"{RAW_SCHEMA}.loads", LOADS_COLUMNS, self.dialect))
        if self.dialect == "postgres":
            self._index_bounds()
        self.commit()

    def _index_bounds(self) -> None:
        """The bound indexes that are missing: a raw table whose bounded column already leads an
        index (flowhouse's, or one the store made under another name) gets none. Each missing one
        in its own transaction, after the tables are committed: a role that may write the table but
        does not own it cannot create one, and that only slows the reads, so it is a warning
        (:class:`IndexWarning`, with the statement for the table's owner), not a failed load or
        tick. Only missing ones, because ``create index`` takes a share lock on the table (it
        would wait for a loader's open transaction) even when the index exists."""
        self.commit()
        indexed = {(str(table), str(column)) for table, column in self.query(_LEADING_COLUMNS)}
        columns = {spec.name: spec.column_names for spec in INPUTS.values()}
        columns["loads"] = [name for name, _, _ in LOADS_COLUMNS]
        for name, names in columns.items():
            missing = [c for c in names if (name, c) not in indexed]
            for index in bound_indexes(f"{RAW_SCHEMA}.{name}", missing):
                try:
                    self.execute(index)
                    self.commit()
                except WarehouseError as err:
                    self._con.rollback()
                    warnings.warn(
                        f"{RAW_SCHEMA}.{name}: no index on a column the refresh bounds, and "
                        f"flowhouse could not create it ({str(err).splitlines()[0]}); without "
                        "it every refresh scans the whole table. Run as the table's owner: "
                        f"{self.render(index)}",
                        IndexWarning,
                        stacklevel=2,
                    )

    def count(self, table: str) -> int:
        return int(self.scalar(exp.select("count(*)").from_(table)) or 0)


@dataclass(frozen=True)
class _Fetched:
    """Rows already fetched, read like a DuckDB result."""

    rows: list[tuple[Any, ...]]

    def fetchall(self) -> list[tuple[Any, ...]]:
        return self.rows


def _connect_duckdb(loc: Location, read_only: bool) -> Any:
    import duckdb

    assert loc.path is not None
    loc.path.parent.mkdir(parents=True, exist_ok=True)
    try:
        return duckdb.connect(str(loc.path), read_only=read_only)
    except (duckdb.IOException, duckdb.ConnectionException) as err:
        raise WarehouseError(
            f"cannot open the DuckDB warehouse {loc.path}: {err}. DuckDB allows one writing "
            "process per file: stop the other process (a tick, dbt, the Dagster UI) and retry."
        ) from err


def _connect_postgres(loc: Location) -> Any:
    import psycopg2

    try:
        return psycopg2.connect(loc.url)
    except psycopg2.OperationalError as err:
        raise WarehouseError(f"cannot connect to the PostgreSQL warehouse {loc}: {err}") from err


def _excerpt(sql: str, limit: int = 300) -> str:
    flat = " ".join(sql.split())
    return flat if len(flat) <= limit else flat[:limit] + " ..."


def parse_one(sql: str, dialect: Dialect = "duckdb") -> exp.Expr:
    """Parse one SQL expression or statement written in ``dialect``."""
    return sqlglot.parse_one(sql, read=dialect)
