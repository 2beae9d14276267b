"""Sends and actions that are due: the send-time rules, the outbox, warehouse actions.

Each due ``send`` becomes a row in ``messages``: ``queued``, ``held_out`` (holdout enrollments,
which walk the same path and receive nothing) or ``skipped`` with the first reason that applies,
in this order: ``no_address``, ``consent``, ``unsubscribed``, ``suppressed``, ``stale``,
``frequency_cap``, ``smart_sending``, ``quiet_hours``, ``discount_active``, ``coupon_pool_empty``.
External actions (webhook, admin task, audience sync) go to the outbox on their own channel;
warehouse actions (tag, list, property, coupon, points, tier) are written to ``profile_updates``,
and those whose action ``delivery.routes`` routes to a destination (``add_tag: webhook``) also go
to the outbox, to be pushed to the shop. A send with a coupon code, when ``coupon`` is routed, puts
a ``coupon`` action beside it that creates the code in the shop (:data:`COUPON_CHANNEL`); the send
waits for it (:mod:`flowhouse.activation.outbox`).

Caps and smart sending look back from the message's ``due_at`` over marketing messages queued or
sent on the channel by any flow. Messages competing in one tick are decided in waves — each
customer's earliest message first (then the flow's priority, then flow id), one wave a round — so
a message sees every message decided before it, as if they had been queued one by one.
"""

from __future__ import annotations

import json
from dataclasses import replace
from typing import Any

from sqlglot import exp

from flowhouse.core.sql import literal, statement
from flowhouse.flows.compile import WAREHOUSE_ACTIONS, CompiledFlow, StepRow
from flowhouse.flows.conditions import suppress_condition
from flowhouse.flows.flowfile import parse_duration
from flowhouse.flows.settings import Settings
from flowhouse.orchestration.engine.moves import arrive, journal
from flowhouse.rules.context import Context, per_flow
from flowhouse.rules.sendtime import (
    Checked,
    address_of,
    cap_windows,
    caps_rule,
    create_temp,
    early_checks,
    native_push,
    reason_of,
    smart_rule,
    volume_checks,
    window_counts,
)

_STEP_COLUMNS = (
    "flow_id", "step_id", "channel", "out_kind", "is_marketing", "priority", "coupon_pool",
    "expires_seconds", "template", "subject", "preheader", "destination", "payload",
    "lateness_seconds", "update_name", "update_value", "pushed",
)  # fmt: skip
#: The outbox channel of a coupon's creation in the shop (a ``coupon`` action, or a send's code).
COUPON_CHANNEL = "coupon"

#: A due send or action of ``_OUT``: the step ``p`` of the due row ``event``.
QUEUED = Checked(
    kind=exp.column("out_kind", "p"),
    channel=exp.column("channel", "p"),
    is_marketing=exp.column("is_marketing", "p"),
    due_at=exp.column("due_at", "event"),
    lateness=exp.column("lateness_seconds", "p"),
)

_OUT = """
select event.enrollment_id, event.flow_id, event.step_id, event.customer_id, event.due_at,
    event.is_holdout, event.variant, md5(event.enrollment_id || ':' || event.step_id) as message_id,
    p.channel, p.out_kind, p.is_marketing, p.priority, p.coupon_pool, p.expires_seconds,
    p.template, p.subject, p.preheader, p.destination, p.payload, p.update_name, p.update_value,
    p.pushed,
    :address as address,
    :early_reason as early_reason,
    row_number() over (
        partition by event.customer_id
        order by event.due_at, p.priority desc, event.flow_id, event.enrollment_id, event.step_id
    ) as wave
from _fh_due as event
join _fh_send_steps as p on p.flow_id = event.flow_id and p.step_id = event.step_id
left join core.customer_attributes as customer on customer.customer_id = event.customer_id
where event.kind in ('send', 'action')
"""

_WAVE = """
select o.*,
    coalesce(
        o.early_reason,
        :volume_reason,
        case when o.coupon_pool is not null and exists (
            select 1 from flowhouse.coupon_codes as cc
            where cc.customer_id = o.customer_id and cc.issued_at <= o.due_at
                and cc.expires_at > o.due_at
                and (cc.redeemed_at is null or cc.redeemed_at > o.due_at)
        ) then 'discount_active' end
    ) as reason
from _fh_out as o
left join _fh_recent as r on r.message_id = o.message_id
where o.wave = :wave
"""

_RECENT = """
select o.message_id
from _fh_out as o
join flowhouse.messages as m
    on m.customer_id = o.customer_id
    and m.is_marketing
    and m.status in ('queued', 'claimed', 'sending', 'sent', 'delivered')
    and m.due_at <= o.due_at
    and m.due_at > o.due_at - :longest * interval 1 second
where o.wave = :wave and o.is_marketing
group by o.message_id
"""

_NEED = """
select message_id, customer_id, coupon_pool as pool, due_at, expires_seconds,
    row_number() over (partition by coupon_pool order by due_at, message_id) as rank_in_pool
from _fh_wave
where reason is null and coupon_pool is not null and not is_holdout
"""

_FREE = """
select pool, code, row_number() over (partition by pool order by added_at, code) as rank_in_pool
from flowhouse.coupon_codes
where message_id is null and pool in (select pool from _fh_need)
"""

_ASSIGN = """
update flowhouse.coupon_codes as c
set customer_id = a.customer_id, message_id = a.message_id, issued_at = a.due_at,
    expires_at = a.due_at + a.expires_seconds * interval 1 second
from _fh_assigned as a
where c.pool = a.pool and c.code = a.code
"""

_MESSAGES = """
insert into flowhouse.messages
    (message_id, enrollment_id, flow_id, flow_version, step_id, customer_id, channel, kind,
     is_marketing, variant, address, template, subject, preheader, destination, coupon_code,
     payload, due_at, queued_at, status, skip_reason, updated_at)
select w.message_id, w.enrollment_id, w.flow_id, f.version, w.step_id, w.customer_id,
    w.channel, case when w.out_kind = 'message' then 'message' else 'action' end,
    w.is_marketing, w.variant, w.address, w.template, w.subject, w.preheader, w.destination,
    a.code, :payload, w.due_at, :now,
    case when w.reason is not null then 'skipped' when w.is_holdout then 'held_out'
        else 'queued' end,
    w.reason, :now
from _fh_wave as w
join flowhouse.flows as f on f.flow_id = w.flow_id
left join _fh_assigned as a on a.message_id = w.message_id
where (w.out_kind <> 'warehouse' or w.pushed)
    and not exists (select 1 from flowhouse.messages as m where m.message_id = w.message_id)
"""

#: What an outbox row carries: the step's payload; a pushed award also its running total (the
#: points flows awarded the customer so far, this award included: ``profile_updates`` is
#: written first), so a shop can set the balance rather than add to it.
_PAYLOAD = """
case when w.out_kind = 'warehouse' and w.channel = 'loyalty_points' then
    '{"points": ' || w.update_value || ', "total": ' || cast((
        select sum(cast(u.value as bigint)) from flowhouse.profile_updates as u
        where u.customer_id = w.customer_id and u.action = 'loyalty_points'
    ) as text) || '}'
else w.payload end
"""

#: A send's coupon code created in the shop first: an action row beside the send, due with it.
_COUPON_PUSHES = """
insert into flowhouse.messages
    (message_id, enrollment_id, flow_id, flow_version, step_id, customer_id, channel, kind,
     is_marketing, variant, coupon_code, due_at, queued_at, status, updated_at)
select md5(w.message_id || ':coupon'), w.enrollment_id, w.flow_id, f.version, w.step_id,
    w.customer_id, 'coupon', 'action', false, w.variant, a.code, w.due_at, :now, 'queued', :now
from _fh_wave as w
join flowhouse.flows as f on f.flow_id = w.flow_id
join _fh_assigned as a on a.message_id = w.message_id
where w.out_kind = 'message' and w.pushed and w.reason is null and not w.is_holdout
    and not exists (
        select 1 from flowhouse.messages as m where m.message_id = md5(w.message_id || ':coupon')
    )
"""

_UPDATES = """
insert into flowhouse.profile_updates
    (update_id, enrollment_id, flow_id, step_id, customer_id, action, name, value, updated_at,
     expires_at)
select w.message_id, w.enrollment_id, w.flow_id, w.step_id, w.customer_id, w.channel,
    w.update_name, coalesce(a.code, w.update_value), w.due_at,
    case when w.channel = 'change_tier' then w.due_at + w.expires_seconds * interval 1 second end
from _fh_wave as w
left join _fh_assigned as a on a.message_id = w.message_id
where w.out_kind = 'warehouse' and w.reason is null and not w.is_holdout
"""

_DECISIONS = """
select enrollment_id, step_id, case when out_kind = 'message' then 'send' else 'action' end
        as step_kind, due_at as effective_at,
    case
        when reason is not null then 'skipped'
        when is_holdout then 'held_out'
        when out_kind = 'warehouse' then 'applied'
        else 'queued'
    end as outcome,
    reason, message_id as detail
from _fh_wave
"""


def send_batch(ctx: Context) -> int:
    """Decide each customer's earliest due send or action (the first wave); returns how many.

    Later waves wait for the next round: the steps after a decided send may make another message
    due before the customer's next wave (send, wait 15m, send), and the earlier due must win.
    """
    if "_fh_send_steps" not in ctx.rendered:
        _step_table(ctx)
        ctx.rendered["_fh_send_steps"] = ""
    n = ctx.temp(
        "_fh_out",
        _OUT,
        address=ctx.memo("queue_address", lambda: address_of(_queued(ctx))),
        early_reason=ctx.memo("queue_early_reason", lambda: _early_reason(ctx)),
    )
    if not n:
        return 0
    _recent(ctx, wave=1)
    volume = ctx.memo("queue_volume_reason", lambda: _volume_reason(ctx))
    decided = ctx.temp("_fh_wave", _WAVE, wave=1, volume_reason=volume)
    _coupons(ctx)
    ctx.run(_COUPON_PUSHES, now=ctx.now)
    ctx.run(_UPDATES)
    ctx.run(_MESSAGES, now=ctx.now, payload=statement(_PAYLOAD))
    journal(ctx, _DECISIONS)
    ctx.add("messages", decided)
    arrive(
        ctx,
        "select o.enrollment_id, s.next_step, o.due_at as at from _fh_wave as o "
        "join flowhouse.steps as s on s.flow_id = o.flow_id and s.step_id = o.step_id",
    )
    return decided


def _early_reason(ctx: Context) -> exp.Expr:
    """The first of the early send-time checks that stops a due row (null when none does)."""
    suppress = per_flow(ctx.flows, lambda f: suppress_condition(f.flow, ctx.now))
    return reason_of(early_checks(_queued(ctx), ctx.now, address=True, flow_suppressed=suppress))


def _queued(ctx: Context) -> Checked:
    """:data:`QUEUED`, with push addressed as the store routes it."""
    return replace(QUEUED, native_push=native_push(ctx.settings))


def _volume_reason(ctx: Context) -> exp.Expr:
    """``frequency_cap`` or ``smart_sending`` for a row of the wave (``o``, counts ``r``)."""
    capped = per_flow(ctx.flows, lambda f: caps_rule(ctx.settings, f), on="o")
    smart = per_flow(ctx.flows, lambda f: smart_rule(ctx.settings, f), on="o")
    return reason_of(volume_checks(exp.column("is_marketing", "o"), capped, smart))


def _coupons(ctx: Context) -> None:
    """Hand out codes to this wave's coupon sends; those left without one skip as
    ``coupon_pool_empty``."""
    ctx.temp("_fh_need", _NEED)
    ctx.temp("_fh_free", _FREE)
    ctx.temp(
        "_fh_assigned",
        "select n.message_id, n.customer_id, n.pool, f.code, n.due_at, n.expires_seconds "
        "from _fh_need as n join _fh_free as f "
        "on f.pool = n.pool and f.rank_in_pool = n.rank_in_pool",
    )
    ctx.run(_ASSIGN)
    ctx.run(
        "update _fh_wave set reason = 'coupon_pool_empty' where reason is null "
        "and coupon_pool is not null and not is_holdout "
        "and message_id not in (select message_id from _fh_assigned)"
    )


def _recent(ctx: Context, wave: int) -> None:
    """``_fh_recent``: per message of the wave, how many marketing messages the customer got in
    each window before its due time — one join for every cap and smart-sending rule."""
    windows = cap_windows(ctx)
    tree = statement(
        _RECENT, ctx.schema, wave=wave, longest=max((s for _, s in windows), default=0)
    )
    assert isinstance(tree, exp.Select)
    went = exp.column("due_at", "m")
    tree = window_counts(tree, windows, went, exp.column("due_at", "o"))
    create_temp(ctx, "_fh_recent", tree)


def _step_table(ctx: Context) -> None:
    """``_fh_send_steps``: what each send and action step of every flow does, one row each."""
    rows = [
        _step_values(ctx.settings, f, s)
        for f in ctx.flows
        for s in f.steps
        if s.kind in ("send", "action")
    ]
    ctx.wh.execute("drop table if exists _fh_send_steps")
    if not rows:
        rows = [dict.fromkeys(_STEP_COLUMNS)]
        rows[0].update(flow_id="", step_id="", is_marketing=False, priority=0, pushed=False)
    values = exp.values(
        [tuple(_typed(c, r[c]) for c in _STEP_COLUMNS) for r in rows],
        alias="v",
        columns=list(_STEP_COLUMNS),
    )
    ctx.run("create temp table _fh_send_steps as select * from :v", v=values)


def _typed(column: str, value: Any) -> exp.Expr:
    if column in ("expires_seconds", "lateness_seconds", "priority"):
        return exp.cast(literal(value), "bigint")
    if column in ("is_marketing", "pushed"):
        return exp.cast(literal(bool(value)), "boolean")
    return exp.cast(literal(value), "text")


def _step_values(settings: Settings, f: CompiledFlow, s: StepRow) -> dict[str, Any]:
    p = dict(s.params)
    flow = f.flow
    base: dict[str, Any] = dict.fromkeys(_STEP_COLUMNS)
    base.update(
        flow_id=f.id,
        step_id=s.step_id,
        priority=flow.priority,
        lateness_seconds=int(flow.max_lateness.total_seconds()),
    )
    if s.kind == "send":
        pool = p.get("coupon_pool")
        base.update(
            channel=p["channel"],
            out_kind="message",
            is_marketing=not flow.transactional,
            coupon_pool=pool,
            expires_seconds=_expires(settings, pool),
            template=p.get("template"),
            subject=p.get("subject"),
            preheader=p.get("preheader"),
            destination=p.get("destination"),
            pushed=pool is not None and COUPON_CHANNEL in settings.delivery.routes,
        )
        return base
    action = p.pop("type")
    warehouse = action in WAREHOUSE_ACTIONS
    pool = p.get("pool") if action == "coupon" else None
    name, value = _update_of(action, p)
    base.update(
        channel=action,
        out_kind="warehouse" if warehouse else "external",
        is_marketing=False,
        coupon_pool=pool,
        expires_seconds=_expires(settings, pool) if pool else _override_seconds(p),
        payload=json.dumps(p, sort_keys=True),
        update_name=name,
        update_value=value,
        pushed=warehouse and action in settings.delivery.routes,
    )
    return base


def _update_of(action: str, p: dict[str, Any]) -> tuple[str | None, str | None]:
    name = p.get("tag") or p.get("list") or p.get("property") or p.get("pool")
    value = p.get("value", p.get("points", p.get("tier")))
    return name, (None if value is None else str(value))


def _override_seconds(p: dict[str, Any]) -> int | None:
    """How long a ``change_tier`` override lasts (``expires_in``), in seconds; None: for good."""
    found = p.get("expires_in")
    return None if found is None else int(parse_duration(found).total_seconds())


def _expires(settings: Settings, pool: str | None) -> int | None:
    if pool is None:
        return None
    found = settings.coupon_pools.get(pool)
    return int(found.expires_in.total_seconds()) if found else 14 * 86400
