"""Per-flow counts from the engine's tables: what each flow enrolled, queued, held out, skipped."""

from __future__ import annotations

from typing import Any

from flowhouse.warehouse import Warehouse
from orchestration.engine.sql import STATE_SCHEMA, render, statement

_COUNTS = """
select f.flow_id,
    (select count(*) from flowhouse.enrollments as e where e.flow_id = f.flow_id) as enrolled,
    (select count(*) from flowhouse.enrollments as e
        where e.flow_id = f.flow_id and e.status = 'active') as active,
    (select count(*) from flowhouse.decisions as d
        where d.flow_id = f.flow_id and d.outcome = 'refused') as refused,
    (select count(*) from flowhouse.messages as m
        where m.flow_id = f.flow_id and m.status = 'queued') as queued,
    (select count(*) from flowhouse.messages as m
        where m.flow_id = f.flow_id and m.status = 'held_out') as held_out,
    (select count(*) from flowhouse.messages as m
        where m.flow_id = f.flow_id and m.status = 'skipped') as skipped,
    (select count(*) from flowhouse.enrollments as e
        where e.flow_id = f.flow_id and e.status = 'exited') as exited,
    (select count(*) from flowhouse.enrollments as e
        where e.flow_id = f.flow_id and e.status = 'completed') as completed
from flowhouse.flows as f
order by f.flow_id
"""

_SKIPS = """
select skip_reason, count(*) from flowhouse.messages
where status = 'skipped' group by skip_reason order by count(*) desc, skip_reason
"""

HEADERS = (
    "flow", "enrolled", "active", "refused", "queued", "held_out", "skipped", "exited", "completed"
)  # fmt: skip


def flow_counts(wh: Warehouse, schema: str = STATE_SCHEMA) -> list[tuple[Any, ...]]:
    if not wh.table_exists(schema, "flows"):
        return []
    return wh.query(render(statement(_COUNTS, schema), wh.dialect))


def render_flow_counts(wh: Warehouse, schema: str = STATE_SCHEMA) -> str:
    rows = flow_counts(wh, schema)
    if not rows:
        return "no flows have run yet (flowhouse tick)"
    widths = [max(len(HEADERS[0]), *(len(str(r[0])) for r in rows))] + [9] * (len(HEADERS) - 1)
    lines = ["  ".join(h.ljust(w) if i == 0 else h.rjust(w) for i, (h, w) in
                       enumerate(zip(HEADERS, widths, strict=True)))]  # fmt: skip
    for r in rows:
        cells = [str(r[0]).ljust(widths[0])] + [f"{int(v):>9,}" for v in r[1:]]
        lines.append("  ".join(cells))
    totals = [sum(int(r[i]) for r in rows) for i in range(1, len(HEADERS))]
    lines.append("  ".join(["total".ljust(widths[0])] + [f"{v:>9,}" for v in totals]))
    skips = wh.query(render(statement(_SKIPS, schema), wh.dialect))
    if skips:
        lines.append("skips by reason: " + ", ".join(f"{r} {int(n):,}" for r, n in skips))
    return "\n".join(lines)
