"""Fixtures for sending scenarios: a store on DuckDB and PostgreSQL, and the fake provider
running on a free port for the test (in this process, or as ``flowhouse fake-provider``)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from sending import Store, fake_provider_running, sending_store

from flowhouse.activation.fake.server import FakeProvider, running
from flowhouse.activation.fake.settings import FakeSettings
from flowhouse.core.warehouse import Location


@pytest.fixture(params=["duckdb", pytest.param("postgres", marks=pytest.mark.postgres)])
def location(request: pytest.FixtureRequest, tmp_path: Path) -> Location:
    """A warehouse on DuckDB, and on PostgreSQL when a server is given."""
    if request.param == "postgres":
        return Location.parse(request.getfixturevalue("pg_url"))
    return Location.parse(str(tmp_path / "store.duckdb"))


@pytest.fixture
def store(location: Location, tmp_path: Path) -> Iterator[Store]:
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


@pytest.fixture
def shop() -> Iterator[str]:
    """``flowhouse fake-provider`` in a process of its own (the shop's, e-mail and SMS
    endpoints): its URL."""
    with fake_provider_running() as url:
        yield url
