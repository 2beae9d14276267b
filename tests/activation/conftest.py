"""Fixtures for sending scenarios: a store on DuckDB and PostgreSQL, and the fake provider
running on a free port for the test."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from sending import Store, sending_store

from flowhouse.activation.fake.server import FakeProvider, running
from flowhouse.activation.fake.settings import FakeSettings
from flowhouse.core.warehouse import Location


@pytest.fixture(params=["duckdb", pytest.param("postgres", marks=pytest.mark.postgres)])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Store]:
    if request.param == "postgres":
        location = Location.parse(request.getfixturevalue("pg_url"))
    else:
        location = Location.parse(str(tmp_path / "store.duckdb"))
    s = sending_store(location, tmp_path)
    try:
        yield s
    finally:
        s.close()


@pytest.fixture
def fake(tmp_path: Path) -> Iterator[FakeProvider]:
    settings = FakeSettings(inbox=tmp_path / "inbox", record_dir=tmp_path / "received")
    with running(settings) as provider:
        yield provider
