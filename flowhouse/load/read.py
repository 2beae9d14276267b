"""Reading a file: every column of CSV, Parquet or JSON Lines, by name, as text.

A reader gives the file's column names (its header; every key for JSON Lines) and a query with
one text column per name, ``c0``, ``c1``, ... in header order, plus ``row_number``,
``_unreadable`` (why a record could not be read, or null), ``_extra`` (fields past the header) and
``_record`` (the record's text, kept with its rejects). Names are matched later by
:func:`normalize`, so column order and case do not matter.
"""

from __future__ import annotations

import csv
import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

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


def _csv_header(con: Any, path: Path) -> list[str]:
    with path.open(newline="", encoding="utf-8-sig") as handle:
        header = next(csv.reader(handle), None)
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


# -- JSON Lines -----------------------------------------------------------------------------------


def _lines(path: Path) -> exp.Subquery:
    """The file's lines, in order, as ``(row_number, line)``."""
    read = exp.ReadCSV(
        this=exp.Literal.string(str(path)),
        expressions=[
            opt("header", exp.false()),
            opt("columns", varchar_columns(["line"])),
            opt("delim", exp.Literal.string("\x1f")),
            opt("quote", exp.Literal.string("")),
            opt("escape", exp.Literal.string("")),
            opt("parallel", exp.false()),
            opt("auto_detect", exp.false()),
        ],
    )
    return exp.select(row_number(), exp.column("line")).from_(read).subquery("lines")


def _json_path(key: str) -> exp.Literal:
    return exp.Literal.string("$." + '"' + key.replace('"', '\\"') + '"')


def _jsonl_source(con: Any, path: Path, header: list[str]) -> exp.Select:
    line = exp.column("line")
    valid = exp.func("json_valid", line)
    fields = [
        exp.If(this=valid, true=exp.func("json_extract_string", line, _json_path(key))).as_(
            internal(i)
        )
        for i, key in enumerate(header)
    ]
    return (
        exp.select(
            exp.column("row_number"),
            *fields,
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
    """Every key the file's JSON objects use, in the order they first appear."""
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
