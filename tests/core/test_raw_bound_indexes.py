"""The raw tables' bounded columns are indexed on PostgreSQL, so the models' incremental reads
(``loaded_at >= <mark>``, an ``occurred_at`` look-back) are index range scans, not scans of the
whole table; DuckDB gets no index (its zone maps prune)."""

from __future__ import annotations

import pytest
from sqlglot import exp

from flowhouse.core import warehouse
from flowhouse.core.warehouse import IndexWarning, Location, Warehouse, bound_indexes

EXPECTED = {
    ("events", "events_loaded_at_idx", "loaded_at"),
    ("events", "events_occurred_at_idx", "occurred_at"),
    ("loads", "loads_loaded_at_idx", "loaded_at"),
}


def _indexes(wh: Warehouse) -> set[tuple[str, str, str]]:
    """(table, index, its columns) of every index in ``raw``."""
    rows = wh.query(
        exp.select("tablename", "indexname", "indexdef")
        .from_("pg_indexes")
        .where(exp.column("schemaname").eq(exp.Literal.string("raw")))
    )
    return {
        (table, name, definition.split("(")[-1].rstrip(")")) for table, name, definition in rows
    }


def test_bound_indexes_sql() -> None:
    rendered = [i.sql("postgres") for i in bound_indexes("raw.events", ["event_id", "loaded_at"])]
    assert rendered == ["CREATE INDEX IF NOT EXISTS events_loaded_at_idx ON raw.events(loaded_at)"]
    assert bound_indexes("raw.customers", ["customer_id", "updated_at"]) == []


def test_no_index_on_duckdb(tmp_warehouse: Location) -> None:
    with Warehouse.open(tmp_warehouse) as wh:
        wh.ensure_raw_tables()
        assert wh.scalar("select count(*) from duckdb_indexes()") == 0


@pytest.mark.postgres
def test_indexes_created_idempotently(pg_url: str) -> None:
    with Warehouse.open(pg_url) as wh:
        wh.ensure_raw_tables()
        assert _indexes(wh) == EXPECTED
        wh.ensure_raw_tables()  # again: nothing to do, no error
        assert _indexes(wh) == EXPECTED
        # a store made before the indexes gets them at its next load, build or refresh
        for _, name, _ in EXPECTED:
            wh.execute(f"drop index raw.{name}")
        wh.commit()
        assert _indexes(wh) == set()
        wh.ensure_raw_tables()
        assert _indexes(wh) == EXPECTED


@pytest.mark.postgres
@pytest.mark.parametrize(
    ("column", "index"),
    [("loaded_at", "events_loaded_at_idx"), ("occurred_at", "events_occurred_at_idx")],
)
def test_bounded_read_uses_the_index(pg_url: str, column: str, index: str) -> None:
    with Warehouse.open(pg_url) as wh:
        wh.ensure_raw_tables()
        wh.execute(
            "insert into raw.events (event_id, event_type, occurred_at, loaded_at) "
            "select 'e' || n, 'product_viewed', timestamp '2026-01-01' + n * interval '1 minute', "
            "timestamp '2026-01-01' + n * interval '1 minute' from generate_series(1, 1000) as n"
        )
        wh.execute("analyze raw.events")
        # the table is tiny, so the planner may prefer a scan: what is tested is that it can use
        # the index for the bound the models write
        wh.execute("set enable_seqscan = off")
        bounded = (
            f"select event_id from raw.events where {column} > timestamp '2026-01-01 16:00:00'"
        )
        plan = "\n".join(row[0] for row in wh.query(f"explain {bounded}"))
        assert index in plan, plan
        assert "Seq Scan" not in plan, plan


@pytest.mark.postgres
def test_an_index_the_store_made_is_kept_not_doubled(pg_url: str) -> None:
    with Warehouse.open(pg_url) as wh:
        wh.ensure_raw_tables()
        wh.execute("drop index raw.events_loaded_at_idx")
        wh.execute("create index store_events_by_load on raw.events (loaded_at, event_id)")
        wh.commit()
        wh.ensure_raw_tables()
        on_loaded_at = {
            name for _, name, columns in _indexes(wh) if columns.startswith("loaded_at")
        }
        assert on_loaded_at == {"store_events_by_load", "loads_loaded_at_idx"}


@pytest.mark.postgres
def test_an_index_it_cannot_create_is_a_warning_not_a_failure(
    pg_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A role that writes the raw tables without owning them cannot create an index: the load,
    build or tick goes on, and the warning says what the owner should run."""

    def refused(table: str, columns: object) -> list[exp.Create]:
        # an index PostgreSQL refuses (no such column), standing in for "must be owner of table"
        return [exp.Create(
            this=exp.Index(
                this=exp.to_identifier("refused_idx"),
                table=exp.to_table(table),
                params=exp.IndexParameters(columns=[exp.Ordered(this=exp.column("no_such"))]),
            ),
            kind="INDEX",
        )] if table == "raw.events" else []  # fmt: skip

    monkeypatch.setattr(warehouse, "bound_indexes", refused)
    with Warehouse.open(pg_url) as wh:
        with pytest.warns(IndexWarning, match=r"raw\.events: no index .* Run as the table's owner"):
            wh.ensure_raw_tables()
        assert wh.count("raw.events") == 0  # the tables were made and the connection still works
