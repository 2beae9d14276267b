"""On PostgreSQL the generator writes the same store as on DuckDB (bulk-copied, JSON into jsonb)."""

from __future__ import annotations

import json
from datetime import datetime, timedelta
from typing import Any

import duckdb
import psycopg2
import pytest

from flowhouse.core.errors import ConfigError
from flowhouse.core.warehouse import Location
from flowhouse.generate import continue_store, generate_store

START = datetime(2026, 9, 1)
QUERIES = {
    "events": "select event_id, customer_id, event_type, occurred_at, loaded_at, properties::text "
    "from raw.events order by event_id",
    "customers": "select customer_id, email, phone, first_name, created_at, timezone, country, "
    "birthday, email_opt_in, sms_opt_in, properties::text, updated_at from raw.customers "
    "order by customer_id",
    "products": "select * from raw.products order by sku",
    "device_tokens": "select * from raw.device_tokens order by token",
    "runs": "select run_no, seed, window_start_at, window_end_at, last_customer, events "
    "from raw.generator_runs order by run_no",
}


def normalised(rows: list[tuple[Any, ...]]) -> list[tuple[Any, ...]]:
    """JSON text parsed (jsonb reorders keys and respaces), everything else as it is."""
    result = []
    for row in rows:
        values = []
        for value in row:
            if isinstance(value, str) and value.startswith("{"):
                value = json.loads(value)
            values.append(value)
        result.append(tuple(values))
    return result


def pg_rows(url: str, sql: str) -> list[tuple[Any, ...]]:
    with psycopg2.connect(url) as con, con.cursor() as cur:
        cur.execute(sql)
        return normalised(cur.fetchall())


def duck_rows(location: Location, sql: str) -> list[tuple[Any, ...]]:
    with duckdb.connect(str(location.path), read_only=True) as con:
        return normalised(con.execute(sql).fetchall())


@pytest.mark.postgres
def test_postgres_gets_the_same_store_and_continues(pg_url: str, tmp_warehouse: Location) -> None:
    pg = Location.parse(pg_url)
    for location in (pg, tmp_warehouse):
        generate_store(location, customers=300, days=5, seed=3, start=START)
        continue_store(location, START + timedelta(days=6))
    for name, sql in QUERIES.items():
        expected = duck_rows(tmp_warehouse, sql)
        assert expected, name
        assert pg_rows(pg_url, sql) == expected, name

    with pytest.raises(ConfigError):
        continue_store(pg, START + timedelta(days=6))
    generate_store(pg, customers=100, days=2, seed=3, start=START)
    assert pg_rows(pg_url, "select count(*) from raw.customers") == [(100,)]
    assert pg_rows(
        pg_url,
        "select count(*) from raw.device_tokens where customer_id not in "
        "(select customer_id from raw.customers)",
    ) == [(0,)]  # replaced with the store
    assert pg_rows(pg_url, "select count(*) from raw.generator_runs") == [(1,)]
