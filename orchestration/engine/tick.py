"""One tick of the engine at time ``now``: a function of the warehouse state and ``now``.

1. refresh the dbt models as of ``now`` (unless told not to): the fast lane, and the enrichment
   lane when it is due (:mod:`flowhouse.core.lanes`);
2. deploy the flow files: new flows go live now, new versions are recorded, flows are paused or
   resumed; draft flows are left out. A removal that would end enrollments in flight stops the
   tick unless it was approved (:mod:`flowhouse.orchestration.engine.intent`);
3. mark coupons redeemed by orders loaded since the previous tick, and decide the splits whose
   ``auto_winner`` rule is now met (:mod:`flowhouse.orchestration.engine.winners`);
4. enroll the new triggers of every flow (:mod:`flowhouse.orchestration.engine.enroll`);
5. advance every enrollment whose step is due at or before ``now``
   (:mod:`flowhouse.orchestration.engine.advance`), queueing messages
   (:mod:`flowhouse.orchestration.engine.queue`).

Steps 2-5 run in one transaction: a tick that fails or is killed leaves nothing half done, and a
rerun at the same ``now`` changes nothing. A lock keeps two ticks from running at once. Its
statements keep to the engine's bounds (:mod:`flowhouse.core.bounds`); when one fails, the flows
whose predicate fails on its own are skipped and the tick runs again without them
(:mod:`flowhouse.orchestration.engine.isolate`).
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

from flowhouse.core.bounds import Bounds, bounded
from flowhouse.core.clock import utc, utcnow
from flowhouse.core.errors import ConfigError, WarehouseError
from flowhouse.core.lanes import RefreshReport, refresh
from flowhouse.core.locks import tick_lock
from flowhouse.core.sql import STATE_SCHEMA
from flowhouse.core.state import ensure_state
from flowhouse.core.warehouse import Location, Warehouse
from flowhouse.flows.compile import CompiledFlow
from flowhouse.flows.load import load_flows
from flowhouse.flows.settings import Settings
from flowhouse.orchestration.engine.advance import advance
from flowhouse.orchestration.engine.deploy import deploy
from flowhouse.orchestration.engine.enroll import enroll
from flowhouse.orchestration.engine.intent import NO_APPROVAL, Approval, check
from flowhouse.orchestration.engine.isolate import Skip, culprits, skip, skipped_at
from flowhouse.orchestration.engine.plan import plan, removes
from flowhouse.orchestration.engine.winners import decide
from flowhouse.rules.context import Context


@dataclass
class TickResult:
    now: datetime
    seconds: float
    counts: dict[str, int] = field(default_factory=dict)
    skipped_build: bool = False
    #: Flows skipped this tick because a predicate of theirs failed.
    skips: list[Skip] = field(default_factory=list)
    #: The model refresh's lanes, when the tick refreshed.
    refresh: RefreshReport | None = None

    def describe(self) -> str:
        c = self.counts
        skipped = "".join(f"\n  skipped: {s}" for s in self.skips)
        lanes = "".join(f"\n{line}" for line in self.refresh.lines()) if self.refresh else ""
        return (
            f"tick at {self.now:%Y-%m-%d %H:%M:%S}: {c.get('triggers', 0)} triggers, "
            f"{c.get('enrolled', 0)} enrolled, {c.get('refused', 0)} refused, "
            f"{c.get('decisions', 0)} decisions, {c.get('messages', 0)} messages and actions, "
            f"{c.get('exited', 0)} exits in {self.seconds:.2f} s{skipped}{_winners(c)}{lanes}"
        )


def _winners(counts: dict[str, int]) -> str:
    """A line for the splits whose automatic winner this tick decided (flowhouse.split_winners)."""
    n = counts.get("winners", 0)
    return f"\n  {n} split winner(s) decided: see flowhouse.split_winners" if n else ""


def tick(
    location: Location,
    flows_dir: Path,
    now: datetime | None = None,
    build: bool = True,
    schema: str = STATE_SCHEMA,
    approval: Approval = NO_APPROVAL,
) -> TickResult:
    """One tick under the tick lock: the model refresh (unless ``build`` is off), then
    :func:`run_tick`. Sending is not the engine's: :mod:`flowhouse.cycle` composes a tick with a
    send."""
    now = utc(now or utcnow())
    flows, settings = load_deployment(flows_dir)
    started = time.perf_counter()
    refreshed = None
    with tick_lock(location, schema):
        if build:
            preflight(location, schema, flows, approval)
            every = settings.refresh.enrichment_every
            refreshed = refresh(location, now, settings.dbt_vars(), every)
        with Warehouse.open(location) as wh:
            ensure_state(wh, schema)
            counts = run_tick(wh, schema, now, flows, settings, started, approval)
            skips = skipped_at(wh, schema, now)
    return TickResult(now, time.perf_counter() - started, counts, not build, skips, refreshed)


def load_deployment(flows_dir: Path) -> tuple[list[CompiledFlow], Settings]:
    """The flows of `flows_dir` for a tick or a plan. A folder without a single flow file is an
    error, never "remove every flow" (a wrong ``--flows`` must not end every enrollment)."""
    flows, settings = load_flows(flows_dir)
    if not flows:
        raise ConfigError(
            f"no flow files in {flows_dir}; a tick never takes an empty folder to mean "
            "'remove every flow' (set `state: draft` in a flow file to stop deploying it)",
            expected="a folder with flow files (*.yml)",
        )
    return flows, settings


def preflight(
    location: Location, schema: str, flows: list[CompiledFlow], approval: Approval
) -> None:
    """Refuse the tick before anything else runs (the model refresh, the inbox) when it would
    make a removal nobody approved; :func:`run_tick` checks again in its transaction."""
    with Warehouse.open(location) as wh:
        check(plan(wh, flows, schema, counts=False), flows, approval)


def run_tick(
    wh: Warehouse,
    schema: str,
    now: datetime,
    flows: list[CompiledFlow],
    settings: Settings,
    started: float | None = None,
    approval: Approval = NO_APPROVAL,
    bounds: Bounds | None = None,
) -> dict[str, int]:
    """Steps 2-5 in one transaction on an open warehouse (the caller holds the lock). `flows` is
    every flow file, drafts included; `approval` names the removals of enrollments in flight
    this tick may make. Statements keep to `bounds` (default: :meth:`Bounds.from_env`); the
    flows whose predicate makes one fail are skipped, and the others proceed."""
    started = time.perf_counter() if started is None else started
    bounds = bounds or Bounds.from_env()
    _check_events(wh)
    skips: dict[str, Skip] = {}
    while True:
        try:
            return _run_tick(wh, schema, now, flows, settings, started, approval, bounds, skips)
        except WarehouseError:
            live = [f for f in flows if f.flow.state != "draft"]
            found = culprits(wh, schema, now, live, bounds, skips)
            if not found:
                raise
            skips.update(found)


def _check_events(wh: Warehouse) -> None:
    """``core.events`` built by an earlier flowhouse has no ``visible_at`` (the engine's window):
    a clear error rather than a SQL one, for a ``--no-build`` tick right after an upgrade."""
    if wh.table_exists("core", "events") and "visible_at" not in wh.columns("core", "events"):
        raise ConfigError(
            "core.events was built by an earlier version of flowhouse (it has no visible_at)",
            expected="the models refreshed first: `flowhouse build`, or a tick without --no-build",
        )


def _run_tick(
    wh: Warehouse,
    schema: str,
    now: datetime,
    flows: list[CompiledFlow],
    settings: Settings,
    started: float,
    approval: Approval,
    bounds: Bounds,
    skips: dict[str, Skip],
) -> dict[str, int]:
    wall = utcnow()
    with wh.transaction(), bounded(wh, bounds):
        plans = plan(wh, flows, schema, counts=False)
        if not flows and removes(plans):
            raise ConfigError("no flows: a tick never takes none to mean 'remove every flow'")
        check(plans, flows, approval)
        live = [f for f in flows if f.flow.state != "draft"]
        ctx = Context(wh, schema, now, None, live, settings)
        last = ctx.value("select max(tick_at) from flowhouse.ticks")
        if last is not None and now < last:
            raise ConfigError(
                f"the last tick ran at {last:%Y-%m-%d %H:%M:%S}; a tick cannot go back in time",
                value=now.isoformat(sep=" "),
                expected=f"a time at or after {last}",
            )
        ctx.previous = last
        deploy(ctx)
        skip(ctx, skips)
        ctx.temp("_fh_window", _WINDOW, now=now, since=last)
        _redeem(ctx)
        decide(ctx)
        enroll(ctx)
        advance(ctx)
        c = ctx.counts
        ctx.run(
            """
            insert into flowhouse.ticks
            select :now, :wall, :finished, :seconds, :triggers, :enrolled, :refused,
                :decisions, :messages
            where not exists (select 1 from flowhouse.ticks where tick_at = :now)
            """,
            now=now,
            wall=wall,
            finished=utcnow(),
            seconds=round(time.perf_counter() - started, 3),
            **{
                k: c.get(k, 0) for k in ("triggers", "enrolled", "refused", "decisions", "messages")
            },
        )
    return ctx.counts


#: The events this tick sees for the first time (they became visible after the previous tick:
#: ``visible_at``, not ``loaded_at``, which a derived event sets to its decision moment before a
#: refresh materialises it): most statements need only these. The very first tick starts with none
#: (no enrollment or coupon can have been waiting for them).
_WINDOW = """
select * from core.events
where visible_at <= :now and :since is not null and visible_at > :since
"""


def _redeem(ctx: Context) -> None:
    """A coupon stops being active when an order redeems it (``order_placed.coupon_code``)."""
    ctx.run(
        """
        update flowhouse.coupon_codes as c
        set redeemed_at = r.redeemed_at
        from (
            select json_text(properties, 'coupon_code') as code, min(occurred_at) as redeemed_at
            from _fh_window
            where event_type = 'order_placed'
                and json_text(properties, 'coupon_code') is not null
            group by json_text(properties, 'coupon_code')
        ) as r
        where c.code = r.code and c.message_id is not null
            and (c.redeemed_at is null or c.redeemed_at > r.redeemed_at)
        """,
        now=ctx.now,
        since=ctx.previous,
    )
