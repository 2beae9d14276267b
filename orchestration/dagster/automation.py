"""The job that runs the whole cycle, its schedule, and a sensor for newly landed raw data.

- ``flowhouse_cycle``: every asset and check (dbt models and tests, the engine tick, sending,
  the syncs that are due);
- ``flowhouse_cycle_schedule``: the job every ``FLOWHOUSE_SCHEDULE_MINUTES`` minutes (default 5,
  cron ``*/N * * * *`` in UTC: best a divisor of 60);
- ``flowhouse_new_data``: the job when ``max(loaded_at)`` of ``raw.events`` has moved past the
  sensor's cursor (the run key is that watermark).

Both start stopped: turn them on in the Dagster UI. Both skip while any run is queued or in
progress (one run at a time works on a warehouse, and a DuckDB file can only be read while nobody
writes it), so runs never pile up behind a slow one.
"""

import os
from collections.abc import Mapping
from datetime import datetime
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

from flowhouse.core.clock import parse_now
from flowhouse.core.errors import ConfigError, WarehouseError
from flowhouse.core.warehouse import Location, Warehouse
from flowhouse.orchestration.dagster.assets import CYCLE_JOB
from flowhouse.orchestration.dagster.resources import FlowhouseResource

SCHEDULE_ENV = "FLOWHOUSE_SCHEDULE_MINUTES"
DEFAULT_MINUTES = 5
ACTIVE = [
    DagsterRunStatus.QUEUED,
    DagsterRunStatus.NOT_STARTED,
    DagsterRunStatus.STARTING,
    DagsterRunStatus.STARTED,
]

cycle_job = define_asset_job(
    CYCLE_JOB,
    selection=AssetSelection.all() | AssetSelection.all_asset_checks(),
    description="The whole cycle at one time: dbt build, engine tick, send, the syncs due.",
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
