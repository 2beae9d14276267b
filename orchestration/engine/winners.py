"""Automatic winners of splits: a split's ``auto_winner`` rule judged at the start of a tick, and
the decision journaled in ``flowhouse.split_winners``, once and for good.

The figures are the engine's own, computed set-based from the state it keeps and the events the
tick sees (never from a dbt mart, which may be older than the tick):

- ``goal``: per treatment enrollment the split assigned to an arm, whether the flow's goal event
  happened after the split and within the goal window;
- ``open_rate`` / ``click_rate``: per message of the arm's own send steps that went out (sent,
  delivered, bounced or unconfirmed), whether a ``message_opened`` or ``message_clicked`` (opens)
  or a ``message_clicked`` (clicks) event names it; opens count e-mail, clicks e-mail and SMS.

Holdout enrollments (the flow's ``holdout``) walk the split but receive nothing: they are not
counted. An arm without steps is the split's holdout arm: it is not a candidate. The best arm
(highest rate, then the earlier arm) wins when every candidate has at least ``min_sample`` units
and the best arm's rate is above each other candidate's with a two-sided p-value (pooled
two-proportion z test, the marts' test) below ``1 - confidence``. From then on new entrants of
the split go to the winner, except the share of the holdout arms, which keep their weights;
enrollments already past the split keep their arm. A decision is final: a later tick reads it,
never recomputes it.

The units are kept from tick to tick (``flowhouse.split_units``: per unit its arm and whether it
succeeded, and in ``split_unit_marks`` per rule the visibility time it was checked through), so a
tick reads the events that became visible since its rule's mark, and only for a unit new to it
(a split assignment, a message that went out since) the events from its own start on: the work
follows the new events, not the history of the split. A success is final once seen, as the
events it rests on are. A rule whose definition changed (its metric, the flow's goal, the arms'
send steps) starts its units again from the events.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from sqlglot import exp

from flowhouse.core.sql import STATE_SCHEMA, literal
from flowhouse.core.state import TABLES
from flowhouse.core.warehouse import Warehouse
from flowhouse.flows.checks import arm_sends, candidates
from flowhouse.flows.compile import CompiledFlow, CompiledPath, splits
from flowhouse.flows.flowfile import METRIC_CHANNELS, AutoWinner, Goal, Split
from flowhouse.rules.context import Context

#: Outbox statuses of a message that went out.
WENT_OUT = ("sent", "delivered", "bounced", "unconfirmed")

_ASSIGNED = """
select d.flow_id, d.step_id, d.reason as arm, d.enrollment_id, d.effective_at as split_at,
    e.customer_id
from flowhouse.decisions as d
join flowhouse.enrollments as e on e.enrollment_id = d.enrollment_id
join _fh_win_rules as r on r.flow_id = d.flow_id and r.step_id = d.step_id
where d.step_kind = 'split' and d.outcome = 'split' and not e.is_holdout
"""

#: Units of the pending rules whose success event became visible since their rule's mark: the
#: events read are those visible in (the earliest mark, now], a pruned range.
_SEEN = """
select u.flow_id, u.step_id, u.unit_id
from flowhouse.split_units as u
join _fh_win_rules as r on r.flow_id = u.flow_id and r.step_id = u.step_id
join flowhouse.split_unit_marks as k on k.flow_id = u.flow_id and k.step_id = u.step_id
join flowhouse.enrollments as e on e.enrollment_id = u.enrollment_id
join (
    select customer_id, event_type, occurred_at, visible_at, json_text(properties, 'message_id')
        as message_id
    from core.events
    where visible_at > :since and visible_at <= :now
        and event_type in (select goal_event from _fh_win_rules where metric = 'goal'
                           union all select 'message_clicked' union all select 'message_opened')
) as x on x.customer_id = e.customer_id and x.visible_at > k.checked_through
where not u.success
    and case when r.metric = 'goal' then x.event_type = r.goal_event
            and x.occurred_at > u.since and x.occurred_at <= u.until
        else (x.event_type = 'message_clicked'
              or (r.metric = 'open_rate' and x.event_type = 'message_opened'))
            and x.message_id = u.unit_id
        end
group by u.flow_id, u.step_id, u.unit_id
"""

_SUCCEEDED = """
update flowhouse.split_units set success = true
where exists (
    select 1 from _fh_win_seen as s
    where s.flow_id = split_units.flow_id and s.step_id = split_units.step_id
        and s.unit_id = split_units.unit_id
)
"""

#: Units new to the state: treatment enrollments the split assigned to an arm (goal), messages
#: of the arm's own send steps that went out (rates).
_NEW = """
select a.flow_id, a.step_id, a.arm, a.enrollment_id as unit_id, a.enrollment_id, a.customer_id,
    'goal' as metric, a.split_at as since,
    a.split_at + fl.goal_within_seconds * interval 1 second as until
from _fh_win_assigned as a
join _fh_win_rules as r on r.flow_id = a.flow_id and r.step_id = a.step_id
join flowhouse.flows as fl on fl.flow_id = a.flow_id
where r.metric = 'goal'
    and not exists (
        select 1 from flowhouse.split_units as u
        where u.flow_id = a.flow_id and u.step_id = a.step_id and u.unit_id = a.enrollment_id
    )
union all
select a.flow_id, a.step_id, a.arm, m.message_id, a.enrollment_id, a.customer_id, r.metric,
    coalesce(m.queued_at, m.due_at), null
from _fh_win_assigned as a
join _fh_win_rules as r on r.flow_id = a.flow_id and r.step_id = a.step_id
join _fh_win_sends as s on s.flow_id = a.flow_id and s.step_id = a.step_id and s.arm = a.arm
join flowhouse.messages as m
    on m.enrollment_id = a.enrollment_id and m.step_id = s.send_step_id
where r.metric <> 'goal' and m.kind = 'message' and m.status in :went_out
    and not exists (
        select 1 from flowhouse.split_units as u
        where u.flow_id = a.flow_id and u.step_id = a.step_id and u.unit_id = m.message_id
    )
"""

#: The new units with their success as of now, from the events that occurred from :start on (an
#: hour before the earliest of their starts: a message's engagement follows its queueing, give or
#: take a provider's clock).
_NEW_UNITS = """
insert into flowhouse.split_units
    (flow_id, step_id, arm, unit_id, enrollment_id, metric, since, until, success)
select n.flow_id, n.step_id, n.arm, n.unit_id, n.enrollment_id, n.metric, n.since, n.until,
    case when n.metric = 'goal' then exists (
        select 1 from core.events as x
        where x.customer_id = n.customer_id and x.event_type = r.goal_event
            and x.occurred_at > n.since and x.occurred_at <= n.until
            and x.occurred_at >= :start and x.visible_at <= :now
    ) else exists (
        select 1 from core.events as x
        where x.customer_id = n.customer_id
            and (x.event_type = 'message_clicked'
                 or (n.metric = 'open_rate' and x.event_type = 'message_opened'))
            and json_text(x.properties, 'message_id') = n.unit_id
            and x.occurred_at >= :start and x.visible_at <= :now
    ) end
from _fh_win_new as n
join _fh_win_rules as r on r.flow_id = n.flow_id and r.step_id = n.step_id
"""

#: Every unit of the pending rules, as the figures count them: a message only while it is one
#: that went out.
_UNITS = """
select u.flow_id, u.step_id, u.arm, case when u.success then 1 else 0 end as success
from flowhouse.split_units as u
join _fh_win_rules as r on r.flow_id = u.flow_id and r.step_id = u.step_id
where u.metric = 'goal' or exists (
    select 1 from flowhouse.messages as m
    where m.message_id = u.unit_id and m.status in :went_out
)
"""

#: The units and marks of a rule whose definition changed since they were kept.
_CHANGED = """
select k.flow_id, k.step_id
from flowhouse.split_unit_marks as k
join _fh_win_rules as r on r.flow_id = k.flow_id and r.step_id = k.step_id
where k.rule_key <> r.rule_key
"""

_FIGURES = """
select c.flow_id, c.step_id, c.arm, c.position, count(u.arm) as units,
    coalesce(sum(u.success), 0) as successes,
    cast(coalesce(sum(u.success), 0) as double) / nullif(count(u.arm), 0) as rate
from _fh_win_arms as c
left join _fh_win_units as u
    on u.flow_id = c.flow_id and u.step_id = c.step_id and u.arm = c.arm
group by c.flow_id, c.step_id, c.arm, c.position
"""

# Each candidate against the best, with the pooled two-proportion z test's two-sided p-value
# (2 * (1 - Phi(|z|)) by Abramowitz and Stegun 7.1.26, as the marts compute it).
_PAIRS = """
with ranked as (
    select f.*, row_number() over (
        partition by f.flow_id, f.step_id order by coalesce(f.rate, -1) desc, f.position
    ) as place
    from _fh_win_figures as f
),
pairs as (
    select b.flow_id, b.step_id, b.arm as best, b.units as best_units,
        b.successes as best_successes, b.rate as best_rate,
        least(b.units, o.units) as units, b.rate > o.rate as ahead,
        (b.rate - o.rate) / nullif(sqrt(
            (cast(b.successes + o.successes as double) / nullif(b.units + o.units, 0))
            * (1 - cast(b.successes + o.successes as double) / nullif(b.units + o.units, 0))
            * (1.0 / nullif(b.units, 0) + 1.0 / nullif(o.units, 0))), 0) as z
    from ranked as b
    join ranked as o on o.flow_id = b.flow_id and o.step_id = b.step_id and o.place > 1
    where b.place = 1
),
tested as (
    select p.*, 1.0 / (1.0 + 0.3275911 * abs(z) / 1.4142135623730951) as t
    from pairs as p
)
select flow_id, step_id, best, best_units, best_successes, best_rate, units, ahead,
    case when z is not null then least(1.0, t * (0.254829592 + t * (-0.284496736
        + t * (1.421413741 + t * (-1.453152027 + t * 1.061405429))))
        * exp(-(abs(z) / 1.4142135623730951) * (abs(z) / 1.4142135623730951))) end as p_value
from tested
"""

_VERDICTS = """
select p.flow_id, p.step_id, p.best, p.best_units, p.best_successes, p.best_rate,
    max(coalesce(p.p_value, 1.0)) as p_value
from _fh_win_pairs as p
join _fh_win_rules as r on r.flow_id = p.flow_id and r.step_id = p.step_id
group by p.flow_id, p.step_id, p.best, p.best_units, p.best_successes, p.best_rate,
    r.min_sample, r.confidence
having min(p.units) >= r.min_sample
    and min(case when p.ahead then 1 else 0 end) = 1
    and max(coalesce(p.p_value, 1.0)) < 1 - r.confidence
"""

_JOURNAL = """
insert into flowhouse.split_winners
    (flow_id, step_id, flow_version, winner, metric, min_sample, confidence, units, successes,
     rate, p_value, figures, decided_at)
select v.flow_id, v.step_id, fl.version, v.best, r.metric, r.min_sample, r.confidence,
    v.best_units, v.best_successes, v.best_rate, v.p_value, :figures, :now
from _fh_win_verdicts as v
join _fh_win_rules as r on r.flow_id = v.flow_id and r.step_id = v.step_id
join flowhouse.flows as fl on fl.flow_id = v.flow_id
where v.flow_id = :flow_id and v.step_id = :step_id
    and not exists (
        select 1 from flowhouse.split_winners as w
        where w.flow_id = v.flow_id and w.step_id = v.step_id
    )
"""


@dataclass(frozen=True)
class Rule:
    """One split with an ``auto_winner`` rule, as the tick judges it."""

    flow_id: str
    step_id: str
    split: Split
    rule: AutoWinner


def rules(flows: list[CompiledFlow]) -> list[Rule]:
    """Every split with an ``auto_winner`` rule of the live flows."""
    return [
        Rule(f.id, step_id, split, split.auto_winner)
        for f in flows
        for step_id, split in sorted(splits(f.flow).items())
        if split.auto_winner is not None
    ]


def winners(ctx: Context) -> dict[tuple[str, str], str]:
    """The decided winner of every split, by (flow, split step)."""
    rows = ctx.rows("select flow_id, step_id, winner from flowhouse.split_winners")
    return {(str(f), str(s)): str(w) for f, s, w in rows}


def decide(ctx: Context) -> int:
    """Judge every undecided rule; journal the splits whose rule is met. Returns how many."""
    decided = set(winners(ctx))
    pending = [r for r in rules(ctx.flows) if (r.flow_id, r.step_id) not in decided]
    if not pending:
        return 0
    _constants(ctx, pending)
    _keep_units(ctx)
    ctx.temp("_fh_win_units", _UNITS, went_out=_tuple(WENT_OUT))
    ctx.temp("_fh_win_figures", _FIGURES)
    ctx.temp("_fh_win_pairs", _PAIRS)
    found = ctx.temp("_fh_win_verdicts", _VERDICTS)
    if not found:
        return 0
    figures = _figures(ctx)
    n = 0
    for flow_id, step_id in ctx.rows("select flow_id, step_id from _fh_win_verdicts"):
        text = json.dumps(figures.get((flow_id, step_id), []), sort_keys=True)
        ctx.run(_JOURNAL, now=ctx.now, flow_id=flow_id, step_id=step_id, figures=text)
        n += 1
    ctx.add("winners", n)
    return n


def _keep_units(ctx: Context) -> None:
    """Bring ``split_units`` of the pending rules to now: the units whose success became visible
    since their rule's mark, then the units new to it, then every pending rule's mark."""
    if ctx.temp("_fh_win_changed", _CHANGED):
        for table in ("split_units", "split_unit_marks"):
            ctx.run(
                f"delete from flowhouse.{table} where exists (select 1 from _fh_win_changed as c "
                f"where c.flow_id = {table}.flow_id and c.step_id = {table}.step_id)"
            )
    since = ctx.value(
        "select min(k.checked_through) from flowhouse.split_unit_marks as k "
        "join _fh_win_rules as r on r.flow_id = k.flow_id and r.step_id = k.step_id"
    )
    seen = since is not None and since < ctx.now
    if seen and ctx.temp("_fh_win_seen", _SEEN, since=since, now=ctx.now):
        ctx.run(_SUCCEEDED)
    ctx.temp("_fh_win_assigned", _ASSIGNED)
    if ctx.temp("_fh_win_new", _NEW, went_out=_tuple(WENT_OUT)):
        start = ctx.value("select min(since) from _fh_win_new")
        start = ctx.now if start is None else min(start, ctx.now)
        ctx.run(_NEW_UNITS, now=ctx.now, start=start - timedelta(hours=1))
    ctx.run(
        "delete from flowhouse.split_unit_marks where exists (select 1 from _fh_win_rules as r "
        "where r.flow_id = split_unit_marks.flow_id and r.step_id = split_unit_marks.step_id)"
    )
    ctx.run(
        "insert into flowhouse.split_unit_marks (flow_id, step_id, rule_key, checked_through) "
        "select flow_id, step_id, rule_key, :now from _fh_win_rules",
        now=ctx.now,
    )


def _figures(ctx: Context) -> dict[tuple[str, str], list[dict[str, Any]]]:
    """Each decided split's figures per arm, in flow-file order (for the journal)."""
    out: dict[tuple[str, str], list[dict[str, Any]]] = {}
    rows = ctx.rows(
        "select f.flow_id, f.step_id, f.arm, f.units, f.successes, f.rate from _fh_win_figures "
        "as f join _fh_win_verdicts as v on v.flow_id = f.flow_id and v.step_id = f.step_id "
        "order by f.flow_id, f.step_id, f.position"
    )
    for flow_id, step_id, arm, units, successes, rate in rows:
        out.setdefault((flow_id, step_id), []).append(
            {"arm": arm, "units": int(units), "successes": int(successes),
             "rate": None if rate is None else float(rate)}
        )  # fmt: skip
    return out


def _constants(ctx: Context, pending: list[Rule]) -> None:
    """``_fh_win_rules``, ``_fh_win_arms`` (the candidates) and ``_fh_win_sends`` (the send
    steps whose messages count, per candidate arm)."""
    goals = {f.id: f.flow.goal for f in ctx.flows}
    rules_rows = [
        (r.flow_id, r.step_id, r.rule.metric, r.rule.min_sample, r.rule.confidence,
         goals[r.flow_id].event, _rule_key(r, goals[r.flow_id]))
        for r in pending
    ]  # fmt: skip
    arms = [
        (r.flow_id, r.step_id, arm.name, r.split.split.index(arm) + 1)
        for r in pending
        for arm in candidates(r.split)
    ]
    sends = [
        (r.flow_id, r.step_id, arm.name, send.id)
        for r in pending
        for arm in candidates(r.split)
        for send in arm_sends(arm)
        if send.send.channel in METRIC_CHANNELS.get(r.rule.metric, ())
    ]
    _table(ctx, "_fh_win_rules",
           ("flow_id", "step_id", "metric", "min_sample", "confidence", "goal_event", "rule_key"),
           ("text", "text", "text", "bigint", "double", "text", "text"), rules_rows)  # fmt: skip
    _table(ctx, "_fh_win_arms", ("flow_id", "step_id", "arm", "position"),
           ("text", "text", "text", "bigint"), arms)  # fmt: skip
    _table(ctx, "_fh_win_sends", ("flow_id", "step_id", "arm", "send_step_id"),
           ("text", "text", "text", "text"), sends)  # fmt: skip


def _rule_key(rule: Rule, goal: Goal) -> str:
    """What a rule's units depend on: its metric, and the flow's goal (goal) or the send steps
    of each candidate arm (rates)."""
    if rule.rule.metric == "goal":
        return f"goal:{goal.event}:{int(goal.within.total_seconds())}"
    sends = [
        f"{arm.name}={','.join(s.id for s in arm_sends(arm))}" for arm in candidates(rule.split)
    ]
    return f"{rule.rule.metric}:{';'.join(sends)}"


def _table(
    ctx: Context,
    name: str,
    columns: tuple[str, ...],
    kinds: tuple[str, ...],
    rows: list[tuple[Any, ...]],
) -> None:
    """A temp table of constant rows (none: an empty table of the same columns)."""
    typed = [
        tuple(exp.cast(literal(v), k) for v, k in zip(row, kinds, strict=True)) for row in rows
    ] or [tuple(exp.cast(exp.null(), k) for k in kinds)]
    values = exp.values(typed, alias="v", columns=list(columns))
    where = "true" if rows else "false"
    ctx.temp(name, f"select * from :v where {where}", v=values)


def _tuple(values: tuple[str, ...]) -> exp.Expr:
    return exp.Tuple(expressions=[literal(v) for v in values])


def routed(paths: list[CompiledPath], split: Split, winner: str) -> list[CompiledPath]:
    """The split's arms once ``winner`` is decided: the holdout arms keep their weights, the
    winner takes the rest, every other arm gets nobody new. An arm no longer in the flow cannot
    win: the arms stay as they are."""
    if winner not in {p.label for p in paths}:
        return paths
    holdouts = {a.name for a in split.split if a.is_holdout}
    kept = sum(p.weight for p in paths if p.label in holdouts)
    return [
        CompiledPath(
            p.label,
            p.first_step,
            p.when,
            p.weight if p.label in holdouts else (1 - kept if p.label == winner else 0.0),
        )
        for p in paths
    ]


@dataclass(frozen=True)
class Carried:
    """A production split winner another state schema (a backtest, a preview) starts with."""

    step_id: str
    winner: str
    decided_at: Any


def carry_winners(wh: Warehouse, flow_id: str, schema: str) -> list[Carried]:
    """Copy the flow's decided split winners from the live state into ``schema``, so that it
    routes new entrants as production does; the winners copied (none where the live state has
    none). The caller commits."""
    if not wh.table_exists(STATE_SCHEMA, "split_winners"):
        return []
    columns = [name for name, _, _ in TABLES["split_winners"]]
    source = (
        exp.select(*columns)
        .from_(exp.table_("split_winners", db=STATE_SCHEMA))
        .where(exp.column("flow_id").eq(literal(flow_id)))
    )
    wh.execute(exp.insert(source, exp.table_("split_winners", db=schema), columns=columns))
    found = exp.select("step_id", "winner", "decided_at").from_(
        exp.table_("split_winners", db=schema)
    )
    return [Carried(str(s), str(w), at) for s, w, at in wh.query(found.order_by("step_id"))]
