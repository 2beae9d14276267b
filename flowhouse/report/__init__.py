"""``flowhouse report``: a static HTML page of flow performance for marketers.

One self-contained file (inline CSS, SVG diagrams and charts, no external resource) that reads the
performance marts and each flow's deployed spec::

    from flowhouse.report import write_report

    path = write_report("warehouse.duckdb", Path("report"))   # report/index.html

Modules: :mod:`~flowhouse.report.data` (what is read), :mod:`~flowhouse.report.diagram` and
:mod:`~flowhouse.report.labels` (the flow canvas), :mod:`~flowhouse.report.charts` (small
multiples over time), :mod:`~flowhouse.report.words` (results in plain words) and
:mod:`~flowhouse.report.page` (the page).
"""

from __future__ import annotations

from datetime import datetime
from pathlib import Path

from flowhouse.core.clock import utcnow
from flowhouse.core.errors import ConfigError
from flowhouse.core.sql import STATE_SCHEMA
from flowhouse.core.warehouse import Location, Warehouse
from flowhouse.report.data import Reader, ReportData
from flowhouse.report.page import render_page

__all__ = ["marts_now", "read_report_data", "write_report"]

REPORT_FILE = "index.html"


def existing(location: str | Location) -> Location:
    """`location`, which must hold a warehouse (a DuckDB file is not created by reading it)."""
    loc = location if isinstance(location, Location) else Location.parse(location)
    if loc.path is not None and not loc.path.exists():
        raise ConfigError(
            "no warehouse there",
            value=str(loc.path),
            expected="a warehouse file where flows ran (flowhouse demo, flowhouse tick)",
        )
    return loc


def marts_now(location: Location, state_schema: str = STATE_SCHEMA) -> datetime:
    """The time the marts are built as of for a report: now, or the last tick when ticks ran
    later (``--now`` in the future). The newest raw event is not enough: a quiet store keeps
    ticking, and marts built as of its last event would leave out the days since."""
    now = utcnow()
    with Warehouse.open(location) as wh:
        if not wh.table_exists(state_schema, "ticks"):
            return now
        last = wh.scalar(f"select max(tick_at) from {state_schema}.ticks")
    return max(now, last) if isinstance(last, datetime) else now


def read_report_data(
    location: str | Location, now: datetime | None = None, state_schema: str = STATE_SCHEMA
) -> ReportData:
    """Everything the report shows, read from the warehouse at `location`."""
    loc = existing(location)
    generated = now or utcnow()
    with Warehouse.open(loc) as wh:
        return Reader(wh, state_schema).read(generated)


def write_report(
    location: str | Location,
    out_dir: Path,
    now: datetime | None = None,
    currency: str = "$",
) -> Path:
    """Write the report into `out_dir` (created if missing) and return the page's path."""
    data = read_report_data(location, now)
    out_dir.mkdir(parents=True, exist_ok=True)
    path = out_dir / REPORT_FILE
    path.write_text(render_page(data, currency), encoding="utf-8")
    return path
