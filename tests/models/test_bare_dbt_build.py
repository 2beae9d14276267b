"""A store's own ``dbt build`` on a warehouse flowhouse never prepared (docs/adopting.md): only
the raw inputs exist, and the models' sources in flowhouse's state schema (``profile_updates``,
``coupon_codes``, ``invalid_device_tokens``, the journal and outbox, the syncs' logs) are created
by the dbt project's ``on-run-start`` hook, with the DDL flowhouse itself uses (DuckDB and
PostgreSQL)."""

from __future__ import annotations

import pytest

from flowhouse.core.dbt import run_dbt
from flowhouse.core.paths import DBT_PACKAGE
from flowhouse.core.state import STATE_MACRO, TABLES, state_macro
from flowhouse.core.warehouse import Location, Warehouse, create_table


def test_the_dbt_macro_is_the_state_ddl() -> None:
    """The macro is generated from flowhouse.core.state.TABLES; regenerate it with
    ``python -m flowhouse.core.state`` after changing a state table."""
    written = (DBT_PACKAGE / "macros" / STATE_MACRO).read_text()
    assert written == state_macro(), "dbt_project/macros/state.sql is stale"


@pytest.fixture(params=["duckdb", pytest.param("postgres", marks=pytest.mark.postgres)])
def fresh(request: pytest.FixtureRequest, tmp_warehouse: Location) -> Location:
    if request.param == "postgres":
        return Location.parse(request.getfixturevalue("pg_url"))
    return tmp_warehouse


def test_a_bare_dbt_build_creates_the_state_tables_it_reads(fresh: Location) -> None:
    """Every state table is created; one an earlier release created (``profile_updates`` before
    ``expires_at``) gains the columns added since."""
    earlier = [c for c in TABLES["profile_updates"] if c[0] != "expires_at"]
    with Warehouse.open(fresh) as wh:
        wh.ensure_raw_tables()
        wh.ensure_schema("flowhouse")
        wh.execute(create_table("flowhouse.profile_updates", earlier, wh.dialect))
        wh.commit()
        assert not wh.table_exists("flowhouse", "coupon_codes")
    run_dbt("build", fresh)
    with Warehouse.open(fresh) as wh:
        for name, columns in TABLES.items():
            assert wh.columns("flowhouse", name) == [c for c, _, _ in columns], name
        assert wh.query("select count(*) from core.customer_attributes") == [(0,)]
    run_dbt("build", fresh, ["--select", "customer_attributes"])  # and again: nothing to create
