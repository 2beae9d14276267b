"""The outbox side of sending: claims, the send-time re-check, in-flight marks and results.

A message row moves ``queued`` → ``claimed`` → ``sending`` (in flight: committed before its
request goes out) → ``sent`` or ``failed``; a transient failure puts it back to ``queued`` with a
``next_attempt_at``. Every move is one set-based statement over the rows it concerns, committed
before the step that depends on it, so a crash leaves each row in a state that says what to do:

- ``claimed``: its request never went out; the next run sends it;
- ``sending``: it may have reached the provider; the next run reconciles it
  (:mod:`flowhouse.activation.deliver`).

The re-check before sending repeats the rules that can change between queueing and sending:
consent and unsubscribes (as last built, and any ``unsubscribed`` event loaded since the message
was queued), suppression (likewise, hard bounces and complaints), staleness, frequency caps and
smart sending over what was actually sent, and quiet hours at the moment of sending. A message it
stops is ``skipped`` with the reason, journaled in ``decisions`` as a ``send_check``.

A coupon created in the shop comes before the messages that carry it: a message is not claimed
while a ``coupon`` action of its enrollment due at or before it is still to be pushed (queued,
retrying or in flight), and when that push failed (or was skipped at send time, stale or
suppressed, with its code issued) the message fails too, with the reason ``coupon_not_created:
<the push's reason>`` (:func:`fail_without_coupon`), never sent with a code the shop does not know.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlglot import exp

from flowhouse.core.sql import array_column, array_rows, literal, render, statement
from flowhouse.rules.context import Context, per_flow
from flowhouse.rules.due import retime
from flowhouse.rules.sendtime import (
    Checked,
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

_CLAIM = """
update flowhouse.messages
set status = 'claimed', claim_id = :claim, claimed_at = :now, send_at = null, updated_at = :now
where message_id in (
    select m.message_id from flowhouse.messages as m
    where m.status = 'queued' and m.kind in ('message', 'action') and m.due_at <= :now
        and (m.next_attempt_at is null or m.next_attempt_at <= :now) and :bucket
        and not exists (
            select 1 from flowhouse.flows as f
            where f.flow_id = m.flow_id and f.paused_at is not null
        )
        and not exists (
            select 1 from flowhouse.messages as c
            where m.kind = 'message' and c.enrollment_id = m.enrollment_id
                and c.channel = 'coupon' and c.kind = 'action' and c.due_at <= m.due_at
                and (
                    c.status in ('queued', 'claimed', 'sending', 'failed', 'unconfirmed')
                    or (c.status = 'skipped' and c.coupon_code is not null)
                )
        )
    order by m.due_at, m.message_id
    limit :limit
)
"""

_NO_COUPON = """
update flowhouse.messages
set status = 'failed',
    failure_reason = (
        select 'coupon_not_created: ' || coalesce(c.failure_reason, c.skip_reason, c.status)
        from flowhouse.messages as c
        where c.enrollment_id = messages.enrollment_id and c.channel = 'coupon'
            and c.kind = 'action' and c.due_at <= messages.due_at
            and (c.status in ('failed', 'unconfirmed')
                or (c.status = 'skipped' and c.coupon_code is not null))
        order by c.due_at, c.message_id
        limit 1
    ),
    updated_at = :now
where status = 'queued' and kind = 'message' and :bucket
    and exists (
        select 1 from flowhouse.messages as c
        where c.enrollment_id = messages.enrollment_id and c.channel = 'coupon'
            and c.kind = 'action' and c.due_at <= messages.due_at
            and (c.status in ('failed', 'unconfirmed')
                or (c.status = 'skipped' and c.coupon_code is not null))
    )
"""

_UNCLAIM = """
update flowhouse.messages
set status = 'queued', claim_id = null, claimed_at = null, updated_at = :now
where status = 'claimed' and :bucket
"""

_CHECK = """
select o.message_id, o.enrollment_id, o.flow_id, o.step_id, o.customer_id, o.channel, o.kind,
    o.is_marketing, o.due_at, o.destination,
    :reason as reason
from flowhouse.messages as o
left join core.customer_attributes as customer on customer.customer_id = o.customer_id
left join _fh_sent_recent as r on r.message_id = o.message_id
where o.claim_id = :claim and o.status = 'claimed'
"""

#: Engagement loaded since the message was queued, straight from the raw events (the customer's
#: attributes only see it at the next model refresh).
_SINCE = """
exists (
    select 1 from raw.events as ev
    where ev.customer_id = o.customer_id and ev.event_type in :types
        and ev.loaded_at > o.queued_at and ev.loaded_at <= :now
        and coalesce(json_text(ev.properties, 'channel'), o.channel) in (o.channel, 'all')
        and :extra
)
"""

#: No device token of the row's customer is usable now (revoked, or answered dead by FCM since the
#: message was queued, which the customer's ``push_token`` attribute only shows at the next model
#: refresh): the tokens :func:`flowhouse.activation.render.devices` would send to.
_NO_DEVICE = """
not exists (
    select 1 from staging.stg_device_tokens as t
    where t.customer_id = o.customer_id
        and t.created_at <= :now and (t.revoked_at is null or t.revoked_at > :now)
        and not exists (select 1 from flowhouse.invalid_device_tokens as i where i.token = t.token)
)
"""

_SENT_RECENT = """
select o.message_id
from flowhouse.messages as o
join flowhouse.messages as m
    on m.customer_id = o.customer_id
    and m.is_marketing
    and m.message_id <> o.message_id
    and m.status in ('sending', 'sent', 'delivered', 'bounced', 'unconfirmed')
    and coalesce(m.sent_at, m.in_flight_at) > :now - :longest * interval 1 second
where o.claim_id = :claim and o.status = 'claimed' and o.is_marketing
group by o.message_id
"""

_SKIP = """
update flowhouse.messages as m
set status = 'skipped', skip_reason = c.reason, claim_id = null, updated_at = :now
from _fh_checked as c
where m.message_id = c.message_id and c.reason is not null
"""

_JOURNAL = """
insert into flowhouse.decisions
    (decision_id, enrollment_id, flow_id, flow_version, customer_id, step_id, step_kind,
     effective_at, decided_at, outcome, reason, detail)
select md5(c.enrollment_id || ':' || c.step_id || ':send_check'), c.enrollment_id, c.flow_id,
    m.flow_version, c.customer_id, c.step_id, 'send_check', :now, :now, 'skipped', c.reason,
    c.message_id
from _fh_checked as c
join flowhouse.messages as m on m.message_id = c.message_id
where c.reason is not null and not exists (
    select 1 from flowhouse.decisions as d
    where d.decision_id = md5(c.enrollment_id || ':' || c.step_id || ':send_check')
)
"""

_QUIET_MOVES = """
select c.enrollment_id, c.step_id as next_step, cast(:now as timestamp) as at, c.message_id
from _fh_checked as c
join flowhouse.enrollments as e on e.enrollment_id = c.enrollment_id
where c.reason is null and c.kind = 'message'
"""

_MOVED = """
select c.message_id, c.channel, coalesce(c.destination, :routes) as route, a.due_at
from _fh_checked as c
join {arrivals} as a on a.enrollment_id = c.enrollment_id and a.next_step = c.step_id
where c.reason is null and c.kind = 'message' and a.due_at > :now
"""

_SCHEDULE = """
update flowhouse.messages as m
set send_at = q.due_at, updated_at = :now
from _fh_moved as q
where m.message_id = q.message_id and q.route in :scheduled
"""

_REQUEUE = """
update flowhouse.messages as m
set status = 'queued', due_at = q.due_at, claim_id = null, claimed_at = null, updated_at = :now
from _fh_moved as q
where m.message_id = q.message_id and q.route not in :scheduled
"""


@dataclass(frozen=True)
class Bucket:
    """Which share of the outbox a sender owns: the messages of the customers whose id hashes to
    ``index`` of ``count`` (parallel senders never overlap). A customer's messages all go to one
    sender, so the send-time rules that count a customer's messages (caps, smart sending) and the
    reconciliation of identical messages to one recipient never race with another sender."""

    index: int = 0
    count: int = 1

    @classmethod
    def parse(cls, text: str | None) -> Bucket:
        if not text:
            return cls()
        index, _, count = text.partition("/")
        bucket = cls(int(index), int(count))
        if not 0 <= bucket.index < bucket.count:
            raise ValueError(f"bucket {text!r}: expected I/N with 0 <= I < N")
        return bucket

    def condition(self) -> exp.Expr:
        if self.count == 1:
            return exp.true()
        share = statement("floor(unit_hash(customer_id) * :n)", n=self.count)
        return exp.EQ(this=share, expression=literal(self.index))


def unclaim(ctx: Context, bucket: Bucket) -> int:
    """Rows a dead run claimed but never put in flight go back to the queue."""
    return ctx.wh.execute_count(ctx.sql(_UNCLAIM, now=ctx.now, bucket=bucket.condition()))


def fail_without_coupon(ctx: Context, bucket: Bucket) -> int:
    """Queued messages whose coupon the shop never created fail, with the push's reason."""
    return ctx.wh.execute_count(ctx.sql(_NO_COUPON, now=ctx.now, bucket=bucket.condition()))


def claim(ctx: Context, claim_id: str, bucket: Bucket, limit: int) -> int:
    """Claim up to ``limit`` due rows (earliest first); returns how many."""
    return ctx.wh.execute_count(
        ctx.sql(_CLAIM, claim=claim_id, now=ctx.now, bucket=bucket.condition(), limit=limit)
    )


@dataclass(frozen=True)
class CheckResult:
    skipped: dict[str, int]
    requeued: int
    scheduled: int


def recheck(ctx: Context, claim_id: str, scheduling: Sequence[str]) -> CheckResult:
    """Skip claimed rows a send-time rule now stops; move those inside quiet hours: sent now
    with a delivery time when their destination is one of ``scheduling`` (it holds the message
    until then), back to the queue otherwise."""
    _sent_recent(ctx, claim_id)
    ctx.temp("_fh_checked", _CHECK, **_check_values(ctx, claim_id))
    skipped = dict(
        ctx.rows("select reason, count(*) from _fh_checked where reason is not null group by 1")
    )
    if skipped:
        ctx.run(_SKIP, now=ctx.now)
        ctx.run(_JOURNAL, now=ctx.now)
    requeued = scheduled = 0
    arrivals = retime(ctx, _QUIET_MOVES, now=ctx.now)
    if arrivals.count:
        moved = _MOVED.format(arrivals=arrivals.table)
        if ctx.temp("_fh_moved", moved, now=ctx.now, routes=_route_of_channel(ctx)):
            holding = _in_list(scheduling)
            scheduled = ctx.wh.execute_count(ctx.sql(_SCHEDULE, now=ctx.now, scheduled=holding))
            requeued = ctx.wh.execute_count(ctx.sql(_REQUEUE, now=ctx.now, scheduled=holding))
    return CheckResult({str(k): int(v) for k, v in skipped.items()}, requeued, scheduled)


def _route_of_channel(ctx: Context) -> exp.Expr:
    """The destination ``delivery.routes`` gives the row's channel."""
    return _route_of(ctx, "c")


def _in_list(values: Sequence[str]) -> exp.Expr:
    return exp.Tuple(expressions=[literal(v) for v in values] or [literal("")])


def _check_values(ctx: Context, claim_id: str) -> dict[str, Any]:
    raw_events = ctx.wh.table_exists("raw", "events")
    tokens = ctx.wh.table_exists("staging", "stg_device_tokens")
    key = f"send_reason:{raw_events}:{tokens}"
    return {"claim": claim_id, "reason": ctx.memo(key, lambda: _reason(ctx, raw_events, tokens))}


def _reason(ctx: Context, raw_events: bool, tokens: bool) -> exp.Expr:
    """The first send-time check that stops a claimed row ``o`` (null when none does); with
    `raw_events`, engagement loaded since the row was queued counts too. An address gone since
    the row was queued (a profile update, with `tokens` every device token retired) is
    ``no_address``, as when it is queued."""
    unsubscribed, suppressed = _since(ctx) if raw_events else (None, None)
    lateness = per_flow(
        ctx.flows,
        lambda f: literal(int(f.flow.max_lateness.total_seconds())),
        default=literal(7 * 86400),
        on="o",
    )
    row = Checked(
        kind=exp.column("kind", "o"),
        channel=exp.column("channel", "o"),
        is_marketing=exp.column("is_marketing", "o"),
        due_at=exp.column("due_at", "o"),
        lateness=lateness,
        native_push=native_push(ctx.settings),
    )
    capped = per_flow(ctx.flows, lambda f: caps_rule(ctx.settings, f), on="o")
    smart = per_flow(ctx.flows, lambda f: smart_rule(ctx.settings, f), on="o")
    checks = early_checks(
        row, ctx.now, address=True, unsubscribed_since=unsubscribed, suppressed_since=suppressed
    )
    if row.native_push and tokens:
        gone = statement(_NO_DEVICE, now=ctx.now)
        checks.insert(1, (exp.and_(row.is_message(), row.on_channel("push"), gone), "no_address"))
    return reason_of(checks + volume_checks(row.is_marketing, capped, smart))


def _since(ctx: Context) -> tuple[exp.Expr, exp.Expr]:
    """Unsubscribes and suppressions (hard bounces, complaints) of the row's channel loaded
    since the row was queued."""
    unsubscribed = statement(
        _SINCE, types=_in_list(["unsubscribed"]), now=ctx.now, extra=exp.true()
    )
    suppressed = statement(
        _SINCE,
        types=_in_list(["message_bounced", "message_complained"]),
        now=ctx.now,
        extra=statement(
            "ev.event_type = 'message_complained' "
            "or coalesce(json_text(ev.properties, 'bounce_type'), '') <> 'soft'"
        ),
    )
    return unsubscribed, suppressed


def _sent_recent(ctx: Context, claim_id: str) -> None:
    """``_fh_sent_recent``: per claimed marketing message, how many marketing messages went out
    to the customer within each cap and smart-sending window before now."""
    windows = cap_windows(ctx)
    longest = max((s for _, s in windows), default=0)
    tree = statement(_SENT_RECENT, ctx.schema, claim=claim_id, now=ctx.now, longest=longest)
    assert isinstance(tree, exp.Select)
    went = exp.func("coalesce", exp.column("sent_at", "m"), exp.column("in_flight_at", "m"))
    tree = window_counts(tree, windows, went, literal(ctx.now))
    create_temp(ctx, "_fh_sent_recent", tree)


# -- in flight and results -----------------------------------------------------------------------

_IN_FLIGHT = """
update flowhouse.messages
set status = 'sending', in_flight_at = :now, attempts = coalesce(attempts, 0) + 1,
    provider = :provider, updated_at = :now
where message_id in :ids and status in ('claimed', 'sending')
"""


def mark_in_flight(ctx: Context, provider: str, message_ids: Sequence[str]) -> None:
    """Record, durably, that these messages' requests are about to go out."""
    if not message_ids:
        return
    ids = exp.select(array_column("message_id", "text")).subquery()
    tree = statement(_IN_FLIGHT, ctx.schema, now=ctx.now, provider=provider, ids=ids)
    ctx.wh.execute(render(tree, ctx.wh.dialect), [list(message_ids)])
    ctx.wh.commit()


def _rows(columns: Sequence[str], alias: str) -> exp.Expr:
    return array_rows([(c, _TYPES.get(c, "text")) for c in columns], alias)


@dataclass(frozen=True)
class Attempt:
    """One request attempt for one message, as the send log keeps it."""

    message_id: str
    attempt: int
    provider: str
    started_at: datetime
    milliseconds: float
    status_code: int | None
    outcome: str
    reason: str | None
    provider_message_id: str | None


@dataclass(frozen=True)
class Final:
    """Where a message ends up after this run: ``sent``, ``failed``, ``queued`` (retry later,
    at ``next_attempt_at``), ``unconfirmed`` or ``sending`` (still unknown: reconcile later)."""

    message_id: str
    status: str
    provider_message_id: str | None = None
    reason: str | None = None
    next_attempt_at: datetime | None = None
    #: Attempts after the first within this run (the in-flight mark counted the first).
    retries: int = 0


_RESULT_COLUMNS = (
    "message_id", "status", "provider_message_id", "reason", "next_attempt_at", "retries",
)  # fmt: skip

_RECORD = """
update flowhouse.messages as m
set status = r.status,
    provider_message_id = coalesce(r.provider_message_id, m.provider_message_id),
    sent_at = case when r.status = 'sent' then :now else m.sent_at end,
    failure_reason = case when r.status = 'sent' then null else r.reason end,
    next_attempt_at = r.next_attempt_at,
    attempts = coalesce(m.attempts, 0) + r.retries,
    claim_id = case when r.status = 'queued' then null else m.claim_id end,
    updated_at = :now
from :results
where m.message_id = r.message_id and m.status in ('claimed', 'sending')
"""

_ATTEMPT_COLUMNS = (
    "message_id", "attempt", "claim_id", "provider", "started_at", "milliseconds", "status_code",
    "outcome", "reason", "provider_message_id",
)  # fmt: skip

#: The columns of ``send_attempts``, in its order.
_LOG = "insert into flowhouse.send_attempts select * from :attempts"


def record(
    ctx: Context, claim_id: str, finals: Sequence[Final], attempts: Sequence[Attempt]
) -> None:
    """Write where each message ended and every attempt it took, in one commit."""
    if finals:
        tree = statement(_RECORD, ctx.schema, now=ctx.now, results=_rows(_RESULT_COLUMNS, "r"))
        params = [[_param(getattr(f, c)) for f in finals] for c in _RESULT_COLUMNS]
        ctx.wh.execute(render(tree, ctx.wh.dialect), params)
    if attempts:
        tree = statement(_LOG, ctx.schema, attempts=_rows(_ATTEMPT_COLUMNS, "a"))
        params = [
            [_param(claim_id if c == "claim_id" else getattr(a, c)) for a in attempts]
            for c in _ATTEMPT_COLUMNS
        ]
        ctx.wh.execute(render(tree, ctx.wh.dialect), params)
    ctx.wh.commit()


_DEAD = """
insert into flowhouse.invalid_device_tokens
    (token, customer_id, provider, reason, message_id, invalidated_at)
select d.token, d.customer_id, d.provider, d.reason, d.message_id, :now
from :dead
where not exists (select 1 from flowhouse.invalid_device_tokens as i where i.token = d.token)
"""

_DEAD_COLUMNS = ("token", "customer_id", "provider", "reason", "message_id")


def record_dead_tokens(
    ctx: Context, provider: str, dead: Sequence[tuple[str, str, str, str]]
) -> None:
    """Write the device tokens ``provider`` answered dead, each ``(token, customer_id, reason,
    message_id)``, once per token (the first reason kept)."""
    first = {
        token: (token, customer, provider, reason, message)
        for token, customer, reason, message in dead
    }
    if not first:
        return
    rows = list(first.values())
    columns = [(c, "text") for c in _DEAD_COLUMNS]
    tree = statement(_DEAD, ctx.schema, now=ctx.now, dead=array_rows(columns, "d"))
    ctx.wh.execute(
        render(tree, ctx.wh.dialect), [[r[i] for r in rows] for i in range(len(columns))]
    )
    ctx.wh.commit()


def _param(value: Any) -> Any:
    return value.isoformat(sep=" ") if isinstance(value, datetime) else value


_TYPES = {
    "attempt": "integer",
    "retries": "integer",
    "status_code": "integer",
    "milliseconds": "double",
    "started_at": "timestamp",
    "next_attempt_at": "timestamp",
}


# -- before a run: where the due rows go -----------------------------------------------------------

_DUE_ROUTES = """
select coalesce(o.destination, :routes) as route, count(*)
from flowhouse.messages as o
where ((o.status = 'queued' and o.kind in ('message', 'action') and o.due_at <= :now
        and (o.next_attempt_at is null or o.next_attempt_at <= :now))
    or o.status in ('claimed', 'sending'))
    and :bucket
group by 1
order by 1
"""


def due_routes(ctx: Context, bucket: Bucket) -> dict[str, int]:
    """How many rows this run would send (due, or left claimed or in flight by a dead run),
    per destination: what must be reachable before anything is claimed."""
    rows = ctx.rows(_DUE_ROUTES, now=ctx.now, routes=_route_of(ctx, "o"), bucket=bucket.condition())
    return {str(route): int(n) for route, n in rows}


def _route_of(ctx: Context, alias: str) -> exp.Expr:
    """The destination ``delivery.routes`` gives the channel of the row ``alias``."""
    case = exp.Case(this=exp.column("channel", alias))
    for channel, route in sorted(ctx.settings.delivery.routes.items()):
        case = case.when(literal(channel), literal(route))
    return case.else_(literal("webhook"))


# -- requeueing failed messages ------------------------------------------------------------------

_FAILED = """
select o.message_id, o.enrollment_id, o.flow_id, o.flow_version, o.customer_id, o.step_id,
    o.failure_reason,
    o.due_at + :lateness * interval 1 second >= :now as is_within
from flowhouse.messages as o
where o.status = 'failed' and :flow and :reason and :since
"""

_RETRY_JOURNAL = """
insert into flowhouse.decisions
    (decision_id, enrollment_id, flow_id, flow_version, customer_id, step_id, step_kind,
     effective_at, decided_at, outcome, reason, detail)
select md5(f.message_id || ':send_retry:' || :stamp), f.enrollment_id, f.flow_id,
    f.flow_version, f.customer_id, f.step_id, 'send_retry', :now, :now, 'requeued',
    'failed before: ' || coalesce(f.failure_reason, 'no reason recorded'), f.message_id
from _fh_failed as f
where f.is_within
"""

_RETRY = """
update flowhouse.messages as m
set status = 'queued', claim_id = null, claimed_at = null, next_attempt_at = null,
    failure_reason = null, updated_at = :now
from _fh_failed as f
where m.message_id = f.message_id and f.is_within and m.status = 'failed'
"""


@dataclass(frozen=True)
class Retried:
    """What ``--retry-failed`` did: rows requeued and rows left failed (past the flow's
    ``max_lateness``), each by the reason they had failed with."""

    requeued: dict[str, int]
    stale: dict[str, int]


@dataclass(frozen=True)
class RetryFilter:
    """Which failed rows to requeue: of one flow, whose reason contains a text (any case),
    that failed at or after a time; None: any."""

    flow: str | None = None
    reason: str | None = None
    since: datetime | None = None


def retry_failed(ctx: Context, which: RetryFilter) -> Retried:
    """Put failed rows that match ``which`` and are still within their flow's ``max_lateness``
    back in the queue, each journaled in ``decisions`` (``send_retry``, ``requeued``, the reason
    it had failed with); the others stay failed."""
    lateness = per_flow(
        ctx.flows,
        lambda f: literal(int(f.flow.max_lateness.total_seconds())),
        default=literal(7 * 86400),
        on="o",
    )
    ctx.temp("_fh_failed", _FAILED, now=ctx.now, lateness=lateness, **_retry_filter(which))
    counts = ctx.rows(
        "select is_within, coalesce(failure_reason, ''), count(*) from _fh_failed group by 1, 2"
    )
    ctx.run(_RETRY_JOURNAL, now=ctx.now, stamp=ctx.now.isoformat())
    ctx.run(_RETRY, now=ctx.now)
    return Retried(
        {str(r): int(n) for within, r, n in counts if within},
        {str(r): int(n) for within, r, n in counts if not within},
    )


def _retry_filter(which: RetryFilter) -> dict[str, exp.Expr]:
    true = exp.true()
    return {
        "flow": statement("o.flow_id = :f", f=which.flow) if which.flow else true,
        "reason": (
            statement("lower(o.failure_reason) like :p", p=f"%{which.reason.lower()}%")
            if which.reason
            else true
        ),
        "since": statement("o.updated_at >= :t", t=which.since) if which.since else true,
    }
