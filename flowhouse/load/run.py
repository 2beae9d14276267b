"""Load CSV, Parquet or JSON Lines files into the canonical inputs, keeping every good row.

The file is read by column name (any order, any case; see ``read`` and ``project``), optionally
through a mapping of a store's own export (``mapping``), and checked set-based in DuckDB (in the
warehouse itself for a DuckDB warehouse, in memory for PostgreSQL), all checks in one pass: every
problem gets one reject in ``raw.rejects`` (row number, field, value, reason, action); rejected rows
are left out, rows with only a bad optional field are kept without it, every other row is written.
Events are immutable and keyed by ``event_id``, so loading the same file twice changes nothing;
customers and products are upserted by key (the newer ``updated_at`` wins; a device token's
newer ``created_at``, or the same one again: a revocation). Each load is recorded in
``raw.loads``. Progress goes to a callback (the CLI prints it on stderr).

Row numbers count data records from 1 (the header is not a record); for JSON Lines they are line
numbers; an order export's event has its order's first row.
"""

from __future__ import annotations

import tempfile
import time
import uuid
from collections.abc import Callable
from datetime import datetime
from pathlib import Path
from typing import Any

import duckdb
import pyarrow as pa
from sqlglot import exp

from flowhouse.core.clock import utcnow
from flowhouse.core.contract import INPUTS, RAW_SCHEMA, Column, Input
from flowhouse.core.errors import LoadError
from flowhouse.core.warehouse import REJECTS_COLUMNS, Location, Warehouse
from flowhouse.load.checks import (
    FIELD_DROPPED,
    REJECTED,
    TRUE_WORDS,
    Check,
    checks_for,
    present,
    property_source,
)
from flowhouse.load.mapping import InputMapping, load_mapping
from flowhouse.load.project import EMAIL_LOOKUP, Projection, project
from flowhouse.load.read import (
    READERS,
    RECORD_SHOWN,
    detect_format,
    lines_at,
    unreadable_reason,
)
from flowhouse.load.report import SHOWN_REJECTS, LoadReport, Reject

Progress = Callable[[str], None]
MEMORY_LIMIT = "3GB"  # a 10M-row file loads within 4 GB of process memory


def _quiet(message: str) -> None:
    pass


def load_file(
    location: Location,
    input_name: str,
    path: Path,
    fmt: str = "auto",
    mapping: str | None = None,
    shown: int = SHOWN_REJECTS,
    progress: Progress = _quiet,
    now: datetime | None = None,
) -> LoadReport:
    """Check and load one file; returns what was read, loaded, already present and rejected.

    ``mapping`` is a shipped mapping's name (``shopify``, ``woocommerce``) or a mapping file's path.
    ``now`` is the load's clock (naive UTC; the wall clock by default): the ``loaded_at`` of rows
    without one, and the bound past which a timestamp is from the future (``FUTURE_TOLERANCE``).
    """
    spec = INPUTS.get(input_name)
    if spec is None:
        raise LoadError(f"unknown input {input_name!r}; expected one of {', '.join(INPUTS)}")
    if not path.is_file():
        raise LoadError(f"{path}: no such file")
    kind = detect_format(path, fmt)
    section = load_mapping(mapping, input_name) if mapping else None
    with Warehouse.open(location) as wh:
        wh.ensure_raw_tables()
        con = wh.connection if wh.dialect == "duckdb" else duckdb.connect()
        try:
            load = _Load(wh, con, spec, path, progress, now or utcnow())
            return load.run(kind, section, shown)
        finally:
            if con is not wh.connection:
                con.close()


class _Load:
    def __init__(
        self, wh: Warehouse, con: Any, spec: Input, path: Path, progress: Progress, now: datetime
    ):
        self.wh, self.con, self.spec, self.path, self.now = wh, con, spec, path, now
        self.progress = progress
        self.started = time.monotonic()

    def step(self, message: str) -> None:
        self.progress(f"{self.path.name}: {message} ({time.monotonic() - self.started:.1f}s)")

    def run(self, kind: str, mapping: tuple[InputMapping, str] | None, shown: int) -> LoadReport:
        wh, con, spec = self.wh, self.con, self.spec
        con.execute("set TimeZone = 'UTC'")
        con.execute(f"set memory_limit = '{MEMORY_LIMIT}'")  # past it, DuckDB spills to disk
        report = LoadReport(spec.name, str(self.path), uuid.uuid4().hex[:12])
        projection = self.read(kind, mapping)
        report.kept_in_properties = projection.kept_in_properties
        report.ignored_columns = projection.ignored
        report.rows_read = _count(con, "_incoming")
        self.step(f"read {report.rows_read} rows")
        if projection.email_lookup:
            _customers_by_email(wh, con)
        customers = _known_customers(wh, con) if spec.name == "events" else None
        zones = _zones(con) if spec.name == "customers" else None
        checks = checks_for(spec, projection.provided, customers, zones, self.now)
        _find_problems(con, checks, spec)
        self.step("checked")
        _typed_rows(con, spec, projection.provided, self.now)
        report.rows_loaded, report.rows_unchanged = _write(wh, con, spec)
        self.step(f"wrote {report.rows_loaded} rows")
        _count_problems(con, report)
        report.rejects = _record_rejects(wh, con, report, shown)
        _record_load(wh, report)
        self.step("done")
        return report

    def read(self, kind: str, mapping: tuple[InputMapping, str] | None) -> Projection:
        read_header, read_source = READERS[kind]
        where = mapping[1] if mapping else str(self.path)
        try:
            header = read_header(self.con, self.path)
            projection = project(
                self.spec, header, read_source(self.con, self.path, header),
                mapping[0] if mapping else None, where,
            )  # fmt: skip
            _require(self.spec, projection, header, self.path)
            _temp_table(self.con, "_incoming", projection.query)
            if kind == "csv":
                _keep_malformed_records(self.con, self.path)
        except duckdb.Error as err:
            raise LoadError(f"{self.path}: cannot read as {kind}: {err}") from err
        return projection


def _require(spec: Input, projection: Projection, header: list[str], path: Path) -> None:
    missing = [
        c.name for c in spec.columns
        if c.required and c.name not in projection.provided
        and not (spec.name == "events" and c.name in ("loaded_at", "customer_id"))
    ]  # fmt: skip
    if (
        spec.name == "events"
        and "customer_id" not in projection.provided
        and not projection.email_lookup
    ):
        missing.insert(1, "customer_id")
    if missing:
        raise LoadError(
            f"{path}: missing required column(s) {', '.join(missing)}; the file has "
            f"{', '.join(header) or 'no columns'}; expected (in any order, any case) "
            f"{', '.join(c.name + ('' if c.required else '?') for c in spec.columns)} "
            "(? optional), or a --mapping naming them"
        )


# Constant DuckDB statements over the CSV reader's own reject table (no values are interpolated).
# The reader numbers a record by the lines before it less those inside quoted fields, blank lines
# included; the record number counts only records, so the blank lines before it come off.
_MALFORMED = (
    """create or replace temp table _malformed_found as
       select line, min(byte_position) as byte_position,
              string_agg(distinct error_type, ', ') as error_type,
              ltrim(min(csv_line), chr(10) || chr(13)) as record
       from reject_errors group by line""",
    """create or replace temp table _malformed as
       select m.line - 1 - (select count(*) from _file_lines b
                            where b.row_number < p.physical and b._unreadable is null
                              and b.is_blank) as row_number,
              row_number() over (order by m.line) as j, p.physical, m.error_type, m.record
       from _malformed_found m join _malformed_lines p using (byte_position)""",
    """update _incoming set row_number = _incoming.row_number + (
         select count(*) from _malformed m where m.row_number - m.j < _incoming.row_number)""",
)
_SPANNING = """select physical, row_number, record from _malformed
               where strpos(record, chr(10)) > 0 order by row_number limit 1"""


def _keep_malformed_records(con: Any, path: Path) -> None:
    """Records the CSV reader cannot split (text after a closing quote, not UTF-8, too long) become
    rejects, located by their line, and the good rows after them keep their row numbers.

    A malformed record that runs over several lines is a quote out of place that swallowed the
    lines after it: which of them were records cannot be told, so the file is refused."""
    con.execute(_MALFORMED[0])
    found_at = con.execute("select byte_position from _malformed_found").fetchall()
    positions = [int(r[0]) for r in found_at]
    found = lines_at(path, positions)
    table = pa.table({"byte_position": pa.array(list(found), pa.int64()),
                      "physical": pa.array(list(found.values()), pa.int64())})  # fmt: skip
    con.register("_malformed_lines", table)
    for step in _MALFORMED[1:]:
        con.execute(step)
    con.unregister("_malformed_lines")
    spanning = con.execute(_SPANNING).fetchall()
    if spanning:
        line, row, record = spanning[0]
        first = str(record).split("\n", 1)[0]
        raise LoadError(
            f"{path}: line {line} (record {row}, {first[:80]!r}): a quote out of place makes "
            f"this record run over {str(record).count(chr(10)) + 1} lines, so the records in "
            "them cannot be told apart; nothing was loaded. Expected every quoted field closed "
            'and a quote inside a field doubled (""); fix the record and load the file again'
        )
    reason = exp.func(
        "concat", exp.Literal.string("malformed CSV record at line "),
        exp.cast(exp.column("physical"), "varchar"), exp.Literal.string(": "),
        unreadable_reason(exp.column("error_type")),
    )  # fmt: skip
    rows = exp.select(
        exp.column("row_number"), reason,
        exp.func("left", exp.column("record"), exp.Literal.number(RECORD_SHOWN)),
    ).from_("_malformed")  # fmt: skip
    into = exp.insert(rows, "_incoming", columns=["row_number", "_unreadable", "_record"])
    con.execute(into.sql("duckdb"))


def _temp_table(con: Any, name: str, query: exp.Expr) -> None:
    con.execute(
        exp.Create(
            this=exp.to_table(name), kind="TABLE", expression=query, replace=True,
            properties=exp.Properties(expressions=[exp.TemporaryProperty()]),
        ).sql("duckdb")
    )  # fmt: skip


def _count(con: Any, table: str) -> int:
    return int(con.execute(exp.select("count(*)").from_(table).sql("duckdb")).fetchall()[0][0])


def _from_warehouse(
    wh: Warehouse, con: Any, query: exp.Select, name: str, columns: list[str]
) -> None:
    """Copy a (small) warehouse query result into DuckDB temp table ``name``."""
    rows = wh.query(query)
    table = pa.table(
        {c: pa.array([r[i] for r in rows], pa.string()) for i, c in enumerate(columns)}
    )
    con.register(f"{name}_arrow", table)
    _temp_table(con, name, exp.select("*").from_(f"{name}_arrow"))
    con.unregister(f"{name}_arrow")


def _file_values(wh: Warehouse, con: Any, expr: exp.Expr, staged: str) -> str:
    """The file's distinct non-empty values of ``expr``, staged in PostgreSQL as ``customer_id``."""
    ids = exp.select(exp.func("trim", expr).as_("customer_id")).distinct()
    _temp_table(con, "_file_values", ids.from_("_incoming").where(present(expr)))
    return _copy_to_postgres(wh, con, "_file_values", staged, "text")


def _known_customers(wh: Warehouse, con: Any) -> str:
    """Name of a table (visible to ``con``) holding the file's customer ids the warehouse knows."""
    if wh.dialect == "duckdb":
        return f"{RAW_SCHEMA}.customers"
    staged = _file_values(wh, con, exp.column("customer_id"), "_flowhouse_file_customers")
    known = (
        exp.select(exp.column("customer_id", "c"))
        .from_(exp.to_table(f"{RAW_SCHEMA}.customers").as_("c"))
        .where(exp.column("customer_id", "c").isin(query=exp.select("customer_id").from_(staged)))
    )  # fmt: skip
    _from_warehouse(wh, con, known, "_known_customers", ["customer_id"])
    return "_known_customers"


def _customers_by_email(wh: Warehouse, con: Any) -> None:
    """Fill ``customer_id`` from the e-mail a mapping gives (``customer_with_email``): the customer
    with that address (case-insensitive; the newest if several share it)."""
    email = exp.func("lower", exp.func("trim", exp.column("email", "c")))
    newest = exp.Window(
        this=exp.RowNumber(), partition_by=[email],
        order=exp.Order(expressions=[exp.Ordered(this=exp.column("updated_at", "c"), desc=True)]),
    )  # fmt: skip
    source = exp.to_table(f"{RAW_SCHEMA}.customers").as_("c")
    ranked = exp.select(email.as_("email"), exp.column("customer_id", "c"), newest.as_("n")).from_(
        source
    )
    if wh.dialect == "postgres":
        staged = _file_values(wh, con, exp.column(EMAIL_LOOKUP), "_flowhouse_file_emails")
        ranked = ranked.where(
            email.isin(query=exp.select(exp.func("lower", exp.column("customer_id"))).from_(staged))
        )
    by_email = (
        exp.select("email", "customer_id").from_(ranked.subquery("r")).where(exp.column("n").eq(1))
    )
    if wh.dialect == "postgres":
        _from_warehouse(wh, con, by_email, "_by_email", ["email", "customer_id"])
    else:
        _temp_table(con, "_by_email", by_email)
    match = exp.column("email", "e").eq(
        exp.func("lower", exp.func("trim", exp.column(EMAIL_LOOKUP, "_incoming")))
    )
    found = (
        exp.select(exp.column("customer_id", "e"))
        .from_(exp.to_table("_by_email").as_("e"))
        .where(match)
    )
    con.execute(exp.update("_incoming", {"customer_id": found.subquery()}).sql("duckdb"))
    unmatched = exp.func("concat", exp.Literal.string("email:"), exp.column(EMAIL_LOOKUP))
    no_match = exp.and_(
        exp.column("customer_id").is_(exp.null()), present(exp.column(EMAIL_LOOKUP))
    )
    con.execute(exp.update("_incoming", {"customer_id": unmatched}, where=no_match).sql("duckdb"))


def _zones(con: Any) -> str:
    _temp_table(con, "_zones", exp.select("name").from_(exp.func("pg_timezone_names")))
    return "_zones"


def _find_problems(con: Any, checks: list[Check], spec: Input) -> None:
    """Every check in one pass over ``_incoming``: each row's failed checks as a list of
    (field, value, reason, action), unnested into ``_problems``."""

    def struct(field: exp.Expr, value: exp.Expr, reason: exp.Expr, action: str) -> exp.Struct:
        parts = {"field": field, "value": value, "reason": reason}
        items: dict[str, exp.Expr] = {k: exp.cast(v, "varchar") for k, v in parts.items()}
        items["action"] = exp.Literal.string(action)
        return exp.Struct(
            expressions=[
                exp.PropertyEQ(this=exp.to_identifier(k), expression=v) for k, v in items.items()
            ]
        )

    def problem(c: Check) -> exp.Expr:
        name = exp.Literal.string(c.field) if c.field else exp.null()
        value = c.value if c.value is not None else (exp.column(c.field) if c.field else exp.null())
        reason = exp.Literal.string(c.reason)
        return exp.If(this=c.failed, true=struct(name, value, reason, c.action))

    unreadable = struct(exp.null(), exp.null(), exp.column("_unreadable"), REJECTED)
    keep = exp.Lambda(
        this=exp.column("x").is_(exp.null()).not_(), expressions=[exp.to_identifier("x")]
    )

    def failed_of(some: list[Check]) -> exp.Expr:
        return exp.func("list_filter", exp.Array(expressions=[problem(c) for c in some]), keep)

    by_type: dict[str, list[Check]] = {}
    for c in checks:
        if c.event_type:
            by_type.setdefault(c.event_type, []).append(c)
    failed = failed_of([c for c in checks if not c.event_type])
    if by_type:
        kind = exp.func("lower", exp.func("trim", exp.column("event_type")))
        per_type = exp.Case(
            this=kind,
            ifs=[
                exp.If(this=exp.Literal.string(t), true=failed_of(cs)) for t, cs in by_type.items()
            ],
        )
        failed = exp.func("list_concat", failed, per_type)
    found = exp.If(
        this=exp.column("_unreadable").is_(exp.null()).not_(),
        true=exp.Array(expressions=[unreadable]), false=failed,
    )  # fmt: skip
    source: exp.Expr = exp.to_table("_incoming")
    if spec.name == "events":
        source = exp.select("*", property_source()).from_("_incoming").subquery("_incoming")
    per_row = exp.select(
        exp.column("row_number"), exp.Unnest(expressions=[found]).as_("p")
    ).from_(source)  # fmt: skip
    fields = [
        exp.Dot(this=exp.column("p"), expression=exp.to_identifier(f)).as_(f)
        for f in ("field", "value", "reason", "action")
    ]
    problems = exp.select("row_number", *fields).from_(per_row.subquery("r"))
    _temp_table(con, "_problems", problems)
    _duplicate_keys(con, spec)


def _rejected_rows() -> exp.Select:
    return (
        exp.select("row_number")
        .from_("_problems")
        .where(exp.column("action").eq(exp.Literal.string(REJECTED)))
    )


def _duplicate_keys(con: Any, spec: Input) -> None:
    """A key seen twice in the file keeps one row: the first event, or the customer or product
    row with the newest ``updated_at`` (the later row on a tie).
    The others are rejected, naming the row kept.
    """
    key = exp.func("trim", exp.column(spec.key))
    good = (
        exp.select("*")
        .from_("_incoming")
        .where(exp.column("row_number").isin(query=_rejected_rows()).not_())
    )
    if spec.name == "events":
        order = [exp.Ordered(this=exp.column("row_number"))]
        why = "duplicate {key} in the file; row {row} came first and was kept"
    else:
        updated = exp.TryCast(this=exp.column(spec.version), to=exp.DataType.build("timestamptz"))
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
            exp.Literal.string(REJECTED),
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
        return exp.If(this=present(col), true=value.isin(*words))
    if c.type == "json":
        return exp.cast(exp.func("nullif", exp.func("trim", col), exp.Literal.string("")), "json")
    to = {"date": "date", "decimal": "decimal(12, 2)", "integer": "integer", "bigint": "bigint"}
    return exp.TryCast(this=col, to=exp.DataType.build(to[c.type]))


def _typed_rows(con: Any, spec: Input, provided: list[str], now: datetime) -> None:
    """The rows to write, typed; a field with a ``field_dropped`` problem is null."""
    loaded_now = exp.cast(exp.Literal.string(now.strftime("%Y-%m-%d %H:%M:%S")), "timestamp")
    cols: list[exp.Expr] = []
    for c in spec.columns:
        if c.name in provided:
            value = _typed(c)
            if spec.name == "events" and c.name == "loaded_at":
                value = exp.func("coalesce", value, loaded_now)
            if spec.name == "events" and c.name == "event_type":
                value = exp.func("lower", value)
        elif spec.name == "events" and c.name == "loaded_at":
            value = loaded_now
        else:
            value = exp.cast(exp.null(), _duck_type(c))
        if c.name in provided and spec.name == "customers":
            value = exp.If(
                this=_dropped(c.name), true=exp.cast(exp.null(), _duck_type(c)), false=value
            )
        cols.append(exp.alias_(value, c.name))
    good = (
        exp.select(*cols)
        .from_("_incoming")
        .where(exp.column("row_number").isin(query=_rejected_rows()).not_())
    )
    _temp_table(con, "_typed", good)


def _dropped(field: str) -> exp.Expr:
    """True when this row's ``field`` has a ``field_dropped`` problem."""
    return exp.Exists(
        this=exp.select("1")
        .from_(exp.to_table("_problems").as_("d"))
        .where(
            exp.and_(
                exp.column("row_number", "d").eq(exp.column("row_number", "_incoming")),
                exp.column("field", "d").eq(exp.Literal.string(field)),
                exp.column("action", "d").eq(exp.Literal.string(FIELD_DROPPED)),
            )
        )
    )


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
        .where(exp.column(spec.version, "s") >= exp.column(spec.version, "t"))
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


def _count_problems(con: Any, report: LoadReport) -> None:
    rows = exp.func("count", exp.Distinct(expressions=[exp.column("row_number")]))
    by_action = (
        exp.select(exp.column("action"), rows, exp.func("count", exp.Star()))
        .from_("_problems")
        .group_by("action")
    )
    counts = {a: (int(r), int(n)) for a, r, n in con.execute(by_action.sql("duckdb")).fetchall()}
    report.rows_rejected = counts.get(REJECTED, (0, 0))[0]
    report.fields_dropped = counts.get(FIELD_DROPPED, (0, 0))[0]
    report.problems = sum(n for _, n in counts.values())


def _no_nul(text: exp.Expr) -> exp.Expr:
    """`text` with each NUL byte written ``\\0`` (PostgreSQL text cannot hold one)."""
    nul = exp.func("chr", exp.Literal.number(0))
    return exp.func("replace", text, nul, exp.Literal.string("\\0"))


def _record_rejects(wh: Warehouse, con: Any, report: LoadReport, shown: int) -> list[Reject]:
    """Every problem, with the row's text, into raw.rejects; returns the first ``shown``."""
    rejects = (
        exp.select(
            exp.Literal.string(report.load_id).as_("load_id"),
            exp.Literal.string(report.input).as_("input"),
            exp.Literal.string(report.source_file).as_("source_file"),
            exp.column("row_number", "p"), exp.column("field", "p"),
            _no_nul(exp.column("value", "p")).as_("value"), exp.column("reason", "p"),
            _no_nul(exp.column("_record", "i")).as_("record"),
            exp.cast(exp.func("current_timestamp"), "timestamp").as_("rejected_at"),
            exp.column("action", "p"),
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
    columns = [c for c, _, _ in REJECTS_COLUMNS]
    wh.execute(exp.insert(exp.select(*columns).from_(staged), target, columns=columns))
    wh.commit()
    first = con.execute(
        exp.select("row_number", "field", "value", "reason", "action").from_("_rejects")
        .order_by("row_number", exp.Ordered(this=exp.column("field"), nulls_first=True))
        .limit(shown).sql("duckdb")
    ).fetchall()  # fmt: skip
    return [Reject(int(r[0]), r[1], r[2], r[3], r[4]) for r in first]


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
