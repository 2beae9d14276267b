"""One flow's failing predicate skips that flow for the tick, never every flow.

The engine evaluates the predicates of all flows in the same set-based statements, so a predicate
that fails at run time (a statement time-out, the memory limit, an error on some value; see
:mod:`flowhouse.core.bounds`) fails the tick's transaction. The tick then looks for the culprits:
each predicate of each flow is tried on its own, within the same bounds, on the latest events;
the flows whose predicate fails are skipped and the tick runs again without them.

A skipped flow deploys as usual but neither enrolls (its triggers wait for the next tick that can
evaluate them: ``considered_until`` stays) nor advances (its enrollments hold). Each skip is
journaled in ``flowhouse.flow_skips`` with the flow file, the line and field of the predicate and
the error, and printed by ``flowhouse tick``.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from sqlglot import exp

from flowhouse.core.bounds import Bounds, bounded
from flowhouse.core.errors import WarehouseError
from flowhouse.core.sql import literal, render, statement
from flowhouse.core.warehouse import Warehouse
from flowhouse.flows.checks import Loc, flow_predicates
from flowhouse.flows.compile import CompiledFlow, predicate
from flowhouse.flows.files import read_flow
from flowhouse.rules.context import Context

#: The latest events and their customers, for each predicate on its own.
_PROBE = """
select count(*)
from (
    select * from core.events where loaded_at <= :now order by loaded_at desc limit 1000
) as event
left join core.customer_attributes as customer on customer.customer_id = event.customer_id
where coalesce(:predicate, false)
"""


@dataclass(frozen=True)
class Skip:
    """A flow skipped this tick: the predicate that failed, where it is, and the error."""

    flow_id: str
    file: str
    line: int | None
    field: str
    error: str

    def __str__(self) -> str:
        where = f"{self.file}:{self.line}" if self.line else self.file
        return f"{where}: {self.field}: {self.error}; flow {self.flow_id} skipped this tick"


def culprits(
    wh: Warehouse,
    schema: str,
    now: datetime,
    flows: Iterable[CompiledFlow],
    bounds: Bounds,
    skipped: Iterable[str] = (),
) -> dict[str, Skip]:
    """The flows (not yet ``skipped``) with a predicate that fails on its own."""
    done = set(skipped)
    found: dict[str, Skip] = {}
    for f in flows:
        if f.id in done:
            continue
        for loc, sql in flow_predicates(f.flow):
            error = _probe(wh, schema, now, predicate(sql), bounds)
            if error is not None:
                found[f.id] = _skip(f, loc, error)
                break
    return found


def _probe(
    wh: Warehouse, schema: str, now: datetime, where: exp.Expr, bounds: Bounds
) -> str | None:
    """Why ``where`` fails on the latest events, or None when it does not."""
    sql = render(statement(_PROBE, schema, now=now, predicate=where), wh.dialect)
    try:
        with wh.transaction(), bounded(wh, bounds):
            wh.query(sql)
    except WarehouseError as err:
        return describe(err, bounds)
    return None


def describe(err: WarehouseError, bounds: Bounds) -> str:
    """The warehouse's error in one line, without the statement."""
    first = str(err).splitlines()[0]
    if "Interrupt" in first or "statement timeout" in first:
        return f"ran past the statement time-out of {bounds.statement_timeout:g} s"
    return first


def _skip(f: CompiledFlow, loc: Loc, error: str) -> Skip:
    line = read_flow(Path(f.source)).line(loc) if f.source else None
    return Skip(f.id, f.source, line, ".".join(map(str, loc)), error)


def skip(ctx: Context, skips: dict[str, Skip]) -> None:
    """Leave the flows of ``skips`` out of this tick (``_fh_skipped``) and journal them."""
    ids = [literal(flow_id) for flow_id in sorted(skips)]
    ctx.temp(
        "_fh_skipped",
        "select flow_id from flowhouse.flows where :skipped",
        skipped=exp.column("flow_id").isin(*ids) if ids else exp.false(),
    )
    ctx.flows = [f for f in ctx.flows if f.id not in skips]
    ctx.add("skipped_flows", len(skips))
    for s in skips.values():
        ctx.run(
            "insert into flowhouse.flow_skips select :now, :flow_id, :file, :line, :field, :error "
            "where not exists (select 1 from flowhouse.flow_skips "
            "where tick_at = :now and flow_id = :flow_id)",
            now=ctx.now,
            flow_id=s.flow_id,
            file=s.file,
            line=s.line,
            field=s.field,
            error=s.error,
        )


def skipped_at(wh: Warehouse, schema: str, now: datetime) -> list[Skip]:
    """The flows skipped by the tick at ``now``."""
    sql = render(
        statement(
            "select flow_id, file, line, field, error from flowhouse.flow_skips "
            "where tick_at = :now order by flow_id",
            schema,
            now=now,
        ),
        wh.dialect,
    )
    return [Skip(*row) for row in wh.query(sql)]
