"""What the report reads: each live flow's deployed spec and its rows in the performance marts.

A handful of set-based selects, each for every flow at once: the flows and their specs
(``flowhouse.flows`` joined to ``flowhouse.flow_versions``), the totals per flow (a rollup of
``marts.flow_daily``, with distinct recipients from ``marts.message_facts``), then the rows of
``flow_daily``, ``flow_steps``, ``flow_branches``, ``flow_variants``, ``flow_holdout_lift`` and
``flow_reasons`` (summed over days). A mart that is not built yet reads as empty and is listed in
:attr:`ReportData.missing`. Sums are done by the warehouse; nothing here computes a statistic.
"""

from __future__ import annotations

import json
from collections import defaultdict
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime
from decimal import Decimal
from typing import Any

from pydantic import ValidationError
from sqlglot import exp

from flowhouse.core.errors import ConfigError
from flowhouse.core.sql import STATE_SCHEMA, render, statement
from flowhouse.core.warehouse import Warehouse
from flowhouse.flows.flowfile import Flow

Row = Mapping[str, Any]
MARTS = "marts"
MART_TABLES = (
    "flow_daily",
    "flow_steps",
    "flow_branches",
    "flow_variants",
    "flow_holdout_lift",
    "flow_reasons",
    "message_facts",
)
#: The counts of marts.flow_daily that add up over days (the rest are rates or snapshots).
DAILY_SUMS = (
    "triggered", "enrolled", "enrolled_treatment", "enrolled_holdout", "refused", "completed",
    "exited", "messages_queued", "messages_held_out", "messages_skipped", "messages_sent",
    "messages_delivered", "messages_opened", "messages_clicked", "messages_bounced",
    "messages_unsubscribed", "messages_failed", "conversions", "attributed_revenue",
    "goal_conversions",
)  # fmt: skip
_ORDER = {
    "flow_daily": ("flow_id", "day"),
    "flow_steps": ("flow_id", "position"),
    "flow_branches": ("flow_id", "step_id", "position"),
    "flow_variants": ("flow_id", "split_step_id", "position", "arm"),
    "flow_holdout_lift": ("flow_id", "period", "period_start"),
}

_FLOWS = """
select f.flow_id, f.name, f.version, f.holdout, f.transactional, f.priority, f.goal_event,
       f.went_live_at, v.spec
from flowhouse.flows as f
join flowhouse.flow_versions as v on v.flow_id = f.flow_id and v.version = f.version
where f.removed_at is null
order by f.flow_id
"""

_WINNERS = """
select flow_id, step_id, winner, metric, min_sample, confidence, units, successes, rate, p_value,
       figures, decided_at
from flowhouse.split_winners
order by flow_id, step_id
"""

WINNER_COLUMNS = ("flow_id", "step_id", "winner", "metric", "min_sample", "confidence", "units",
                  "successes", "rate", "p_value", "figures", "decided_at")  # fmt: skip

_COLUMNS = """
select table_name, column_name from information_schema.columns
where table_schema = :mart_schema
order by table_name, ordinal_position
"""

_TOTALS = """
with daily as (
    select d.flow_id, min(d.day) as first_day, max(d.day) as last_day
    from marts.flow_daily as d
    where d.flow_id in (select flow_id from flowhouse.flows where removed_at is null)
    group by rollup (d.flow_id)
),
recipients as (
    select m.flow_id, count(distinct m.customer_id) as recipients
    from marts.message_facts as m
    where m.is_sent and m.flow_id in (select flow_id from flowhouse.flows where removed_at is null)
    group by rollup (m.flow_id)
)
select daily.*, r.recipients, daily.attributed_revenue / nullif(r.recipients, 0)
from daily left join recipients as r on daily.flow_id is not distinct from r.flow_id
"""

_REASONS = """
select r.flow_id, r.stage, r.reason, sum(r.count) as count
from marts.flow_reasons as r
group by r.flow_id, r.stage, r.reason
order by r.flow_id, r.stage, sum(r.count) desc, r.reason
"""


@dataclass(frozen=True)
class FlowInfo:
    """A live flow as deployed: its row in flowhouse.flows and its parsed spec."""

    flow_id: str
    name: str
    version: str
    holdout: float
    transactional: bool
    goal_event: str
    went_live_at: datetime | None
    spec: Flow | None
    spec_problem: str | None = None


@dataclass
class FlowData:
    """One flow's rows in the marts."""

    info: FlowInfo
    totals: Row = field(default_factory=dict)
    daily: list[Row] = field(default_factory=list)
    steps: dict[str, Row] = field(default_factory=dict)
    paths: dict[tuple[str, str], Row] = field(default_factory=dict)
    variants: dict[str, list[Row]] = field(default_factory=dict)
    #: Splits decided by their ``auto_winner`` rule (``flowhouse.split_winners``), by step.
    winners: dict[str, Row] = field(default_factory=dict)
    holdout_all: Row | None = None
    holdout_weeks: list[Row] = field(default_factory=list)
    reasons: list[Row] = field(default_factory=list)


@dataclass
class ReportData:
    flows: list[FlowData]
    totals: Row
    generated_at: datetime
    missing: list[str]

    @property
    def window(self) -> tuple[date, date] | None:
        first, last = self.totals.get("first_day"), self.totals.get("last_day")
        return (first, last) if first and last else None


def plain(value: Any) -> Any:
    """Decimals as floats (money formats the same), everything else as it is."""
    return float(value) if isinstance(value, Decimal) else value


def parse_spec(flow_id: str, text: str) -> tuple[Flow | None, str | None]:
    """The deployed spec (canonical JSON of the flow file) as a flow, or why it cannot be read."""
    try:
        return Flow.model_validate(json.loads(text)), None
    except (ValueError, ValidationError) as err:
        return None, f"the deployed spec of {flow_id} cannot be read: {str(err).splitlines()[0]}"


class Reader:
    """Reads the report's data from one warehouse."""

    def __init__(self, wh: Warehouse, state_schema: str = STATE_SCHEMA) -> None:
        self.wh = wh
        self.schema = state_schema
        self.columns: dict[str, list[str]] = {}

    def sql(self, text: str, **values: Any) -> str:
        return render(statement(text, self.schema, **values), self.wh.dialect)

    def rows(self, query: exp.Expr | str, columns: Sequence[str]) -> list[dict[str, Any]]:
        sql = query if isinstance(query, str) else render(query, self.wh.dialect)
        return [{c: plain(v) for c, v in zip(columns, r, strict=True)} for r in self.wh.query(sql)]

    def read(self, now: datetime) -> ReportData:
        if not self.wh.table_exists(self.schema, "flows"):
            raise ConfigError(
                "no flows are deployed in this warehouse",
                expected="a warehouse where `flowhouse tick` has run and `flowhouse build` "
                "has built the performance marts",
            )
        self.columns = self._mart_columns()
        flows = {f.info.flow_id: f for f in self.flows()}
        totals = self.totals(flows)
        self._fill(flows)
        missing = [t for t in MART_TABLES if t not in self.columns]
        return ReportData(list(flows.values()), totals, now, missing)

    def _mart_columns(self) -> dict[str, list[str]]:
        found: dict[str, list[str]] = defaultdict(list)
        for table, column in self.wh.query(self.sql(_COLUMNS, mart_schema=MARTS)):
            found[table].append(column)
        return dict(found)

    def flows(self) -> list[FlowData]:
        names = ("flow_id", "name", "version", "holdout", "transactional", "priority",
                 "goal_event", "went_live_at", "spec")  # fmt: skip
        out = []
        for r in self.rows(self.sql(_FLOWS), names):
            spec, problem = parse_spec(r["flow_id"], r["spec"])
            info = FlowInfo(
                r["flow_id"], r["name"], r["version"], float(r["holdout"]),
                bool(r["transactional"]), r["goal_event"], r["went_live_at"], spec, problem,
            )  # fmt: skip
            out.append(FlowData(info))
        return out

    def totals(self, flows: Mapping[str, FlowData]) -> Row:
        """Sets each flow's totals; returns those of all live flows together."""
        if "flow_daily" not in self.columns:
            return {}
        query, names = self._totals_query()
        overall: Row = {}
        for row in self.rows(query, names):
            if row["flow_id"] is None:
                overall = row
            elif row["flow_id"] in flows:
                flows[row["flow_id"]].totals = row
        return overall

    def _totals_query(self) -> tuple[exp.Expr, list[str]]:
        tree = statement(_TOTALS, self.schema)
        daily = tree.find(exp.CTE)
        assert daily is not None
        sums = [c for c in DAILY_SUMS if c in self.columns["flow_daily"]]
        select = daily.this
        assert isinstance(select, exp.Select)
        select.select(*[exp.func("sum", exp.column(c, "d")).as_(c) for c in sums], copy=False)
        names = ["flow_id", "first_day", "last_day", *sums, "recipients", "revenue_per_recipient"]
        if "message_facts" not in self.columns:
            _without_message_facts(tree, self.schema)
        return tree, names

    def table(self, name: str) -> list[dict[str, Any]]:
        """Every row of one mart, for the live flows, in a stable order."""
        if name not in self.columns:
            return []
        columns = self.columns[name]
        order = [c for c in _ORDER.get(name, ("flow_id",)) if c in columns]
        query = (
            exp.select(*[exp.column(c, quoted=True) for c in columns])
            .from_(exp.table_(name, db=MARTS))
            .order_by(*[exp.column(c, quoted=True) for c in order])
        )
        return self.rows(query, columns)

    def _fill(self, flows: Mapping[str, FlowData]) -> None:
        for row in self.table("flow_daily"):
            _get(flows, row, "flow_id", lambda f, r: f.daily.append(r))
        for row in self.table("flow_steps"):
            _get(flows, row, "flow_id", _add_step)
        for row in self.table("flow_branches"):
            _get(flows, row, "flow_id", _add_path)
        for row in self.table("flow_variants"):
            _get(flows, row, "flow_id", _add_variant)
        for row in self.table("flow_holdout_lift"):
            _get(flows, row, "flow_id", _add_holdout)
        if self.wh.table_exists(self.schema, "split_winners"):
            for row in self.rows(self.sql(_WINNERS), WINNER_COLUMNS):
                _get(flows, row, "flow_id", lambda f, r: f.winners.update({r["step_id"]: r}))
        if "flow_reasons" in self.columns:
            names = ("flow_id", "stage", "reason", "count")
            for row in self.rows(self.sql(_REASONS), names):
                _get(flows, row, "flow_id", lambda f, r: f.reasons.append(r))


def _get(
    flows: Mapping[str, FlowData], row: Row, key: str, add: Callable[[FlowData, Row], None]
) -> None:
    flow = flows.get(row[key])
    if flow is not None:
        add(flow, row)


def _add_step(flow: FlowData, row: Row) -> None:
    # rows of steps a later version removed (is_current false) have no box to go in
    if row.get("is_current") is not False:
        flow.steps[row["step_id"]] = row


def _add_path(flow: FlowData, row: Row) -> None:
    flow.paths[(row["step_id"], str(row["path"]))] = row


def _add_variant(flow: FlowData, row: Row) -> None:
    arms = flow.variants.setdefault(row["split_step_id"], [])
    # the control first, then the other arms in the order the warehouse gave them
    arms.insert(0 if row.get("is_control") else len(arms), row)


def _add_holdout(flow: FlowData, row: Row) -> None:
    if row["period"] == "all":
        flow.holdout_all = row
    else:
        flow.holdout_weeks.append(row)


def _without_message_facts(tree: exp.Expr, schema: str) -> None:
    """Without marts.message_facts, recipients are summed over days (a customer sent messages on
    two days counts twice)."""
    recipients = next(c for c in tree.find_all(exp.CTE) if c.alias == "recipients")
    replacement = statement(
        "select d.flow_id, sum(d.recipients) as recipients from marts.flow_daily as d "
        "where d.flow_id in (select flow_id from flowhouse.flows where removed_at is null) "
        "group by rollup (d.flow_id)",
        schema,
    )
    recipients.set("this", replacement)


def sort_flows(flows: Sequence[FlowData]) -> list[FlowData]:
    """Flows that earn the most first, then the busiest, then by name."""
    return sorted(
        flows,
        key=lambda f: (
            -float(f.totals.get("attributed_revenue") or 0),
            -float(f.totals.get("enrolled") or 0),
            f.info.name.lower(),
        ),
    )
