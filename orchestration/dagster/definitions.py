"""The Dagster definitions of flowhouse: ``dagster dev -m flowhouse.orchestration.dagster.definitions``.

The asset graph reads as the pipeline: raw inputs (external) → staging → core (the dbt models,
their tests as asset checks) → engine (``enrollments``, ``decisions``, ``messages``) →
activation (``sent_messages``) and the audience syncs (``sync_<id>``) → marts (the performance
marts, a second dbt multi-asset after delivery). One job,
``flowhouse_cycle``, runs it all at one time; a schedule and a sensor launch it (see
:mod:`flowhouse.orchestration.dagster.automation`). The resource ``flowhouse`` comes from the environment (see
:mod:`flowhouse.orchestration.dagster.resources`).

Before the definitions load, the dbt project must be parsed for the warehouse's adapter:
``python -m flowhouse.orchestration.dagster.prepare``. Use ``orchestration/dagster/dagster.yaml`` as the
instance's
``dagster.yaml`` (in ``DAGSTER_HOME``): one run at a time, one step at a time on the warehouse.
"""

from __future__ import annotations

from pathlib import Path

from dagster import Definitions, multiprocess_executor

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
    build_schedule,
    cycle_job,
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
    return Definitions(
        assets=[
            *source_specs(manifest, dialect),
            *build_dbt_assets(project, manifest),
            build_engine_assets(engine_deps(keys), dialect),
            build_sent_messages(dialect),
            *[build_sync_asset(s, sync_deps(s, keys), dialect) for s in syncs],
        ],
        asset_checks=[unique_message_ids, sent_messages_checks],
        jobs=[cycle_job],
        schedules=[build_schedule(minutes or schedule_minutes())],
        sensors=[flowhouse_new_data],
        resources={"flowhouse": flowhouse, "dbt": dbt_cli(project)},
        # steps run one at a time even on an instance without the pool limit
        executor=multiprocess_executor.configured({"max_concurrent": 1}),
    )


defs = build_definitions()
