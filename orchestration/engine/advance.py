"""Advance every enrollment whose step is due, in rounds, until nothing more is due at ``now``.

Enrollments of a paused flow hold: none of their steps is executed (not even a wait or an exit
check) until the flow is live again; then the first tick executes every step due by then, with
what the warehouse knows at that tick, and a message due longer ago than the flow's maximum
lateness is skipped ``stale``. Only a removed flow or step ends them while paused.

A round takes the due enrollments, ends those whose exit is met (checked before every step; a
``wait_for`` is decided at its event or deadline, and so are its exits), then executes waits,
``wait_for``, branches and splits, which move each enrollment one step on. Sends and actions wait
until no other step is due; then each customer's earliest is decided, and the next round goes on,
so that messages competing for a cap are decided in the order of their due times
(:mod:`flowhouse.orchestration.engine.queue`). Instant steps chain within the tick: the loop ends
when a round finds nothing due.
"""

from __future__ import annotations

from sqlglot import exp

from flowhouse.core.sql import literal, statement, unit_hash
from flowhouse.flows.compile import CompiledFlow, StepRow, event_property, predicate, splits
from flowhouse.flows.conditions import filter_condition
from flowhouse.orchestration.engine.moves import arrive, journal
from flowhouse.orchestration.engine.queue import send_batch
from flowhouse.orchestration.engine.winners import routed, winners
from flowhouse.rules.context import Context, per_flow, per_step

_NEW_EVENTS = """
select distinct customer_id from _fh_window where customer_id is not null
"""

_DUE = """
select e.enrollment_id, e.flow_id, e.customer_id, e.step_id, e.due_at, e.step_started_at,
    e.entered_at, e.trigger_event_id as event_id, e.trigger_type as event_type,
    e.entered_at as occurred_at, e.trigger_properties as properties, e.entry_key, e.is_holdout,
    e.variant, s.kind, s.next_step, fl.removed_at
from flowhouse.enrollments as e
join flowhouse.flows as fl on fl.flow_id = e.flow_id
left join flowhouse.steps as s on s.flow_id = e.flow_id and s.step_id = e.step_id
where e.status = 'active'
    -- a flow whose predicate failed this tick holds where it is (orchestration/engine/isolate.py)
    and e.flow_id not in (select flow_id from _fh_skipped)
    and (
        fl.removed_at is not null
        -- a step removed by a new version: its enrollments exit now, not when it was due
        or s.kind is null
        -- a paused flow's enrollments hold where they are
        or (fl.paused_at is null and e.due_at <= :now)
        or (
            fl.paused_at is null
            and s.kind = 'wait_for'
            and (e.checked_at_tick is null or e.checked_at_tick <> :now)
            and (e.arrived_at_tick = :now
                 or fl.updated_at = :now
                 or e.customer_id in (select customer_id from _fh_new_events))
        )
    )
"""

_EXIT_HITS = """
select event.enrollment_id, min(x.event_type) as event_type
from _fh_due as event
join core.events as x
    on x.customer_id = event.customer_id
    and x.occurred_at > event.entered_at
    and x.loaded_at <= :now
    and x.loaded_at > :floor
where :is_exit_event
group by event.enrollment_id
"""

_EXITS = """
select event.enrollment_id, event.step_id, coalesce(event.kind, 'removed') as step_kind,
    case when event.due_at <= :now then event.due_at when w.at is not null then w.at else :now end
        as effective_at,
    case
        when event.removed_at is not null then 'flow_removed'
        when event.kind is null then 'step_removed'
        -- a wait for an event is decided at the event or the deadline; so are its exits
        when event.due_at > :now and w.at is null then null
        when hit.event_type is not null then hit.event_type
        when coalesce(:exit_where, false) then 'exit_condition'
        when event.kind = 'send' and not coalesce(:filter, false) then 'filter'
        when event.kind = 'wait_until' and :no_date then 'no_date'
    end as reason
from _fh_due as event
left join core.customer_attributes as customer on customer.customer_id = event.customer_id
left join _fh_exit_hits as hit on hit.enrollment_id = event.enrollment_id
left join _fh_hits as w on w.enrollment_id = event.enrollment_id
"""

_END = """
update flowhouse.enrollments as e
set status = 'exited', ended_at = x.effective_at, end_reason = x.reason, updated_at_tick = :now
from _fh_exits as x
where e.enrollment_id = x.enrollment_id and x.reason is not null
"""

_HITS = """
select w.enrollment_id, min(event.occurred_at) as at
from _fh_due as w
join core.events as event
    on event.customer_id = w.customer_id
    and event.occurred_at > w.step_started_at
    and event.occurred_at <= w.due_at
    and event.loaded_at <= :now
    and event.loaded_at > :floor
left join core.customer_attributes as customer on customer.customer_id = w.customer_id
where w.kind = 'wait_for' and coalesce(:awaited, false)
group by w.enrollment_id
"""

_ROUTES = """
select event.enrollment_id, event.flow_id, event.step_id, event.kind,
    case
        when event.kind in ('wait', 'wait_until') then 'waited'
        when event.kind = 'wait_for' and hit.at is not null then 'event'
        when event.kind = 'wait_for' and event.due_at <= :now then 'timeout'
        when event.kind in ('branch', 'split') then :choice
    end as label,
    case when event.kind = 'wait_for' and hit.at is not null then hit.at else event.due_at end
        as at
from _fh_due as event
left join core.customer_attributes as customer on customer.customer_id = event.customer_id
left join _fh_hits as hit on hit.enrollment_id = event.enrollment_id
where event.kind in ('wait', 'wait_until', 'wait_for', 'branch', 'split')
"""

_OUTCOME = """
select enrollment_id, step_id, kind as step_kind, at as effective_at,
    case kind
        when 'wait_for' then case label when 'event' then 'event_received' else 'timed_out' end
        when 'branch' then 'branched'
        when 'split' then 'split'
        else 'waited'
    end as outcome,
    case when kind in ('branch', 'split') then label end as reason,
    null as detail
from _fh_routes
where label is not null
"""


def advance(ctx: Context) -> None:
    ctx.temp("_fh_new_events", _NEW_EVENTS, now=ctx.now, since=ctx.previous)
    # Every round moves at least one enrollment one step on along an acyclic graph (or marks an
    # undecided wait_for as checked for this tick), so the loop ends; no cap, which would leave
    # due work behind and make a second tick at the same time change things.
    while True:
        if not _load_due(ctx):
            return
        _hits(ctx)
        _exit(ctx)
        if _route(ctx):
            continue
        if not send_batch(ctx):
            return


def _load_due(ctx: Context) -> int:
    return ctx.temp("_fh_due", _DUE, now=ctx.now)


def _floor(ctx: Context, column: str, where: str = "true") -> object:
    return ctx.value(f"select min({column}) from _fh_due where {where}")


def _exit(ctx: Context) -> None:
    ctx.temp(
        "_fh_exit_hits",
        _EXIT_HITS,
        now=ctx.now,
        floor=_floor(ctx, "entered_at"),
        is_exit_event=ctx.memo("exit_types", lambda: per_flow(ctx.flows, _exit_types, exp.false())),
    )
    ctx.temp(
        "_fh_exits",
        _EXITS,
        now=ctx.now,
        exit_where=ctx.memo(
            "exit_where",
            lambda: per_flow(
                ctx.flows, lambda f: predicate(f.flow.exit.where) if f.flow.exit.where else None
            ),
        ),
        # A filter must hold: one that is unknown (null) fails, as it does in Klaviyo.
        filter=ctx.memo(
            "filter",
            lambda: per_flow(
                ctx.flows,
                lambda f: filter_condition(f.flow, ctx.now),
                exp.true(),
            ),
        ),
        no_date=ctx.memo(
            "no_date", lambda: per_step(ctx.flows, _no_date, ("wait_until",), exp.false())
        ),
    )
    n = journal(
        ctx,
        "select enrollment_id, step_id, step_kind, effective_at, 'exited' as outcome, reason, "
        "null as detail from _fh_exits where reason is not null",
    )
    if n:
        ctx.run(_END, now=ctx.now)
        ctx.add("exited", n)
        ctx.run(
            "delete from _fh_due where enrollment_id in "
            "(select enrollment_id from _fh_exits where reason is not null)"
        )


def _exit_types(f: CompiledFlow) -> exp.Expr | None:
    events = f.flow.exit.events
    if not events:
        return None
    return exp.column("event_type", "x").isin(*[literal(e) for e in events])


def _no_date(f: CompiledFlow, s: StepRow) -> exp.Expr | None:
    if not s.params["date"]:
        return None
    return exp.column(s.params["date"], "customer").is_(exp.null())


def _hits(ctx: Context) -> None:
    """``_fh_hits``: the first awaited event of each due ``wait_for``, if one came."""
    ctx.temp(
        "_fh_hits",
        _HITS,
        now=ctx.now,
        floor=_floor(ctx, "step_started_at", "kind = 'wait_for'"),
        awaited=ctx.memo(
            "awaited", lambda: per_step(ctx.flows, _awaited, ("wait_for",), exp.false(), on="w")
        ),
    )


def _route(ctx: Context) -> int:
    n = ctx.temp(
        "_fh_routes",
        _ROUTES,
        now=ctx.now,
        choice=ctx.memo("choice", lambda: _choices(ctx)),
    )
    if not n:
        return 0
    journal(ctx, _OUTCOME)
    ctx.run(
        "update flowhouse.enrollments as e set variant = r.label, updated_at_tick = :now "
        "from _fh_routes as r where e.enrollment_id = r.enrollment_id and r.kind = 'split'",
        now=ctx.now,
    )
    ctx.run(
        "update flowhouse.enrollments as e set checked_at_tick = :now, updated_at_tick = :now "
        "from _fh_routes as r where e.enrollment_id = r.enrollment_id and r.label is null",
        now=ctx.now,
    )
    _arrive_routes(ctx)
    return n


def _arrive_routes(ctx: Context) -> None:
    arrive(
        ctx,
        "select event.enrollment_id, :next as next_step, event.at from _fh_routes as event "
        "join flowhouse.steps as s on s.flow_id = event.flow_id and s.step_id = event.step_id "
        "where event.label is not null",
        next=ctx.memo(
            "next",
            lambda: per_step(
                ctx.flows, _next, ("wait_for", "branch", "split"), exp.column("next_step", "s")
            ),
        ),
    )


def _awaited(f: CompiledFlow, s: StepRow) -> exp.Expr:
    """The awaited event of a ``wait_for`` step: its type, its predicate, the same entry key."""
    p = s.params
    parts: list[exp.Expr] = [exp.column("event_type", "event").eq(literal(p["event"]))]
    if p["where"]:
        parts.append(predicate(p["where"]))
    if p["same_key"] and f.flow.entry.key:
        parts.append(event_property(f.flow.entry.key).eq(exp.column("entry_key", "w")))
    return exp.and_(*parts)


def _choices(ctx: Context) -> exp.Expr:
    """Every branch's and split's choice; a split with a decided winner routes to it
    (:mod:`flowhouse.orchestration.engine.winners`)."""
    decided = winners(ctx)
    return per_step(
        ctx.flows, lambda f, s: _choice(f, s, decided.get((f.id, s.step_id))), ("branch", "split")
    )


def _choice(f: CompiledFlow, s: StepRow, winner: str | None = None) -> exp.Expr:
    """The branch path (first matching predicate) or split arm (by hash) an enrollment takes."""
    paths = f.paths.get(s.step_id, [])
    if winner is not None:
        paths = routed(paths, splits(f.flow)[s.step_id], winner)
    case = exp.Case()
    if s.kind == "branch":
        for p in paths:
            case = case.when(p.when if p.when is not None else exp.true(), literal(p.label))
        return case.else_(literal("none"))
    # An arm weighted 0 gets nobody new; the last arm with a weight takes what the others leave.
    arms = [p for p in paths if p.weight > 0]
    if len(arms) == 1:
        return literal(arms[0].label)
    bucket = unit_hash(statement("event.enrollment_id || ':' || event.step_id"))
    upper = 0.0
    for p in arms[:-1]:
        upper += p.weight
        case = case.when(exp.LT(this=bucket.copy(), expression=literal(upper)), literal(p.label))
    return case.else_(literal(arms[-1].label))


def _next(f: CompiledFlow, s: StepRow) -> exp.Expr:
    case = exp.Case()
    for p in f.paths.get(s.step_id, []):
        case = case.when(exp.column("label", "event").eq(literal(p.label)), literal(p.first_step))
    return case.else_(exp.column("next_step", "s"))
