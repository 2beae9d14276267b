"""A readable summary of what a warehouse holds: inputs, derived events, attributes, segments."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime

from sqlglot import exp

from flowhouse.core.warehouse import Location, Warehouse


def _table(rows: Iterable[tuple[object, ...]], headers: tuple[str, ...]) -> list[str]:
    body = [
        tuple("" if v is None else f"{v:,}" if isinstance(v, int) else str(v) for v in r)
        for r in rows
    ]
    widths = [
        max(len(h), *(len(r[i]) for r in body)) if body else len(h) for i, h in enumerate(headers)
    ]
    line = "  ".join(h.ljust(w) for h, w in zip(headers, widths, strict=True))
    out = ["  " + line, "  " + "  ".join("-" * w for w in widths)]
    for r in body:
        cells = [c.rjust(w) if c.replace(",", "").replace(".", "").isdigit() else c.ljust(w)
                 for c, w in zip(r, widths, strict=True)]  # fmt: skip
        out.append("  " + "  ".join(cells))
    return out


def _counts_by(
    wh: Warehouse, table: str, column: str, where: exp.Expr | None = None
) -> list[tuple[object, ...]]:
    q = (
        exp.select(exp.column(column), exp.func("count", exp.Star()).as_("n"))
        .from_(table)
        .group_by(exp.column(column))
        .order_by(exp.Ordered(this=exp.column("n"), desc=True), exp.column(column))
    )
    if where is not None:
        q = q.where(where)
    return wh.query(q)


def render_summary(location: Location) -> str:
    with Warehouse.open(location) as wh:
        return "\n".join(_sections(wh))


def _sections(wh: Warehouse) -> Iterable[str]:
    yield f"Warehouse {wh.location}"
    if not wh.table_exists("raw", "events"):
        yield "  empty: run `flowhouse generate` or `flowhouse load` first"
        return
    events, first, last, loaded = wh.query(
        exp.select(
            exp.func("count", exp.Star()), exp.func("min", exp.column("occurred_at")),
            exp.func("max", exp.column("occurred_at")), exp.func("max", exp.column("loaded_at")),
        ).from_("raw.events")
    )[0]  # fmt: skip
    yield (
        f"  raw: {wh.count('raw.customers'):,} customers, {wh.count('raw.products'):,} products, "
        f"{events:,} events from {_minute(first)} to {_minute(last)} "
        f"(loaded up to {_minute(loaded)}, UTC)"
    )
    rejected = wh.count("raw.rejects")
    if rejected:
        yield f"  rejects: {rejected:,} problems in raw.rejects"
    if wh.table_exists("staging", "quarantined_events"):
        quarantined = wh.count("staging.quarantined_events")
        if quarantined:
            yield (
                f"  quarantine: {quarantined:,} problems in staging.quarantined_events "
                "(events left out of the stream; docs/events.md)"
            )
    yield ""
    yield "Raw events by type"
    yield from _table(_counts_by(wh, "raw.events", "event_type"), ("event_type", "events"))
    if wh.table_exists("core", "events"):
        yield ""
        yield "Derived events by type (core.events)"
        derived = _counts_by(wh, "core.events", "event_type", exp.column("is_derived"))
        yield from _table(derived, ("event_type", "events")) if derived else ["  none yet"]
    if wh.table_exists("core", "customer_attributes"):
        yield ""
        yield "Customers by tier (core.customer_attributes)"
        yield from _table(_counts_by(wh, "core.customer_attributes", "tier"), ("tier", "customers"))
    if wh.table_exists("core", "segment_members"):
        yield ""
        yield "Segments (core.segment_members)"
        yield from _table(_counts_by(wh, "core.segment_members", "segment"), ("segment", "members"))


def _minute(value: object) -> str:
    return value.strftime("%Y-%m-%d %H:%M") if isinstance(value, datetime) else str(value)
