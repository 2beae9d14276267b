"""The jobs (the cycle, the enrichment lane), their schedules, and a sensor for new raw data.

- ``flowhouse_cycle``: every asset and check but the enrichment lane's (the fast lane's dbt
  models and tests, the engine tick, sending, the syncs that are due);
- ``flowhouse_cycle_schedule``: the job every ``FLOWHOUSE_SCHEDULE_MINUTES`` minutes (default 5,
  cron ``*/N * * * *`` in UTC: best a divisor of 60);
- ``flowhouse_enrichment``: the enrichment lane (group ``enrichment``: the category affinity and
  the performance marts, :mod:`flowhouse.core.lanes`) and its tests;
- ``flowhouse_enrichment_schedule``: looks every ``FLOWHOUSE_SCHEDULE_MINUTES`` minutes and runs
  ``flowhouse_enrichment`` when the lane's last success (``flowhouse.lane_runs``) is older than
  ``refresh.enrichment_every`` of the settings, the rule a CLI tick follows; never with
  ``refresh.enrichment_every: never`` (then launch the job yourself);
- ``flowhouse_new_data``: the job when ``max(loaded_at)`` of ``raw.events`` has moved past the
  sensor's cursor (the run key is that watermark).

Both start stopped: turn them on in the Dagster UI. Both skip while any run is queued or in
progress (one run at a time works on a warehouse, and a DuckDB file can only be read while nobody
writes it), so runs never pile up behind a slow one.
"""

import os
from collections.abc import Mapping
from datetime import UTC, datetime, timedelta
from typing import Any

from dagster import (
    AssetSelection,
    DagsterInstance,
    DagsterRunStatus,
    DefaultScheduleStatus,
    DefaultSensorStatus,
    RunRequest,
    RunsFilter,
    ScheduleEvaluationContext,
    SensorEvaluationContext,
    SkipReason,
    define_asset_job,
    schedule,
    sensor,
)
from sqlglot import exp

from flowhouse.core.clock import parse_now, utc
from flowhouse.core.errors import ConfigError, WarehouseError
from flowhouse.core.lanes import LaneState, enrichment_due, lane_states
from flowhouse.core.warehouse import Location, Warehouse
from flowhouse.flows.settings import load_settings
from flowhouse.orchestration.dagster.assets import CYCLE_JOB, ENRICHMENT_JOB
from flowhouse.orchestration.dagster.dbt_assets import ENRICHMENT_GROUP
from flowhouse.orchestration.dagster.resources import FlowhouseResource

SCHEDULE_ENV = "FLOWHOUSE_SCHEDULE_MINUTES"
DEFAULT_MINUTES = 5
ACTIVE = [
    DagsterRunStatus.QUEUED,
    DagsterRunStatus.NOT_STARTED,
    DagsterRunStatus.STARTING,
    DagsterRunStatus.STARTED,
]

_ENRICHMENT = AssetSelection.groups(ENRICHMENT_GROUP)
_FAST = AssetSelection.all() - _ENRICHMENT
cycle_job = define_asset_job(
    CYCLE_JOB,
    selection=_FAST,  # with the checks of what it selects
    description="The whole cycle at one time: dbt build of the fast lane, engine tick, send, the "
    "syncs due (the enrichment lane has its own job).",
)
enrichment_job = define_asset_job(
    ENRICHMENT_JOB,
    selection=_ENRICHMENT,
    description="The enrichment lane: category affinity and the performance marts, with tests.",
)


def schedule_minutes(environ: Mapping[str, str] | None = None) -> int:
    """Minutes between scheduled runs (``FLOWHOUSE_SCHEDULE_MINUTES``, 1 to 59)."""
    value = (os.environ if environ is None else environ).get(SCHEDULE_ENV) or str(DEFAULT_MINUTES)
    if not value.isdigit() or not 1 <= int(value) <= 59:
        raise ConfigError(
            f"{SCHEDULE_ENV} is not a number of minutes",
            value=value,
            expected="a whole number from 1 to 59 (best a divisor of 60)",
        )
    return int(value)


def busy(instance: DagsterInstance) -> bool:
    """Whether a run is queued or in progress (every run of these definitions works on the
    warehouse: the cycle, or assets materialised from the UI)."""
    return bool(instance.get_run_records(RunsFilter(statuses=ACTIVE), limit=1))


def build_schedule(minutes: int) -> Any:
    @schedule(
        name="flowhouse_cycle_schedule",
        job=cycle_job,
        cron_schedule=f"*/{minutes} * * * *",
        execution_timezone="UTC",
        default_status=DefaultScheduleStatus.STOPPED,
        description=f"The cycle every {minutes} minutes ({SCHEDULE_ENV}).",
    )
    def flowhouse_cycle_schedule(context: ScheduleEvaluationContext) -> RunRequest | SkipReason:
        if busy(context.instance):
            return SkipReason("a run is queued or in progress")
        return RunRequest()

    return flowhouse_cycle_schedule


def build_enrichment_schedule(minutes: int) -> Any:
    @schedule(
        name="flowhouse_enrichment_schedule",
        job=enrichment_job,
        cron_schedule=f"*/{minutes} * * * *",
        execution_timezone="UTC",
        default_status=DefaultScheduleStatus.STOPPED,
        description="The enrichment lane when its last success is older than "
        "refresh.enrichment_every (_settings.yml); looks every "
        f"{minutes} minutes ({SCHEDULE_ENV}).",
    )
    def flowhouse_enrichment_schedule(
        context: ScheduleEvaluationContext, flowhouse: FlowhouseResource
    ) -> RunRequest | SkipReason:
        if busy(context.instance):
            return SkipReason("a run is queued or in progress")
        every = load_settings(flowhouse.flows()).refresh.enrichment_every
        moment = context.scheduled_execution_time or datetime.now(UTC)
        location = flowhouse.location()
        try:
            due, why = lane_due(location, utc(moment), every)
        except WarehouseError as err:
            return SkipReason(f"cannot read the warehouse now: {err}")
        return RunRequest() if due else SkipReason(f"the enrichment lane {why}")

    return flowhouse_enrichment_schedule


def lane_due(location: Location, now: datetime, every: timedelta | None) -> tuple[bool, str]:
    """Whether the enrichment lane is due at `now` by its recorded runs (as a tick decides)."""
    if location.path is not None and not location.path.exists():
        return enrichment_due(LaneState("enrichment", None, None), now, every)
    with Warehouse.open(location, read_only=True) as wh:
        state = lane_states(wh)["enrichment"]
    return enrichment_due(state, now, every)


@sensor(
    name="flowhouse_new_data",
    job=cycle_job,
    minimum_interval_seconds=60,
    default_status=DefaultSensorStatus.STOPPED,
    description="The cycle when new raw events have landed (max(loaded_at) of raw.events).",
)
def flowhouse_new_data(
    context: SensorEvaluationContext, flowhouse: FlowhouseResource
) -> RunRequest | SkipReason:
    location = flowhouse.location()
    if location.path is not None and not location.path.exists():
        return SkipReason(f"no warehouse at {location} yet")
    if busy(context.instance):
        return SkipReason("a run is queued or in progress")
    try:
        watermark = raw_watermark(location)
    except WarehouseError as err:
        return SkipReason(f"cannot read the warehouse now: {err}")
    if watermark is None:
        return SkipReason("no raw events loaded yet")
    mark = watermark.isoformat(sep=" ")
    if context.cursor and parse_now(context.cursor, "the sensor's cursor") >= watermark:
        return SkipReason(f"no raw events loaded since {context.cursor}")
    context.update_cursor(mark)
    return RunRequest(run_key=mark)


def raw_watermark(location: Location) -> datetime | None:
    """The newest ``loaded_at`` in ``raw.events`` (None when there is none), read read-only."""
    with Warehouse.open(location, read_only=True) as wh:
        if not wh.table_exists("raw", "events"):
            return None
        value = wh.scalar(exp.select("max(loaded_at)").from_("raw.events"))
    return value if isinstance(value, datetime) else None
