"""Small generated stores shared by the generator's tests (generated once per session)."""

from __future__ import annotations

from datetime import datetime

import pytest

from flowhouse.core.warehouse import Location
from flowhouse.generate import GenerateStats, generate_store

START = datetime(2026, 9, 1)


@pytest.fixture(scope="session")
def small_store(tmp_path_factory: pytest.TempPathFactory) -> tuple[Location, GenerateStats]:
    """3,000 customers over 30 days, seed 7."""
    location = Location.parse(str(tmp_path_factory.mktemp("small") / "store.duckdb"))
    stats = generate_store(location, customers=3000, days=30, seed=7, start=START)
    return location, stats
