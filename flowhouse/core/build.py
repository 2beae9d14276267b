"""Build the dbt project: staging, customer attributes, derived events, segments and lists, and
the performance marts (tag ``marts``, read by nothing the engine runs). A tick's refresh runs the
models in two lanes: :mod:`flowhouse.core.lanes`."""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from flowhouse.core.dbt import NodeResult, run_dbt
from flowhouse.core.state import ensure_state
from flowhouse.core.warehouse import Location, Warehouse


@dataclass(frozen=True)
class BuildSummary:
    results: list[NodeResult]

    def describe(self) -> str:
        kinds = Counter(r.name.split(".")[0] for r in self.results)
        statuses = Counter(r.status for r in self.results)
        seconds = sum(r.seconds for r in self.results)
        what = ", ".join(f"{n} {k}s" for k, n in sorted(kinds.items()))
        how = ", ".join(f"{n} {s}" for s, n in sorted(statuses.items()))
        line = f"dbt: {what or 'nothing selected'} ({how}) in {seconds:.1f} s of node time"
        return "\n".join([line, *self.warnings()])

    def warnings(self) -> list[str]:
        """One line per node that passed with a warning (a data test of severity warn)."""
        warned = [r for r in self.results if r.status == "warn"]
        return [f"  warning: {r.name}: {r.message or 'warn'}" for r in warned]


def prepare_sources(location: Location) -> None:
    """The tables dbt reads as sources (the raw inputs, flowhouse's own state) must exist before
    it builds."""

    with Warehouse.open(location) as wh:
        wh.ensure_raw_tables()
        ensure_state(wh, "flowhouse")


#: The dbt selector of the performance marts (models/marts).
MARTS = "tag:marts"


def build_models(
    location: Location,
    select: Sequence[str] = (),
    full_refresh: bool = False,
    exclude: Sequence[str] = (),
    tests: bool = True,
    now: datetime | None = None,
    dbt_vars: Mapping[str, Any] | None = None,
    artifacts: bool = True,
) -> BuildSummary:
    """``dbt build`` (or ``dbt run`` without tests) of the `select`ed models less the `exclude`d
    ones (dbt selectors; default all) over the warehouse; raises DbtError on failure.

    `dbt_vars` are the store's settings for the models (``Settings.dbt_vars()`` of the flows
    folder: time zone, derived types the store sends raw, windows and thresholds), the same from
    build to build; `now` goes to the models in the environment
    (:func:`flowhouse.core.dbt.now_env`), so a build at another time keeps dbt's partial parsing
    valid. Without `artifacts` dbt writes no
    ``manifest.json`` nor ``run_results.json`` (a tick's refresh: writing the manifest costs about
    as much as checking the partial parse; the Dagster definitions' manifest is ``prepare``'s)."""
    prepare_sources(location)
    extra: list[str] = []
    for s in select:
        extra += ["--select", s]
    for s in exclude:
        extra += ["--exclude", s]
    if full_refresh:
        extra.append("--full-refresh")
    if not artifacts:
        extra.append("--no-write-json")
    results = run_dbt("build" if tests else "run", location, extra, dbt_vars or None, now=now)
    return BuildSummary(results)
