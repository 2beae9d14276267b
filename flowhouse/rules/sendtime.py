"""The send-time rules as SQL builders, shared by the engine (when a message is queued) and
activation (when it is about to be sent).

Caps and smart sending look back from a message's time over the marketing messages the customer
got on that channel (or on any, for a cap on ``any``), in any flow. :func:`window_counts` adds one
count per (channel, seconds) window to a grouped query; :func:`caps_rule` and :func:`smart_rule`
are each flow's test over those counts (on the row ``o`` joined to the counts ``r``).
"""

from __future__ import annotations

from sqlglot import exp

from flowhouse.core.sql import literal, render, statement
from flowhouse.rules.context import Context
from flows.compile import CompiledFlow
from flows.flowfile import Cap
from flows.settings import Settings


def cap_windows(ctx: Context) -> list[tuple[str, int]]:
    """Every (channel or ``any``, seconds) window a cap or smart sending looks back over."""
    found: set[tuple[str, int]] = set()
    for f in ctx.flows:
        found |= {(c.channel, int(c.period.total_seconds())) for c in flow_caps(ctx.settings, f)}
        found |= set(flow_smart(ctx.settings, f).items())
    return sorted(found)


def recent_column(channel: str, seconds: int) -> str:
    return f"n_{channel}_{seconds}"


def window_counts(
    tree: exp.Select, windows: list[tuple[str, int]], went: exp.Expr, until: exp.Expr
) -> exp.Select:
    """``tree`` (grouped by the message deciding) with one count per (channel, seconds) window:
    the joined messages ``m`` that went out (``went``) within that long before ``until``."""
    for channel, seconds in windows:
        recent: exp.Expr = exp.GT(
            this=went.copy(),
            expression=statement(":due - :n * interval 1 second", due=until.copy(), n=seconds),
        )
        if channel != "any":
            recent = exp.and_(recent, exp.column("channel", "m").eq(literal(channel)))
        counted = exp.Count(this=exp.Case().when(recent, literal(1)))
        tree = tree.select(exp.alias_(counted, recent_column(channel, seconds)))
    return tree


def create_temp(ctx: Context, name: str, tree: exp.Expr) -> None:
    """(Re)create temp table ``name`` as the query ``tree``."""
    ctx.wh.execute(f"drop table if exists {name}")
    create = exp.Create(this=exp.to_table(name), kind="TABLE", expression=tree)
    create.set("properties", exp.Properties(expressions=[exp.TemporaryProperty()]))
    ctx.wh.execute(render(create, ctx.wh.dialect))


def flow_caps(settings: Settings, f: CompiledFlow) -> list[Cap]:
    if f.flow.transactional:
        return []
    return list(f.flow.caps if f.flow.caps is not None else settings.caps)


def flow_smart(settings: Settings, f: CompiledFlow) -> dict[str, int]:
    if f.flow.transactional or f.flow.smart_sending is False:
        return {}
    out = {}
    for channel in ("email", "sms", "push"):
        window = f.flow.smart_sending or settings.smart_sending.get(channel)
        if window:
            out[channel] = int(window.total_seconds())
    return out


def _count(channel: str, seconds: int) -> exp.Expr:
    return exp.func("coalesce", exp.column(recent_column(channel, seconds), "r"), literal(0))


def caps_rule(settings: Settings, f: CompiledFlow) -> exp.Expr | None:
    checks = []
    for cap in flow_caps(settings, f):
        seconds = int(cap.period.total_seconds())
        over: exp.Expr = exp.GTE(this=_count(cap.channel, seconds), expression=literal(cap.limit))
        if cap.channel != "any":
            over = exp.and_(exp.column("channel", "o").eq(literal(cap.channel)), over)
        checks.append(over)
    return exp.or_(*checks) if checks else None


def smart_rule(settings: Settings, f: CompiledFlow) -> exp.Expr | None:
    checks = [
        exp.and_(
            exp.column("channel", "o").eq(literal(channel)),
            exp.GTE(this=_count(channel, seconds), expression=literal(1)),
        )
        for channel, seconds in flow_smart(settings, f).items()
    ]
    return exp.or_(*checks) if checks else None
