"""A store adopts flowhouse in a folder of its own (docs/adopting.md), on DuckDB and PostgreSQL.

``flowhouse init`` writes the project outside this repository; the store's tables (a shop's
customers, orders and products) are mapped onto the canonical inputs by the project's dbt models;
every command runs as its own process from the project's folder, as a user runs it. The store's
own segment (``repeat_buyers``) decides who enters ``repeat_thanks``, the store's own attribute
(``store_is_wholesale``) who enters ``welcome``; the messages reach the fake provider.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from flowhouse.activation.fake.server import running
from flowhouse.core.warehouse import Location, Warehouse

pytestmark = pytest.mark.slow

SHOP = [
    "create schema shop",
    """create table shop.customers (id integer, email varchar(200), phone varchar(40),
        first_name varchar(100), created_at timestamp, updated_at timestamp,
        accepts_email_marketing boolean, accepts_sms_marketing boolean, country_code varchar(2),
        tags varchar(200))""",
    """create table shop.orders (id integer, customer_id integer, created_at timestamp,
        synced_at timestamp, total_price decimal(12, 2), currency varchar(3),
        financial_status varchar(20))""",
    """create table shop.products (sku varchar(40), title varchar(200), handle varchar(200),
        image_src varchar(200), product_type varchar(40), price decimal(12, 2),
        inventory_quantity integer, updated_at timestamp)""",
    """insert into shop.customers values
        (1, 'ann@example.com', null, 'Ann', '2026-10-01 10:00', '2026-10-01 10:00', true, false,
         'US', ''),
        (2, 'bob@example.com', null, 'Bob', '2026-10-20 10:00', '2026-10-20 10:00', true, false,
         'DE', 'wholesale'),
        (3, 'cy@example.com', null, 'Cy', '2026-10-25 09:00', '2026-10-25 09:00', true, false,
         'FR', null)""",
    """insert into shop.orders values
        (10, 1, '2026-10-02 10:00', '2026-10-02 10:05', 50, 'USD', 'paid'),
        (11, 2, '2026-10-21 10:00', '2026-10-21 10:05', 500, 'EUR', 'voided')""",
    """insert into shop.products values
        ('mug', 'Mug', 'mug', null, 'kitchen', 12, 5, '2026-10-01 00:00')""",
]
#: After launch: Ann orders again (a repeat buyer now), Cy orders for the first time, and two
#: customers sign up, one of them a wholesale account.
NEW = [
    """insert into shop.orders values
        (12, 1, '2026-11-02 09:00', '2026-11-02 09:05', 70, 'USD', 'paid'),
        (13, 3, '2026-11-02 09:10', '2026-11-02 09:15', 20, 'USD', 'paid')""",
    """insert into shop.customers values
        (4, 'dee@example.com', null, 'Dee', '2026-11-02 09:20', '2026-11-02 09:20', true, false,
         'US', ''),
        (5, 'eve@example.com', null, 'Eve', '2026-11-02 09:30', '2026-11-02 09:30', true, false,
         'US', 'wholesale,vip')""",
]


def flowhouse(project: Path, *args: str, env: dict[str, str]) -> str:
    """``flowhouse ARGS`` run from the project's folder, as a user runs it."""
    done = subprocess.run(
        [sys.executable, "-m", "flowhouse.cli", *args],
        cwd=project,
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )
    assert done.returncode == 0, f"flowhouse {' '.join(args)}:\n{done.stdout}\n{done.stderr}"
    return done.stdout


@pytest.fixture(params=["duckdb", pytest.param("postgres", marks=pytest.mark.postgres)])
def warehouse(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "postgres":
        return str(request.getfixturevalue("pg_url"))
    return str(tmp_path / "shop" / "warehouse.duckdb")


def test_a_store_project_from_init_to_sent_messages(warehouse: str, tmp_path: Path) -> None:
    env = {**os.environ, "FLOWHOUSE_WAREHOUSE": warehouse, "SENDGRID_API_KEY": "SG.test-key"}
    env.pop("FLOWHOUSE_PROJECT", None)
    env.pop("FLOWHOUSE_FLOWS", None)
    created = flowhouse(tmp_path, "init", "shop", "--title", "Mugs & Co", env=env)
    project = tmp_path / "shop"
    assert "created the flowhouse project shop" in created
    location = Location.parse(warehouse)
    with Warehouse.open(location) as wh:
        for statement in SHOP:
            wh.execute(statement)

    assert "0 problem(s)" in flowhouse(project, "validate", env=env)
    flowhouse(project, "tick", "--now", "2026-11-01T12:00:00", "--no-send", env=env)
    with Warehouse.open(location) as wh:
        for statement in NEW:
            wh.execute(statement)
        attributes = dict(
            wh.query("select customer_id, store_is_wholesale from core.customer_attributes")
        )
    assert attributes == {"1": False, "2": True, "3": False}

    with running() as fake:
        url = ("--provider-url", fake.url)
        flowhouse(project, "tick", "--now", "2026-11-02T12:00:00", *url, env=env)
        flowhouse(project, "tick", "--now", "2026-11-03T12:30:00", "--no-build", *url, env=env)
        received = {(m.address, m.subject) for m in fake.state.messages()}

    with Warehouse.open(location) as wh:
        entries = wh.query(
            "select flow_id, customer_id, outcome, reason from flowhouse.decisions"
            " where step_id = '_entry'"
        )
        members = wh.query("select customer_id, segment from core.segment_members")
        messages = wh.query("select customer_id, step_id, status from flowhouse.messages")
    # the store's segment: Ann (two orders) is a repeat buyer, Cy (one) is not
    assert sorted(members) == [("1", "repeat_buyers")]
    enrolled = {(f, c) for f, c, outcome, _ in entries if outcome == "enrolled"}
    refused = {(f, c): reason for f, c, outcome, reason in entries if outcome == "refused"}
    assert ("repeat_thanks", "1") in enrolled
    assert refused[("repeat_thanks", "3")] == "audience"
    # the store's attribute: Eve's wholesale account is not welcomed, Dee is
    assert ("welcome", "4") in enrolled
    assert ("welcome", "5") not in enrolled
    # every message ended sent or held out, and each sent one reached the provider
    by_status = {(c, s): status for c, s, status in messages}
    assert set(by_status) == {("4", "hello"), ("1", "thanks")}
    assert set(by_status.values()) <= {"sent", "held_out"}
    expected = {
        ("dee@example.com", "Welcome to Mugs & Co"),
        ("ann@example.com", "Thank you for coming back"),
    }
    addresses = {"4": "dee@example.com", "1": "ann@example.com"}
    assert {a for a, _ in received} == {
        addresses[c] for (c, _), status in by_status.items() if status == "sent"
    }
    assert received <= expected

    report = flowhouse(project, "report", "--out", "report", env=env)
    assert "wrote" in report
    page = (project / "report" / "index.html").read_text()
    assert "Thanks, repeat buyers" in page

    # the project's Dagster code location loads: its dbt assets include the store's models
    if location.dialect == "duckdb":
        prepared = subprocess.run(
            [sys.executable, "-m", "flowhouse.orchestration.dagster.prepare"],
            cwd=project, env=env, capture_output=True, text=True, check=False,
        )  # fmt: skip
        assert prepared.returncode == 0, prepared.stderr
        assert str(project / "target-duckdb" / "manifest.json") in prepared.stdout
        home = tmp_path / "dagster_home"
        home.mkdir()
        dagster = Path(sys.executable).parent / "dagster"
        done = subprocess.run(
            [str(dagster), "definitions", "validate", "-f", "definitions.py"],
            cwd=project, env={**env, "DAGSTER_HOME": str(home)},
            capture_output=True, text=True, check=False,
        )  # fmt: skip
        assert done.returncode == 0, done.stdout + done.stderr
        manifest = (project / "target-duckdb" / "manifest.json").read_text()
        assert "model.shop.seg_repeat_buyers" in manifest
