"""A fixture warehouse with deployed flows and performance marts, and the report written from it."""

from __future__ import annotations

from pathlib import Path

import pytest
from report_fixture import GENERATED_AT, build

from flowhouse.core.warehouse import Location
from flowhouse.report import write_report


@pytest.fixture(scope="module")
def marts_warehouse(tmp_path_factory: pytest.TempPathFactory) -> Location:
    """A DuckDB warehouse: real flow files deployed, marts filled with known rows."""
    location = Location.parse(str(tmp_path_factory.mktemp("report") / "warehouse.duckdb"))
    build(location)
    return location


@pytest.fixture(scope="module")
def report_page(marts_warehouse: Location, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The report written from :func:`marts_warehouse`, generated at a fixed time."""
    return write_report(marts_warehouse, tmp_path_factory.mktemp("out"), now=GENERATED_AT)
