"""Load CSV, Parquet or JSON Lines files into the canonical inputs, keeping every good row.

The whole file is checked set-based in DuckDB (in the warehouse itself for a DuckDB warehouse, in
memory for PostgreSQL): every row that breaks the contract gets one reject per problem in
``raw.rejects`` (row number, field, value, reason); every other row is written. Events are immutable
and keyed by ``event_id``, so loading the same file twice changes nothing; customers and products
are upserted by key (the newer ``updated_at`` wins). Each load is recorded in ``raw.loads``.

Row numbers count data records from 1 (the header is not a record); for JSON Lines they are line
numbers.
"""

from __future__ import annotations

import csv
import tempfile
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import duckdb
import pyarrow as pa
from sqlglot import exp

from flowhouse.core.contract import CATALOG_EVENT_TYPES, INPUTS, RAW_SCHEMA, Column, Input
from flowhouse.core.errors import LoadError
from flowhouse.core.warehouse import Location, Warehouse

FORMATS = {
    ".csv": "csv",
    ".parquet": "parquet",
    ".pq": "parquet",
    ".jsonl": "jsonl",
    ".ndjson": "jsonl",
}
EMAIL_PATTERN = r"^[^@\s]+@[^@\s]+\.[^@\s.]{2,}$"
PHONE_PATTERN = r"^\+[1-9][0-9]{6,14}$"
EVENT_TYPE_PATTERN = r"^[a-z][a-z0-9_]*$"
BOOLEAN_WORDS = ("true", "false", "t", "f", "1", "0", "yes", "no", "y", "n")
TRUE_WORDS = ("true", "t", "1", "yes", "y")
EXTRA_SLOTS = 8  # fields past the header are caught in these and reported, not silently dropped
SHOWN_REJECTS = 20


@dataclass(frozen=True)
class Reject:
    row_number: int
    field: str | None
    value: str | None
    reason: str


@dataclass
class LoadReport:
    input: str
    source_file: str
    load_id: str
    rows_read: int = 0
    rows_loaded: int = 0
    rows_unchanged: int = 0
    rows_rejected: int = 0
    rejects: list[Reject] = field(default_factory=list)
    ignored_columns: list[str] = field(default_factory=list)

    def describe(self) -> str:
        lines = [
            f"{self.source_file} -> {RAW_SCHEMA}.{self.input} (load {self.load_id}): "
            f"{self.rows_read} rows read, {self.rows_loaded} loaded, "
            f"{self.rows_unchanged} already present, {self.rows_rejected} rejected"
        ]
        if self.ignored_columns:
            lines.append(
                f"  ignored columns (not in the contract): {', '.join(self.ignored_columns)}"
            )
        for r in self.rejects:
            value = "" if r.value is None else f" = {r.value!r}"
            where = f"{r.field}{value}: " if r.field else ""
            lines.append(f"  {self.source_file}: row {r.row_number}: {where}{r.reason}")
        if self.rows_rejected > len(self.rejects):
            lines.append(
                f"  ... see {RAW_SCHEMA}.rejects where load_id = '{self.load_id}' for all of them"
            )
        return "\n".join(lines)


# -- reading a file into text columns ------------------------------------------------------------


def detect_format(path: Path, fmt: str) -> str:
    if fmt != "auto":
        return fmt
    found = FORMATS.get(path.suffix.lower())
    if found is None:
        raise LoadError(
            f"{path}: cannot tell the format from the extension {path.suffix!r}; "
            f"expected one of {', '.join(sorted(FORMATS))}, or pass --format csv|parquet|jsonl"
        )
    return found


def _opt(name: str, value: exp.Expr) -> exp.EQ:
    return exp.EQ(this=exp.column(name), expression=value)


def _csv_header(con: Any, path: Path) -> list[str]:
    with path.open(newline="", encoding="utf-8-sig") as handle:
        header = next(csv.reader(handle), None)
    if not header:
        raise LoadError(f"{path}: the file is empty; expected a header row naming the columns")
    return [h.strip().lower() for h in header]


def _csv_source(path: Path, header: list[str]) -> exp.Select:
    columns = _varchar_columns(header + [f"_extra_{i}" for i in range(EXTRA_SLOTS)])
    read = exp.ReadCSV(
        this=exp.Literal.string(str(path)),
        expressions=[
            _opt("header", exp.true()),
            _opt("columns", columns),
            _opt("delim", exp.Literal.string(",")),
            _opt("quote", exp.Literal.string('"')),
            _opt("escape", exp.Literal.string('"')),
            _opt("null_padding", exp.true()),
            _opt("parallel", exp.false()),
            _opt("auto_detect", exp.false()),
            _opt("store_rejects", exp.true()),
        ],
    )
    extras = [exp.column(f"_extra_{i}") for i in range(EXTRA_SLOTS)]
    return exp.select(
        _row_number(),
        *[exp.column(h).as_(h) for h in header],
        exp.cast(exp.null(), "varchar").as_("_unreadable"),
        exp.func("coalesce", *extras).as_("_extra"),
        exp.Anonymous(
            this="concat_ws",
            expressions=[exp.Literal.string(","), *[exp.column(h) for h in header]],
        ).as_("_record"),
    ).from_(read)


def _row_number() -> exp.Expr:
    return exp.alias_(exp.Window(this=exp.RowNumber()), "row_number")


def _varchar_columns(names: list[str]) -> exp.Struct:
    """DuckDB's ``columns={'a': 'VARCHAR', ...}`` option value."""
    return exp.Struct(
        expressions=[
            exp.PropertyEQ(this=exp.to_identifier(n), expression=exp.Literal.string("VARCHAR"))
            for n in names
        ]
    )


def _lines(path: Path) -> exp.Subquery:
    """The file's lines, in order, as ``(row_number, line)``."""
    read = exp.ReadCSV(
        this=exp.Literal.string(str(path)),
        expressions=[
            _opt("header", exp.false()),
            _opt("columns", _varchar_columns(["line"])),
            _opt("delim", exp.Literal.string("\x1f")),
            _opt("quote", exp.Literal.string("")),
            _opt("escape", exp.Literal.string("")),
            _opt("parallel", exp.false()),
            _opt("auto_detect", exp.false()),
        ],
    )
    return exp.select(_row_number(), exp.column("line")).from_(read).subquery("lines")


def _jsonl_source(path: Path, header: list[str]) -> exp.Select:
    line = exp.column("line")
    valid = exp.func("json_valid", line)

    def field(name: str) -> exp.Expr:
        path_ = exp.Literal.string(f"$.{name}")
        if name == "properties":
            value: exp.Expr = exp.cast(exp.func("json_extract", line, path_), "varchar")
        else:
            value = exp.func("json_extract_string", line, path_)
        return exp.If(this=valid, true=value).as_(name)

    return (
        exp.select(
            exp.column("row_number"),
            *[field(h) for h in header],
            exp.If(this=valid, true=exp.null(), false=exp.Literal.string("bad JSON")).as_(
                "_unreadable"
            ),
            exp.null().as_("_extra"),
            line.as_("_record"),
        )
        .from_(_lines(path))
        .where(exp.func("length", exp.func("trim", line)).neq(0))
    )


def _jsonl_header(con: Any, path: Path) -> list[str]:
    """Every key the file's JSON objects use, in the order they first appear. Keys keep their case:
    JSON keys are case-sensitive, so a mis-cased key is reported as ignored, never half-read."""
    keys = (
        exp.select(
            exp.column("row_number"),
            exp.Unnest(expressions=[exp.func("json_keys", exp.column("line"))]).as_("key"),
        )
        .from_(_lines(path))
        .where(exp.func("json_valid", exp.column("line")))
        .subquery("k")
    )
    first_seen = (
        exp.select(exp.column("key"))
        .from_(keys)
        .group_by(exp.column("key"))
        .order_by(exp.func("min", exp.column("row_number")), exp.column("key"))
    )
    return [row[0] for row in con.execute(first_seen.sql("duckdb")).fetchall()]


def _parquet_header(con: Any, path: Path) -> list[str]:
    rows = con.execute(
        exp.Describe(this=exp.select("*").from_(_read_parquet(path))).sql("duckdb")
    ).fetchall()
    return [str(r[0]).lower() for r in rows]


def _read_parquet(path: Path) -> exp.Expr:
    return exp.func(
        "read_parquet", exp.Literal.string(str(path)), _opt("file_row_number", exp.true())
    )


def _parquet_source(path: Path, header: list[str]) -> exp.Select:
    def as_text(name: str) -> exp.Expr:
        col = exp.column(name)
        if name == "properties":
            return exp.cast(exp.func("to_json", col), "varchar").as_(name)
        return exp.cast(col, "varchar").as_(name)

    return exp.select(
        (exp.column("file_row_number") + 1).as_("row_number"),
        *[as_text(h) for h in header if h != "file_row_number"],
        exp.cast(exp.null(), "varchar").as_("_unreadable"),
        exp.null().as_("_extra"),
        exp.cast(exp.func("to_json", exp.column("_p")), "varchar").as_("_record"),
    ).from_(exp.select("*").from_(_read_parquet(path)).subquery("_p"))


READERS: dict[
    str, tuple[Callable[[Any, Path], list[str]], Callable[[Path, list[str]], exp.Select]]
] = {
    "csv": (_csv_header, _csv_source),
    "jsonl": (_jsonl_header, _jsonl_source),
    "parquet": (_parquet_header, _parquet_source),
}


# -- checks ---------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Check:
    field: str | None
    failed: exp.Expr  # true for a bad row
    reason: str


def _present(col: exp.Expr) -> exp.Expr:
    return exp.func("nullif", exp.func("trim", col), exp.Literal.string("")).is_(exp.null()).not_()


def _missing(col: exp.Expr) -> exp.Expr:
    return exp.func("nullif", exp.func("trim", col), exp.Literal.string("")).is_(exp.null())


def _type_check(c: Column) -> Check | None:
    col = exp.column(c.name)
    bad_cast: dict[str, tuple[str, str]] = {
        "timestamp": (
            "timestamptz",
            "unparsable timestamp; expected ISO 8601 like 2026-09-01T12:00:00Z",
        ),
        "date": ("date", "unparsable date; expected YYYY-MM-DD"),
        "decimal": ("decimal(12, 2)", "not a number"),
        "integer": ("integer", "not a whole number"),
        "bigint": ("bigint", "not a whole number"),
    }
    if c.type in bad_cast:
        to, reason = bad_cast[c.type]
        failed = exp.and_(
            _present(col), exp.TryCast(this=col, to=exp.DataType.build(to)).is_(exp.null())
        )
        return Check(c.name, failed, reason)
    if c.type == "boolean":
        words = [exp.Literal.string(w) for w in BOOLEAN_WORDS]
        failed = exp.and_(
            _present(col), exp.func("lower", exp.func("trim", col)).isin(*words).not_()
        )
        return Check(c.name, failed, "not a boolean; expected true/false, yes/no or 1/0")
    if c.type == "json":
        failed = exp.and_(_present(col), exp.func("json_valid", col).not_())
        return Check(c.name, failed, "bad JSON")
    return None


def _json_object_check(name: str) -> Check:
    col = exp.column(name)
    failed = exp.and_(
        _present(col),
        exp.func("json_valid", col),
        exp.func("json_type", col).neq(exp.Literal.string("OBJECT")),
    )
    return Check(name, failed, "not a JSON object; expected {...}")


def _pattern_check(name: str, pattern: str, reason: str) -> Check:
    col = exp.func("trim", exp.column(name))
    failed = exp.and_(
        _present(exp.column(name)),
        exp.RegexpLike(this=col, expression=exp.Literal.string(pattern)).not_(),
    )
    return Check(name, failed, reason)


def checks_for(spec: Input, present: Sequence[str], customers_table: str | None) -> list[Check]:
    """Every check a row of ``spec`` must pass, given the columns the file has."""
    out: list[Check] = [Check(None, exp.column("_unreadable").is_(exp.null()).not_(), "")]
    out.append(Check(None, _present(exp.column("_extra")), "more fields than the header names"))
    for c in spec.columns:
        if c.name not in present:
            continue
        if c.required and not (spec.name == "events" and c.name in ("customer_id", "loaded_at")):
            out.append(Check(c.name, _missing(exp.column(c.name)), f"missing {c.name}"))
        typed = _type_check(c)
        if typed:
            out.append(typed)
        if c.type == "json":
            out.append(_json_object_check(c.name))
    if spec.name == "events":
        out += _event_checks(customers_table)
    if spec.name == "customers":
        out.append(_pattern_check("email", EMAIL_PATTERN, "invalid e-mail address"))
        out.append(
            _pattern_check(
                "phone", PHONE_PATTERN, "invalid phone; expected E.164 like +14155550100"
            )
        )
    if spec.name == "products":
        for money in ("price", "cost"):
            if money in present:
                col = exp.TryCast(this=exp.column(money), to=exp.DataType.build("decimal(12, 2)"))
                out.append(Check(money, col < 0, f"negative {money}"))
    return out


def _event_checks(customers_table: str | None) -> list[Check]:
    kind = exp.func("lower", exp.func("trim", exp.column("event_type")))
    catalog = kind.isin(*[exp.Literal.string(t) for t in sorted(CATALOG_EVENT_TYPES)])
    customer = exp.func("trim", exp.column("customer_id", "_incoming"))
    out = [
        _pattern_check("event_type", EVENT_TYPE_PATTERN, "invalid event_type; expected snake_case"),
        Check("customer_id", exp.and_(_missing(exp.column("customer_id")), catalog.not_()),
              "missing customer_id"),
    ]  # fmt: skip
    if customers_table:
        known = (
            exp.select("1")
            .from_(exp.to_table(customers_table).as_("k"))
            .where(exp.column("customer_id", "k").eq(customer))
        )
        unknown = exp.and_(_present(exp.column("customer_id")), exp.Exists(this=known).not_())
        out.append(Check("customer_id", unknown, "unknown customer; load customers first"))
    return out


# -- the load -------------------------------------------------------------------------------------


def load_file(location: Location, input_name: str, path: Path, fmt: str = "auto") -> LoadReport:
    """Check and load one file; returns what was read, loaded, already present and rejected."""
    spec = INPUTS.get(input_name)
    if spec is None:
        raise LoadError(f"unknown input {input_name!r}; expected one of {', '.join(INPUTS)}")
    if not path.is_file():
        raise LoadError(f"{path}: no such file")
    kind = detect_format(path, fmt)
    with Warehouse.open(location) as wh:
        wh.ensure_raw_tables()
        con = wh.connection if wh.dialect == "duckdb" else duckdb.connect()
        try:
            return _load(wh, con, spec, path, kind)
        finally:
            if con is not wh.connection:
                con.close()


def _load(wh: Warehouse, con: Any, spec: Input, path: Path, kind: str) -> LoadReport:
    con.execute("set TimeZone = 'UTC'")
    report = LoadReport(spec.name, str(path), uuid.uuid4().hex[:12])
    read_header, read_source = READERS[kind]
    try:
        header = read_header(con, path)
        present, report.ignored_columns = _columns(spec, header, path)
        source = read_source(path, present)
        _temp_table(con, "_incoming", source)
        if kind == "csv":
            _keep_malformed_records(con)
    except duckdb.Error as err:
        raise LoadError(f"{path}: cannot read as {kind}: {err}") from err
    customers = _known_customers(wh, con) if spec.name == "events" else None
    _find_problems(con, checks_for(spec, present, customers), spec)
    report.rows_read = _count(con, "_incoming")
    _typed_rows(con, spec, present)
    report.rows_loaded, report.rows_unchanged = _write(wh, con, spec)
    report.rows_rejected = int(
        con.execute(
            exp.select(exp.func("count", exp.Distinct(expressions=[exp.column("row_number")])))
            .from_("_problems")
            .sql("duckdb")
        ).fetchall()[0][0]
    )
    report.rejects = _record_rejects(wh, con, report)
    _record_load(wh, report)
    return report


# Constant DuckDB statements over the CSV reader's own reject table (no values are interpolated).
_MALFORMED = (
    """create or replace temp table _malformed as
       select line - 1 as row_number, row_number() over (order by line) as j,
              'malformed CSV record (' || string_agg(distinct lower(error_type), ', ') || ')'
                  as reason,
              min(csv_line) as record
       from reject_errors group by line""",
    """update _incoming set row_number = _incoming.row_number + (
         select count(*) from _malformed m where m.row_number - m.j < _incoming.row_number)""",
    """insert into _incoming (row_number, _unreadable, _record)
       select row_number, reason, record from _malformed""",
)


def _keep_malformed_records(con: Any) -> None:
    """Records the CSV reader cannot split (a broken quote, say) become rejects, and the good rows
    after them keep the row numbers they have in the file.
    """
    for statement in _MALFORMED:
        con.execute(statement)


def _columns(spec: Input, header: list[str], path: Path) -> tuple[list[str], list[str]]:
    names = spec.column_names
    missing = [
        c.name for c in spec.columns
        if c.required and c.name not in header
        and not (spec.name == "events" and c.name == "loaded_at")
    ]  # fmt: skip
    if missing:
        raise LoadError(
            f"{path}: missing required column(s) {', '.join(missing)}; "
            f"expected a header with {', '.join(names)}"
        )
    present = [h for h in header if h in names]
    ignored = [h for h in header if h not in names and h != "file_row_number"]
    return present, ignored


def _temp_table(con: Any, name: str, query: exp.Expr) -> None:
    con.execute(
        exp.Create(
            this=exp.to_table(name), kind="TABLE", expression=query, replace=True,
            properties=exp.Properties(expressions=[exp.TemporaryProperty()]),
        ).sql("duckdb")
    )  # fmt: skip


def _count(con: Any, table: str) -> int:
    return int(con.execute(exp.select("count(*)").from_(table).sql("duckdb")).fetchall()[0][0])


def _known_customers(wh: Warehouse, con: Any) -> str:
    """Name of a table (visible to ``con``) holding the file's customer ids the warehouse knows."""
    if wh.dialect == "duckdb":
        return f"{RAW_SCHEMA}.customers"
    ids = exp.select(exp.func("trim", exp.column("customer_id")).as_("customer_id")).distinct()
    _temp_table(
        con, "_file_customers", ids.from_("_incoming").where(_present(exp.column("customer_id")))
    )
    staged = _copy_to_postgres(wh, con, "_file_customers", "_flowhouse_file_customers", "text")
    known = (
        exp.select(exp.column("customer_id", "c"))
        .from_(exp.to_table(f"{RAW_SCHEMA}.customers").as_("c"))
        .where(exp.column("customer_id", "c").isin(query=exp.select("customer_id").from_(staged)))
    )  # fmt: skip
    table = pa.table({"customer_id": pa.array([r[0] for r in wh.query(known)], pa.string())})
    con.register("_known_customers_arrow", table)
    _temp_table(con, "_known_customers", exp.select("*").from_("_known_customers_arrow"))
    con.unregister("_known_customers_arrow")
    return "_known_customers"


def _find_problems(con: Any, checks: list[Check], spec: Input) -> None:
    parts = [
        exp.select(
            exp.column("row_number"),
            exp.cast(exp.Literal.string(c.field) if c.field else exp.null(), "varchar").as_(
                "field"
            ),
            exp.cast(exp.column(c.field) if c.field else exp.null(), "varchar").as_("value"),
            (exp.column("_unreadable") if i == 0 else exp.Literal.string(c.reason)).as_("reason"),
        )
        .from_("_incoming")
        .where(
            c.failed if i == 0 else exp.and_(exp.column("_unreadable").is_(exp.null()), c.failed)
        )
        for i, c in enumerate(checks)
    ]
    union: exp.Query = parts[0]
    for p in parts[1:]:
        union = exp.union(union, p, distinct=False)
    _temp_table(con, "_problems", exp.select("*").from_(union.subquery("u")))
    _duplicate_keys(con, spec)


def _duplicate_keys(con: Any, spec: Input) -> None:
    """A key seen twice in the file keeps one row: the first event, or the customer or product
    row with the newest ``updated_at`` (the later row on a tie).
    The others are rejected, naming the row kept.
    """
    key = exp.func("trim", exp.column(spec.key))
    good = (
        exp.select("*").from_("_incoming")
        .where(exp.column("row_number").isin(query=exp.select("row_number").from_("_problems")).not_())
    )  # fmt: skip
    if spec.name == "events":
        order = [exp.Ordered(this=exp.column("row_number"))]
        why = "duplicate {key} in the file; row {row} came first and was kept"
    else:
        updated = exp.TryCast(this=exp.column("updated_at"), to=exp.DataType.build("timestamptz"))
        order = [
            exp.Ordered(this=updated, desc=True, nulls_first=False),
            exp.Ordered(this=exp.column("row_number"), desc=True),
        ]
        why = "duplicate {key} in the file; row {row} is newer and was kept"
    winner = exp.Window(
        this=exp.func("first_value", exp.column("row_number")),
        partition_by=[key],
        order=exp.Order(expressions=order),
    )
    ranked = exp.select(exp.column("row_number"), exp.column(spec.key), winner.as_("kept")).from_(
        good.subquery("g")
    )
    before, after = why.format(key=spec.key, row="\0").split("\0")
    dupes = (
        exp.select(
            exp.column("row_number"),
            exp.Literal.string(spec.key),
            exp.column(spec.key),
            exp.func(
                "concat",
                exp.Literal.string(before),
                exp.cast(exp.column("kept"), "varchar"),
                exp.Literal.string(after),
            ),
        )
        .from_(ranked.subquery("r"))
        .where(exp.column("row_number").neq(exp.column("kept")))
    )
    con.execute(exp.insert(dupes, "_problems").sql("duckdb"))


def _typed(c: Column) -> exp.Expr:
    col = exp.column(c.name)
    if c.type == "text":
        return exp.func("nullif", exp.func("trim", col), exp.Literal.string(""))
    if c.type == "timestamp":
        tz = exp.TryCast(this=col, to=exp.DataType.build("timestamptz"))
        return exp.cast(exp.AtTimeZone(this=tz, zone=exp.Literal.string("UTC")), "timestamp")
    if c.type == "boolean":
        words = [exp.Literal.string(w) for w in TRUE_WORDS]
        value = exp.func("lower", exp.func("trim", col))
        return exp.If(this=_present(col), true=value.isin(*words))
    if c.type == "json":
        return exp.cast(exp.func("nullif", exp.func("trim", col), exp.Literal.string("")), "json")
    to = {"date": "date", "decimal": "decimal(12, 2)", "integer": "integer", "bigint": "bigint"}
    return exp.TryCast(this=col, to=exp.DataType.build(to[c.type]))


def _typed_rows(con: Any, spec: Input, present: list[str]) -> None:
    loaded_now = exp.cast(
        exp.Literal.string(datetime.now(UTC).strftime("%Y-%m-%d %H:%M:%S")), "timestamp"
    )
    cols: list[exp.Expr] = []
    for c in spec.columns:
        if c.name in present:
            value = _typed(c)
            if spec.name == "events" and c.name == "loaded_at":
                value = exp.func("coalesce", value, loaded_now)
            if spec.name == "events" and c.name == "event_type":
                value = exp.func("lower", value)
        elif spec.name == "events" and c.name == "loaded_at":
            value = loaded_now
        else:
            value = exp.cast(exp.null(), _duck_type(c))
        cols.append(exp.alias_(value, c.name))
    good = (
        exp.select(*cols).from_("_incoming")
        .where(exp.column("row_number").isin(query=exp.select("row_number").from_("_problems")).not_())
        .order_by("row_number")
    )  # fmt: skip
    _temp_table(con, "_typed", good)


def _duck_type(c: Column) -> str:
    return {"text": "varchar", "decimal": "decimal(12, 2)"}.get(c.type, c.type)


def _write(wh: Warehouse, con: Any, spec: Input) -> tuple[int, int]:
    """Write ``_typed`` into the raw table; returns (rows written, rows already present)."""
    target = f"{RAW_SCHEMA}.{spec.name}"
    incoming = _count(con, "_typed")
    staged = "_typed"
    if wh.dialect == "postgres":
        staged = _copy_to_postgres(wh, con, "_typed", "_flowhouse_incoming", target)
    with wh.transaction():
        if spec.name != "events":
            wh.execute(_delete_older(target, staged, spec))
        before = wh.count(target)
        wh.execute(_insert_new(target, staged, spec))
        written = wh.count(target) - before
    return written, incoming - written


def _delete_older(target: str, staged: str, spec: Input) -> exp.Delete:
    """Upsert, step one: remove rows the file has a newer (or equal) version of."""
    newer = (
        exp.select("1").from_(exp.to_table(staged).as_("s"))
        .where(exp.column(spec.key, "s").eq(exp.column(spec.key, "t")))
        .where(exp.column("updated_at", "s") >= exp.column("updated_at", "t"))
    )  # fmt: skip
    return exp.delete(exp.to_table(target).as_("t"), where=exp.Exists(this=newer))


def _insert_new(target: str, staged: str, spec: Input) -> exp.Insert:
    exists = (
        exp.select("1").from_(exp.to_table(target).as_("t"))
        .where(exp.column(spec.key, "t").eq(exp.column(spec.key, "s")))
    )  # fmt: skip
    rows = (
        exp.select(*[exp.column(c, "s") for c in spec.column_names])
        .from_(exp.to_table(staged).as_("s"))
        .where(exp.Exists(this=exists).not_())
    )
    return exp.insert(rows, target, columns=spec.column_names)


def _copy_to_postgres(wh: Warehouse, con: Any, source: str, staged: str, like: str) -> str:
    """Bulk-copy DuckDB table ``source`` into PostgreSQL temp table ``staged`` through a CSV file.

    ``like`` is a PostgreSQL table whose columns ``staged`` copies, or ``text`` for one text column.
    """
    shape: exp.Expr = (
        exp.select("*").from_(like).limit(0)
        if like != "text"
        else exp.select(exp.cast(exp.null(), "text").as_("customer_id")).limit(0)
    )
    wh.execute(exp.Drop(tables=[exp.to_table(staged)], kind="TABLE", exists=True))
    wh.execute(exp.Create(
        this=exp.to_table(staged), kind="TABLE", expression=shape,
        properties=exp.Properties(expressions=[exp.TemporaryProperty()]),
    ))  # fmt: skip
    csv_options = [
        exp.CopyParameter(this=exp.var("FORMAT"), expression=exp.var("csv")),
        exp.CopyParameter(this=exp.var("HEADER"), expression=exp.true()),
    ]
    with tempfile.TemporaryDirectory() as tmp:
        csv_path = Path(tmp) / "rows.csv"
        out = exp.Copy(this=exp.to_table(source), kind=False, params=csv_options,
                       files=[exp.Literal.string(str(csv_path))])  # fmt: skip
        con.execute(out.sql("duckdb"))
        into = exp.Copy(this=exp.to_table(staged), kind=True, files=[exp.var("STDIN")],
                        params=csv_options)  # fmt: skip
        with wh.connection.cursor() as cur, csv_path.open() as handle:
            cur.copy_expert(wh.render(into), handle)
    return staged


def _record_rejects(wh: Warehouse, con: Any, report: LoadReport) -> list[Reject]:
    """Every problem, with the row's original text, into raw.rejects; returns the first few."""
    rejects = (
        exp.select(
            exp.Literal.string(report.load_id).as_("load_id"),
            exp.Literal.string(report.input).as_("input"),
            exp.Literal.string(report.source_file).as_("source_file"),
            exp.column("row_number", "p"), exp.column("field", "p"), exp.column("value", "p"),
            exp.column("reason", "p"), exp.column("_record", "i").as_("record"),
            exp.cast(exp.func("current_timestamp"), "timestamp").as_("rejected_at"),
        )
        .from_(exp.to_table("_problems").as_("p"))
        .join(exp.to_table("_incoming").as_("i"), using=["row_number"])
        .order_by(
            exp.column("row_number", "p"),
            exp.Ordered(this=exp.column("field", "p"), nulls_first=True),
        )
    )  # fmt: skip
    _temp_table(con, "_rejects", rejects)
    target = f"{RAW_SCHEMA}.rejects"
    staged = "_rejects"
    if wh.dialect == "postgres":
        staged = _copy_to_postgres(wh, con, "_rejects", "_flowhouse_rejects", target)
    wh.execute(exp.insert(exp.select("*").from_(staged), target))
    wh.commit()
    shown = con.execute(
        exp.select("row_number", "field", "value", "reason").from_("_rejects")
        .limit(SHOWN_REJECTS).sql("duckdb")
    ).fetchall()  # fmt: skip
    return [Reject(int(r[0]), r[1], r[2], r[3]) for r in shown]


def _record_load(wh: Warehouse, report: LoadReport) -> None:
    row = exp.select(
        exp.Literal.string(report.load_id), exp.Literal.string(report.input),
        exp.Literal.string(report.source_file), exp.Literal.number(report.rows_read),
        exp.Literal.number(report.rows_loaded), exp.Literal.number(report.rows_unchanged),
        exp.Literal.number(report.rows_rejected),
        exp.cast(exp.func("current_timestamp"), "timestamp"),
    )  # fmt: skip
    wh.execute(exp.insert(row, f"{RAW_SCHEMA}.loads"))
    wh.commit()
