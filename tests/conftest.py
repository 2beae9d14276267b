"""Shared fixtures: fresh DuckDB warehouses, and fresh PostgreSQL databases when a server is given."""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlparse, urlunparse

import pytest

from flowhouse.core.project import Project, using
from flowhouse.core.warehouse import Location

PG_ENV = "FLOWHOUSE_TEST_POSTGRES_URL"


@pytest.fixture(autouse=True)
def example_project() -> Iterator[None]:
    """Every test starts on the example store; one that enters a store's project leaves it."""
    with using(Project.example()):
        yield


@pytest.fixture
def tmp_warehouse(tmp_path: Path) -> Location:
    """A DuckDB warehouse file that does not exist yet."""
    return Location.parse(str(tmp_path / "warehouse.duckdb"))


@pytest.fixture
def pg_url() -> Iterator[str]:
    """A fresh, empty PostgreSQL database (dropped afterwards); skips unless FLOWHOUSE_TEST_POSTGRES_URL
    names a server (``make test-postgres`` sets it)."""
    base = os.environ.get(PG_ENV)
    if not base:
        pytest.skip(f"{PG_ENV} is not set (run make test-postgres)")
    import psycopg2

    name = f"flowhouse_test_{uuid.uuid4().hex[:10]}"
    admin = psycopg2.connect(base)
    admin.autocommit = True
    with admin.cursor() as cur:
        cur.execute(f'create database "{name}"')
    url = urlunparse(urlparse(base)._replace(path=f"/{name}"))
    try:
        yield url
    finally:
        with admin.cursor() as cur:
            cur.execute(f'drop database if exists "{name}" with (force)')
        admin.close()
