"""Enroll new triggers, set-based, one flow at a time.

A trigger is considered once, by the first tick that sees it (its ``visible_at`` in the flow's
window ``(considered_until, now]``), in ``occurred_at`` order. ``visible_at`` is when the row became
visible to the engine: a raw event's ``loaded_at``, and for a derived event the ``now`` of the model
refresh that materialised it, so a derived event decided between refreshes (its ``loaded_at``) is
seen by the first tick after the next refresh, whatever ticks ran without one in between.

It is refused for good — journaled with the reason — when the flow is paused (``paused``, whatever
else holds), it happened before the flow went live (``before_live``), the customer is outside the
audience (``audience``), its entry key was already used (``duplicate_key``), the re-entry policy
forbids it (``reentry``) or an enrollment is still active and the flow is not concurrent
(``concurrency``). A trigger of an erased customer (``flowhouse.erased_customers``,
docs/privacy.md) is ignored, journaled nowhere. Otherwise it enrolls: enrollment id = md5(flow,
trigger event[, customer for fanned-out catalog events]), holdout by a hash of flow and customer.

The stateful rules depend on earlier triggers of the same customer, so they run in rounds: each
round refuses what the enrollments so far forbid, then enrolls every customer's earliest remaining
trigger. A customer with n triggers in one window takes at most n rounds; most take one or two.
"""

from __future__ import annotations

from datetime import datetime

from sqlglot import exp

from flowhouse.core.contract import CATALOG_EVENT_TYPES, DERIVED_EVENT_TYPES
from flowhouse.flows.compile import CompiledFlow, event_property, predicate
from flowhouse.flows.conditions import audience_condition
from flowhouse.orchestration.engine.moves import arrive, journal
from flowhouse.rules.context import Context

#: Catalog events (no customer) fan out to the customers interested in the sku.
FAN_OUT_TYPES = frozenset({"back_in_stock", "price_dropped", "low_stock"} | CATALOG_EVENT_TYPES)
assert set(DERIVED_EVENT_TYPES) | CATALOG_EVENT_TYPES >= FAN_OUT_TYPES

_TRIGGERS = """
select md5(:flow_id || ':' || ev.event_id) as enrollment_id, ev.event_id, ev.customer_id,
    ev.event_type, ev.occurred_at, ev.loaded_at, ev.properties
from core.events as ev
where ev.event_type = :event_type
    and ev.customer_id is not null
    and ev.visible_at <= :now
    and (:since is null or ev.visible_at > :since)
"""

_FANNED_OUT = """
select md5(:flow_id || ':' || ev.event_id || ':' || pi.customer_id) as enrollment_id,
    ev.event_id, pi.customer_id, ev.event_type, ev.occurred_at, ev.loaded_at,
    json_with(ev.properties, 'interest',
        case when pi.last_carted_at > ev.occurred_at - :within * interval 1 second
            then 'cart' else 'view' end) as properties
from core.events as ev
join core.product_interest as pi on pi.sku = json_text(ev.properties, 'sku')
where ev.event_type = :event_type
    and ev.visible_at <= :now
    and (:since is null or ev.visible_at > :since)
    and pi.last_interest_at > ev.occurred_at - :within * interval 1 second
    and pi.last_interest_at <= ev.occurred_at
    and (pi.last_ordered_at is null or pi.last_ordered_at < pi.last_interest_at)
"""

_CANDIDATES = """
select event.*, :entry_key as entry_key,
    case
        when :paused then 'paused'
        when not :past_triggers and event.occurred_at < :went_live then 'before_live'
        when customer.customer_id is null or not coalesce(:audience, false) then 'audience'
    end as refusal
from _fh_triggers as event
left join core.customer_attributes as customer on customer.customer_id = event.customer_id
where coalesce(:trigger_where, false)
    and not exists (
        select 1 from flowhouse.enrollments as done where done.enrollment_id = event.enrollment_id
    )
    and not exists (
        select 1 from flowhouse.decisions as done
        where done.decision_id = md5(event.enrollment_id || ':_entry')
    )
    and not exists (
        select 1 from flowhouse.erased_customers as erased
        where erased.customer_hash = md5(event.customer_id)
    )
"""

_STATEFUL = """
select c.enrollment_id,
    case
        when c.entry_key is not null and exists (
            select 1 from flowhouse.enrollments as e
            where e.flow_id = :flow_id and e.customer_id = c.customer_id
                and e.entry_key = c.entry_key
        ) then 'duplicate_key'
        when :reentry = 'once' and exists (
            select 1 from flowhouse.enrollments as e
            where e.flow_id = :flow_id and e.customer_id = c.customer_id
        ) then 'reentry'
        when :reentry = 'after' and exists (
            select 1 from flowhouse.enrollments as e
            where e.flow_id = :flow_id and e.customer_id = c.customer_id
                and e.entered_at > c.occurred_at - :after_seconds * interval 1 second
        ) then 'reentry'
        when not :concurrent and exists (
            select 1 from flowhouse.enrollments as e
            where e.flow_id = :flow_id and e.customer_id = c.customer_id and e.status = 'active'
        ) then 'concurrency'
    end as refusal
from _fh_pending as c
"""

_ENROLL = """
insert into flowhouse.enrollments
    (enrollment_id, flow_id, flow_version, customer_id, trigger_event_id, trigger_type,
     trigger_properties, entry_key, entered_at, enrolled_at_tick, is_holdout, variant, status,
     step_id, step_started_at, due_at, arrived_at_tick, checked_at_tick, ended_at, end_reason,
     updated_at_tick)
select enrollment_id, :flow_id, :version, customer_id, event_id, event_type, properties,
    entry_key, occurred_at, :now, unit_hash(:flow_id || ':' || customer_id) < :holdout, null,
    'active', null, occurred_at, occurred_at, :now, null, null, null, :now
from _fh_first
"""


def enroll(ctx: Context) -> None:
    deployed = {
        flow_id: (since, live)
        for flow_id, since, live in ctx.rows(
            "select flow_id, considered_until, went_live_at from flowhouse.flows"
        )
    }
    # New enrollments of every flow step onto their first step together, at the end.
    ctx.temp(
        "_fh_entering",
        "select cast(null as text) as enrollment_id, cast(null as text) as next_step, "
        "cast(null as timestamp) as at where false",
    )
    for f in ctx.flows:
        since, live = deployed[f.id]
        if since is not None and since >= ctx.now:
            continue
        _enroll_flow(ctx, f, since, live)
    ctx.run(
        "update flowhouse.flows set considered_until = :now where removed_at is null "
        "and flow_id not in (select flow_id from _fh_skipped)",
        now=ctx.now,
    )
    arrive(ctx, "select enrollment_id, next_step, at from _fh_entering")


def _triggers(ctx: Context, f: CompiledFlow, since: object) -> int:
    """``_fh_triggers``: the flow's trigger events loaded in its window (fanned out for catalog
    events)."""
    trigger = f.flow.trigger
    text = _FANNED_OUT if trigger.event in FAN_OUT_TYPES else _TRIGGERS
    in_window = isinstance(since, datetime) and ctx.previous is not None and since >= ctx.previous
    with ctx.reading("_fh_window" if in_window else None):
        return _trigger_table(ctx, f, text, since)


def _trigger_table(ctx: Context, f: CompiledFlow, text: str, since: object) -> int:
    trigger = f.flow.trigger
    return ctx.temp(
        "_fh_triggers",
        text,
        flow_id=f.id,
        event_type=trigger.event,
        now=ctx.now,
        since=since,
        within=int(trigger.fan_out_within.total_seconds()),
    )


def _enroll_flow(ctx: Context, f: CompiledFlow, since: object, went_live: object) -> None:
    spec = f.flow
    if not _triggers(ctx, f, since):
        return
    n = ctx.temp(
        "_fh_candidates",
        _CANDIDATES,
        entry_key=(
            event_property(spec.entry.key) if spec.entry.key else exp.cast(exp.null(), "text")
        ),
        paused=spec.state == "paused",
        past_triggers=spec.entry.past_triggers,
        went_live=went_live,
        audience=audience_condition(f.flow.audience),
        trigger_where=predicate(spec.trigger.where) if spec.trigger.where else exp.true(),
    )
    ctx.add("triggers", n)
    if not n:
        return
    _refuse(ctx, f, "select enrollment_id, refusal from _fh_candidates where refusal is not null")
    ctx.temp("_fh_pending", "select * from _fh_candidates where refusal is null")
    reentry = "after" if spec.entry.reentry_after else spec.entry.reentry
    after = int(spec.entry.reentry_after.total_seconds()) if spec.entry.reentry_after else 0
    while int(ctx.value("select count(*) from _fh_pending")):
        ctx.temp(
            "_fh_refused",
            _STATEFUL,
            flow_id=f.id,
            reentry=reentry,
            after_seconds=after,
            concurrent=spec.entry.concurrent,
        )
        _refuse(ctx, f, "select enrollment_id, refusal from _fh_refused where refusal is not null")
        ctx.run(
            "delete from _fh_pending where enrollment_id in "
            "(select enrollment_id from _fh_refused where refusal is not null)"
        )
        _enroll_first(ctx, f)


def _enroll_first(ctx: Context, f: CompiledFlow) -> None:
    """Enroll each customer's earliest pending trigger (a key's first, where keys are used)."""
    n = ctx.temp(
        "_fh_first",
        "select * from (select p.*, row_number() over (partition by customer_id "
        "order by occurred_at, event_id) as rank_in_customer from _fh_pending as p) as r "
        "where rank_in_customer = 1",
    )
    if not n:
        return
    ctx.run(
        _ENROLL,
        flow_id=f.id,
        version=f.version,
        now=ctx.now,
        holdout=f.flow.holdout,
    )
    ctx.run("delete from _fh_pending where enrollment_id in (select enrollment_id from _fh_first)")
    ctx.add("enrolled", n)
    journal(
        ctx,
        "select e.enrollment_id, '_entry' as step_id, 'entry' as step_kind, "
        "e.entered_at as effective_at, 'enrolled' as outcome, "
        "case when e.is_holdout then 'holdout' else 'treatment' end as reason, "
        "e.trigger_event_id as detail "
        "from flowhouse.enrollments as e join _fh_first as f on f.enrollment_id = e.enrollment_id",
    )
    ctx.run(
        "insert into _fh_entering select enrollment_id, :first, occurred_at from _fh_first",
        first=f.first_step,
    )


def _refuse(ctx: Context, f: CompiledFlow, query: str) -> None:
    """Journal refused triggers. Refusals have no enrollment row, so they are written directly."""
    n = ctx.temp("_fh_refusals", query)
    if not n:
        return
    ctx.add("refused", n)
    ctx.run(
        """
        insert into flowhouse.decisions
            (decision_id, enrollment_id, flow_id, flow_version, customer_id, step_id, step_kind,
             effective_at, decided_at, outcome, reason, detail)
        select md5(c.enrollment_id || ':_entry'), c.enrollment_id, f.flow_id, f.version,
            c.customer_id, '_entry', 'entry', c.occurred_at, :now, 'refused', r.refusal,
            c.event_id
        from _fh_refusals as r
        join _fh_candidates as c on c.enrollment_id = r.enrollment_id
        join flowhouse.flows as f on f.flow_id = :flow_id
        """,
        now=ctx.now,
        flow_id=f.id,
    )
