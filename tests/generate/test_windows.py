"""Same seed, same store; --continue-until appends the next window, late arrivals included."""

from __future__ import annotations

from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import duckdb
import pytest

from flowhouse.core.errors import ConfigError
from flowhouse.core.warehouse import Location
from flowhouse.generate import continue_store, generate_store
from flowhouse.generate.plan import catalog_size, first_run, next_run

START = datetime(2026, 9, 1)
TABLES = {
    "raw.events": "rowid",
    "raw.customers": "customer_id",
    "raw.products": "sku",
    "raw.generator_runs": "run_no",
}


def digest(location: Location) -> dict[str, tuple[Any, ...] | None]:
    """Row count and md5 of every row, in storage order for events, per table."""
    with duckdb.connect(str(location.path), read_only=True) as con:
        return {
            table: con.execute(
                f"select count(*), md5(string_agg(t::varchar, '\n' order by {order})) "
                f"from {table} as t"
            ).fetchone()
            for table, order in TABLES.items()
        }


def store(tmp_path: Path, name: str, seed: int = 7, customers: int = 600) -> Location:
    location = Location.parse(str(tmp_path / f"{name}.duckdb"))
    generate_store(location, customers=customers, days=8, seed=seed, start=START)
    return location


def test_same_seed_same_store_other_seed_other_store(tmp_path: Path) -> None:
    first, again, other = store(tmp_path, "a"), store(tmp_path, "b"), store(tmp_path, "c", seed=8)
    assert digest(first) == digest(again)
    differs = {t for t in TABLES if digest(first)[t] != digest(other)[t]}
    assert differs == set(TABLES)


def test_generating_again_replaces_the_store(tmp_path: Path) -> None:
    location = store(tmp_path, "a")
    before = digest(location)
    generate_store(location, customers=600, days=8, seed=7, start=START)
    assert digest(location) == before


def loaded(location: Location, sql: str) -> tuple[Any, ...]:
    with duckdb.connect(str(location.path), read_only=True) as con:
        row = con.execute(sql).fetchone()
    assert row is not None
    return row


def test_continue_appends_the_next_window(tmp_path: Path) -> None:
    location = store(tmp_path, "a", customers=2000)
    end = START + timedelta(days=8)
    events, customers, max_loaded = loaded(
        location,
        "select count(*), (select count(*) from raw.customers), max(loaded_at) from raw.events",
    )
    stats = continue_store(location, end + timedelta(days=3))

    added, earliest, latest, late = loaded(
        location,
        "select count(*), min(loaded_at), max(loaded_at), "
        f"count(*) filter (where occurred_at < '{end}') from raw.events "
        f"where loaded_at > '{max_loaded}'",
    )
    assert added == stats.event_total > 0
    assert loaded(location, "select count(*) from raw.events")[0] == events + added
    assert earliest >= end
    assert latest < end + timedelta(days=3)
    assert late > 0
    assert loaded(location, "select count(distinct event_id) = count(*) from raw.events")[0]
    assert loaded(location, "select count(*) from raw.customers")[0] == customers + 9
    assert stats.run.new_customers == 9
    assert loaded(location, "select count(*) from raw.generator_runs")[0] == 2
    out_of_order = loaded(
        location,
        "select count(*) from (select loaded_at, lag(loaded_at) over (order by rowid) as before "
        "from raw.events) where loaded_at < before",
    )[0]
    assert out_of_order == 0
    # orders placed in the first window are shipped or delivered in the second
    follow_ups = loaded(
        location,
        "select count(*) from raw.events d join raw.events o "
        "on d.properties->>'order_id' = o.properties->>'order_id' "
        f"where d.event_type = 'order_delivered' and d.loaded_at >= '{end}' "
        f"and o.event_type = 'order_placed' and o.loaded_at < '{end}'",
    )[0]
    assert follow_ups > 0
    types = loaded(
        location,
        f"select list(distinct event_type) from raw.events where loaded_at >= '{end}'",
    )[0]
    assert {"customer_created", "product_viewed", "order_placed", "inventory_changed"} <= set(types)


def test_continuing_is_deterministic_and_can_go_on(tmp_path: Path) -> None:
    end = START + timedelta(days=8)
    results = []
    for name in ("a", "b"):
        location = store(tmp_path, name)
        continue_store(location, end + timedelta(hours=30))
        continue_store(location, end + timedelta(days=4))
        results.append(digest(location))
    assert results[0] == results[1]
    runs = results[0]["raw.generator_runs"]
    assert runs is not None
    assert runs[0] == 3


def test_continue_needs_a_store_and_a_later_end(tmp_path: Path) -> None:
    empty = Location.parse(str(tmp_path / "empty.duckdb"))
    with pytest.raises(ConfigError, match="no generated store"):
        continue_store(empty, START)
    location = store(tmp_path, "a")
    end = START + timedelta(days=8)
    with pytest.raises(ConfigError, match="after the end of the last generated window") as err:
        continue_store(location, end)
    assert err.value.value == end.isoformat(sep=" ")
    assert err.value.expected is not None


def test_windows_and_catalog_size() -> None:
    assert catalog_size(1) == 60
    assert catalog_size(200_000) == 1008
    assert catalog_size(10_000_000) == 5004
    run = first_run(1000, 10, 7, START)
    assert (run.pre_store_customers, run.first_customer, run.last_customer) == (985, 986, 1000)
    later = next_run(run, START + timedelta(days=12))
    assert (later.first_customer, later.last_customer, later.run_no) == (1001, 1003, 1)
    assert later.window_start_at == run.window_end_at
    with pytest.raises(ConfigError):
        first_run(0, 10, 7, START)
