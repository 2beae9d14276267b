"""A Dagster code location from flowhouse's library functions: the example store's
(:mod:`flowhouse.orchestration.dagster.definitions`) or a store's own project's, whose
``definitions.py`` (written by ``flowhouse init``) is::

    from pathlib import Path

    from flowhouse.orchestration.dagster.location import project_definitions

    defs = project_definitions(Path(__file__).parent)
"""

from __future__ import annotations

import os
from pathlib import Path

from dagster import Definitions, multiprocess_executor

from flowhouse.core.project import Project, use
from flowhouse.core.warehouse import Location
from flowhouse.flows.sync.files import load_syncs
from flowhouse.orchestration.dagster.assets import (
    build_engine_assets,
    build_sent_messages,
    build_sync_asset,
    engine_deps,
    sync_deps,
)
from flowhouse.orchestration.dagster.automation import (
    build_enrichment_schedule,
    build_schedule,
    cycle_job,
    enrichment_job,
    flowhouse_new_data,
    schedule_minutes,
)
from flowhouse.orchestration.dagster.checks import sent_messages_checks, unique_message_ids
from flowhouse.orchestration.dagster.dbt_assets import (
    build_dbt_assets,
    dbt_cli,
    dbt_project,
    model_keys,
    read_manifest,
    source_specs,
)
from flowhouse.orchestration.dagster.resources import FlowhouseResource, resolved, resource_from_env


def build_definitions(
    flowhouse: FlowhouseResource | None = None, minutes: int | None = None
) -> Definitions:
    """The definitions for the warehouse and flows of ``flowhouse`` (default: the environment's),
    with the schedule every ``minutes`` (default: ``FLOWHOUSE_SCHEDULE_MINUTES``)."""
    flowhouse = flowhouse or resource_from_env()
    location = Location.parse(resolved(flowhouse.warehouse))
    flows_dir = Path(resolved(flowhouse.flows_dir))
    project = dbt_project(location)
    manifest = read_manifest(project)
    keys = model_keys(manifest)
    dialect = location.dialect
    syncs = [s for s in load_syncs(flows_dir) if s.enabled]
    every = minutes or schedule_minutes()
    return Definitions(
        assets=[
            *source_specs(manifest, dialect),
            *build_dbt_assets(project, manifest),
            build_engine_assets(engine_deps(keys), dialect),
            build_sent_messages(dialect),
            *[build_sync_asset(s, sync_deps(s, keys), dialect) for s in syncs],
        ],
        asset_checks=[unique_message_ids, sent_messages_checks],
        jobs=[cycle_job, enrichment_job],
        schedules=[build_schedule(every), build_enrichment_schedule(every)],
        sensors=[flowhouse_new_data],
        resources={"flowhouse": flowhouse, "dbt": dbt_cli(project)},
        # steps run one at a time even on an instance without the pool limit
        executor=multiprocess_executor.configured({"max_concurrent": 1}),
    )


def project_definitions(root: Path, minutes: int | None = None) -> Definitions:
    """The definitions of the store's project in ``root`` (its flows, its dbt project with
    flowhouse's package, its default warehouse ``warehouse.duckdb`` unless
    ``FLOWHOUSE_WAREHOUSE`` names another)."""
    project = Project.at(root)
    use(project)
    for name, value in project.dbt_env().items():
        os.environ.setdefault(name, value)
    return build_definitions(minutes=minutes)
