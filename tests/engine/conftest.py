"""The scenario store, on DuckDB and (with FLOWHOUSE_TEST_POSTGRES_URL) on PostgreSQL."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from harness import Store

from flowhouse.core.warehouse import Location


@pytest.fixture(params=["duckdb", pytest.param("postgres", marks=pytest.mark.postgres)])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Store]:
    """A fresh store: the engine's input relations as plain tables and empty engine state."""
    if request.param == "postgres":
        location = Location.parse(request.getfixturevalue("pg_url"))
    else:
        location = Location.parse(str(tmp_path / "store.duckdb"))
    s = Store(location, tmp_path)
    try:
        yield s
    finally:
        s.close()
