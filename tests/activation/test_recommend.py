"""Recommendations computed in the warehouse, and how templates see them.

A small store is built as plain tables (no dbt): the catalog (``staging.stg_products``), order lines
(``staging.stg_order_lines``), ``core.product_interest``, the engine's enrollments and a claimed
batch of messages. ``now`` is 2026-03-01 00:00; the expectations below are worked out by hand from
the rows, and each test runs on DuckDB and (with FLOWHOUSE_TEST_POSTGRES_URL) on PostgreSQL.
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Mapping, Sequence
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest
from harness import PRODUCT_INTEREST
from sending import CATALOG_TABLES
from sqlglot import exp

from flowhouse.activation.recommend import (
    Product,
    Recommendations,
    blend,
    catalog,
    recommendations,
)
from flowhouse.core.contract import ColumnType
from flowhouse.core.paths import FLOWS
from flowhouse.core.sql import literal
from flowhouse.core.state import TABLES, ensure_state
from flowhouse.core.warehouse import Dialect, Location, Warehouse, column_type, create_table
from flowhouse.flows.flowfile import Flow, Message
from flowhouse.flows.settings import Settings, Store
from flowhouse.flows.templating import LAYOUT, check_template, render, render_context

Columns = Sequence[tuple[str, ColumnType, bool]]

NOW = datetime(2026, 3, 1)
CLAIMED = "claimed_batch"

# The tables as the sending scenarios and the engine's harness define them.
PRODUCTS: Columns = CATALOG_TABLES["staging.stg_products"]
ORDER_LINES: Columns = CATALOG_TABLES["staging.stg_order_lines"]
INTEREST: Columns = PRODUCT_INTEREST

CLAIMED_COLUMNS: Columns = (
    ("message_id", "text", True),
    ("customer_id", "text", True),
    ("enrollment_id", "text", True),
)

# sku -> (price, inventory_qty): B is sold out, C's stock is unknown (counts as in stock).
CATALOG = {
    "A": (10, 5), "B": (20, 0), "C": (30, None), "D": (40, 3),
    "E": (50, 1), "F": (60, 2), "G": (70, 9), "H": (80, 4),
}  # fmt: skip

# order -> (customer, ordered_at, [(sku, quantity)]). Lines are paid 1.00 whatever the catalog says.
ORDERS = {
    "o1": ("c9", "2026-02-20 10:00", [("A", 1), ("D", 1), ("H", 1)]),
    "o2": ("c8", "2026-02-21 10:00", [("A", 1), ("H", 2)]),
    "o3": ("c7", "2026-02-22 10:00", [("A", 1), ("E", 1)]),
    "o4": ("c7", "2026-01-30 00:00", [("G", 1), ("B", 1)]),  # the first moment of the 30 days
    "o5": ("c6", "2026-01-29 23:59:59", [("G", 5), ("E", 1)]),  # just before them
    "o6": ("c6", "2026-03-01 00:00", [("G", 1), ("H", 1)]),  # at now: not yet counted
    "o7": ("c5", "2025-10-01 00:00", [("A", 1), ("F", 1)]),  # within 180 days
    "o8": ("c5", "2025-09-01 23:00", [("A", 1), ("D", 1)]),  # before the 180 days (09-02)
    "o9": ("c4", "2026-02-10 10:00", [("F", 3), ("C", 1)]),
}

# (customer, sku, viewed, carted, ordered)
INTEREST_ROWS = [
    ("c1", "D", "2026-02-27 10:00", None, None),
    ("c1", "E", "2026-02-26 10:00", None, None),
    ("c1", "F", "2026-02-26 10:00", None, None),  # same time as E: E first (sku)
    ("c1", "B", "2026-02-28 10:00", None, None),  # sold out
    ("c1", "C", "2026-02-20 10:00", None, None),  # stock unknown: in stock
    ("c1", "G", None, "2026-02-28 12:00", None),  # carted, never viewed
    ("c1", "Z", "2026-02-28 11:00", None, None),  # not in the catalog
    ("c1", "H", "2026-03-02 10:00", None, None),  # viewed after now
    ("c5", "A", "2025-09-01 12:00", None, "2025-10-01 00:00"),  # ordered after the view
    ("c5", "D", "2025-09-10 10:00", None, "2025-09-01 23:00"),  # ordered before the view
    ("c5", "F", "2025-10-01 00:00", None, "2025-10-01 00:00"),  # ordered at the view
    ("c3", "G", "2026-02-01 10:00", None, None),
]

# message -> (customer, the enrollment's trigger_properties)
MESSAGES: dict[str, tuple[str, Any]] = {
    "m1": ("c1", {"cart_id": "k1", "lines": [{"sku": "A", "quantity": 1, "price": 10}]}),
    "m2": ("c5", {"sku": "A", "views": 3}),  # a catalog or browse event: one sku
    "m3": ("c2", {"order_id": "o0", "lines": [{"sku": "A"}, {"sku": "D"}]}),
    "m4": ("c3", {"cart_id": "k4", "lines": [{"sku": "G", "quantity": 2}]}),
    "m5": ("c0", {"cart_id": "k5", "lines": []}),  # no history at all
    "m6": ("c1", {"days_inactive": 90}),  # c1 again, with a trigger without products
    "m7": ("c2", None),
}


# -- the store -----------------------------------------------------------------------------------


def _value(value: Any, kind: ColumnType, dialect: Dialect) -> exp.Expr:
    if value is None:
        return exp.cast(exp.null(), column_type(kind, dialect))
    if kind == "json":
        return exp.cast(exp.Literal.string(json.dumps(value)), column_type(kind, dialect))
    if kind == "timestamp" and isinstance(value, str):
        value = datetime.fromisoformat(value)
    return exp.cast(literal(value), column_type(kind, dialect))


def insert(wh: Warehouse, table: str, columns: Columns, rows: Sequence[Mapping[str, Any]]) -> None:
    kinds = {name: kind for name, kind, _ in columns}
    names = list(rows[0])
    values = [tuple(_value(r[n], kinds[n], wh.dialect) for n in names) for r in rows]
    wh.execute(exp.insert(exp.values(values), exp.to_table(table), columns=names))


def product(sku: str) -> Product:
    return {
        "sku": sku,
        "name": f"Product {sku}",
        "url": f"https://shop.example/{sku}",
        "image_url": f"https://img.example/{sku}.jpg",
        "price": float(CATALOG[sku][0]),
    }


def build_store(wh: Warehouse) -> None:
    for schema in ("staging", "core"):
        wh.ensure_schema(schema)
    for table, columns in [
        ("staging.stg_products", PRODUCTS),
        ("staging.stg_order_lines", ORDER_LINES),
        ("core.product_interest", INTEREST),
    ]:
        wh.execute(create_table(table, columns, wh.dialect))
    ensure_state(wh, "flowhouse")
    insert(wh, "staging.stg_products", PRODUCTS, [
        {**product(sku), "price": price, "inventory_qty": qty}
        for sku, (price, qty) in CATALOG.items()
    ])  # fmt: skip
    insert(wh, "staging.stg_order_lines", ORDER_LINES, [
        {"order_id": order, "line_number": n, "customer_id": customer, "sku": sku,
         "quantity": quantity, "price": 1, "ordered_at": at}
        for order, (customer, at, lines) in ORDERS.items()
        for n, (sku, quantity) in enumerate(lines, start=1)
    ])  # fmt: skip
    insert(wh, "core.product_interest", INTEREST, [
        {"customer_id": c, "sku": s, "last_viewed_at": v, "last_carted_at": k,
         "last_ordered_at": o, "last_interest_at": max(t for t in (v, k) if t)}
        for c, s, v, k, o in INTEREST_ROWS
    ])  # fmt: skip
    insert(wh, "flowhouse.enrollments", TABLES["enrollments"], [
        {"enrollment_id": f"e{m}", "flow_id": "f", "flow_version": "v1", "customer_id": c,
         "trigger_event_id": f"ev{m}", "trigger_type": "x", "trigger_properties": props,
         "entered_at": "2026-02-28 00:00", "enrolled_at_tick": "2026-02-28 00:00",
         "is_holdout": False, "status": "active", "updated_at_tick": "2026-02-28 00:00"}
        for m, (c, props) in MESSAGES.items()
    ])  # fmt: skip
    wh.commit()


def claim(wh: Warehouse, messages: Sequence[str]) -> str:
    """The claimed batch as a temp table, as the sender fills it."""
    wh.execute(f"drop table if exists {CLAIMED}")
    table = create_table(CLAIMED, CLAIMED_COLUMNS, wh.dialect)
    table.set("exists", False)
    wh.execute("create temp " + wh.render(table).removeprefix("CREATE "))
    if messages:
        insert(wh, CLAIMED, CLAIMED_COLUMNS, [
            {"message_id": m, "customer_id": MESSAGES[m][0], "enrollment_id": f"e{m}"}
            for m in messages
        ])  # fmt: skip
    return CLAIMED


def open_store(location: Location) -> Warehouse:
    wh = Warehouse.open(location)
    build_store(wh)
    return wh


@pytest.fixture(params=["duckdb", pytest.param("postgres", marks=pytest.mark.postgres)])
def wh(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Warehouse]:
    if request.param == "postgres":
        location = Location.parse(request.getfixturevalue("pg_url"))
    else:
        location = Location.parse(str(tmp_path / "store.duckdb"))
    warehouse = open_store(location)
    try:
        yield warehouse
    finally:
        warehouse.close()


def skus(products: Sequence[Product]) -> list[str]:
    return [p["sku"] for p in products]


def compute(wh: Warehouse, limit: int = 10) -> dict[str, Recommendations]:
    return recommendations(wh, claim(wh, list(MESSAGES)), NOW, limit=limit)


# -- the three lists -----------------------------------------------------------------------------


def test_every_claimed_message_gets_an_entry(wh: Warehouse) -> None:
    found = compute(wh)
    assert sorted(found) == sorted(MESSAGES)
    assert found["m5"]["recently_viewed"] == []
    assert found["m5"]["complementary"] == []


def test_recently_viewed_latest_first_in_stock_not_ordered_since(wh: Warehouse) -> None:
    found = compute(wh)
    # c1: D (02-27), then E and F (both 02-26, by sku), then C (stock unknown); B sold out, G only
    # carted, Z not in the catalog, H viewed after now
    assert skus(found["m1"]["recently_viewed"]) == ["D", "E", "F", "C"]
    assert skus(found["m6"]["recently_viewed"]) == ["D", "E", "F", "C"]  # same customer
    # c5: A ordered after its view and F at it; D ordered before the view is still of interest
    assert skus(found["m2"]["recently_viewed"]) == ["D"]
    assert skus(found["m4"]["recently_viewed"]) == ["G"]
    assert found["m3"]["recently_viewed"] == []


def test_popular_counts_orders_of_the_last_30_days_in_stock(wh: Warehouse) -> None:
    found = compute(wh)
    # orders from 01-30 00:00 (o4 in, o5 out) to before now (o6 out): A 3, H 2, F 1 of 3 units,
    # then C (stock unknown), D, E, G 1 order of 1 unit each, by sku; B (o4) is sold out
    expected = ["A", "H", "F", "C", "D", "E", "G"]
    assert all(skus(r["popular"]) == expected for r in found.values())


def test_complementary_counts_shared_orders_of_the_last_180_days(wh: Warehouse) -> None:
    found = compute(wh)
    # orders with A since 09-02: o1 (D, H), o2 (H), o3 (E), o7 (F); o8 (D) is older
    assert skus(found["m1"]["complementary"]) == ["H", "D", "E", "F"]
    # the same for c5 without what c5 ever bought: F (o7) and D (o8, older than the window)
    assert skus(found["m2"]["complementary"]) == ["H", "E"]
    # A and D are the trigger's own; H shares o1 with both and o2 with A: 2 orders
    assert skus(found["m3"]["complementary"]) == ["H", "E", "F"]
    # G: o4 (B sold out) and o5 (E); o6 (H) is at now
    assert skus(found["m4"]["complementary"]) == ["E"]
    assert found["m6"]["complementary"] == []  # no products in the trigger
    assert found["m7"]["complementary"] == []  # no trigger properties


def test_limit_and_catalog_values(wh: Warehouse) -> None:
    found = recommendations(wh, claim(wh, ["m1", "m2"]), NOW)
    assert sorted(found) == ["m1", "m2"]
    assert skus(found["m1"]["popular"]) == ["A", "H", "F", "C"]
    assert skus(found["m1"]["complementary"]) == ["H", "D", "E", "F"]
    # the catalog's price and links, not what the order lines were paid
    assert found["m1"]["recently_viewed"][0] == product("D")
    assert found["m2"]["complementary"] == [product("H"), product("E")]
    assert isinstance(found["m1"]["popular"][0]["price"], float)  # JSON-ready, not a Decimal
    json.dumps(found)
    two = recommendations(wh, claim(wh, ["m1", "m2"]), NOW, limit=2)
    assert two["m1"] == {
        "recently_viewed": [product("D"), product("E")],
        "popular": [product("A"), product("H")],
        "complementary": [product("H"), product("D")],
    }
    # m2 shares m1's trigger sku; c5 bought D, so the next one (E) takes its place
    assert skus(two["m2"]["complementary"]) == ["H", "E"]


def test_an_empty_batch(wh: Warehouse) -> None:
    assert recommendations(wh, claim(wh, []), NOW) == {}


def test_catalog_lookup(wh: Warehouse) -> None:
    everything = catalog(wh)
    assert sorted(everything) == sorted(CATALOG)  # sold-out products too
    assert everything["B"] == product("B")
    assert catalog(wh, {"A", "Z"}) == {"A": product("A")}
    assert catalog(wh, set()) == {}


@pytest.mark.postgres
def test_postgres_gives_the_same_answers(pg_url: str, tmp_path: Path) -> None:
    answers = []
    for location in (str(tmp_path / "store.duckdb"), pg_url):
        warehouse = open_store(Location.parse(location))
        try:
            answers.append((compute(warehouse, limit=3), catalog(warehouse)))
        finally:
            warehouse.close()
    assert answers[0] == answers[1]
    assert answers[0][0]["m1"]["complementary"]  # not trivially equal


# -- blending ------------------------------------------------------------------------------------


def _recs(complementary: str = "", recently_viewed: str = "", popular: str = "") -> Recommendations:
    return {
        "complementary": [product(s) for s in complementary],
        "recently_viewed": [product(s) for s in recently_viewed],
        "popular": [product(s) for s in popular],
    }


@pytest.mark.parametrize(
    ("recs", "limit", "expected"),
    [
        (_recs("DE", "HD", "ADCE"), 4, "DEHA"),
        (_recs("", "", "ADCE"), 4, "ADCE"),
        (_recs("DEFH", "C", "A"), 4, "DEFH"),
        (_recs("D", "D", "D"), 4, "D"),
        (_recs("", "CG", "AC"), 2, "CG"),
        (_recs(), 4, ""),
    ],
)
def test_blend(recs: Recommendations, limit: int, expected: str) -> None:
    assert skus(blend(recs, limit=limit)) == list(expected)


def test_blend_of_the_store(wh: Warehouse) -> None:
    found = compute(wh, limit=4)
    assert skus(blend(found["m2"])) == ["H", "E", "D", "A"]
    assert skus(blend(found["m5"])) == ["A", "H", "F", "C"]


# -- templates -----------------------------------------------------------------------------------

LOOP = "{% for p in recommendations.popular %}{{ p.name }};{% endfor %}"


def _context(**overrides: Any) -> dict[str, Any]:
    flow = Flow.model_validate(
        {"flow": "cart", "name": "Cart", "trigger": {"event": "cart_abandoned"},
         "steps": [{"id": "s", "send": {"channel": "sms", "template": "t/x.txt.j2"}}]}
    )  # fmt: skip
    return render_context(
        flow=flow,
        step_id="s",
        message=Message.model_validate({"channel": "sms", "template": "t/x.txt.j2"}),
        settings=Settings(store=Store(name="Acme", url="https://acme.example", postal_address="1")),
        customer={},
        event={},
        links={},
        **overrides,
    )


@pytest.fixture
def templates(tmp_path: Path) -> Path:
    folder = tmp_path / "templates"
    (folder / "t").mkdir(parents=True)
    (folder / LAYOUT).write_text((FLOWS / "templates" / LAYOUT).read_text())
    return folder


def test_templates_render_recommendations(wh: Warehouse, templates: Path) -> None:
    (templates / "t" / "x.txt.j2").write_text(LOOP)
    found = recommendations(wh, claim(wh, ["m2"]), NOW)["m2"]
    context = _context(recommendations=found, products=blend(found))
    assert render(templates, "t/x.txt.j2", context) == "Product A;Product H;Product F;Product C;"
    assert [p["sku"] for p in context["products"]] == ["H", "E", "D", "A"]


def test_recommendations_default_to_empty_lists(templates: Path) -> None:
    (templates / "t" / "x.txt.j2").write_text(LOOP + "{{ recommendations.complementary | length }}")
    context = _context()
    assert context["recommendations"] == {"recently_viewed": [], "popular": [], "complementary": []}
    assert render(templates, "t/x.txt.j2", context) == "0"


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (LOOP, []),
        ("{% for p in recommendations.recently_viewed[:2] %}{{ p.url }}{% endfor %}", []),
        ("{% set p = recommendations['complementary'][0] %}{{ p.price }}", []),
        ("{{ recommendations.popualr }}",
         ["t/x.txt.j2:1: unknown attribute recommendations.popualr; did you mean popular?"]),
        ("{% for p in recommendations.popualr %}{{ p.name }}{% endfor %}",
         ["t/x.txt.j2:1: unknown attribute recommendations.popualr; did you mean popular?"]),
        ("{% for p in recommendations.complementary %}\n{{ p.nmae }}{% endfor %}",
         ["t/x.txt.j2:2: unknown attribute p.nmae; did you mean name?"]),
        ("{% set p = recommendations.popular[0] %}{{ p.prise }}",
         ["t/x.txt.j2:1: unknown attribute p.prise; did you mean price?"]),
    ],
)  # fmt: skip
def test_check_template_knows_the_recommendations(
    templates: Path, text: str, expected: list[str]
) -> None:
    (templates / "t" / "x.txt.j2").write_text(text)
    assert check_template(templates, "t/x.txt.j2", has_coupon=False, channel="sms") == expected
