"""Hostile data files: every record ends loaded or rejected with its reason, or the file is refused.

Each case is a file of events for one known customer and its exact outcome: the counts (read =
loaded + rejected) with each reject's row, field and reason, or the located error that refuses the
whole file (a CSV quote that never closes: the records after it cannot be told apart).
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

import duckdb
import pytest
from click.testing import CliRunner

from flowhouse.cli import cli
from flowhouse.core.errors import LoadError
from flowhouse.core.warehouse import Location, Warehouse
from flowhouse.load import load_file
from flowhouse.load.read import LINE_LIMIT

NOW = datetime(2026, 9, 2, 12, 0)  # the load's clock
HEADER = b"event_id,customer_id,event_type,occurred_at,loaded_at,properties\n"
FUTURE = "in the future: later than 2026-09-03 12:00:00 UTC, 24 hours past the load's clock"
MALFORMED = "malformed CSV record at line "
NOT_UTF8 = "not valid UTF-8; expected the file encoded as UTF-8"
TOO_LONG = f"longer than {LINE_LIMIT} bytes, the limit for one line"
NOT_OBJECT = "not a JSON object; expected one object {...} per line"
NEVER_CLOSED = "a quote opened on this line is never closed"


def row(event_id: str, props: str = "{}", occurred: str = "2026-09-01", loaded: str = "") -> bytes:
    return f"{event_id},c1,customer_created,{occurred},{loaded or occurred},{props}\n".encode()


def obj(event_id: str, **extra: object) -> dict[str, object]:
    return {"event_id": event_id, "customer_id": "c1", "event_type": "customer_created",
            "occurred_at": "2026-09-01T10:00:00Z", "properties": {}} | extra  # fmt: skip


def line(event_id: str, **extra: object) -> bytes:
    return json.dumps(obj(event_id, **extra)).encode() + b"\n"


@dataclass(frozen=True)
class Case:
    name: str
    file: str
    data: bytes
    counts: tuple[int, int, int] | None  # read, loaded, rejected; None: the file is refused
    rejects: list[tuple[int, str | None, str]] = field(default_factory=list)  # row, field, reason
    loaded: list[str] = field(default_factory=list)  # event ids in raw.events
    refused: str = ""  # a fragment of the error that refuses the file


NESTED = b'"properties": {"deep": ' + b"[" * 5000 + b"]" * 5000 + b"}"
CASES = [
    # CSV --------------------------------------------------------------------------------------
    Case("csv unterminated quote (the issue's file)", "e.csv",
         HEADER + row("e1") + row("e2", '"{""a"": 1}') + row("e3") + row("e4") + row("e5"),
         None, refused=f"line 3: {NEVER_CLOSED}"),
    Case("csv unterminated quote closed by a later one", "e.csv",
         HEADER + row("e1") + row("e2", '"{""a"": 1}') + row("e3", '"{}') + row("e4") + row("e5"),
         None, refused="line 3 (record 2, 'e2,c1,"),
    Case("csv lone stray quote in a field", "e.csv",
         HEADER + row("e1") + b'e2,c"1,customer_created,2026-09-01,2026-09-01,{}\n' + row("e3"),
         None, refused=f"line 3: {NEVER_CLOSED}"),
    Case("csv text after a closing quote", "e.csv",
         HEADER + row("e1") + row("e2", '"{}"x') + row("e3"),
         (3, 2, 1), [(2, None, MALFORMED + "3: text after a closing quote")], ["e1", "e3"]),
    Case("csv embedded newlines in quotes", "e.csv",
         HEADER + row("e1", '"{\n""a"":\r\n 1}"') + row("e2") + row("e3", "x"),
         (3, 2, 1), [(3, "properties", "bad JSON")], ["e1", "e2"]),
    Case("csv byte order mark", "e.csv", b"\xef\xbb\xbf" + HEADER + row("e1"), (1, 1, 0),
         loaded=["e1"]),
    Case("csv NUL byte", "e.csv", HEADER + row("e1") + row("e2", "{}\x00") + row("e3"),
         (3, 2, 1), [(2, None, "a NUL character in the record"), (2, "properties", "bad JSON")],
         ["e1", "e3"]),
    Case("csv latin-1 record", "e.csv",
         HEADER + row("e1") + row("e2").replace(b"{}", b'"{""n"": ""caf\xe9""}"') + row("e3"),
         (3, 2, 1), [(2, None, MALFORMED + "3: " + NOT_UTF8)], ["e1", "e3"]),
    Case("csv latin-1 header", "e.csv", HEADER.replace(b"properties", b"propri\xe9t\xe9s") + row("e1"),
         None, refused="line 1: the header is not valid UTF-8"),
    Case("csv ragged rows", "e.csv",
         HEADER + b"e1,c1\n" + row("e2").replace(b"\n", b",surplus\n") + row("e3"),
         (3, 1, 2), [(1, "event_type", "missing event_type"), (1, "occurred_at", "missing occurred_at"),
                     (2, None, "more fields than the header names")], ["e3"]),
    Case("csv record over the line limit", "e.csv",
         HEADER + row("e1") + row("e2", '"' + "x" * LINE_LIMIT + '"') + row("e3"),
         (3, 2, 1), [(2, None, MALFORMED + "3: " + TOO_LONG)], ["e1", "e3"]),
    Case("csv blank lines are not records", "e.csv",
         HEADER + row("e1") + b"\n\n" + row("e2", '"{}"x') + b"\n" + row("e3", "x"),
         (3, 1, 2), [(2, None, MALFORMED + "5: text after a closing quote"), (3, "properties", "bad JSON")],
         ["e1"]),
    # JSON Lines -------------------------------------------------------------------------------
    Case("jsonl line over the limit", "e.jsonl",
         line("e1") + line("e2", properties={"x": "y" * LINE_LIMIT}) + line("e3"),
         (3, 2, 1), [(2, None, TOO_LONG)], ["e1", "e3"]),
    Case("jsonl invalid UTF-8", "e.jsonl",
         line("e1") + line("e2", properties={"n": "cafX"}).replace(b"cafX", b"caf\xe9") + line("e3"),
         (3, 2, 1), [(2, None, NOT_UTF8)], ["e1", "e3"]),
    Case("jsonl truncated last line", "e.jsonl", line("e1") + line("e2")[:30], (2, 1, 1),
         [(2, None, "bad JSON")], ["e1"]),
    Case("jsonl values that are not objects", "e.jsonl",
         line("e1") + b"[1, 2]\n" + b'"e2"\n' + b"42\n" + b"null\n" + line("e3"),
         (6, 2, 4), [(n, None, NOT_OBJECT) for n in (2, 3, 4, 5)], ["e1", "e3"]),
    Case("jsonl deeply nested properties", "e.jsonl",
         line("e1") + line("e2").replace(b'"properties": {}', NESTED), (2, 2, 0),
         loaded=["e1", "e2"]),
    Case("jsonl escaped NUL", "e.jsonl", line("e1") + line("e2", properties={"n": "a\x00b"}),
         (2, 1, 1), [(2, None, "a NUL character in the record")], ["e1"]),
    Case("jsonl blank lines keep line numbers", "e.jsonl",
         line("e1") + b"\n   \n" + b"{oops\n" + line("e2"), (3, 2, 1), [(4, None, "bad JSON")],
         ["e1", "e2"]),
    Case("jsonl escaped control characters in a value", "e.jsonl",
         line("e1", properties={"note": "a\x1f\x1e\x1d\x1cb"}), (1, 1, 0), loaded=["e1"]),
    Case("jsonl raw control characters in a value", "e.jsonl",
         line("e1") + b'{"event_id": "e2", "x": "a\x1f\x1e\x1d\x1cb"}\n', (2, 1, 1),
         [(2, None, "bad JSON")], ["e1"]),
    # Timestamps from the future ---------------------------------------------------------------
    Case("loaded_at in 2099", "e.csv", HEADER + row("e1") + row("e2", loaded="2099-01-01"),
         (2, 1, 1), [(2, "loaded_at", FUTURE)], ["e1"]),
    Case("occurred_at past the tolerance", "e.jsonl",
         line("e1", occurred_at="2026-09-03T11:59:00Z") + line("e2", occurred_at="2026-09-03T14:00:00+02:00")
         + line("e3", occurred_at="2026-09-03T12:00:01Z"),
         (3, 2, 1), [(3, "occurred_at", FUTURE)], ["e1", "e2"]),
]  # fmt: skip


def seed(location: Location, tmp_path: Path) -> None:
    customers = tmp_path / "customers.csv"
    customers.write_text(
        "customer_id,email,created_at,updated_at\nc1,a@example.com,2026-01-01,2026-01-01\n"
    )
    assert load_file(location, "customers", customers, now=NOW).rows_loaded == 1


@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
def test_every_record_is_loaded_or_rejected(
    tmp_path: Path, tmp_warehouse: Location, case: Case
) -> None:
    check(tmp_warehouse, tmp_path, case)


ON_POSTGRES = [c for c in CASES if "NUL" in c.name or "UTF-8" in c.name or "unterminated" in c.name
               or "2099" in c.name or "over the" in c.name]  # fmt: skip


@pytest.mark.postgres
@pytest.mark.parametrize("case", ON_POSTGRES, ids=[c.name for c in ON_POSTGRES])
def test_every_record_is_loaded_or_rejected_on_postgres(
    tmp_path: Path, pg_url: str, case: Case
) -> None:
    check(Location.parse(pg_url), tmp_path, case)


def check(location: Location, tmp_path: Path, case: Case) -> None:
    tmp_warehouse = location
    seed(tmp_warehouse, tmp_path)
    path = tmp_path / case.file
    path.write_bytes(case.data)
    if case.counts is None:
        with pytest.raises(LoadError, match=r"nothing was loaded|not valid UTF-8") as err:
            load_file(tmp_warehouse, "events", path, now=NOW)
        assert case.refused in str(err.value) and str(path) in str(err.value)
        with Warehouse.open(tmp_warehouse) as wh:
            assert wh.count("raw.events") == 0
        return
    report = load_file(tmp_warehouse, "events", path, now=NOW)
    assert (report.rows_read, report.rows_loaded, report.rows_rejected) == case.counts
    assert report.rows_read == report.rows_loaded + report.rows_rejected
    with Warehouse.open(tmp_warehouse) as wh:
        found = wh.query(
            "select row_number, field, reason from raw.rejects order by 1, 2 nulls first"
        )
        ids = [r[0] for r in wh.query("select event_id from raw.events order by 1")]
    assert len(found) == len(case.rejects), found
    for (n, f, reason), (want_n, want_f, want) in zip(found, case.rejects, strict=True):
        assert (n, f) == (want_n, want_f) and reason.startswith(want), (n, f, reason)
    assert ids == case.loaded


def test_parquet_with_wrong_types(tmp_path: Path, tmp_warehouse: Location) -> None:
    seed(tmp_warehouse, tmp_path)
    path = tmp_path / "e.parquet"
    duckdb.connect().execute(
        f"""copy (select 'e' || i as event_id, 'c1' as customer_id, 'customer_created' as event_type,
                  case when i = 1 then 20260901 else null end as occurred_at, 12 as properties
            from range(3) t(i)) to '{path}' (format parquet)"""
    )
    report = load_file(tmp_warehouse, "events", path, now=NOW)
    assert (report.rows_read, report.rows_loaded, report.rows_rejected) == (3, 0, 3)
    with Warehouse.open(tmp_warehouse) as wh:
        found = wh.query("select row_number, field, reason from raw.rejects order by 1, 2, 3")
    assert [(n, f) for n, f, _ in found] == [
        (1, "occurred_at"), (1, "properties"),
        (2, "occurred_at"), (2, "properties"),
        (3, "occurred_at"), (3, "properties"),
    ]  # fmt: skip


def test_cli_refuses_an_unterminated_quote_without_traceback(
    tmp_path: Path, tmp_warehouse: Location
) -> None:
    path = tmp_path / "e.csv"
    path.write_bytes(CASES[0].data)
    result = CliRunner().invoke(
        cli, ["load", "events", str(path), "--warehouse", str(tmp_warehouse)]
    )
    assert result.exit_code == 1, result.output
    assert result.output.startswith(f"Error: {path}: line 3: {NEVER_CLOSED}")
    assert "Traceback" not in result.output
