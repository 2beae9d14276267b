"""A store's own files: columns by name in any order and case, stores' exports through mappings,
event properties typed at the door, and every reject shown up to a limit."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from click.testing import CliRunner

from flowhouse.cli import cli
from flowhouse.core.errors import LoadError
from flowhouse.core.warehouse import Location, Warehouse
from flowhouse.load import load_file

FIXTURES = Path(__file__).parent / "fixtures"


def write(tmp_path: Path, name: str, *lines: str) -> Path:
    path = tmp_path / name
    path.write_text("\n".join(lines) + "\n")
    return path


def rows(location: Location, sql: str) -> list[tuple[Any, ...]]:
    with Warehouse.open(location) as wh:
        return [tuple(r) for r in wh.query(sql)]


def props(value: Any) -> Any:
    return json.loads(value) if isinstance(value, str) else value


def seed(location: Location, tmp_path: Path) -> None:
    path = write(
        tmp_path, "seed.csv", "customer_id,email,created_at,updated_at",
        "c1,ana@example.com,2026-01-01,2026-01-01",
    )  # fmt: skip
    assert load_file(location, "customers", path).rows_loaded == 1


# (case, header, row): the same customer however the columns are laid out
CUSTOMER_LAYOUTS = [
    ("contract order", "customer_id,email,phone,first_name,created_at,updated_at",
     "c2,bo@example.com,+14155550100,Bo,2026-01-01,2026-01-02"),
    ("extra column at the end", "customer_id,email,phone,first_name,created_at,updated_at,total_spent",
     "c2,bo@example.com,+14155550100,Bo,2026-01-01,2026-01-02,99.50"),
    ("extra column in the middle", "customer_id,first_name,last_name,email,phone,created_at,updated_at",
     "c2,Bo,Lopez,bo@example.com,+14155550100,2026-01-01,2026-01-02"),
    ("any order and case", "Updated_At,PHONE,Email,First Name,Customer ID,created_at",
     "2026-01-02,+14155550100,bo@example.com,Bo,c2,2026-01-01"),
]  # fmt: skip


@pytest.mark.parametrize(("case", "header", "row"), CUSTOMER_LAYOUTS, ids=[c[0] for c in CUSTOMER_LAYOUTS])  # fmt: skip
def test_customer_columns_are_read_by_name(
    tmp_path: Path, tmp_warehouse: Location, case: str, header: str, row: str
) -> None:
    report = load_file(tmp_warehouse, "customers", write(tmp_path, "c.csv", header, row))
    assert (report.rows_loaded, report.rows_rejected) == (1, 0), report.describe()
    found = rows(tmp_warehouse, "select customer_id, email, phone, first_name, properties from raw.customers")  # fmt: skip
    assert found[0][:4] == ("c2", "bo@example.com", "+14155550100", "Bo")
    extra = {"total_spent": "99.50"} if "total_spent" in header else {}
    extra |= {"last_name": "Lopez"} if "last_name" in header else {}
    assert (props(found[0][4]) or {}) == extra


@pytest.mark.parametrize("fmt", ["csv", "jsonl", "parquet"])
@pytest.mark.parametrize("contact", ["email", "phone"])
def test_a_single_channel_store_loads_customers(
    tmp_path: Path, tmp_warehouse: Location, fmt: str, contact: str
) -> None:
    value = "ana@example.com" if contact == "email" else "+14155550100"
    record = {"customer_id": "c1", contact: value, "created_at": "2026-01-01", "updated_at": "2026-01-01"}  # fmt: skip
    path = tmp_path / f"c.{fmt}"
    if fmt == "csv":
        write(tmp_path, path.name, ",".join(record), ",".join(record.values()))
    elif fmt == "jsonl":
        write(tmp_path, path.name, json.dumps(record))
    else:
        pq.write_table(pa.table({k: [v] for k, v in record.items()}), path)
    report = load_file(tmp_warehouse, "customers", path)
    assert (report.rows_loaded, report.rows_rejected) == (1, 0)
    other = "phone" if contact == "email" else "email"
    assert rows(tmp_warehouse, f"select {contact}, {other} from raw.customers") == [(value, None)]


def test_extra_event_columns_go_to_properties_typed(
    tmp_path: Path, tmp_warehouse: Location
) -> None:
    seed(tmp_warehouse, tmp_path)
    path = write(
        tmp_path, "e.csv", "Event_Type,event_id,query,customer_id,occurred_at,results_count,channel_hint",
        "searched,e1,boots,c1,2026-09-01,3,web",
    )  # fmt: skip
    report = load_file(tmp_warehouse, "events", path)
    assert (report.rows_loaded, report.kept_in_properties) == (1, ["query", "results_count", "channel_hint"])  # fmt: skip
    found = rows(tmp_warehouse, "select event_type, properties from raw.events")
    assert found[0][0] == "searched"
    assert props(found[0][1]) == {"query": "boots", "results_count": 3.0, "channel_hint": "web"}


def test_products_report_unknown_columns(tmp_path: Path, tmp_warehouse: Location) -> None:
    path = write(tmp_path, "p.csv", "sku,supplier,price,updated_at", "s1,Acme,9.50,2026-01-01")
    report = load_file(tmp_warehouse, "products", path)
    assert (report.rows_loaded, report.ignored_columns) == (1, ["supplier"])
    assert rows(tmp_warehouse, "select sku, price from raw.products")[0][0] == "s1"
    assert float(rows(tmp_warehouse, "select price from raw.products")[0][0]) == 9.5


ORDER = '{""order_id"": ""o1"", ""subtotal"": 10, ""discount"": 0, ""shipping"": 0, ""value"": VALUE, ""currency"": ""EUR"", ""lines"": []}'  # fmt: skip
# (case, event_type, properties (CSV-quoted), field, reason fragment)
BAD_PROPERTIES = [
    ("number as text with a comma", "order_placed", ORDER.replace("VALUE", '""12,50""'), "properties.value", "not number"),
    ("missing required property", "order_placed", ORDER.replace(', ""value"": VALUE', ""), "properties.value", "missing required property value"),
    ("malformed timestamp", "order_shipped", '{""order_id"": ""o1"", ""estimated_delivery_at"": ""soon""}', "properties.estimated_delivery_at", "not timestamp"),
    ("list expected", "checkout_started", '{""cart_id"": ""k"", ""value"": 1, ""currency"": ""EUR"", ""lines"": ""s1""}', "properties.lines", "not list"),
    ("boolean expected", "customer_created", '{""wholesale"": ""maybe""}', "properties.wholesale", "not boolean"),
]  # fmt: skip


@pytest.mark.parametrize(("case", "event_type", "properties", "field", "reason"), BAD_PROPERTIES, ids=[c[0] for c in BAD_PROPERTIES])  # fmt: skip
def test_event_properties_are_typed_at_the_door(
    tmp_path: Path, tmp_warehouse: Location, case: str, event_type: str, properties: str,
    field: str, reason: str,
) -> None:  # fmt: skip
    seed(tmp_warehouse, tmp_path)
    path = write(
        tmp_path, "e.csv", "event_id,customer_id,event_type,occurred_at,properties",
        f'e1,c1,order_placed,2026-09-01,"{ORDER.replace("VALUE", "10")}"',
        f'e2,c1,{event_type},2026-09-01,"{properties}"',
        'e3,c1,loyalty_signup,2026-09-01,"{""value"": ""anything""}"',  # a store's own type
        'e4,c1,searched,2026-09-01,"{""query"": ""x"", ""undeclared"": [1]}"',
    )  # fmt: skip
    report = load_file(tmp_warehouse, "events", path)
    assert (report.rows_loaded, report.rows_rejected) == (3, 1), report.describe()
    found = rows(tmp_warehouse, "select row_number, field, reason, action from raw.rejects")
    assert [(r[0], r[1], r[3]) for r in found] == [(2, field, "rejected")]
    assert reason in found[0][2]
    assert sorted(r[0] for r in rows(tmp_warehouse, "select event_id from raw.events")) == ["e1", "e3", "e4"]  # fmt: skip


def test_shopify_exports(tmp_path: Path, tmp_warehouse: Location) -> None:
    customers = load_file(tmp_warehouse, "customers", FIXTURES / "shopify_customers.csv", mapping="shopify")  # fmt: skip
    assert (customers.rows_loaded, customers.rows_rejected, customers.fields_dropped) == (4, 0, 1)
    found = rows(tmp_warehouse, "select customer_id, email, phone, first_name, country, email_opt_in, sms_opt_in, properties from raw.customers order by 1")  # fmt: skip
    assert [r[:7] for r in found] == [
        ("7001", "ana@example.com", "+34600111222", "Ana", "ES", True, False),
        ("7002", "bo@example.com", None, "Bo", "SE", False, False),
        ("7003", None, "+14155550100", "Cy", "US", False, True),
        ("7004", "di@example.com", None, "Di", "DE", True, False),  # phone 555-0100 dropped
    ]
    assert props(found[0][7])["last_name"] == "Lopez"
    assert props(found[1][7])["note"] == 'likes "socks"'
    assert props(found[2][7])["tags"] == "sms, wholesale"
    orders = load_file(tmp_warehouse, "events", FIXTURES / "shopify_orders.csv", mapping="shopify")
    assert (orders.rows_read, orders.rows_loaded, orders.rows_rejected) == (3, 1, 2)
    assert [(r.row_number, r.field) for r in orders.rejects] == [
        (3, "properties.value"),  # "12,50"
        (4, "customer_id"),  # cy@example.com is no customer's address
    ]
    event = rows(tmp_warehouse, "select event_id, customer_id, event_type, occurred_at, properties from raw.events")  # fmt: skip
    assert event[0][:3] == ("shopify-order-5550001", "7001", "order_placed")
    assert event[0][3].hour == 9  # 10:00 +0100 in UTC
    p = props(event[0][4])
    assert {
        k: p[k]
        for k in (
            "order_id",
            "subtotal",
            "discount",
            "shipping",
            "value",
            "currency",
            "coupon_code",
        )
    } == {
        "order_id": "#1001",
        "subtotal": 50,
        "discount": 10,
        "shipping": 5,
        "value": 45,
        "currency": "EUR",
        "coupon_code": "SPRING",
    }
    assert p["lines"] == [
        {"sku": "SOCK-1", "name": "Wool socks", "quantity": 2, "price": 15},
        {"sku": "HAT-1", "name": "Beanie", "quantity": 1, "price": 20},
    ]


def test_woocommerce_exports(tmp_path: Path, tmp_warehouse: Location) -> None:
    customers = load_file(tmp_warehouse, "customers", FIXTURES / "woocommerce_customers.csv", mapping="woocommerce")  # fmt: skip
    assert (customers.rows_loaded, customers.rows_rejected, customers.fields_dropped) == (2, 1, 1)
    found = rows(tmp_warehouse, "select customer_id, email, phone, first_name, country, created_at, properties from raw.customers order by 1")  # fmt: skip
    assert [r[:5] for r in found] == [
        ("11", "ana@example.com", "+34600111222", "Ana", "ES"),
        ("12", None, "+46701234567", "Bo", "SE"),  # e-mail not-an-address dropped
    ]
    assert props(found[0][6])["billing_city"] == "Madrid"
    orders = load_file(tmp_warehouse, "events", FIXTURES / "woocommerce_orders.csv", mapping="woocommerce")  # fmt: skip
    assert (orders.rows_loaded, orders.rows_rejected) == (2, 1)
    assert [(r.row_number, r.field) for r in orders.rejects] == [(3, "occurred_at")]
    events = rows(tmp_warehouse, "select event_id, customer_id, properties from raw.events order by 1")  # fmt: skip
    assert [e[:2] for e in events] == [("woocommerce-order-501", "11"), ("woocommerce-order-502", "12")]  # fmt: skip
    first = props(events[0][2])
    assert (first["order_id"], first["value"], first["discount"], first["currency"]) == ("501", 45, 10, "EUR")  # fmt: skip
    assert first["lines"] == [
        {"sku": "SOCK-1", "name": "Wool socks", "quantity": 2, "price": 15},
        {"sku": "HAT-1", "name": "Beanie", "quantity": 1, "price": 20},
    ]


def test_a_store_writes_its_own_mapping(tmp_path: Path, tmp_warehouse: Location) -> None:
    mapping = write(
        tmp_path, "mine.yml", "customers:", "  columns:", "    customer_id: Kundennummer",
        "    email: {sql: \"lower(\\\"E-Mail\\\")\"}", "    created_at: Angelegt", "    updated_at: Angelegt",
    )  # fmt: skip
    path = write(tmp_path, "k.csv", "Kundennummer,E-Mail,Angelegt", "k1,ANA@Example.com,2026-01-01")
    report = load_file(tmp_warehouse, "customers", path, mapping=str(mapping))
    assert report.rows_loaded == 1
    assert rows(tmp_warehouse, "select customer_id, email from raw.customers") == [("k1", "ana@example.com")]  # fmt: skip


MAPPING_ERRORS = [
    ("unknown mapping", "magento", "no mapping 'magento'"),
    (
        "no such source column",
        "customers:\n  columns:\n    customer_id: Kunde\n",
        "no column 'Kunde'",
    ),
    (
        "no such canonical column",
        "customers:\n  columns:\n    shoe_size: id\n",
        "no canonical column shoe_size",
    ),
    ("bad key", "customers:\n  colums: {}\n", "colums"),
    ("no section", "products:\n  columns: {}\n", "no customers section"),
]


@pytest.mark.parametrize(("case", "mapping", "message"), MAPPING_ERRORS, ids=[c[0] for c in MAPPING_ERRORS])  # fmt: skip
def test_mapping_errors_are_located(
    tmp_path: Path, tmp_warehouse: Location, case: str, mapping: str, message: str
) -> None:
    path = write(tmp_path, "c.csv", "id,created_at,updated_at", "1,2026-01-01,2026-01-01")
    if "\n" in mapping:
        mapping = str(write(tmp_path, "m.yml", mapping))
    with pytest.raises(LoadError, match=message):
        load_file(tmp_warehouse, "customers", path, mapping=mapping)


def test_cli_shows_rejects_up_to_a_limit(tmp_path: Path, tmp_warehouse: Location) -> None:
    lines = [f"c{i},bad{i},2026-01-01,2026-01-01" for i in range(30)]
    path = write(tmp_path, "c.csv", "customer_id,email,created_at,updated_at", *lines)
    result = CliRunner().invoke(
        cli, ["load", "customers", str(path), "--warehouse", str(tmp_warehouse), "--show", "5"]
    )
    assert result.exit_code == 2
    shown = [line for line in result.stdout.splitlines() if "invalid e-mail" in line]
    assert len(shown) == 5
    assert "and 25 more in raw.rejects (load id " in result.stdout
    assert "30 loaded" in result.stdout


@pytest.mark.postgres
def test_store_files_into_postgres(tmp_path: Path, pg_url: str) -> None:
    location = Location.parse(pg_url)
    with Warehouse.open(location) as wh:
        wh.ensure_raw_tables()
        for table in ("events", "customers", "rejects"):
            wh.execute(f"delete from raw.{table}")
        wh.commit()
    phone_only = write(tmp_path, "c.csv", "Customer ID,Phone,created_at,updated_at", "p1,+14155550100,2026-01-01,2026-01-01")  # fmt: skip
    assert load_file(location, "customers", phone_only).rows_loaded == 1
    shopify = load_file(location, "customers", FIXTURES / "shopify_customers.csv", mapping="shopify")  # fmt: skip
    assert (shopify.rows_loaded, shopify.fields_dropped) == (4, 1)
    assert rows(location, "select action from raw.rejects") == [("field_dropped",)]
    orders = load_file(location, "events", FIXTURES / "shopify_orders.csv", mapping="shopify")
    assert (orders.rows_loaded, orders.rows_rejected) == (1, 2)
    assert rows(location, "select customer_id, properties->>'value' from raw.events") == [("7001", "45.0")]  # fmt: skip
