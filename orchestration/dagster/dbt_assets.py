"""The dbt project as Dagster assets: one asset per model, each dbt test an asset check.

The manifest is read from the target path ``flowhouse`` itself uses for the warehouse's adapter
(``dbt_project/target-duckdb`` or ``target-postgres``, see :mod:`flowhouse.core.dbt`), so a
build from the CLI and a run in Dagster share partial parsing (the run's time reaches the models
in the environment, :func:`flowhouse.core.dbt.now_env`, so a run at another time does not
re-parse). It must exist before the definitions load:
``python -m flowhouse.orchestration.dagster.prepare`` writes it (``dbt parse``).

Models are grouped by the schema they land in (``staging``, ``core``), but for the enrichment
lane's (:mod:`flowhouse.core.lanes`: the category affinity and the performance marts), which are
the group ``enrichment``, a second dbt multi-asset, ``dbt_enrichment``, with its own job and
schedule; the raw inputs and the sync logs dbt reads (``flowhouse.sync_*``) are external assets in
the groups ``raw`` and ``syncs``. The performance marts read the engine's journal and the outbox
after delivery, downstream of ``sent_messages``: the sources of the engine's tables take the keys
of the assets that write them. Each multi-asset records its lane's run in
``flowhouse.lane_runs`` when it builds the whole lane.
"""

# No `from __future__ import annotations`: Dagster checks the `context` annotation at runtime.
import json
import sys
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

from dagster import AssetExecutionContext, AssetKey, AssetSpec
from dagster_dbt import (
    DagsterDbtTranslator,
    DagsterDbtTranslatorSettings,
    DbtCliResource,
    DbtProject,
    dbt_assets,
)

from flowhouse.core.build import prepare_sources
from flowhouse.core.clock import utcnow
from flowhouse.core.dbt import environment, now_env, target_path
from flowhouse.core.errors import ConfigError
from flowhouse.core.lanes import (
    ENRICHMENT,
    ENRICHMENT_TAG,
    FAST,
    Lane,
    LaneRun,
    lagging_missing,
    record,
)
from flowhouse.core.project import current
from flowhouse.core.warehouse import Location, Warehouse
from flowhouse.flows.settings import load_settings
from flowhouse.orchestration.dagster.resources import POOL, FlowhouseResource, run_time

PREPARE = "python -m flowhouse.orchestration.dagster.prepare"
#: Groups of the dbt sources, by source name.
SOURCE_GROUPS = {"raw": "raw", "flowhouse": "syncs"}
#: The asset group of the enrichment lane's models (flowhouse/core/lanes.py): their own job and
#: schedule (:mod:`flowhouse.orchestration.dagster.automation`), never the cycle's.
ENRICHMENT_GROUP = "enrichment"
#: flowhouse's own tables that dbt reads, by the asset that writes them (engine or activation).
#: The others it reads (flows, steps, send_attempts, the sync logs) are external assets.
STATE_ASSETS = {"enrollments": "enrollments", "decisions": "decisions", "messages": "sent_messages"}


def dbt_cli(project: DbtProject) -> DbtCliResource:
    """dagster-dbt's dbt runner, with the dbt installed beside this Python (a virtual environment
    need not be on ``PATH``)."""
    beside = Path(sys.executable).parent / "dbt"
    executable = str(beside) if beside.exists() else "dbt"
    return DbtCliResource(project_dir=project, dbt_executable=executable)


def dbt_project(location: Location) -> DbtProject:
    """The project's dbt project, with the target path of the warehouse's adapter."""
    root = current().dbt_dir
    return DbtProject(project_dir=root, target_path=Path(target_path(location)), profiles_dir=root)


def read_manifest(project: DbtProject) -> dict[str, Any]:
    """The parsed project; a clear error naming the command that writes it when it is missing."""
    path = project.manifest_path
    if not path.exists():
        raise ConfigError(
            f"no dbt manifest at {path}: the Dagster definitions read the parsed dbt project",
            expected=f"`{PREPARE}` run first (it runs dbt parse for this warehouse's adapter)",
        )
    manifest: dict[str, Any] = json.loads(path.read_text())
    return manifest


class Translator(DagsterDbtTranslator):
    """dagster-dbt's default asset keys (``staging/stg_events``, ``core/events``), grouped by
    schema; the tests of the raw inputs are checks on them too."""

    def __init__(self, source_checks: bool = True) -> None:
        super().__init__(DagsterDbtTranslatorSettings(enable_source_tests_as_checks=source_checks))

    def get_asset_key(self, dbt_resource_props: Mapping[str, Any]) -> AssetKey:
        if _state_table(dbt_resource_props):
            return AssetKey(STATE_ASSETS[dbt_resource_props["name"]])
        return super().get_asset_key(dbt_resource_props)

    def get_group_name(self, dbt_resource_props: Mapping[str, Any]) -> str | None:
        if ENRICHMENT_TAG in (dbt_resource_props.get("tags") or ()):
            return ENRICHMENT_GROUP
        if dbt_resource_props["resource_type"] == "source":
            if dbt_resource_props["name"] in ("flows", "steps", "send_attempts"):
                return "engine"
            return SOURCE_GROUPS.get(dbt_resource_props["source_name"], "sources")
        return str(dbt_resource_props.get("schema") or "dbt")


def _state_table(props: Mapping[str, Any]) -> bool:
    """A source that is one of the engine's or activation's own tables."""
    return (
        props["resource_type"] == "source"
        and props["source_name"] == "flowhouse"
        and props["name"] in STATE_ASSETS
    )


def model_keys(manifest: Mapping[str, Any]) -> dict[str, AssetKey]:
    """Each model's relation (``core.customer_attributes``) -> its asset key."""
    translator = Translator()
    return {
        f"{node['schema']}.{node['alias']}": translator.get_asset_key(node)
        for node in manifest["nodes"].values()
        if node["resource_type"] == "model"
    }


def source_specs(manifest: Mapping[str, Any], dialect: str) -> list[AssetSpec]:
    """The tables dbt reads but does not build, as external assets."""
    translator = Translator()
    return [
        AssetSpec(
            key=translator.get_asset_key(source),
            group_name=translator.get_group_name(source),
            description=source.get("description") or None,
            kinds={dialect},
        )
        for source in manifest["sources"].values()
        if not _state_table(source)
    ]


def build_dbt_assets(project: DbtProject, manifest: Mapping[str, Any]) -> list[Any]:
    """``dbt build`` at the run's time, one multi-asset per lane (:mod:`flowhouse.core.lanes`):
    ``dbt_models`` (the fast lane: staging, core, before the engine) and ``dbt_enrichment`` (the
    category affinity before the customer attributes, the performance marts after delivery)."""
    return [
        _dbt_multi_asset(project, manifest, "dbt_models", Translator(), FAST),
        # the raw inputs' tests are checks of dbt_models already
        _dbt_multi_asset(project, manifest, "dbt_enrichment", Translator(False), ENRICHMENT),
    ]


def _dbt_multi_asset(
    project: DbtProject,
    manifest: Mapping[str, Any],
    name: str,
    translator: Translator,
    lane: Lane,
) -> Any:
    @dbt_assets(
        manifest=manifest,
        project=project,
        dagster_dbt_translator=translator,
        name=name,
        select=" ".join(lane.select) or "fqn:*",
        exclude=" ".join(lane.exclude),
        pool=POOL,
    )
    def dbt_build(
        context: AssetExecutionContext, dbt: DbtCliResource, flowhouse: FlowhouseResource
    ) -> Iterator[Any]:
        location = flowhouse.location()
        prepare_sources(location)
        now = run_time(context)
        # the run's time in the environment, not in the vars: the same vars as every build, so the
        # dbt subprocess keeps the partial parse of the CLI's builds and ticks
        dbt_vars = load_settings(flowhouse.flows()).dbt_vars()
        args = ["build", "--vars", json.dumps(dbt_vars)]
        whole = set(context.selected_asset_keys) >= set(context.assets_def.keys)
        started = utcnow()
        try:
            # a test runs with the lane that builds all it reads (the marts' singular tests read
            # fast models too: they run with the enrichment lane)
            buildable = {"DBT_INDIRECT_SELECTION": "buildable"}
            with environment({**location.dbt_env(), **now_env(now), **buildable}):
                if lane is FAST:
                    _build_missing_inputs(context, dbt, project, location, args)
                invocation = dbt.cli(
                    args, context=context, target_path=project.manifest_path.parent
                )
                yield from invocation.stream()
        except Exception as err:
            if whole:
                _record(
                    location,
                    LaneRun(lane.name, now, started, utcnow(), "failed", 0, str(err), "dagster"),
                )
            raise
        if whole:  # the lane's run, as the CLI records it (a subset from the UI is no lane run)
            models = sum(1 for k in context.selected_asset_keys if k in context.assets_def.keys)
            _record(
                location,
                LaneRun(lane.name, now, started, utcnow(), "succeeded", models, None, "dagster"),
            )

    return dbt_build


def _build_missing_inputs(
    context: AssetExecutionContext,
    dbt: DbtCliResource,
    project: DbtProject,
    location: Location,
    args: list[str],
) -> None:
    """On a fresh warehouse the fast lane reads enrichment models no run has built yet (the
    category affinity): build them first (with their parents), as the CLI's fast lane does."""
    with Warehouse.open(location) as wh:
        missing = lagging_missing(wh)
    if missing:
        context.log.info(f"building {', '.join(missing)} first: the fast lane reads it")
        select = ["--select", *[f"+{m}" for m in missing]]
        target = project.manifest_path.parent
        dbt.cli(
            ["run", *args[1:], *select], target_path=target, manifest=project.manifest_path
        ).wait()


def _record(location: Location, run: LaneRun) -> None:
    with Warehouse.open(location) as wh:
        record(wh, [run])
