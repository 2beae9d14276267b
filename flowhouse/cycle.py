"""One cycle of the whole loop: a tick of the engine, then a send run.

The engine (:mod:`flowhouse.orchestration.engine`) decides and queues; activation
(:mod:`flowhouse.activation`) sends. Neither knows the other: this module, the CLI's
``flowhouse tick`` and the Dagster assets compose them. Under the tick lock and the lock of
the sender's bucket, one cycle

0. refuses, changing nothing, when the flow files remove flows or steps with enrollments in
   flight and ``approval`` does not cover it (:mod:`flowhouse.orchestration.engine.intent`),
1. ingests the provider webhooks waiting in the inbox (so the refresh sees them),
2. refreshes the dbt models as of ``now`` (unless told not to): the fast lane, and the enrichment
   lane when it is due (:mod:`flowhouse.core.lanes`; a failed enrichment lane is recorded and
   shown, and the cycle goes on),
3. runs the engine's transitions in one transaction
   (:func:`flowhouse.orchestration.engine.tick.run_tick`),
4. sends the due messages (:func:`flowhouse.activation.deliver.send_open`).
"""

from __future__ import annotations

import time
from contextlib import ExitStack
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from flowhouse.activation.deliver import Options, SendReport, ingest_inbox, lock_name, send_open
from flowhouse.core.clock import utc, utcnow
from flowhouse.core.lanes import RefreshReport, refresh
from flowhouse.core.locks import tick_lock
from flowhouse.core.sql import STATE_SCHEMA
from flowhouse.core.state import ensure_state
from flowhouse.core.warehouse import Location, Warehouse
from flowhouse.orchestration.engine.intent import NO_APPROVAL, Approval
from flowhouse.orchestration.engine.tick import TickResult, load_deployment, preflight, run_tick


@dataclass
class CycleResult:
    """The tick's result and, when the cycle sent, the send run's."""

    tick: TickResult
    sent: SendReport | None = None

    def describe(self) -> str:
        engine = self.tick.describe()
        return engine if self.sent is None else f"{engine}\n{self.sent.describe()}"


def cycle(
    location: Location,
    flows_dir: Path,
    now: datetime | None = None,
    build: bool = True,
    schema: str = STATE_SCHEMA,
    delivery: Options | None = None,
    approval: Approval = NO_APPROVAL,
) -> CycleResult:
    """A tick at ``now`` and, with ``delivery``, the inbox ingested first and the due messages
    sent at the end (as ``flowhouse send`` would)."""
    now = utc(now or utcnow())
    flows, settings = load_deployment(flows_dir)
    started = time.perf_counter()
    sent = None
    with tick_lock(location, schema), ExitStack() as stack:
        ingested = None
        refreshed: RefreshReport | None = None
        if build or delivery is not None:
            preflight(location, schema, flows, approval)
        if delivery is not None:
            stack.enter_context(tick_lock(location, lock_name(schema, delivery.bucket)))
            ingested = ingest_inbox(location, delivery, now)
        if build:
            every = settings.refresh.enrichment_every
            refreshed = refresh(location, now, settings.dbt_vars(), every)
        with Warehouse.open(location) as wh:
            ensure_state(wh, schema)
            counts = run_tick(wh, schema, now, flows, settings, started, approval)
            if delivery is not None:
                sent = send_open(wh, schema, now, flows, settings, flows_dir, delivery)
                sent.ingested = ingested or sent.ingested
    result = TickResult(now, time.perf_counter() - started, counts, not build, refresh=refreshed)
    return CycleResult(result, sent)
