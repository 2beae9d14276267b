"""The Dagster definitions: they load and validate, the graph reads as the pipeline, the whole job
materialises on a small generated store and sends to the fake provider, and the schedule and the
sensor decide as they should."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from dagster import (
    AssetKey,
    DagsterInstance,
    DagsterRunStatus,
    DefaultScheduleStatus,
    DefaultSensorStatus,
    Definitions,
    EnvVar,
    build_schedule_context,
    build_sensor_context,
    instance_for_test,
)
from dagster._core.storage.dagster_run import DagsterRun
from dagster._core.utils import make_new_run_id
from dagster_dbt import DbtProject

from flowhouse.activation.fake.server import running
from flowhouse.activation.fake.settings import FakeSettings
from flowhouse.activation.providers.delivery import provider_configs
from flowhouse.core.clock import parse_now, utcnow
from flowhouse.core.dbt import target_path
from flowhouse.core.errors import ConfigError
from flowhouse.core.lanes import LaneRun, record
from flowhouse.core.paths import CHECKOUT, DBT_PACKAGE, FLOWS
from flowhouse.core.state import ensure_state
from flowhouse.core.warehouse import Location, Warehouse
from flowhouse.demo import DEMO_START
from flowhouse.flows.settings import load_settings
from flowhouse.flows.sync.files import load_syncs
from flowhouse.generate import continue_store, generate_store
from flowhouse.orchestration.dagster.automation import schedule_minutes
from flowhouse.orchestration.dagster.dbt_assets import PREPARE, read_manifest
from flowhouse.orchestration.dagster.resources import (
    NOW_TAG,
    POOL,
    FlowhouseResource,
    resource_from_env,
)
from flowhouse.orchestration.engine.coupons import generate_codes

ENGINE = [AssetKey(k) for k in ("enrollments", "decisions", "messages")]
CUSTOM_CHECKS = {
    ("messages", "unique_message_ids"),
    ("sent_messages", "no_send_after_unsubscribe"),
    ("sent_messages", "outside_quiet_hours"),
    ("sent_messages", "outbox_backlog"),
    ("sent_messages", "no_failed_messages"),
}


DEMO = Location.parse(str(CHECKOUT / "demo" / "warehouse.duckdb"))


def _manifest(location: Location) -> dict[str, Any]:
    """The parsed project the definitions read for this warehouse (``make install`` writes it;
    parsed here when missing)."""
    path = Path(target_path(location)) / "manifest.json"
    if not path.exists():
        from flowhouse.orchestration.dagster.prepare import prepare

        prepare(location)
    return dict(json.loads(path.read_text()))


@pytest.fixture(scope="module", autouse=True)
def manifest() -> dict[str, Any]:
    return _manifest(DEMO)


@pytest.fixture(scope="module")
def defs() -> Definitions:
    from flowhouse.orchestration.dagster.definitions import defs

    return defs


def _models(manifest: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {n["name"]: n for n in manifest["nodes"].values() if n["resource_type"] == "model"}


# -- loading -------------------------------------------------------------------------------------


def test_the_graph_reads_as_the_pipeline(defs: Definitions, manifest: dict[str, Any]) -> None:
    graph = defs.resolve_asset_graph()
    models = _models(manifest)
    dbt_keys = {AssetKey([m["schema"], name]) for name, m in models.items()}
    materializable = set(graph.materializable_asset_keys)
    # one asset per model, each in the group of its schema
    assert dbt_keys <= materializable
    assert len(models) >= 40
    assert {graph.get(k).group_name for k in dbt_keys} == {"staging", "core", "enrichment"}
    affinity = AssetKey(["core", "int_customer_category_affinity"])
    assert graph.get(affinity).group_name == "enrichment"
    assert graph.get(AssetKey(["core", "sync_health"])).group_name == "core"
    # raw inputs are external, upstream of staging
    raw_events = AssetKey(["raw", "events"])
    assert raw_events not in materializable and graph.get(raw_events).group_name == "raw"
    assert raw_events in graph.get(AssetKey(["staging", "stg_events"])).parent_keys
    # engine after core, activation after the outbox
    for key in ENGINE:
        node = graph.get(key)
        assert node.group_name == "engine"
        assert {
            AssetKey(["core", "events"]),
            AssetKey(["core", "customer_attributes"]),
            AssetKey(["core", "segment_members"]),
            AssetKey(["core", "list_members"]),
            AssetKey(["core", "product_interest"]),
        } <= node.parent_keys
    sent = graph.get(AssetKey("sent_messages"))
    assert sent.group_name == "activation" and sent.parent_keys == {AssetKey("messages")}
    # the performance marts after delivery: they read the journal and the outbox as it was sent
    marts = [k for k in dbt_keys if k.path[0] == "marts"]
    assert len(marts) >= 9
    assert {graph.get(k).group_name for k in marts} == {"enrichment"}
    facts = graph.get(AssetKey(["marts", "message_facts"]))
    assert {AssetKey("sent_messages"), AssetKey("decisions")} <= facts.parent_keys
    assert AssetKey("enrollments") in graph.get(AssetKey(["marts", "enrollment_facts"])).parent_keys
    assert not any(k.path[0] == "marts" for key in ENGINE for k in graph.get(key).parent_keys)
    # one asset per enabled sync, after the model its source reads
    syncs = [s for s in load_syncs(FLOWS) if s.enabled]
    assert syncs
    for sync in syncs:
        node = graph.get(AssetKey(f"sync_{sync.sync}"))
        assert node.group_name == "syncs"
        assert AssetKey(["core", "customer_attributes"]) in node.parent_keys
        members = {"segment": "segment_members", "list": "list_members"}.get(sync.source.kind)
        if members:
            assert AssetKey(["core", members]) in node.parent_keys


def test_dbt_tests_and_outbox_rules_are_checks(defs: Definitions, manifest: dict[str, Any]) -> None:
    graph = defs.resolve_asset_graph()
    checks = {(k.asset_key.to_user_string(), k.name) for k in graph.asset_check_keys}
    assert checks >= CUSTOM_CHECKS
    tests = [n for n in manifest["nodes"].values() if n["resource_type"] == "test"]
    assert len(checks) == len(tests) + len(CUSTOM_CHECKS)
    assert ("core/customer_attributes", "not_null_customer_attributes_customer_id") in checks


def test_every_step_on_the_warehouse_shares_one_pool(defs: Definitions) -> None:
    job = defs.resolve_job_def("flowhouse_cycle")
    pools = {node.name: node.definition.pool for node in job.graph.node_dict.values()}
    assert "dbt_models" in pools and "engine_tick" in pools and "sent_messages" in pools
    assert set(pools.values()) == {POOL}, pools


def test_the_job_schedule_and_sensor(defs: Definitions) -> None:
    job = defs.resolve_job_def("flowhouse_cycle")
    graph = defs.resolve_asset_graph()
    enrichment = {
        k for k in graph.materializable_asset_keys if graph.get(k).group_name == "enrichment"
    }
    assert AssetKey(["marts", "flow_daily"]) in enrichment
    # the cycle refreshes the fast lane only; the enrichment lane has its own job and schedule
    cycle = set(job.asset_layer.selected_asset_keys)
    assert cycle == set(graph.materializable_asset_keys) - enrichment
    assert [n for n in job.graph.node_dict if n.startswith("dbt_")] == ["dbt_models"]
    slow = defs.resolve_job_def("flowhouse_enrichment")
    assert set(slow.asset_layer.selected_asset_keys) == enrichment
    assert list(slow.graph.node_dict) == ["dbt_enrichment"]
    assert defs.resolve_implicit_global_asset_job_def() is not None  # "materialize all"
    lane = defs.resolve_schedule_def("flowhouse_enrichment_schedule")
    assert lane.job_name == "flowhouse_enrichment" and lane.cron_schedule == "*/5 * * * *"
    assert lane.default_status == DefaultScheduleStatus.STOPPED
    schedule = defs.resolve_schedule_def("flowhouse_cycle_schedule")
    assert schedule.cron_schedule == "*/5 * * * *"
    assert schedule.default_status == DefaultScheduleStatus.STOPPED
    assert schedule.job_name == "flowhouse_cycle"
    sensor = defs.resolve_sensor_def("flowhouse_new_data")
    assert sensor.default_status == DefaultSensorStatus.STOPPED
    assert sensor.job_name == "flowhouse_cycle"


def test_schedule_interval_from_the_environment() -> None:
    assert schedule_minutes({}) == 5
    assert schedule_minutes({"FLOWHOUSE_SCHEDULE_MINUTES": "15"}) == 15
    for bad in ("0", "60", "five"):
        with pytest.raises(ConfigError, match="FLOWHOUSE_SCHEDULE_MINUTES"):
            schedule_minutes({"FLOWHOUSE_SCHEDULE_MINUTES": bad})


def test_definitions_validate_with_the_shipped_instance(tmp_path: Path) -> None:
    home = tmp_path / "dagster_home"
    home.mkdir()
    shutil.copy(CHECKOUT / "orchestration" / "dagster" / "dagster.yaml", home / "dagster.yaml")
    config = DagsterInstance.from_config(str(home)).get_concurrency_config()
    assert config.run_queue_config is not None
    assert config.run_queue_config.max_concurrent_runs == 1
    assert config.pool_config.default_pool_limit == 1
    dagster = Path(sys.executable).parent / "dagster"
    env = {**os.environ, "DAGSTER_HOME": str(home)}
    env.pop("FLOWHOUSE_WAREHOUSE", None)
    done = subprocess.run(
        [
            str(dagster),
            "definitions",
            "validate",
            "-m",
            "flowhouse.orchestration.dagster.definitions",
        ],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert "Validation successful" in done.stdout + done.stderr


def test_a_missing_manifest_names_the_prepare_command(tmp_path: Path) -> None:
    project = DbtProject(project_dir=DBT_PACKAGE, target_path=tmp_path / "target-duckdb")
    with pytest.raises(ConfigError, match=r"python -m flowhouse\.orchestration\.dagster\.prepare"):
        read_manifest(project)
    assert PREPARE == "python -m flowhouse.orchestration.dagster.prepare"


def test_the_resource_reads_the_environment_without_showing_secrets(tmp_path: Path) -> None:
    env = {
        "FLOWHOUSE_WAREHOUSE": str(tmp_path / "w.duckdb"),
        "FLOWHOUSE_PROVIDER_URL": "http://127.0.0.1:9",
        "SENDGRID_API_KEY": "sg-secret-value",
    }
    resource = resource_from_env(env)
    assert isinstance(resource.warehouse, EnvVar) and resource.warehouse == "FLOWHOUSE_WAREHOUSE"
    assert isinstance(resource.sendgrid_api_key, EnvVar)
    assert resource.twilio_auth_token is None and resource.inbox is None
    assert resource_from_env({}).warehouse == str(CHECKOUT / "demo" / "warehouse.duckdb")
    given = FlowhouseResource(warehouse=str(tmp_path / "w.duckdb"), sendgrid_api_key="sg-secret")
    assert given.environ() == {
        provider_configs(load_settings(FLOWS)).sendgrid.api_key_env: "sg-secret"
    }
    assert given.delivery().environ == given.environ()
    assert "sg-secret" not in repr(given) and "sg-secret" not in str(given)


def test_run_time_tag_parsing() -> None:
    tag = f"the run tag {NOW_TAG}"
    assert parse_now("2026-09-23T02:00:00+02:00", tag) == datetime(2026, 9, 23)
    assert parse_now("2026-09-23 00:00:00", tag) == datetime(2026, 9, 23)
    with pytest.raises(ConfigError, match="flowhouse/now"):
        parse_now("tomorrow", tag)


# -- the schedule and the sensor -----------------------------------------------------------------


@pytest.fixture
def instance() -> Iterator[DagsterInstance]:
    with instance_for_test() as found:
        yield found


def test_schedule_requests_a_run_unless_one_is_active(
    defs: Definitions, instance: DagsterInstance
) -> None:
    schedule = defs.resolve_schedule_def("flowhouse_cycle_schedule")
    first = schedule.evaluate_tick(build_schedule_context(instance=instance))
    assert first.run_requests is not None and len(first.run_requests) == 1
    run = DagsterRun(
        job_name="flowhouse_cycle", run_id=make_new_run_id(), status=DagsterRunStatus.STARTED
    )
    instance.add_run(run)
    busy = schedule.evaluate_tick(build_schedule_context(instance=instance))
    assert not busy.run_requests and "in progress" in (busy.skip_message or "")


def test_the_enrichment_schedule_runs_the_lane_when_due(
    defs: Definitions, instance: DagsterInstance, tmp_path: Path
) -> None:
    schedule = defs.resolve_schedule_def("flowhouse_enrichment_schedule")
    location = Location.parse(str(tmp_path / "warehouse.duckdb"))
    at = datetime(2026, 9, 22, 10, 0, tzinfo=UTC)

    def evaluate(flows: Path = FLOWS) -> Any:
        resources = {"flowhouse": FlowhouseResource(warehouse=str(location), flows_dir=str(flows))}
        context = build_schedule_context(
            instance=instance, resources=resources, scheduled_execution_time=at
        )
        return schedule.evaluate_tick(context)

    assert len(evaluate().run_requests or []) == 1  # never refreshed
    with Warehouse.open(location) as wh:
        ensure_state(wh, "flowhouse")
        naive = at.replace(tzinfo=None)
        record(
            wh, [LaneRun("enrichment", naive - timedelta(minutes=20), naive, naive, "succeeded")]
        )
    waiting = evaluate()
    assert not waiting.run_requests and "not due" in (waiting.skip_message or "")
    assert "next at 2026-09-22 10:40:00" in (waiting.skip_message or "")
    never = tmp_path / "flows"
    shutil.copytree(FLOWS, never)
    settings = never / "_settings.yml"
    text = settings.read_text().replace("enrichment_every: 1h", "enrichment_every: never")
    assert "enrichment_every: never" in text
    settings.write_text(text)
    off = evaluate(never)
    assert not off.run_requests and "only on its own schedule" in (off.skip_message or "")


def _add_events(location: Location, *loaded: datetime) -> None:
    with Warehouse.open(location) as wh:
        wh.ensure_raw_tables()
        start = wh.count("raw.events")
        for i, at in enumerate(loaded, start):
            wh.execute(
                "insert into raw.events (event_id, customer_id, event_type, occurred_at, "
                "loaded_at) values (?, 'c1', 'product_viewed', ?, ?)",
                [f"e{i}", at, at],
            )


def test_sensor_runs_on_new_raw_data_once(
    defs: Definitions, instance: DagsterInstance, tmp_path: Path
) -> None:
    sensor = defs.resolve_sensor_def("flowhouse_new_data")
    location = Location.parse(str(tmp_path / "store" / "warehouse.duckdb"))
    resources = {"flowhouse": FlowhouseResource(warehouse=str(location))}

    def evaluate(cursor: str | None) -> Any:
        context = build_sensor_context(instance=instance, resources=resources, cursor=cursor)
        return sensor.evaluate_tick(context)

    missing = evaluate(None)
    assert not missing.run_requests and "no warehouse" in (missing.skip_message or "")
    assert not location.path.exists()  # type: ignore[union-attr]

    first_load = datetime(2026, 9, 22, 10, 0)
    _add_events(location, first_load - timedelta(hours=1), first_load)
    new = evaluate(None)
    assert [r.run_key for r in new.run_requests] == ["2026-09-22 10:00:00"]
    assert new.cursor == "2026-09-22 10:00:00"

    same = evaluate(new.cursor)
    assert not same.run_requests and "no raw events loaded since" in (same.skip_message or "")

    _add_events(location, first_load + timedelta(minutes=5))
    later = evaluate(same.cursor or new.cursor)
    assert [r.run_key for r in later.run_requests] == ["2026-09-22 10:05:00"]

    # while a run works on the warehouse, the sensor waits (the data is not lost: no cursor move)
    instance.add_run(
        DagsterRun(job_name="x", run_id=make_new_run_id(), status=DagsterRunStatus.STARTED)
    )
    _add_events(location, first_load + timedelta(minutes=10))
    waiting = evaluate(later.cursor)
    assert not waiting.run_requests and "in progress" in (waiting.skip_message or "")
    assert waiting.cursor in (None, later.cursor)


# -- the whole job -------------------------------------------------------------------------------


@pytest.fixture(params=["duckdb", pytest.param("postgres", marks=pytest.mark.postgres)])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Location:
    if request.param == "postgres":
        return Location.parse(request.getfixturevalue("pg_url"))
    return Location.parse(str(tmp_path / "warehouse.duckdb"))


@pytest.mark.slow
@pytest.mark.filterwarnings("ignore:AssetExecutionContext.op is deprecated:DeprecationWarning")
def test_the_cycle_materialises_and_sends_to_the_fake_provider(
    store: Location, tmp_path: Path
) -> None:
    from flowhouse.orchestration.dagster.location import build_definitions

    location = store
    models = _models(_manifest(location))
    generate_store(location, customers=1500, days=21, seed=11, start=DEMO_START)
    launch = DEMO_START + timedelta(days=21)
    with Warehouse.open(location) as wh:  # as the demo does: coupon codes for the flows
        ensure_state(wh, "flowhouse")
        for pool in load_settings(FLOWS).coupon_pools:
            generate_codes(wh, pool, 2_000, launch, pool.upper() + "-")
    inbox = tmp_path / "inbox"
    with (
        running(FakeSettings(inbox=inbox, record_dir=tmp_path / "received")) as fake,
        instance_for_test() as instance,
    ):
        resource = FlowhouseResource(
            warehouse=location.url or str(location.path),
            flows_dir=str(FLOWS),
            provider_url=fake.url,
            inbox=str(inbox),
        )
        definitions = build_definitions(resource)
        job = definitions.resolve_job_def("flowhouse_cycle")
        lane = definitions.resolve_job_def("flowhouse_enrichment")

        def cycle(at: datetime) -> Any:
            fake.set_now(at)
            result = job.execute_in_process(instance=instance, tags={NOW_TAG: at.isoformat()})
            assert result.success
            return result

        deployed = cycle(launch)  # the first cycle deploys the flow library at launch
        continue_store(location, until=launch + timedelta(days=1))
        second = utcnow()
        result = cycle(launch + timedelta(days=1))
        enriched = lane.execute_in_process(
            instance=instance, tags={NOW_TAG: (launch + timedelta(days=1, minutes=1)).isoformat()}
        )
        assert enriched.success
        stats = fake.state.stats()

    # a run at another time keeps dbt's partial parse (its time is not a dbt var)
    names = _dbt_events_since(location, second)
    assert names.count("MainReportVersion") == 2  # dbt_models, then dbt_enrichment on its own
    assert "UnableToPartialParse" not in names

    keys = {e.asset_key for e in result.get_asset_materialization_events()}
    slow = {e.asset_key for e in enriched.get_asset_materialization_events()}
    assert {AssetKey([m["schema"], n]) for n, m in models.items()} <= keys | slow
    assert not keys & slow and AssetKey(["marts", "flow_daily"]) in slow
    with Warehouse.open(location) as wh:
        lanes = wh.query(
            "select lane, status, ran_by from flowhouse.lane_runs order by finished_at"
        )
    assert lanes[-2:] == [("fast", "succeeded", "dagster"), ("enrichment", "succeeded", "dagster")]
    assert {*ENGINE, AssetKey("sent_messages")} <= keys
    assert {AssetKey(f"sync_{s.sync}") for s in load_syncs(FLOWS) if s.enabled} <= keys

    evaluations = result.get_asset_check_evaluations()
    failed = [(e.asset_key.to_user_string(), e.check_name) for e in evaluations if not e.passed]
    assert failed == []
    ran = {(e.asset_key.to_user_string(), e.check_name) for e in evaluations}
    assert ran >= CUSTOM_CHECKS
    assert len(ran) > 200  # the dbt tests ran as checks

    engine = _metadata(result, "messages")
    assert engine["tick_at"] == "2026-09-23 00:00:00"
    assert engine["enrolled"] > 0 and engine["messages"] > 0
    sent = _metadata(result, "sent_messages")
    assert sent["sent"] > 0
    # the only refusals: the generated store's few stale device tokens, which the fake answers
    # UNREGISTERED as FCM does; a push whose every token is dead fails with that reason
    assert stats["duplicates"] == 0 and set(stats["rejected"]) <= {"unregistered"}
    with Warehouse.open(location, read_only=True) as wh:
        failures = wh.query("select channel, failure_reason from flowhouse.messages "
                            "where status = 'failed'")  # fmt: skip
        flows = wh.count("flowhouse.flows")
        went_at = wh.query("select distinct sent_at from flowhouse.messages where status = 'sent'")
        synced = wh.scalar("select count(distinct sync_id) from flowhouse.sync_runs")
        onsite = wh.count("flowhouse.onsite_messages")  # sent into the warehouse, not a provider
    assert sum(stats["accepted"].values()) + onsite >= sent["sent"] and onsite > 0
    assert len(failures) == sent["failed"]
    assert all(c == "push" and r.startswith("no valid device token") for c, r in failures)
    assert flows == len(list(FLOWS.glob("[!_]*.yml")))
    assert _metadata(deployed, "enrollments")["tick_at"] == "2026-09-22 00:00:00"
    assert went_at == [(launch + timedelta(days=1),)]  # sent at the run's time
    assert synced == len([s for s in load_syncs(FLOWS) if s.enabled])


def _dbt_events_since(location: Location, since: datetime) -> list[str]:
    """The names of the events the Dagster dbt runs logged (JSON lines in the adapter's target
    path, rotated as ``dbt.log.N``) at or after `since` (naive UTC)."""
    names = []
    for path in Path(target_path(location)).glob("dbt.log*"):
        for line in path.read_text(errors="replace").splitlines():
            try:
                info = json.loads(line).get("info", {})
            except ValueError:
                continue
            if datetime.fromisoformat(info.get("ts", "1970-01-01").rstrip("Z")) >= since:
                names.append(str(info.get("name")))
    return names


def _metadata(result: Any, asset: str) -> dict[str, Any]:
    found = [
        e.materialization
        for e in result.get_asset_materialization_events()
        if e.asset_key == AssetKey(asset)
    ]
    assert len(found) == 1
    return {k: v.value for k, v in found[0].metadata.items()}
