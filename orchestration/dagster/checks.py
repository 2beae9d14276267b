"""Asset checks on the outbox: what the engine queued and what went out.

On ``messages`` (blocking: nothing is sent while it fails):

- ``unique_message_ids``: no message id occurs twice in ``flowhouse.messages``.

On ``sent_messages``, over the marketing messages that went out (``sent``, ``delivered`` or
``bounced``) in the last :data:`LOOKBACK` before the run's time:

- ``no_send_after_unsubscribe``: no message went out after its customer unsubscribed from its
  channel, unless they opted in again before it went out, on every channel whose unsubscribes
  flowhouse keeps (:func:`unsubscribe_channels`: e-mail, SMS, WhatsApp, Viber and onsite, and
  push when it goes to devices through FCM). Only what could be known is held
  against a message: consent events (``opted_in`` / ``unsubscribed`` in ``raw.events``, on the
  message's channel or ``all``, as ``staging.stg_consent_events`` reads them) that occurred and
  were loaded by the time its request went out (``in_flight_at``). Consent that comes only from
  the store's opt-in flag (``raw.customers``) has no history, so it is not checked here;
- ``outside_quiet_hours``: no message was delivered inside the quiet hours that applied to it:
  the time it was sent (or the time the provider was asked to hold it until, ``send_at``) read in
  the customer's zone (``core.customer_attributes.effective_timezone``, else the store's) is
  outside its channel's ``quiet_hours`` window, for the flows that keep quiet hours. The flows and
  settings are those of the files now, and the zone is the customer's as last built;
- ``outbox_backlog`` (warning): the oldest queued message due at or before the run's time waits
  less than ``FLOWHOUSE_BACKLOG_MINUTES`` (default 60);
- ``no_failed_messages``: no message failed for good (status ``failed``) in the last
  ``FLOWHOUSE_FAILED_HOURS`` (default 24) before the run's time; the metadata lists the failure
  reasons with their counts. Requeueing them (``flowhouse send --retry-failed``) clears it.

Each check opens the warehouse read-only in its body and closes it; the statements are sqlglot
trees rendered for DuckDB or PostgreSQL.
"""

import os
from collections import defaultdict
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from dagster import (
    AssetCheckExecutionContext,
    AssetCheckResult,
    AssetCheckSeverity,
    AssetCheckSpec,
    MetadataValue,
    asset_check,
    multi_asset_check,
)
from sqlglot import exp

from flowhouse.core.sql import literal, render, statement
from flowhouse.core.warehouse import Warehouse
from flowhouse.flows.channels import names
from flowhouse.flows.compile import quiet_window
from flowhouse.flows.load import load_flows
from flowhouse.flows.settings import Settings, load_settings
from flowhouse.orchestration.dagster.resources import POOL, FlowhouseResource, run_time
from flowhouse.rules import timing
from flowhouse.rules.sendtime import CONSENT_CHANNELS, native_push

BACKLOG_ENV = "FLOWHOUSE_BACKLOG_MINUTES"
DEFAULT_BACKLOG_MINUTES = 60
#: How far back the checks on sent messages look.
LOOKBACK = timedelta(days=7)
#: Statuses of messages that went out.
WENT_OUT = ("sent", "delivered", "bounced")
EXAMPLES = 5
FAILED_ENV = "FLOWHOUSE_FAILED_HOURS"
DEFAULT_FAILED_HOURS = 24
#: Failure reasons listed at most in the check's metadata.
REASONS = 10


@dataclass(frozen=True)
class Finding:
    """How many rows break a rule, with a few of their message ids."""

    count: int
    examples: list[str]

    @property
    def passed(self) -> bool:
        return self.count == 0


def _examples(wh: Warehouse, text: str, **values: Any) -> Finding:
    """``text`` selects the offending message ids (one column, ``message_id``)."""
    tree = statement(text, **values)
    assert isinstance(tree, exp.Select)
    count = exp.select("count(*)").from_(tree.subquery("offending"))
    first = (
        exp.select("message_id")
        .from_(tree.copy().subquery("offending"))
        .order_by("message_id")
        .limit(EXAMPLES)
    )
    n = int(wh.scalar(render(count, wh.dialect)) or 0)
    examples = [str(r[0]) for r in wh.query(render(first, wh.dialect))] if n else []
    return Finding(n, examples)


# -- unique message ids ----------------------------------------------------------------------------

_DUPLICATES = """
select message_id from flowhouse.messages
group by message_id
having count(*) > 1
"""


def duplicate_message_ids(wh: Warehouse) -> Finding:
    return _examples(wh, _DUPLICATES)


# -- consent ---------------------------------------------------------------------------------------

_AFTER_UNSUBSCRIBE = """
select known.message_id
from (
    select s.message_id,
        max(case when ev.event_type = 'unsubscribed' then ev.occurred_at end) as unsubscribed_at,
        max(case when ev.event_type = 'opted_in' then ev.occurred_at end) as opted_in_at
    from (
        select m.message_id, m.customer_id, m.channel,
            coalesce(m.in_flight_at, m.sent_at) as went_at
        from flowhouse.messages as m
        where m.kind = 'message' and m.is_marketing and m.status in :went_out
            and m.channel in :channels
            and coalesce(m.in_flight_at, m.sent_at) > :since
    ) as s
    join raw.events as ev on ev.customer_id = s.customer_id
    where ev.event_type in ('opted_in', 'unsubscribed')
        and lower(trim(json_text(ev.properties, 'channel'))) in (s.channel, 'all')
        and ev.occurred_at <= s.went_at and ev.loaded_at <= s.went_at
    group by s.message_id
) as known
where known.unsubscribed_at is not null
    and (known.opted_in_at is null or known.unsubscribed_at >= known.opted_in_at)
"""


def unsubscribe_channels(settings: Settings) -> tuple[str, ...]:
    """The channels whose unsubscribes the send-time rules keep with these settings: those with
    consent whatever their route, those with an opt-out only (onsite), and push when it goes to
    devices (routed to FCM; the store's own push service keeps its own)."""
    on_devices = names(consent=True) if native_push(settings) else CONSENT_CHANNELS
    return tuple(dict.fromkeys([*on_devices, *names(opt_out=True)]))


def sent_after_unsubscribe(wh: Warehouse, now: datetime, channels: tuple[str, ...]) -> Finding:
    return _examples(
        wh, _AFTER_UNSUBSCRIBE, went_out=_in(WENT_OUT), channels=_in(channels),
        since=now - LOOKBACK,
    )  # fmt: skip


# -- quiet hours -----------------------------------------------------------------------------------

_IN_QUIET_HOURS = """
select q.message_id
from (
    select m.message_id, m.flow_id, m.channel, coalesce(m.send_at, m.sent_at) as went_at,
        coalesce(c.effective_timezone, :store_zone) as zone
    from flowhouse.messages as m
    left join core.customer_attributes as c on c.customer_id = m.customer_id
    where m.kind = 'message' and m.status in :went_out and m.sent_at > :since
) as q
where :inside
"""

Window = tuple[str, str]


def quiet_windows(flows_dir: Path) -> tuple[dict[tuple[str, Window], list[str]], str]:
    """(channel, window) -> the flows that keep it; and the store's time zone."""
    flows, settings = load_flows(flows_dir)
    keeping: dict[tuple[str, Window], list[str]] = defaultdict(list)
    for f in flows:
        for channel in settings.quiet_hours:
            window = quiet_window(settings, f.flow, channel)
            if window is not None:
                keeping[(channel, window)].append(f.id)
    return dict(keeping), settings.store.timezone


def inside_quiet_hours(windows: Mapping[tuple[str, Window], list[str]]) -> exp.Expr:
    """Whether the row ``q`` went out inside the quiet hours of its channel and flow."""
    clock = exp.cast(
        timing.to_local(exp.column("went_at", "q"), exp.column("zone", "q")),
        exp.DataType.Type.TIME,
    )
    parts = [
        exp.and_(
            exp.column("channel", "q").eq(literal(channel)),
            exp.column("flow_id", "q").isin(*[literal(f) for f in flows]),
            _within(clock, *window),
        )
        for (channel, window), flows in sorted(windows.items())
    ]
    return exp.or_(*parts) if parts else exp.false()


def _within(clock: exp.Expr, start: str, end: str) -> exp.Expr:
    """``clock`` in ``[start, end)``, wrapping midnight when start > end."""
    after_start = exp.GTE(this=clock.copy(), expression=_time(start))
    before_end = exp.LT(this=clock.copy(), expression=_time(end))
    return exp.and_(after_start, before_end) if start < end else exp.or_(after_start, before_end)


def _time(clock: str) -> exp.Expr:
    return exp.cast(exp.Literal.string(f"{clock}:00"), exp.DataType.Type.TIME)


def sent_in_quiet_hours(wh: Warehouse, flows_dir: Path, now: datetime) -> Finding:
    windows, store_zone = quiet_windows(flows_dir)
    return _examples(
        wh,
        _IN_QUIET_HOURS,
        went_out=_in(WENT_OUT),
        since=now - LOOKBACK,
        store_zone=store_zone,
        inside=inside_quiet_hours(windows),
    )


# -- backlog ---------------------------------------------------------------------------------------

_BACKLOG = """
select count(*), min(due_at) from flowhouse.messages
where status = 'queued' and kind in ('message', 'action') and due_at <= :now
    and (next_attempt_at is null or next_attempt_at <= :now)
"""


@dataclass(frozen=True)
class Backlog:
    due: int
    oldest_due_at: datetime | None
    now: datetime

    @property
    def minutes(self) -> float:
        if self.oldest_due_at is None:
            return 0.0
        return round((self.now - self.oldest_due_at).total_seconds() / 60, 1)


def backlog(wh: Warehouse, now: datetime) -> Backlog:
    due, oldest = wh.query(render(statement(_BACKLOG, now=now), wh.dialect))[0]
    return Backlog(int(due or 0), oldest, now)


def backlog_threshold(environ: Mapping[str, str] | None = None) -> int:
    """Minutes the oldest due message may wait (``FLOWHOUSE_BACKLOG_MINUTES``)."""
    value = (os.environ if environ is None else environ).get(BACKLOG_ENV)
    return int(value) if value else DEFAULT_BACKLOG_MINUTES


# -- failures --------------------------------------------------------------------------------------

_FAILED = """
select coalesce(failure_reason, 'no reason recorded') as reason, count(*) as n,
    min(message_id) as example
from flowhouse.messages
where status = 'failed' and updated_at > :since and updated_at <= :now
group by 1
order by 2 desc, 1
"""


@dataclass(frozen=True)
class Failed:
    """Messages that failed in the window, by reason (most frequent first)."""

    reasons: list[tuple[str, int, str]]
    hours: int

    @property
    def count(self) -> int:
        return sum(n for _, n, _ in self.reasons)


def failed_messages(wh: Warehouse, now: datetime, hours: int) -> Failed:
    since = now - timedelta(hours=hours)
    rows = wh.query(render(statement(_FAILED, since=since, now=now), wh.dialect))
    return Failed([(str(r), int(n), str(e)) for r, n, e in rows], hours)


def failed_hours(environ: Mapping[str, str] | None = None) -> int:
    """Hours back the failure check looks (``FLOWHOUSE_FAILED_HOURS``)."""
    value = (os.environ if environ is None else environ).get(FAILED_ENV)
    return int(value) if value else DEFAULT_FAILED_HOURS


def failed_result(failed: Failed) -> AssetCheckResult:
    reasons = {reason[:200]: n for reason, n, _ in failed.reasons[:REASONS]}
    return AssetCheckResult(
        check_name="no_failed_messages",
        asset_key="sent_messages",
        passed=failed.count == 0,
        severity=AssetCheckSeverity.ERROR,
        description=(
            f"no message failed in the last {failed.hours} h"
            if failed.count == 0
            else f"{failed.count} messages failed in the last {failed.hours} h "
            "(flowhouse send --retry-failed requeues them once the cause is fixed)"
        ),
        metadata={
            "failed": failed.count,
            "reasons": MetadataValue.json(reasons),
            "examples": ", ".join(e for _, _, e in failed.reasons[:EXAMPLES]) or "-",
            "window_hours": failed.hours,
        },
    )


def _in(values: tuple[str, ...]) -> exp.Expr:
    return exp.Tuple(expressions=[literal(v) for v in values])


# -- the Dagster checks ----------------------------------------------------------------------------


def _result(name: str, asset: str, found: Finding, rule: str) -> AssetCheckResult:
    return AssetCheckResult(
        check_name=name,
        asset_key=asset,
        passed=found.passed,
        severity=AssetCheckSeverity.ERROR,
        description=rule if found.passed else f"{found.count} messages break it: {rule}",
        metadata={"offending": found.count, "examples": ", ".join(found.examples) or "-"},
    )


@asset_check(
    asset="messages",
    name="unique_message_ids",
    blocking=True,
    pool=POOL,
    description="No message id occurs twice in flowhouse.messages.",
)
def unique_message_ids(
    context: AssetCheckExecutionContext, flowhouse: FlowhouseResource
) -> AssetCheckResult:
    with Warehouse.open(flowhouse.location(), read_only=True) as wh:
        found = duplicate_message_ids(wh)
    return _result("unique_message_ids", "messages", found, "message ids are unique")


_SENT_CHECKS = [
    AssetCheckSpec(
        "no_send_after_unsubscribe",
        asset="sent_messages",
        description="No marketing message went out after its customer unsubscribed from the "
        "channel (and before they opted in again), as known when it went out.",
    ),
    AssetCheckSpec(
        "outside_quiet_hours",
        asset="sent_messages",
        description="No message went out inside the quiet hours of its channel, in the "
        "customer's time zone, for flows that keep quiet hours.",
    ),
    AssetCheckSpec(
        "outbox_backlog",
        asset="sent_messages",
        description=f"The oldest due message waits less than {BACKLOG_ENV} minutes "
        f"(default {DEFAULT_BACKLOG_MINUTES}).",
    ),
    AssetCheckSpec(
        "no_failed_messages",
        asset="sent_messages",
        description=f"No message failed for good in the last {FAILED_ENV} hours "
        f"(default {DEFAULT_FAILED_HOURS}); the reasons are in the metadata.",
    ),
]


@multi_asset_check(specs=_SENT_CHECKS, name="sent_messages_checks", pool=POOL)
def sent_messages_checks(
    context: AssetCheckExecutionContext, flowhouse: FlowhouseResource
) -> Iterator[AssetCheckResult]:
    now = run_time(context)
    with Warehouse.open(flowhouse.location(), read_only=True) as wh:
        channels = unsubscribe_channels(load_settings(flowhouse.flows()))
        consent = sent_after_unsubscribe(wh, now, channels)
        quiet = sent_in_quiet_hours(wh, flowhouse.flows(), now)
        waiting = backlog(wh, now)
        failed = failed_messages(wh, now, failed_hours())
    yield _result(
        "no_send_after_unsubscribe", "sent_messages", consent, "no send after an unsubscribe"
    )
    yield _result("outside_quiet_hours", "sent_messages", quiet, "no send inside quiet hours")
    yield backlog_result(waiting, backlog_threshold())
    yield failed_result(failed)


def backlog_result(waiting: Backlog, threshold: int) -> AssetCheckResult:
    ok = waiting.minutes < threshold
    return AssetCheckResult(
        check_name="outbox_backlog",
        asset_key="sent_messages",
        passed=ok,
        severity=AssetCheckSeverity.WARN,
        description=f"the oldest due message has waited {waiting.minutes} minutes "
        f"(threshold {threshold})",
        metadata={
            "due_messages": waiting.due,
            "oldest_due_at": str(waiting.oldest_due_at or "-"),
            "minutes_waiting": waiting.minutes,
            "threshold_minutes": threshold,
        },
    )
