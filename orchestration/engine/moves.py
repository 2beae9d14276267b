"""Moving enrollments to their next step, and journaling decisions.

When an enrollment arrives at a step at time ``at`` (the previous step's effective time), the
step's due time follows from its kind: a wait adds its duration, ``wait_until`` finds the local
time, weekday or date in the customer's zone, ``wait_for`` has its deadline, a send moves out of
quiet hours, and every other step is due at once (:mod:`flowhouse.rules.due`). Due times
depend only on ``at`` and the customer, never on when ticks run.
"""

from __future__ import annotations

from typing import Any

from flowhouse.rules.context import Context
from flowhouse.rules.due import retime

_ARRIVE = """
update flowhouse.enrollments as e
set step_id = a.next_step,
    step_started_at = a.at,
    due_at = a.due_at,
    status = case when a.next_step is null then 'completed' else e.status end,
    ended_at = case when a.next_step is null then a.at else e.ended_at end,
    end_reason = case when a.next_step is null then 'completed' else e.end_reason end,
    arrived_at_tick = :now,
    checked_at_tick = null,
    updated_at_tick = :now
from {arrivals} as a
where e.enrollment_id = a.enrollment_id
"""

_JOURNAL = """
insert into flowhouse.decisions
    (decision_id, enrollment_id, flow_id, flow_version, customer_id, step_id, step_kind,
     effective_at, decided_at, outcome, reason, detail)
select md5(j.enrollment_id || ':' || j.step_id), j.enrollment_id, e.flow_id, f.version,
    e.customer_id, j.step_id, j.step_kind, j.effective_at, :now, j.outcome, j.reason, j.detail
from _fh_journal as j
join flowhouse.enrollments as e on e.enrollment_id = j.enrollment_id
join flowhouse.flows as f on f.flow_id = e.flow_id
where not exists (
    select 1 from flowhouse.decisions as d
    where d.decision_id = md5(j.enrollment_id || ':' || j.step_id)
)
"""


def journal(ctx: Context, query: str, **values: Any) -> int:
    """Journal the decisions `query` selects: (enrollment_id, step_id, step_kind, effective_at,
    outcome, reason, detail). Each (enrollment, step) is decided once, ever."""
    n = ctx.temp("_fh_journal", query, **values)
    if n:
        ctx.run(_JOURNAL, now=ctx.now)
        ctx.add("decisions", n)
    return n


def arrive(ctx: Context, query: str, **values: Any) -> int:
    """Move the enrollments `query` selects — (enrollment_id, next_step, at) — to their next step
    and compute its due time; a null next step completes the enrollment."""
    arrivals = retime(ctx, query, **values)
    if not arrivals.count:
        return 0
    ctx.run(_ARRIVE.format(arrivals=arrivals.table), now=ctx.now)
    journal(
        ctx,
        "select enrollment_id, '_end' as step_id, 'end' as step_kind, at as effective_at, "
        "'completed' as outcome, null as reason, null as detail "
        f"from {arrivals.table} where next_step is null",
    )
    return arrivals.count
