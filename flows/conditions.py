"""A flow's audience, filter and suppression as SQL conditions the engine evaluates set-based.

Each reads the customer's attributes as ``customer`` and, for the filter and suppression, the due
row as ``event`` (its ``customer_id`` and ``due_at``): segment and list membership are an
``exists`` over ``core.segment_members`` / ``core.list_members``, recent events an ``exists`` over
``core.events`` within the window before the due time (as the warehouse knows them at the tick).
"""

from __future__ import annotations

from datetime import datetime, timedelta

from sqlglot import exp

from flowhouse.core.sql import literal
from flowhouse.flows.compile import predicate
from flowhouse.flows.flowfile import Audience, Filter, Flow, Suppress


def audience_condition(audience: Audience) -> exp.Expr:
    """All the audience's parts hold (true when it has none)."""
    parts: list[exp.Expr] = [exp.true()]
    if audience.where:
        parts.append(predicate(audience.where))
    if audience.segment:
        parts.append(member("segment_members", "segment", audience.segment))
    if audience.list:
        parts.append(member("list_members", "list_name", audience.list))
    if audience.not_segment:
        parts.append(exp.not_(member("segment_members", "segment", audience.not_segment)))
    if audience.not_list:
        parts.append(exp.not_(member("list_members", "list_name", audience.not_list)))
    return exp.and_(*parts)


def member(table: str, column: str, name: str) -> exp.Expr:
    """The customer is in segment or list ``name``."""
    return exp.Exists(
        this=exp.select("1")
        .from_(exp.to_table(f"core.{table}").as_("m"))
        .where(exp.column("customer_id", "m").eq(exp.column("customer_id", "customer")))
        .where(exp.column(column, "m").eq(exp.Literal.string(name)))
    )


def recent_event(types: list[str], within: timedelta, now: datetime) -> exp.Expr:
    """The due row's customer had an event of ``types`` within ``within`` before its due time
    (loaded by the tick at ``now``)."""
    seconds = int(within.total_seconds())
    window = exp.Mul(this=exp.Literal.number(seconds), expression=exp.Interval(
        this=exp.Literal.number(1), unit=exp.var("second")
    ))  # fmt: skip
    due = exp.column("due_at", "event")
    return exp.Exists(
        this=exp.select("1")
        .from_(exp.to_table("core.events").as_("recent"))
        .where(exp.column("customer_id", "recent").eq(exp.column("customer_id", "event")))
        .where(exp.column("event_type", "recent").isin(*[literal(t) for t in types]))
        .where(exp.column("occurred_at", "recent") <= due)
        .where(exp.column("occurred_at", "recent") > exp.Sub(this=due.copy(), expression=window))
        .where(exp.column("loaded_at", "recent") <= literal(now))
    )


def filter_condition(flow: Flow, now: datetime) -> exp.Expr | None:
    """The flow's filter (None: it has none)."""
    spec = flow.filter
    if spec is None:
        return None
    if isinstance(spec, str):
        return predicate(spec)
    return _filter_object(spec, now)


def _filter_object(spec: Filter, now: datetime) -> exp.Expr:
    condition = audience_condition(spec)
    if spec.no_recent_event and spec.within:
        recent = recent_event(spec.no_recent_event, spec.within, now)
        condition = exp.and_(condition, exp.not_(recent))
    return condition


def suppress_condition(flow: Flow, now: datetime) -> exp.Expr | None:
    """The flow's suppression (None: it has none)."""
    spec = flow.suppress
    if spec is None:
        return None
    if isinstance(spec, str):
        return predicate(spec)
    return _suppress_object(spec, now)


def _suppress_object(spec: Suppress, now: datetime) -> exp.Expr:
    parts: list[exp.Expr] = []
    if spec.where:
        parts.append(exp.func("coalesce", predicate(spec.where), exp.false()))
    if spec.recent_event and spec.within:
        parts.append(recent_event(spec.recent_event, spec.within, now))
    return exp.paren(exp.or_(*parts)) if parts else exp.false()
