"""Corrections (``flowhouse events retract``) and GDPR erasure (``flowhouse erase``) end to end
through the CLI, with the real dbt, the engine and the fake provider, on DuckDB and PostgreSQL."""

from __future__ import annotations

import csv
import json
import textwrap
from collections.abc import Iterator
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner, Result

from flowhouse.activation.fake.server import FakeProvider, running
from flowhouse.activation.fake.settings import FakeSettings
from flowhouse.cli import cli
from flowhouse.core.warehouse import Warehouse

T0 = datetime(2026, 3, 2, 10, 0)

SETTINGS = """
store: {name: Test, url: https://shop.example, timezone: UTC, postal_address: 1 Main St}
smart_sending: {}
delivery:
  sendgrid: {lookup_delay: 0s}
lists: [newsletter]
"""

FLOW = """
flow: cart_test
name: Cart test
trigger: {event: cart_abandoned}
entry: {reentry: always, concurrent: true}
holdout: 0%
steps:
  - id: reminder
    send: {channel: email, template: t.html.j2, subject: "Hi {{ customer.first_name }}"}
"""

SYNC = """
sync: newsletter_to_ads
name: Newsletter audience
source: {list: newsletter}
fields: {email: email, phone: phone}
destination:
  audience: {audience: newsletter_ads}
mode: mirror
"""

TEMPLATE = (
    '<p>Hi {{ customer.first_name }}</p><a href="{{ store.url | with_utm }}">shop</a>'
    '<a href="{{ links.unsubscribe }}">unsubscribe</a> {{ sender.postal_address }}'
)

ERASED = {"id": "cust_erase_7q", "email": "erase.me@example.com", "phone": "+14155550123"}
KEPT = {"id": "cust_keep_3k", "email": "keep@example.com", "phone": "+14155550999"}


def run(*args: str) -> Result:
    result = CliRunner().invoke(cli, list(args))
    return result


def ok(*args: str) -> Result:
    result = run(*args)
    assert result.exit_code == 0, result.output
    return result


def at(moment: datetime) -> str:
    return moment.isoformat()


def write_csv(path: Path, rows: list[dict[str, Any]]) -> Path:
    with path.open("w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    return path


def customer_row(who: dict[str, str]) -> dict[str, Any]:
    return {
        "customer_id": who["id"], "email": who["email"], "phone": who["phone"],
        "first_name": "Robin", "created_at": at(T0 - timedelta(days=30)), "timezone": "UTC",
        "email_opt_in": "true", "sms_opt_in": "true",
        "updated_at": at(T0 - timedelta(days=30)),
    }  # fmt: skip


def event(event_id: str, who: str, kind: str, when: datetime, **props: Any) -> dict[str, Any]:
    return {
        "event_id": event_id, "customer_id": who, "event_type": kind, "occurred_at": at(when),
        "loaded_at": at(when), "properties": json.dumps(props),
    }  # fmt: skip


def cart(event_id: str, who: str, cart_id: str, when: datetime) -> dict[str, Any]:
    return event(event_id, who, "added_to_cart", when, cart_id=cart_id, sku="SKU1", quantity=1,
                 price=40.0)  # fmt: skip


@pytest.fixture(params=["duckdb", pytest.param("postgres", marks=pytest.mark.postgres)])
def warehouse(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "postgres":
        return str(request.getfixturevalue("pg_url"))
    return str(tmp_path / "store.duckdb")


@pytest.fixture
def fake(tmp_path: Path) -> Iterator[FakeProvider]:
    settings = FakeSettings(inbox=tmp_path / "inbox", record_dir=tmp_path / "received")
    with running(settings) as provider:
        yield provider


@pytest.fixture
def flows(tmp_path: Path) -> Path:
    folder = tmp_path / "flows"
    (folder / "templates").mkdir(parents=True)
    (folder / "syncs").mkdir()
    (folder / "_settings.yml").write_text(textwrap.dedent(SETTINGS))
    (folder / "cart_test.yml").write_text(textwrap.dedent(FLOW))
    (folder / "syncs" / "newsletter_to_ads.yml").write_text(textwrap.dedent(SYNC))
    (folder / "templates" / "t.html.j2").write_text(TEMPLATE)
    return folder


class Shop:
    """The store under test: its warehouse, flows folder and the fake provider."""

    def __init__(self, warehouse: str, flows: Path, fake: FakeProvider, folder: Path) -> None:
        self.warehouse, self.flows, self.fake, self.folder = warehouse, flows, fake, folder

    def load(self, kind: str, rows: list[dict[str, Any]], name: str) -> Result:
        path = write_csv(self.folder / f"{name}.csv", rows)
        return ok("load", kind, str(path), "--warehouse", self.warehouse)

    def tick(self, moment: datetime) -> Result:
        return ok("tick", "--warehouse", self.warehouse, "--flows", str(self.flows),
                  "--now", at(moment), "--provider-url", self.fake.url)  # fmt: skip

    def sync(self, moment: datetime) -> Result:
        return ok("sync", "--warehouse", self.warehouse, "--flows", str(self.flows),
                  "--now", at(moment), "--provider-url", self.fake.url)  # fmt: skip

    def marts(self, moment: datetime) -> list[tuple[Any, ...]]:
        """The flow performance totals, from the marts built at `moment`."""
        ok("build", "--warehouse", self.warehouse, "--flows", str(self.flows), "--select",
           "tag:marts", "--skip-tests", "--now", at(moment))  # fmt: skip
        return self.query(
            "select sum(triggered), sum(enrolled), sum(exited), sum(messages_queued), "
            "sum(messages_skipped) from marts.flow_daily"
        )

    def query(self, sql: str) -> list[tuple[Any, ...]]:
        with Warehouse.open(self.warehouse) as wh:
            return wh.query(sql)

    def enrollments(self, customer: str) -> int:
        found = self.query(
            f"select count(*) from flowhouse.enrollments where customer_id = '{customer}'"
        )
        return int(found[0][0])


@pytest.fixture
def shop(warehouse: str, flows: Path, fake: FakeProvider, tmp_path: Path) -> Shop:
    """Two customers on the newsletter list, each with an abandoned cart that got a reminder."""
    s = Shop(warehouse, flows, fake, tmp_path)
    s.load("customers", [customer_row(ERASED), customer_row(KEPT)], "customers")
    start = T0 - timedelta(days=1)
    s.load("events", [
        event("e_join_1", ERASED["id"], "list_joined", start, list="newsletter"),
        event("e_join_2", KEPT["id"], "list_joined", start, list="newsletter"),
        cart("e_cart_1", ERASED["id"], "cart_e", T0),
        cart("e_cart_2", KEPT["id"], "cart_k", T0),
    ], "events")  # fmt: skip
    s.tick(T0 + timedelta(minutes=5))
    s.tick(T0 + timedelta(hours=2))
    return s


def test_retracting_an_added_to_cart_removes_its_cart_abandoned(shop: Shop) -> None:
    assert shop.enrollments(ERASED["id"]) == 1
    derived = "select count(*) from core.derived_cart_abandoned where customer_id = '{}'"
    assert shop.query(derived.format(ERASED["id"])) == [(1,)]
    retracted = ok("events", "retract", "e_cart_1", "nope_1", "--reason", "test order",
                   "--warehouse", shop.warehouse)  # fmt: skip
    assert "retracted 1 event(s)" in retracted.output
    assert "nope_1" in retracted.output  # unknown ids are reported
    kept = shop.query("select event_id, reason from raw.retracted_events")
    assert kept == [("e_cart_1", "test order")]
    assert shop.query("select count(*) from raw.events where event_id = 'e_cart_1'") == [(0,)]
    shop.tick(T0 + timedelta(hours=3))
    # the derived event the retracted row produced is gone; the other customer's is back
    assert shop.query(derived.format(ERASED["id"])) == [(0,)]
    assert shop.query(derived.format(KEPT["id"])) == [(1,)]
    # the engine keeps what it did: the enrollment and its message stay, nothing is re-sent
    assert shop.enrollments(ERASED["id"]) == 1
    sent = "select count(*) from flowhouse.messages where customer_id = '{}'"
    assert shop.query(sent.format(ERASED["id"])) == [(1,)]
    # the corrected event, loaded with the same id, is accepted and enrolls nobody again
    loaded = shop.load("events", [cart("e_cart_1", ERASED["id"], "cart_e", T0)], "corrected")
    assert "1 loaded" in loaded.output
    shop.tick(T0 + timedelta(hours=4))
    assert shop.query(derived.format(ERASED["id"])) == [(1,)]
    assert shop.enrollments(ERASED["id"]) == 1
    assert shop.query(sent.format(ERASED["id"])) == [(1,)]


def test_retracting_only_unknown_ids_fails_and_names_them(shop: Shop) -> None:
    result = run("events", "retract", "nope_1", "--reason", "x", "--warehouse", shop.warehouse)
    assert result.exit_code == 1
    assert "nope_1" in result.output and "none of the event ids" in result.output
    missing_reason = run("events", "retract", "e_cart_1", "--warehouse", shop.warehouse)
    assert missing_reason.exit_code == 2


def sentinel_hits(warehouse: str, values: list[str]) -> list[str]:
    """Every (schema.table.column) of every table flowhouse writes that holds one of `values`."""
    hits = []
    with Warehouse.open(warehouse) as wh:
        columns = wh.query(
            "select c.table_schema, c.table_name, c.column_name from information_schema.columns c "
            "join information_schema.tables t on t.table_schema = c.table_schema "
            "and t.table_name = c.table_name "
            "where c.table_schema in ('raw', 'staging', 'core', 'marts', 'flowhouse', "
            "'flowhouse_backtest', 'flowhouse_preview') order by 1, 2, 3"
        )
        for schema, table, column in columns:
            text = (
                f"cast({column} as text)"
                if wh.dialect == "postgres"
                else f"cast({column} as varchar)"
            )
            for value in values:
                found = wh.scalar(
                    f'select count(*) from {schema}."{table}" where strpos({text}, ?) > 0'
                    if wh.dialect == "duckdb"
                    else f'select count(*) from {schema}."{table}" where strpos({text}, %s) > 0',
                    [value],
                )
                if found:
                    hits.append(f"{schema}.{table}.{column} holds {value!r}")
    return hits


def test_erase_leaves_no_trace_keeps_the_totals_and_removes_from_the_destination(
    shop: Shop,
) -> None:
    shop.sync(T0 + timedelta(hours=2))
    assert len(shop.fake.state.members("newsletter_ads")) == 2
    values = [ERASED["id"], ERASED["email"], ERASED["phone"]]
    assert sentinel_hits(shop.warehouse, values)  # the sentinel sees them before
    totals = "select count(*), count(distinct customer_id) from {}"
    before = {
        t: shop.query(totals.format(t))
        for t in ("flowhouse.decisions", "flowhouse.messages", "flowhouse.enrollments")
    }
    marts = shop.marts(T0 + timedelta(hours=2))

    erased = ok("erase", "--customer", ERASED["id"], "--warehouse", shop.warehouse)
    assert "erased 1 customer(s)" in erased.output
    assert "newsletter_to_ads: 1 row(s) removed at the destination" in erased.output
    hits = sentinel_hits(shop.warehouse, values)
    # only the row the mirror sync needs to remove them at the destination
    assert hits and all(h.startswith("flowhouse.sync_state.") for h in hits), hits
    for table, counts in before.items():
        assert shop.query(totals.format(table)) == counts, table

    # the next sync removes them at the destination, and logs the removal under the erased key
    shop.sync(T0 + timedelta(hours=3))
    members = shop.fake.state.members("newsletter_ads")
    assert len(members) == 1
    assert sentinel_hits(shop.warehouse, values) == []

    # a later event with the same id (the customer loaded again) enrolls nobody, sends nothing
    shop.load("customers", [customer_row(ERASED)], "again")
    shop.load(
        "events", [cart("e_cart_9", ERASED["id"], "cart_9", T0 + timedelta(hours=4))], "later"
    )
    sent_before = len(shop.fake.state.messages())
    shop.tick(T0 + timedelta(hours=7))
    assert shop.enrollments(ERASED["id"]) == 0
    anonymous = "select count(*) from flowhouse.enrollments where customer_id like 'erased:%'"
    assert shop.query(anonymous) == [(1,)]
    assert len(shop.fake.state.messages()) == sent_before
    assert shop.marts(T0 + timedelta(hours=7)) == marts


def test_id_files_and_empty_requests_are_clear_errors(tmp_path: Path) -> None:
    warehouse = str(tmp_path / "w.duckdb")
    missing = run("events", "retract", "--file", str(tmp_path / "nope.txt"), "--reason", "x",
                  "--warehouse", warehouse)  # fmt: skip
    assert missing.exit_code == 1 and "nope.txt: cannot read the event id file" in missing.output
    empty = tmp_path / "ids.txt"
    empty.write_text("# nothing but a comment\n\n")
    none = run("events", "retract", "--file", str(empty), "--reason", "x", "--warehouse", warehouse)
    assert none.exit_code == 1 and "no event id given" in none.output
    blank = run("events", "retract", "e1", "--reason", " ", "--warehouse", warehouse)
    assert blank.exit_code == 1 and "--reason is empty" in blank.output
    (tmp_path / "customers.txt").write_text("c1\nc2  # a comment\nc1\n")
    erased = run("erase", "--file", str(tmp_path / "customers.txt"), "--warehouse", warehouse)
    assert erased.exit_code == 0, erased.output
    assert "erased 2 customer(s) (2 given): 0 customer row(s)" in erased.output
    with Warehouse.open(warehouse) as wh:
        assert wh.count("flowhouse.erased_customers") == 2
