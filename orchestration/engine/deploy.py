"""Deploy the flow files a tick sees: record new flows (they go live now), new versions and their
steps, flows paused or resumed, and flows whose file is gone (or went back to ``draft``: draft
flows never reach the engine, :func:`flowhouse.orchestration.engine.tick.run_tick` leaves them out)."""

from __future__ import annotations

import json

from flowhouse.flows.compile import CompiledFlow
from flowhouse.rules.context import Context

_FLOW = """
insert into flowhouse.flows
    (flow_id, version, name, transactional, holdout, priority, goal_event, goal_within_seconds,
     went_live_at, considered_until, updated_at, removed_at, paused_at)
values (:flow_id, :version, :name, :transactional, :holdout, :priority, :goal_event,
        :goal_within, :now, :considered_until, :now, null, :paused_at)
"""

_UPDATE = """
update flowhouse.flows
set version = :version, name = :name, transactional = :transactional, holdout = :holdout,
    priority = :priority, goal_event = :goal_event, goal_within_seconds = :goal_within,
    updated_at = :now, removed_at = null
where flow_id = :flow_id
"""

_VERSION = """
insert into flowhouse.flow_versions (flow_id, version, deployed_at, spec)
select :flow_id, :version, :now, :spec
where not exists (
    select 1 from flowhouse.flow_versions where flow_id = :flow_id and version = :version
)
"""

_STEP = """
insert into flowhouse.steps (flow_id, step_id, kind, position, next_step, params)
values (:flow_id, :step_id, :kind, :position, :next_step, :params)
"""


def deploy(ctx: Context) -> None:
    deployed = {
        row[0]: (row[1], row[2], row[3])
        for row in ctx.rows("select flow_id, version, removed_at, paused_at from flowhouse.flows")
    }
    for f in ctx.flows:
        if f.id in deployed:
            _pause(ctx, f, deployed[f.id][2])
        if f.id not in deployed:
            _insert(ctx, f)
        elif deployed[f.id][:2] != (f.version, None):
            ctx.run(_UPDATE, **_values(ctx, f))
            if deployed[f.id][1] is not None:
                _relaunch(ctx, f)
        else:
            continue
        ctx.run(_VERSION, **_values(ctx, f))
        ctx.run("delete from flowhouse.steps where flow_id = :flow_id", flow_id=f.id)
        for s in f.steps:
            ctx.run(
                _STEP,
                flow_id=f.id,
                step_id=s.step_id,
                kind=s.kind,
                position=s.position,
                next_step=s.next_step,
                params=json.dumps(s.params, sort_keys=True),
            )
    seen = {f.id for f in ctx.flows}
    for flow_id, (_, removed_at, _) in deployed.items():
        if flow_id not in seen and removed_at is None:
            ctx.run(
                "update flowhouse.flows set removed_at = :now, updated_at = :now "
                "where flow_id = :flow_id",
                now=ctx.now,
                flow_id=flow_id,
            )


def _insert(ctx: Context, f: CompiledFlow) -> None:
    """A new flow goes live now. Without `past_triggers` it considers triggers loaded from the
    previous tick on (older ones were never its business); with it, every trigger ever loaded."""
    considered = None if f.flow.entry.past_triggers else (ctx.previous or ctx.now)
    ctx.run(_FLOW, considered_until=considered, **_values(ctx, f))


def _pause(ctx: Context, f: CompiledFlow, paused_at: object) -> None:
    """Pause a live flow now, or resume a paused one (``updated_at``: its ``wait_for``
    enrollments look again for the awaited event, which may have come while it was paused)."""
    paused = f.flow.state == "paused"
    if paused == (paused_at is not None):
        return
    ctx.run(
        "update flowhouse.flows set paused_at = :paused_at, updated_at = :now "
        "where flow_id = :flow_id",
        paused_at=ctx.now if paused else None,
        now=ctx.now,
        flow_id=f.id,
    )


def _relaunch(ctx: Context, f: CompiledFlow) -> None:
    """A removed flow that comes back goes live again, as a new one would: the triggers of while
    it was gone are not a backlog to enroll."""
    ctx.run(
        "update flowhouse.flows set went_live_at = :now, considered_until = :considered "
        "where flow_id = :flow_id",
        now=ctx.now,
        considered=None if f.flow.entry.past_triggers else (ctx.previous or ctx.now),
        flow_id=f.id,
    )


def _values(ctx: Context, f: CompiledFlow) -> dict[str, object]:
    spec = f.flow
    return {
        "flow_id": f.id,
        "version": f.version,
        "name": spec.name,
        "transactional": spec.transactional,
        "holdout": spec.holdout,
        "priority": spec.priority,
        "goal_event": spec.goal.event,
        "goal_within": int(spec.goal.within.total_seconds()),
        "now": ctx.now,
        "paused_at": ctx.now if spec.state == "paused" else None,
        "spec": json.dumps(spec.model_dump(mode="json", by_alias=True), sort_keys=True),
    }
