"""``flowhouse backtest FLOW --from TS --to TS``: run one flow over past events, sending nothing.

The flow runs in a scratch state schema (``flowhouse_backtest``, recreated each time) with the
real engine, ticking every ``--every`` from ``--from`` to ``--to``: it goes live at ``--from`` as
if launched then, sees each event once its ``loaded_at`` has passed, and queues messages that no
one sends. A draft or paused flow is backtested as if it were live. Coupon pools get generated
codes. The report: enrollments, refusals, messages per step by status, skips by reason, exits,
and goal conversions of treatment against holdout.

A split whose ``auto_winner`` production has already decided (``flowhouse.split_winners``) routes
new entrants to its winner from the first tick, as the live tick does now, and the report names
it; with ``production_winners=False`` (``--ignore-winners``) the split runs on its weights, and
its rule may decide a winner from the backtest's own figures (the report says which).

Customer attributes are the models as last built (build with ``--now`` at the end of the span):
an audience or branch predicate over attributes sees them as of that build, not as of each tick.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from typing import Any

from flowhouse.core.errors import ConfigError
from flowhouse.core.sql import render, statement
from flowhouse.core.state import ensure_state
from flowhouse.core.warehouse import Warehouse
from flowhouse.flows.compile import CompiledFlow
from flowhouse.flows.settings import Settings
from flowhouse.orchestration.engine.coupons import generate_codes
from flowhouse.orchestration.engine.tick import run_tick
from flowhouse.orchestration.engine.winners import Carried, carry_winners

BACKTEST_SCHEMA = "flowhouse_backtest"


@dataclass
class BacktestReport:
    flow_id: str
    start: datetime
    end: datetime
    ticks: int
    seconds: float
    enrollments: dict[str, int] = field(default_factory=dict)  # treatment / holdout
    refused: dict[str, int] = field(default_factory=dict)
    steps: list[tuple[str, str, int]] = field(default_factory=list)  # step, status, n
    skips: dict[str, int] = field(default_factory=dict)
    exits: dict[str, int] = field(default_factory=dict)
    conversions: dict[str, tuple[int, int]] = field(default_factory=dict)  # group: (conv, n)
    #: Production's split winners the backtest routed by, or (``winners_ignored``) ignored.
    winners: list[Carried] = field(default_factory=list)
    winners_ignored: bool = False
    #: Splits whose rule the backtest's own figures decided: (step, winner).
    decided: list[tuple[str, str]] = field(default_factory=list)

    def lines(self) -> list[str]:
        out = [
            f"backtest of {self.flow_id} from {self.start:%Y-%m-%d %H:%M} to "
            f"{self.end:%Y-%m-%d %H:%M}: {self.ticks} ticks in {self.seconds:.1f} s",
            "enrollments: "
            + ", ".join(f"{k} {v}" for k, v in sorted(self.enrollments.items()))
            + (
                "; refused: " + ", ".join(f"{k} {v}" for k, v in sorted(self.refused.items()))
                if self.refused
                else ""
            ),
            "messages and actions per step:",
        ]
        out += [f"    {step:<28} {status:<10} {n:>8}" for step, status, n in self.steps]
        if self.skips:
            out.append("skips: " + ", ".join(f"{k} {v}" for k, v in sorted(self.skips.items())))
        if self.exits:
            out.append("exits: " + ", ".join(f"{k} {v}" for k, v in sorted(self.exits.items())))
        out += self._winners()
        out.append("goal conversions: " + self._conversions())
        return out

    def _winners(self) -> list[str]:
        out = []
        for w in self.winners:
            how = (
                "ignored (--ignore-winners): the split ran on its weights"
                if self.winners_ignored
                else "new entrants routed to it, as in production"
            )
            at = f"{w.decided_at:%Y-%m-%d %H:%M}"
            out.append(f"split {w.step_id}: production's winner {w.winner} (decided {at}) {how}")
        out += [
            f"split {step}: winner {arm} decided in this backtest by its auto_winner rule"
            for step, arm in self.decided
        ]
        return out

    def _conversions(self) -> str:
        parts = []
        rates = {}
        for group, (conv, n) in sorted(self.conversions.items()):
            rates[group] = conv / n if n else 0.0
            parts.append(f"{group} {conv}/{n} ({rates[group]:.1%})")
        if rates.get("holdout"):
            lift = rates.get("treatment", 0.0) / rates["holdout"] - 1
            parts.append(f"lift {lift:+.1%}")
        return ", ".join(parts) or "none"


def backtest(
    wh: Warehouse,
    flow: CompiledFlow,
    settings: Settings,
    start: datetime,
    end: datetime,
    every: timedelta = timedelta(hours=1),
    echo: Callable[[str], None] | None = None,
    production_winners: bool = True,
) -> BacktestReport:
    """The flow over past events from ``start`` to ``end``, a tick every ``every``; with
    ``production_winners``, its splits decided in production route to their winners."""
    if end <= start:
        raise ConfigError("--to must be after --from", value=f"{start} .. {end}")
    if every <= timedelta(0):
        raise ConfigError("--every must be positive", value=str(every))
    began = time.perf_counter()
    flow = replace(flow, flow=flow.flow.model_copy(update={"state": "live"}))
    _reset(wh)
    carried = carry_winners(wh, flow.id, BACKTEST_SCHEMA)
    if not production_winners:
        forget = statement("delete from flowhouse.split_winners", BACKTEST_SCHEMA)
        wh.execute(render(forget, wh.dialect))
    wh.commit()
    _fill_pools(wh, flow, start, end)
    ticks = 0
    at = start
    while True:
        run_tick(wh, BACKTEST_SCHEMA, at, [flow], settings)
        ticks += 1
        if echo and ticks % 24 == 0:
            echo(f"  ... {at:%Y-%m-%d %H:%M}")
        if at >= end:
            break
        at = min(at + every, end)
    report = BacktestReport(flow.id, start, end, ticks, time.perf_counter() - began)
    report.winners, report.winners_ignored = carried, not production_winners
    _report(wh, flow, end, report)
    return report


def _sql(wh: Warehouse, text: str, **values: Any) -> list[tuple[Any, ...]]:
    return wh.query(render(statement(text, BACKTEST_SCHEMA, **values), wh.dialect))


def _reset(wh: Warehouse) -> None:
    wh.execute(
        render(statement("drop schema if exists flowhouse cascade", BACKTEST_SCHEMA), wh.dialect)
    )
    wh.commit()
    ensure_state(wh, BACKTEST_SCHEMA)


def _fill_pools(wh: Warehouse, flow: CompiledFlow, start: datetime, end: datetime) -> None:
    """Enough generated codes in each pool the flow uses: one per trigger in the span (more
    for fanned-out catalog events)."""
    pools = {s.params.get("coupon_pool") or s.params.get("pool") for s in flow.steps} - {None}
    if not pools:
        return
    triggers = wh.query(
        render(
            statement(
                "select count(*) from core.events where event_type = :t "
                "and loaded_at > :start and loaded_at <= :end",
                t=flow.flow.trigger.event,
                start=start,
                end=end,
            ),
            wh.dialect,
        )
    )[0][0]
    count = int(triggers) * 20 + 100
    for pool in sorted(p for p in pools if isinstance(p, str)):
        generate_codes(wh, pool, count, start, "BT-", BACKTEST_SCHEMA)


def _report(wh: Warehouse, flow: CompiledFlow, end: datetime, r: BacktestReport) -> None:
    for holdout, n in _sql(
        wh, "select is_holdout, count(*) from flowhouse.enrollments group by is_holdout"
    ):
        r.enrollments["holdout" if holdout else "treatment"] = int(n)
    r.refused = dict(
        _sql(
            wh,
            "select reason, count(*) from flowhouse.decisions "
            "where outcome = 'refused' group by reason",
        )
    )
    r.steps = [
        (s, st, int(n))
        for s, st, n in _sql(
            wh,
            "select step_id, status, count(*) from flowhouse.messages "
            "group by step_id, status order by step_id, status",
        )
    ]
    r.skips = dict(
        _sql(
            wh,
            "select skip_reason, count(*) from flowhouse.messages "
            "where status = 'skipped' group by skip_reason",
        )
    )
    carried = set() if r.winners_ignored else {w.step_id for w in r.winners}
    r.decided = [
        (str(step), str(arm))
        for step, arm in _sql(
            wh, "select step_id, winner from flowhouse.split_winners order by step_id"
        )
        if step not in carried
    ]
    r.exits = dict(
        _sql(
            wh,
            "select end_reason, count(*) from flowhouse.enrollments "
            "where status = 'exited' group by end_reason",
        )
    )
    for holdout, conv, n in _sql(
        wh,
        """
        select e.is_holdout,
            count(distinct case when g.event_id is not null then e.enrollment_id end),
            count(distinct e.enrollment_id)
        from flowhouse.enrollments as e
        left join core.events as g
            on g.customer_id = e.customer_id and g.event_type = :goal
            and g.occurred_at > e.entered_at
            and g.occurred_at <= e.entered_at + :within * interval 1 second
            and g.occurred_at <= :end and g.loaded_at <= :end
        group by e.is_holdout
        """,
        goal=flow.flow.goal.event,
        within=int(flow.flow.goal.within.total_seconds()),
        end=end,
    ):
        r.conversions["holdout" if holdout else "treatment"] = (int(conv), int(n))
