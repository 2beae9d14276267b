"""The loader: every bad row is rejected with its row, field and reason; every good row is kept."""

from __future__ import annotations

import json
from pathlib import Path

import duckdb
import pytest
from click.testing import CliRunner

from flowhouse.cli import cli
from flowhouse.core.errors import LoadError
from flowhouse.core.warehouse import Location, Warehouse
from flowhouse.load import load_file

CUSTOMERS_HEADER = (
    "customer_id,email,phone,first_name,created_at,timezone,country,birthday,"
    "email_opt_in,sms_opt_in,properties,updated_at"
)
GOOD_CUSTOMER = "c1,ana@example.com,+14155550100,Ana,2026-01-01,Europe/Berlin,DE,1990-02-28,true,false,{},2026-01-01"
EVENTS_HEADER = "event_id,customer_id,event_type,occurred_at,loaded_at,properties"


def write(tmp_path: Path, name: str, *lines: str) -> Path:
    path = tmp_path / name
    path.write_text("\n".join(lines) + "\n")
    return path


def rejects(location: Location) -> list[tuple[int, str | None, str]]:
    with Warehouse.open(location) as wh:
        rows = wh.query(
            "select row_number, field, reason from raw.rejects order by 1, 2 nulls first"
        )
    return [(int(r[0]), r[1], r[2]) for r in rows]


def seed_customers(location: Location, tmp_path: Path) -> None:
    report = load_file(
        location, "customers", write(tmp_path, "c.csv", CUSTOMERS_HEADER, GOOD_CUSTOMER)
    )
    assert report.rows_loaded == 1


# (case, bad line, field, reason fragment)
BAD_EVENTS = [
    ("missing id", ",c1,order_placed,2026-09-01,2026-09-01,{}", "event_id", "missing event_id"),
    ("bad timestamp", "e9,c1,order_placed,yesterday,2026-09-01,{}", "occurred_at", "unparsable timestamp"),
    ("unknown customer", "e9,c404,order_placed,2026-09-01,2026-09-01,{}", "customer_id", "unknown customer"),
    ("missing customer", "e9,,order_placed,2026-09-01,2026-09-01,{}", "customer_id", "missing customer_id"),
    ("bad json", 'e9,c1,order_placed,2026-09-01,2026-09-01,"{""a"": "', "properties", "bad JSON"),
    ("json not an object", 'e9,c1,order_placed,2026-09-01,2026-09-01,"[1, 2]"', "properties", "not a JSON object"),
    ("bad event type", "e9,c1,Order Placed!,2026-09-01,2026-09-01,{}", "event_type", "snake_case"),
    ("too many fields", "e9,c1,order_placed,2026-09-01,2026-09-01,{},surplus", None, "more fields"),
    ("too few fields", "e9,c1", "event_type", "missing event_type"),
]  # fmt: skip


@pytest.mark.parametrize(
    ("case", "line", "field", "reason"), BAD_EVENTS, ids=[c[0] for c in BAD_EVENTS]
)
def test_bad_event_rows_are_rejected_and_good_rows_kept(
    tmp_path: Path, tmp_warehouse: Location, case: str, line: str, field: str | None, reason: str
) -> None:
    seed_customers(tmp_warehouse, tmp_path)
    path = write(
        tmp_path, "events.csv", EVENTS_HEADER,
        'e1,c1,customer_created,2026-09-01T10:00:00Z,2026-09-01T10:00:05Z,"{""query"": ""boots""}"',
        line,
        'e2,,price_changed,2026-09-01,2026-09-01,"{""sku"": ""s1"", ""price"": 5}"',
    )  # fmt: skip
    report = load_file(tmp_warehouse, "events", path)
    assert (report.rows_read, report.rows_loaded, report.rows_rejected) == (3, 2, 1)
    found = [(row, f, r) for row, f, r in rejects(tmp_warehouse)]
    assert any(row == 2 and f == field and reason in r for row, f, r in found), found
    with Warehouse.open(tmp_warehouse) as wh:
        assert sorted(r[0] for r in wh.query("select event_id from raw.events")) == ["e1", "e2"]


# (case, bad line, field, reason fragment, action): a bad optional field is dropped and the
# customer kept; a bad required field rejects the row.
BAD_CUSTOMERS = [
    ("invalid email", "c2,not-an-email,,Bo,2026-01-01,,US,,true,false,{},2026-01-01", "email", "e-mail", "field_dropped"),
    ("invalid phone", "c2,bo@example.com,555-0100,Bo,2026-01-01,,US,,true,false,{},2026-01-01", "phone", "E.164", "field_dropped"),
    ("bad date", "c2,bo@example.com,,Bo,2026-01-01,,US,1990-13-01,true,false,{},2026-01-01", "birthday", "unparsable date", "field_dropped"),
    ("bad boolean", "c2,bo@example.com,,Bo,2026-01-01,,US,,maybe,false,{},2026-01-01", "email_opt_in", "boolean", "field_dropped"),
    ("unknown time zone", "c2,bo@example.com,,Bo,2026-01-01,Mars/Olympus,US,,true,false,{},2026-01-01", "timezone", "time zone", "field_dropped"),
    ("bad country", "c2,bo@example.com,,Bo,2026-01-01,,USA,,true,false,{},2026-01-01", "country", "ISO 3166", "field_dropped"),
    ("missing created_at", "c2,bo@example.com,,Bo,,,US,,true,false,{},2026-01-01", "created_at", "missing", "rejected"),
    ("bad updated_at", "c2,bo@example.com,,Bo,2026-01-01,,US,,true,false,{},someday", "updated_at", "unparsable", "rejected"),
]  # fmt: skip


@pytest.mark.parametrize(
    ("case", "line", "field", "reason", "action"), BAD_CUSTOMERS, ids=[c[0] for c in BAD_CUSTOMERS]
)
def test_bad_customer_fields_are_dropped_or_rows_rejected(
    tmp_path: Path, tmp_warehouse: Location, case: str, line: str, field: str, reason: str,
    action: str,
) -> None:  # fmt: skip
    report = load_file(
        tmp_warehouse, "customers", write(tmp_path, "c.csv", CUSTOMERS_HEADER, GOOD_CUSTOMER, line)
    )
    kept = action == "field_dropped"
    assert (report.rows_loaded, report.rows_rejected, report.fields_dropped) == (
        (2, 0, 1) if kept else (1, 1, 0)
    )
    with Warehouse.open(tmp_warehouse) as wh:
        found = wh.query("select row_number, field, reason, action from raw.rejects")
        assert [(r[0], r[1], r[3]) for r in found if reason in r[2]] == [(2, field, action)]
        if kept:
            row = wh.query(
                f"select {field}, first_name, email from raw.customers where customer_id = 'c2'"
            )
            assert row[0][0] is None and row[0][1] == "Bo"
            assert row[0][2] == (None if field == "email" else "bo@example.com")


def test_loading_events_twice_changes_nothing(tmp_path: Path, tmp_warehouse: Location) -> None:
    seed_customers(tmp_warehouse, tmp_path)
    path = write(
        tmp_path, "e.csv", EVENTS_HEADER, "e1,c1,customer_created,2026-09-01,2026-09-01,{}"
    )
    first = load_file(tmp_warehouse, "events", path)
    second = load_file(tmp_warehouse, "events", path)
    assert (first.rows_loaded, first.rows_unchanged) == (1, 0)
    assert (second.rows_loaded, second.rows_unchanged) == (0, 1)
    with Warehouse.open(tmp_warehouse) as wh:
        assert wh.count("raw.events") == 1
        assert wh.count("raw.loads") == 3


def test_duplicate_event_ids_in_one_file_keep_the_first(
    tmp_path: Path, tmp_warehouse: Location
) -> None:
    seed_customers(tmp_warehouse, tmp_path)
    path = write(
        tmp_path, "e.csv", EVENTS_HEADER,
        "e1,c1,customer_created,2026-09-01,2026-09-01,{}",
        "e1,c1,customer_created,2026-09-02,2026-09-02,{}",
    )  # fmt: skip
    report = load_file(tmp_warehouse, "events", path)
    assert (report.rows_loaded, report.rows_rejected) == (1, 1)
    assert rejects(tmp_warehouse) == [
        (2, "event_id", "duplicate event_id in the file; row 1 came first and was kept")
    ]


def test_customers_are_upserted_newest_wins(tmp_path: Path, tmp_warehouse: Location) -> None:
    seed_customers(tmp_warehouse, tmp_path)
    newer = GOOD_CUSTOMER.replace("Ana,", "Anna,").replace(",2026-01-01\n", "").rsplit(",", 1)[0]
    older = GOOD_CUSTOMER.replace("Ana,", "Old,").rsplit(",", 1)[0]
    path = write(tmp_path, "c2.csv", CUSTOMERS_HEADER, newer + ",2026-02-01", older + ",2025-01-01")
    report = load_file(tmp_warehouse, "customers", path)
    assert report.rows_rejected == 1  # the older duplicate in the same file
    assert report.rows_loaded == 1
    with Warehouse.open(tmp_warehouse) as wh:
        assert wh.query("select first_name from raw.customers") == [("Anna",)]
    stale = write(tmp_path, "c3.csv", CUSTOMERS_HEADER, older + ",2025-01-01")
    again = load_file(tmp_warehouse, "customers", stale)
    assert (again.rows_loaded, again.rows_unchanged) == (0, 1)


def test_timestamps_with_offsets_are_stored_in_utc(tmp_path: Path, tmp_warehouse: Location) -> None:
    seed_customers(tmp_warehouse, tmp_path)
    path = write(
        tmp_path,
        "e.csv",
        EVENTS_HEADER,
        "e1,c1,customer_created,2026-09-01T10:00:00+02:00,2026-09-01T08:00:01Z,{}",
    )
    load_file(tmp_warehouse, "events", path)
    with Warehouse.open(tmp_warehouse) as wh:
        occurred, loaded = wh.query("select occurred_at, loaded_at from raw.events")[0]
    assert (occurred.hour, loaded.hour) == (8, 8)


def test_missing_loaded_at_column_means_now(tmp_path: Path, tmp_warehouse: Location) -> None:
    seed_customers(tmp_warehouse, tmp_path)
    path = write(
        tmp_path,
        "e.csv",
        "event_id,customer_id,event_type,occurred_at",
        "e1,c1,customer_created,2026-09-01",
    )
    assert load_file(tmp_warehouse, "events", path).rows_loaded == 1
    with Warehouse.open(tmp_warehouse) as wh:
        assert wh.scalar("select loaded_at > occurred_at from raw.events")


def test_jsonl_reports_line_numbers_and_bad_json(tmp_path: Path, tmp_warehouse: Location) -> None:
    seed_customers(tmp_warehouse, tmp_path)
    good = {"event_id": "e1", "customer_id": "c1", "event_type": "order_placed",
            "occurred_at": "2026-09-01T10:00:00Z", "loaded_at": "2026-09-01T10:00:01Z",
            "properties": {"order_id": "o1", "subtotal": 10, "discount": 0, "shipping": 0,
                           "value": 10, "currency": "EUR", "lines": [{"sku": "s1", "quantity": 1}]}}  # fmt: skip
    path = write(
        tmp_path, "e.jsonl", json.dumps(good), "{not json", json.dumps({**good, "event_id": "e2"})
    )
    report = load_file(tmp_warehouse, "events", path)
    assert (report.rows_loaded, report.rows_rejected) == (2, 1)
    assert rejects(tmp_warehouse) == [(2, None, "bad JSON")]
    with Warehouse.open(tmp_warehouse) as wh:
        props = wh.scalar(
            "select properties->>'$.lines[0].sku' from raw.events where event_id = 'e1'"
        )
    assert props == "s1"


def test_parquet(tmp_path: Path, tmp_warehouse: Location) -> None:
    seed_customers(tmp_warehouse, tmp_path)
    path = tmp_path / "e.parquet"
    con = duckdb.connect()
    con.execute(
        f"""copy (select 'e' || i as event_id, case when i = 3 then 'nobody' else 'c1' end as customer_id,
                  'product_viewed' as event_type, timestamp '2026-09-01' + i * interval 1 minute as occurred_at,
                  timestamp '2026-09-01 01:00' as loaded_at, {{'sku': 's' || i}} as properties
            from range(5) t(i)) to '{path}' (format parquet)"""
    )
    report = load_file(tmp_warehouse, "events", path)
    assert (report.rows_read, report.rows_loaded, report.rows_rejected) == (5, 4, 1)
    assert rejects(tmp_warehouse) == [(4, "customer_id", "unknown customer; load customers first")]


def test_unusable_files_raise_located_errors(tmp_path: Path, tmp_warehouse: Location) -> None:
    with pytest.raises(LoadError, match="missing required column"):
        load_file(tmp_warehouse, "events", write(tmp_path, "e.csv", "id,type", "1,x"))
    with pytest.raises(LoadError, match="cannot tell the format"):
        load_file(tmp_warehouse, "events", write(tmp_path, "e.txt", "x"))
    with pytest.raises(LoadError, match="no such file"):
        load_file(tmp_warehouse, "events", tmp_path / "absent.csv")


def test_cli_reports_rejects_and_exits_2(tmp_path: Path, tmp_warehouse: Location) -> None:
    path = write(
        tmp_path,
        "c.csv",
        CUSTOMERS_HEADER,
        GOOD_CUSTOMER,
        "c2,bad,,Bo,2026-01-01,,US,,1,0,{},2026-01-01",
    )
    result = CliRunner().invoke(
        cli, ["load", "customers", str(path), "--warehouse", str(tmp_warehouse)]
    )
    assert result.exit_code == 2, result.output
    assert "2 loaded" in result.stdout and "1 with a field dropped" in result.stdout
    assert (
        "row 2: email = 'bad': invalid e-mail address (row kept without this field)"
        in result.stdout
    )
    assert "c.csv: read 2 rows" in result.stderr  # progress goes to stderr


def test_cli_error_without_traceback(tmp_path: Path, tmp_warehouse: Location) -> None:
    result = CliRunner().invoke(
        cli, ["load", "events", str(tmp_path / "none.csv"), "--warehouse", str(tmp_warehouse)]
    )
    assert result.exit_code == 1
    assert result.output.startswith("Error: ") and "Traceback" not in result.output


@pytest.mark.postgres
def test_load_into_postgres(tmp_path: Path, pg_url: str) -> None:
    location = Location.parse(pg_url)
    seed_customers(location, tmp_path)
    path = write(
        tmp_path, "e.csv", EVENTS_HEADER,
        'e1,c1,loyalty_signup,2026-09-01T10:00:00+02:00,2026-09-01,"{""value"": 5}"',
        "e2,c404,customer_created,2026-09-01,2026-09-01,{}",
    )  # fmt: skip
    report = load_file(location, "events", path)
    assert (report.rows_loaded, report.rows_rejected) == (1, 1)
    assert rejects(location) == [(2, "customer_id", "unknown customer; load customers first")]
    assert load_file(location, "events", path).rows_unchanged == 1
    with Warehouse.open(location) as wh:
        occurred, value = wh.query("select occurred_at, properties->>'value' from raw.events")[0]
    assert (occurred.hour, value) == (8, "5")


def test_malformed_csv_record_is_rejected_and_later_rows_keep_their_numbers(
    tmp_path: Path, tmp_warehouse: Location
) -> None:
    seed_customers(tmp_warehouse, tmp_path)
    path = write(
        tmp_path, "e.csv", EVENTS_HEADER,
        "e1,c1,customer_created,2026-09-01,2026-09-01,{}",
        'e2,c1,customer_created,2026-09-01,2026-09-01,"{""a"": "b"}"',
        "e3,c1,customer_created,2026-09-01,2026-09-01,{}",
        "e4,c404,customer_created,2026-09-01,2026-09-01,{}",
    )  # fmt: skip
    report = load_file(tmp_warehouse, "events", path)
    assert (report.rows_read, report.rows_loaded, report.rows_rejected) == (4, 2, 2)
    found = rejects(tmp_warehouse)
    assert found[0][0] == 2 and found[0][2].startswith("malformed CSV record")
    assert found[1] == (4, "customer_id", "unknown customer; load customers first")


def test_jsonl_columns_come_from_every_line(tmp_path: Path, tmp_warehouse: Location) -> None:
    seed_customers(tmp_warehouse, tmp_path)
    first = {
        "event_id": "e1",
        "customer_id": "c1",
        "event_type": "searched",
        "occurred_at": "2026-09-01",
        "Properties": {"query": "socks"},
    }
    later = {**first, "event_id": "e2", "Properties": {"query": "boots"}, "extra_key": 1}
    path = write(tmp_path, "e.jsonl", json.dumps(first), json.dumps(later))
    report = load_file(tmp_warehouse, "events", path)
    assert (report.rows_loaded, report.kept_in_properties) == (2, ["extra_key"])
    assert "columns kept in properties: extra_key" in report.describe()
    with Warehouse.open(tmp_warehouse) as wh:
        found = wh.query("select event_id, properties from raw.events order by 1")
    assert [(e, json.loads(p) if isinstance(p, str) else p) for e, p in found] == [
        ("e1", {"query": "socks"}),
        ("e2", {"query": "boots", "extra_key": "1"}),
    ]
