"""Reading a file: every column of CSV, Parquet or JSON Lines, by name, as text.

A reader gives the file's column names (its header; every key for JSON Lines) and a query with
one text column per name, ``c0``, ``c1``, ... in header order, plus ``row_number``,
``_unreadable`` (why a record could not be read, or null), ``_extra`` (fields past the header) and
``_record`` (the record's text, kept with its rejects). Names are matched later by
:func:`normalize`, so column order and case do not matter.

No record vanishes: a line that cannot be read (not UTF-8, longer than :data:`LINE_LIMIT`) is a
record with its reason in ``_unreadable``, and the rest of the file is read. A CSV quote opened and
never closed would swallow every record after it, so such a file is refused as a whole, naming the
line of the quote (:func:`check_quotes`).
"""

from __future__ import annotations

import csv
import re
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, BinaryIO

from sqlglot import exp

from flowhouse.core.errors import LoadError

FORMATS = {
    ".csv": "csv",
    ".parquet": "parquet",
    ".pq": "parquet",
    ".jsonl": "jsonl",
    ".ndjson": "jsonl",
}
EXTRA_SLOTS = 8  # fields past the header are caught in these and reported, not silently dropped
LINE_LIMIT = 2 * 1024 * 1024  # bytes; a longer line (or CSV record) is rejected, the rest is read
RECORD_SHOWN = 1000  # characters of an unreadable record kept with its reject
SEPARATOR = "\x1f\x1e\x1d\x1c"  # splits no real line: the line reader reads each line whole
#: Why the DuckDB CSV reader could not read a record or line, by its error type.
UNREADABLE = {
    "INVALID ENCODING": "not valid UTF-8; expected the file encoded as UTF-8",
    "LINE SIZE OVER MAXIMUM": f"longer than {LINE_LIMIT} bytes, the limit for one line",
    "UNQUOTED VALUE": (
        'text after a closing quote; expected a quote inside a quoted field doubled ("")'
    ),
    "UNTERMINATED QUOTES": "a quoted field is never closed",
}


def normalize(name: str) -> str:
    """``"Customer ID"`` -> ``customer_id``: lower case, runs of other characters as ``_``."""
    return re.sub(r"[^0-9a-z]+", "_", name.strip().lower()).strip("_")


def internal(i: int) -> str:
    """The reader's name for the file's ``i``-th column."""
    return f"c{i}"


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


def opt(name: str, value: exp.Expr) -> exp.EQ:
    return exp.EQ(this=exp.column(name), expression=value)


def row_number() -> exp.Expr:
    return exp.alias_(exp.Window(this=exp.RowNumber()), "row_number")


def varchar_columns(names: list[str]) -> exp.Struct:
    """DuckDB's ``columns={'a': 'VARCHAR', ...}`` option value."""
    return exp.Struct(
        expressions=[
            exp.PropertyEQ(this=exp.to_identifier(n), expression=exp.Literal.string("VARCHAR"))
            for n in names
        ]
    )


# -- CSV ------------------------------------------------------------------------------------------


def _decoded(handle: BinaryIO, path: Path) -> Iterator[str]:
    """The file's lines as text, one at a time: a line that is not UTF-8 is an error naming it."""
    for number, raw in enumerate(handle, start=1):
        try:
            yield raw.decode("utf-8-sig" if number == 1 else "utf-8")
        except UnicodeDecodeError as err:
            raise LoadError(
                f"{path}: line {number}: the header is not valid UTF-8 ({err.reason} at byte "
                f"{err.start} of the line); expected the file encoded as UTF-8"
            ) from err


def lines_at(path: Path, positions: list[int]) -> dict[int, int]:
    """The line (from 1) each byte position of the file is on, counting its newlines once."""
    found: dict[int, int] = {}
    done, newlines = 0, 0
    with path.open("rb") as handle:
        for position in sorted(set(positions)):
            while done < position:
                chunk = handle.read(min(position - done, 1 << 20))
                if not chunk:
                    break
                newlines += chunk.count(b"\n")
                done += len(chunk)
            found[position] = newlines + 1
    return found


def _csv_header(con: Any, path: Path) -> list[str]:
    check_quotes(con, path)
    with path.open("rb") as handle:
        header = next(csv.reader(_decoded(handle, path)), None)
    if not header:
        raise LoadError(f"{path}: the file is empty; expected a header row naming the columns")
    return [h.strip() for h in header]


def _csv_source(con: Any, path: Path, header: list[str]) -> exp.Select:
    names = [internal(i) for i in range(len(header))]
    read = exp.ReadCSV(
        this=exp.Literal.string(str(path)),
        expressions=[
            opt("header", exp.true()),
            opt("columns", varchar_columns(names + [f"_extra_{i}" for i in range(EXTRA_SLOTS)])),
            opt("delim", exp.Literal.string(",")),
            opt("quote", exp.Literal.string('"')),
            opt("escape", exp.Literal.string('"')),
            opt("null_padding", exp.true()),
            opt("parallel", exp.false()),
            opt("auto_detect", exp.false()),
            opt("store_rejects", exp.true()),
            opt("max_line_size", exp.Literal.number(LINE_LIMIT)),
        ],
    )
    extras = [exp.column(f"_extra_{i}") for i in range(EXTRA_SLOTS)]
    return exp.select(
        row_number(),
        *[exp.column(n) for n in names],
        exp.cast(exp.null(), "varchar").as_("_unreadable"),
        exp.func("coalesce", *extras).as_("_extra"),
        exp.Anonymous(
            this="concat_ws",
            expressions=[exp.Literal.string(","), *[exp.column(n) for n in names]],
        ).as_("_record"),
    ).from_(read)


# -- Lines ----------------------------------------------------------------------------------------


def _line_reader(path: Path) -> exp.Select:
    """The file's lines as ``(row_number, line)``, blank ones too (one column: DuckDB skips blank
    lines of several); unreadable lines go to ``_file_line_errors``. A line holding
    :data:`SEPARATOR` is cut there (no JSON or CSV text has those control characters raw)."""
    read = exp.ReadCSV(
        this=exp.Literal.string(str(path)),
        expressions=[
            opt("header", exp.false()),
            opt("columns", varchar_columns(["line"])),
            opt("delim", exp.Literal.string(SEPARATOR)),
            opt("quote", exp.Literal.string("")),
            opt("escape", exp.Literal.string("")),
            opt("null_padding", exp.true()),
            opt("strict_mode", exp.false()),
            opt("parallel", exp.false()),
            opt("auto_detect", exp.false()),
            opt("max_line_size", exp.Literal.number(LINE_LIMIT)),
            opt("store_rejects", exp.true()),
            opt("rejects_table", exp.Literal.string("_file_line_errors")),
            opt("rejects_scan", exp.Literal.string("_file_line_scans")),
        ],
    )
    return exp.select(row_number(), exp.column("line")).from_(read)


# Constant DuckDB statements over the line reader's reject table (no values are interpolated).
_UNREADABLE_LINES = (
    """create or replace temp table _bad_lines as
       select line as row_number, row_number() over (order by line) as j,
              string_agg(distinct error_type, ', ') as error_type,
              min(csv_line) as record
       from _file_line_errors group by line""",
    """update _file_lines set row_number = _file_lines.row_number + (
         select count(*) from _bad_lines b where b.row_number - b.j < _file_lines.row_number)""",
)


def unreadable_reason(error_type: exp.Expr) -> exp.Expr:
    known = [
        exp.If(this=exp.Literal.string(k), true=exp.Literal.string(v))
        for k, v in UNREADABLE.items()
    ]
    other = exp.func(
        "concat", exp.Literal.string("unreadable line ("), exp.func("lower", error_type),
        exp.Literal.string(")"),
    )  # fmt: skip
    return exp.Case(this=error_type, ifs=known, default=other)


def file_lines(con: Any, path: Path, shape: dict[str, exp.Expr]) -> None:
    """Temp table ``_file_lines(row_number, <shape>, _unreadable)``: every line of the file by its
    line number, as the columns `shape` makes of ``line``; a line the reader cannot read has them
    null (but ``_record``, its text) and its reason in ``_unreadable``."""
    for table in ("_file_line_errors", "_file_line_scans"):
        con.execute(exp.Drop(tables=[exp.to_table(table)], kind="TABLE", exists=True).sql("duckdb"))
    reader = _line_reader(path).subquery("l")
    lines = exp.select(
        exp.column("row_number"), *[e.as_(name) for name, e in shape.items()],
        exp.cast(exp.null(), "varchar").as_("_unreadable"),
    ).from_(reader)  # fmt: skip
    con.execute(
        exp.Create(
            this=exp.to_table("_file_lines"), kind="TABLE", expression=lines, replace=True,
            properties=exp.Properties(expressions=[exp.TemporaryProperty()]),
        ).sql("duckdb")
    )  # fmt: skip
    for statement in _UNREADABLE_LINES:
        con.execute(statement)
    columns = ["row_number", "_unreadable"]
    bad = [exp.column("row_number"), unreadable_reason(exp.column("error_type"))]
    if "_record" in shape:
        columns.append("_record")
        bad.append(exp.func("left", exp.column("record"), exp.Literal.number(RECORD_SHOWN)))
    rows = exp.select(*bad).from_("_bad_lines")
    con.execute(exp.insert(rows, "_file_lines", columns=columns).sql("duckdb"))


def _csv_shape() -> dict[str, exp.Expr]:
    """What the CSV checks keep of a line: how many quotes it has, and whether it is blank."""
    line = exp.column("line")
    without = exp.func("replace", line, exp.Literal.string('"'), exp.Literal.string(""))
    quotes = exp.func("length", line) - exp.func("length", without)
    text = exp.func("coalesce", line, exp.Literal.string(""))
    blank = exp.func("trim", text, exp.func("chr", exp.Literal.number(13)))
    return {
        "quotes": exp.func("coalesce", quotes, exp.Literal.number(0)),
        "is_blank": blank.eq(exp.Literal.string("")),
    }


_OPEN_QUOTE = """
with running as (
    select row_number, quotes,
           coalesce(sum(quotes) over (order by row_number rows between unbounded preceding
                                      and 1 preceding), 0) as before
    from _file_lines where _unreadable is null
)
select (select sum(quotes) from running) % 2 = 1 as unclosed,
       (select max(row_number) from running where before % 2 = 0 and quotes % 2 = 1) as opened_at
"""


def check_quotes(con: Any, path: Path) -> None:
    """Refuse a CSV file whose quotes do not pair up: a quote opened and never closed (or a stray
    quote read as one) would make every later record part of one field, so none of them could be
    told apart; the error names the line of the last quote that opens a field never closed."""
    file_lines(con, path, _csv_shape())
    unclosed, line = con.execute(_OPEN_QUOTE).fetchall()[0]
    if unclosed:
        raise LoadError(
            f"{path}: line {line}: a quote opened on this line is never closed, so the records "
            "after it cannot be told apart; nothing was loaded. Expected every quoted field "
            'closed and a quote inside a field doubled (""); fix the line and load the file again'
        )


# -- JSON Lines -----------------------------------------------------------------------------------


def _json_path(key: str) -> exp.Literal:
    return exp.Literal.string("$." + '"' + key.replace('"', '\\"') + '"')


def _is_object(line: exp.Expr) -> exp.Expr:
    kind = exp.If(this=exp.func("json_valid", line), true=exp.func("json_type", line))
    return exp.func("coalesce", kind.eq(exp.Literal.string("OBJECT")), exp.false())


def _jsonl_source(con: Any, path: Path, header: list[str]) -> exp.Select:
    """One record per line of ``_file_lines`` (:func:`_jsonl_header` made it); blank lines are not
    records. A line that is unreadable, not JSON or not a JSON object is rejected alone."""
    line = exp.column("line")
    is_object = _is_object(line)
    fields = [
        exp.If(this=is_object, true=exp.func("json_extract_string", line, _json_path(key))).as_(
            internal(i)
        )
        for i, key in enumerate(header)
    ]
    why = exp.Case(
        ifs=[
            exp.If(
                this=exp.column("_unreadable").is_(exp.null()).not_(),
                true=exp.column("_unreadable"),
            ),
            exp.If(this=exp.func("json_valid", line).not_(), true=exp.Literal.string("bad JSON")),
            exp.If(
                this=is_object.not_(),
                true=exp.Literal.string("not a JSON object; expected one object {...} per line"),
            ),
        ]
    )
    keep = exp.or_(
        exp.column("_unreadable").is_(exp.null()).not_(),
        exp.func("length", exp.func("trim", line)).neq(0),
    )
    columns = [exp.column("row_number"), *fields, why.as_("_unreadable")]
    columns += [exp.null().as_("_extra"), exp.column("_record")]
    return exp.select(*columns).from_("_file_lines").where(keep)


def _jsonl_header(con: Any, path: Path) -> list[str]:
    """Every key the file's JSON objects use, in the order they first appear."""
    file_lines(con, path, {"line": exp.column("line"), "_record": exp.column("line")})
    line = exp.column("line")
    objects = _is_object(line)
    keys = (
        exp.select(
            exp.column("row_number"),
            exp.Unnest(expressions=[exp.func("json_keys", line)]).as_("key"),
        )
        .from_("_file_lines")
        .where(objects)
        .subquery("k")
    )
    first_seen = (
        exp.select(exp.column("key"))
        .from_(keys)
        .group_by(exp.column("key"))
        .order_by(exp.func("min", exp.column("row_number")), exp.column("key"))
    )
    return [row[0] for row in con.execute(first_seen.sql("duckdb")).fetchall()]


# -- Parquet --------------------------------------------------------------------------------------


def _read_parquet(path: Path) -> exp.Expr:
    return exp.func(
        "read_parquet", exp.Literal.string(str(path)), opt("file_row_number", exp.true())
    )


def _parquet_columns(con: Any, path: Path) -> list[tuple[str, str]]:
    rows = con.execute(
        exp.Describe(this=exp.select("*").from_(_read_parquet(path))).sql("duckdb")
    ).fetchall()
    return [(str(r[0]), str(r[1])) for r in rows if r[0] != "file_row_number"]


def _parquet_header(con: Any, path: Path) -> list[str]:
    return [name for name, _ in _parquet_columns(con, path)]


def _parquet_source(con: Any, path: Path, header: list[str]) -> exp.Select:
    types = dict(_parquet_columns(con, path))

    def as_text(i: int, name: str) -> exp.Expr:
        col = exp.column(exp.to_identifier(name, quoted=True), "_p")
        nested = types[name].upper().startswith(("STRUCT", "MAP")) or types[name].endswith("]")
        value = exp.func("to_json", col) if nested else col
        return exp.cast(value, "varchar").as_(internal(i))

    return exp.select(
        (exp.column("file_row_number") + 1).as_("row_number"),
        *[as_text(i, h) for i, h in enumerate(header)],
        exp.cast(exp.null(), "varchar").as_("_unreadable"),
        exp.null().as_("_extra"),
        exp.cast(exp.func("to_json", exp.column("_p")), "varchar").as_("_record"),
    ).from_(exp.select("*").from_(_read_parquet(path)).subquery("_p"))


Reader = tuple[Callable[[Any, Path], list[str]], Callable[[Any, Path, list[str]], exp.Select]]
READERS: dict[str, Reader] = {
    "csv": (_csv_header, _csv_source),
    "jsonl": (_jsonl_header, _jsonl_source),
    "parquet": (_parquet_header, _parquet_source),
}
