"""Per-flow counts from the engine's tables: what each flow enrolled, queued, held out, skipped."""

from __future__ import annotations

from typing import Any

from flowhouse.core.sql import STATE_SCHEMA, render, statement
from flowhouse.core.warehouse import Warehouse

_COUNTS = """
select f.flow_id,
    coalesce(e.enrolled, 0), coalesce(e.active, 0), coalesce(d.refused, 0),
    coalesce(m.queued, 0), coalesce(m.held_out, 0), coalesce(m.skipped, 0),
    coalesce(e.exited, 0), coalesce(e.completed, 0)
from flowhouse.flows as f
left join (
    select flow_id, count(*) as enrolled,
        count(case when status = 'active' then 1 end) as active,
        count(case when status = 'exited' then 1 end) as exited,
        count(case when status = 'completed' then 1 end) as completed
    from flowhouse.enrollments group by flow_id
) as e on e.flow_id = f.flow_id
left join (
    select flow_id, count(*) as refused from flowhouse.decisions
    where outcome = 'refused' group by flow_id
) as d on d.flow_id = f.flow_id
left join (
    select flow_id,
        count(case when status = 'queued' then 1 end) as queued,
        count(case when status = 'held_out' then 1 end) as held_out,
        count(case when status = 'skipped' then 1 end) as skipped
    from flowhouse.messages group by flow_id
) as m on m.flow_id = f.flow_id
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
