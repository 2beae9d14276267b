"""The engine and activation as Dagster assets, downstream of the dbt models.

- ``enrollments``, ``decisions``, ``messages`` (group ``engine``): one multi-asset running one
  engine tick at the run's time (:func:`flowhouse.orchestration.engine.tick.tick` with
  ``build=False``, the dbt assets having just refreshed the models, and no delivery). A tick that
  would remove flows or steps with enrollments in flight fails, changing nothing, with the list:
  such a change is approved with ``flowhouse apply`` of a reviewed plan (or ``flowhouse tick
  --allow-removals``), never by a scheduled run;
- ``sent_messages`` (group ``activation``): ``flowhouse send`` at the run's time: the provider
  webhooks in the inbox are ingested, then the due outbox is delivered;
- ``sync_<id>`` (group ``syncs``): one per enabled sync file, ``flowhouse sync <id>``. In the
  ``flowhouse_cycle`` job a sync runs only when its ``schedule`` has passed since its last
  successful run; materialised on its own (from the UI), it always runs.

Each opens the warehouse inside its body, through the flowhouse function it calls, and closes it
before returning; all of them share the ``flowhouse_warehouse`` pool.
"""

from collections.abc import Iterator, Mapping, Sequence
from datetime import datetime
from typing import Any

from dagster import (
    AssetExecutionContext,
    AssetKey,
    AssetSpec,
    Failure,
    MaterializeResult,
    asset,
    multi_asset,
)

from flowhouse.activation.deliver import SendReport, send
from flowhouse.activation.sync.run import SyncReport, run_syncs
from flowhouse.core.sql import render, statement
from flowhouse.core.warehouse import Location, Warehouse
from flowhouse.flows.sync.syncfile import Sync
from flowhouse.orchestration.dagster.resources import POOL, FlowhouseResource, run_time
from flowhouse.orchestration.engine.intent import RemovalsNeedIntent
from flowhouse.orchestration.engine.tick import tick

ENGINE_TABLES = ("enrollments", "decisions", "messages")
#: The models the engine reads (enroll, advance and the send-time rules).
ENGINE_READS = (
    "core.events",
    "core.customer_attributes",
    "core.segment_members",
    "core.list_members",
    "core.product_interest",
)
#: The members model a segment or a list source is joined to.
SYNC_MEMBERS = {"segment": "core.segment_members", "list": "core.list_members"}
CYCLE_JOB = "flowhouse_cycle"
ENRICHMENT_JOB = "flowhouse_enrichment"

_DESCRIPTIONS = {
    "enrollments": "flowhouse.enrollments: who is in which flow, at which step, until when.",
    "decisions": "flowhouse.decisions: the journal of every step taken, skipped or refused.",
    "messages": "flowhouse.messages: the outbox, messages and actions queued by the engine.",
}


def engine_deps(model_keys: Mapping[str, AssetKey]) -> list[AssetKey]:
    return [model_keys[r] for r in ENGINE_READS if r in model_keys]


def build_engine_assets(deps: Sequence[AssetKey], dialect: str) -> Any:
    """One engine tick at the run's time, writing the three engine tables."""
    specs = [
        AssetSpec(
            name, deps=deps, group_name="engine", kinds={dialect}, description=_DESCRIPTIONS[name]
        )
        for name in ENGINE_TABLES
    ]

    @multi_asset(specs=specs, name="engine_tick", pool=POOL)
    def engine_tick(
        context: AssetExecutionContext, flowhouse: FlowhouseResource
    ) -> Iterator[MaterializeResult[None]]:
        now = run_time(context)
        try:
            result = tick(flowhouse.location(), flowhouse.flows(), now=now, build=False)
        except RemovalsNeedIntent as err:
            raise Failure(
                description=str(err),
                metadata={"removals": [str(r) for r in err.removals]},
                allow_retries=False,
            ) from err
        context.log.info(result.describe())
        metadata: dict[str, Any] = {
            "tick_at": now.isoformat(sep=" "),
            "seconds": round(result.seconds, 2),
            **{k: int(v) for k, v in result.counts.items()},
        }
        for name in ENGINE_TABLES:
            yield MaterializeResult(asset_key=name, metadata=metadata)

    return engine_tick


def build_sent_messages(dialect: str) -> Any:
    @asset(
        name="sent_messages",
        deps=["messages"],
        group_name="activation",
        kinds={dialect},
        pool=POOL,
        description="flowhouse send: ingest the provider webhooks, then deliver the due outbox.",
    )
    def sent_messages(
        context: AssetExecutionContext, flowhouse: FlowhouseResource
    ) -> MaterializeResult[None]:
        now = run_time(context)
        report = send(flowhouse.location(), flowhouse.flows(), now, flowhouse.delivery())
        context.log.info(report.describe())
        return MaterializeResult(metadata=send_metadata(report))

    return sent_messages


def send_metadata(report: SendReport) -> dict[str, Any]:
    return {
        "claimed": report.claimed,
        "sent": report.outcomes["sent"],
        "failed": report.outcomes["failed"],
        "to_retry": report.outcomes["queued"],
        "unconfirmed": report.outcomes["unconfirmed"],
        "skipped_at_send_time": sum(report.skipped.values()),
        "moved_for_quiet_hours": report.requeued_quiet_hours + report.scheduled,
        "engagement_ingested": sum(report.ingested.values()),
        "seconds": round(report.seconds, 2),
    }


def sync_deps(sync: Sync, model_keys: Mapping[str, AssetKey]) -> list[AssetKey]:
    """The dbt assets a sync reads: its relation, and the members model of a segment or list
    (raw inputs and relations outside this project give none)."""
    relations = [sync.source.relation, SYNC_MEMBERS.get(sync.source.kind, "")]
    return [model_keys[r] for r in dict.fromkeys(relations) if r in model_keys]


def build_sync_asset(sync: Sync, deps: Sequence[AssetKey], dialect: str) -> Any:
    @asset(
        name=f"sync_{sync.sync}",
        deps=deps,
        group_name="syncs",
        kinds={dialect, sync.target_name},
        pool=POOL,
        output_required=False,
        description=f"{sync.name} ({sync.mode} to {sync.target_name}, every {sync.schedule}).",
    )
    def sync_asset(
        context: AssetExecutionContext, flowhouse: FlowhouseResource
    ) -> Iterator[MaterializeResult[None]]:
        now = run_time(context)
        location = flowhouse.location()
        if context.run.job_name == CYCLE_JOB:
            due_at = sync_due_at(location, sync, now)
            if due_at > now:
                context.log.info(f"sync {sync.sync} is not due until {due_at:%Y-%m-%d %H:%M:%S}")
                return
        [report] = run_syncs(location, flowhouse.flows(), [sync.sync], now, flowhouse.syncing())
        context.log.info(report.describe())
        yield MaterializeResult(metadata=sync_metadata(report))

    return sync_asset


_LAST_RUN = """
select max(started_at) from flowhouse.sync_runs
where sync_id = :sync and status in ('succeeded', 'partial')
"""


def sync_due_at(location: Location, sync: Sync, now: datetime) -> datetime:
    """When the sync is due: its schedule after its last successful run; ``now`` when it never
    ran."""
    with Warehouse.open(location, read_only=True) as wh:
        if not wh.table_exists("flowhouse", "sync_runs"):
            return now
        last = wh.scalar(render(statement(_LAST_RUN, sync=sync.sync), wh.dialect))
    return now if last is None else last + sync.schedule


def sync_metadata(report: SyncReport) -> dict[str, Any]:
    return {
        "status": report.status,
        "source_rows": report.source_rows,
        **{f"sent_{k}": int(v) for k, v in sorted(report.sent.items())},
        "rejected": sum(report.rejected.values()),
        "left_for_retry": report.retried,
        "seconds": round(report.seconds, 2),
    }
