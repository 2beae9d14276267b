"""A warehouse for report tests: real flow files deployed by the engine's own deploy step, and the
performance marts (schema ``marts``) as plain tables with the documented columns and hand-picked
rows whose totals the tests know.

Flows: ``cart_abandonment`` (a clear A/B winner and a clear holdout lift), ``welcome`` (an
inconclusive A/B test and an inconclusive holdout), ``post_purchase`` (a holdout too small to
read), ``wholesale_approval`` (transactional, no holdout) and ``birthday`` (deployed, then removed:
not in the report).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from datetime import date, datetime, timedelta
from typing import Any

from sqlglot import exp

from flowhouse.core.contract import ColumnType
from flowhouse.core.paths import FLOWS
from flowhouse.core.sql import literal
from flowhouse.core.state import ensure_state
from flowhouse.core.warehouse import Location, Warehouse, create_table
from flowhouse.flows.compile import CompiledFlow, compile_flow
from flowhouse.flows.files import parse_flow
from flowhouse.flows.settings import load_settings
from flowhouse.orchestration.engine.deploy import deploy
from flowhouse.rules.context import Context

Row = dict[str, Any]
DEPLOYED_AT = datetime(2026, 9, 24)
#: When the tests' reports say they were generated.
GENERATED_AT = datetime(2026, 10, 1, 6, 0)
FIRST_DAY = date(2026, 9, 24)
DAYS = [FIRST_DAY + timedelta(days=i) for i in range(7)]
LIVE = ["cart_abandonment", "welcome", "post_purchase", "wholesale_approval"]
REMOVED = "birthday"

_T: ColumnType = "text"
_D: ColumnType = "date"
_N: ColumnType = "bigint"
_F: ColumnType = "double"
_M: ColumnType = "decimal"
_B: ColumnType = "boolean"


def _columns(spec: str, kind: ColumnType) -> list[tuple[str, ColumnType, bool]]:
    return [(name, kind, False) for name in spec.split()]


MARTS: dict[str, list[tuple[str, ColumnType, bool]]] = {
    "flow_daily": [
        *_columns("flow_id flow_name", _T),
        *_columns("day", _D),
        *_columns(
            "triggered enrolled enrolled_treatment enrolled_holdout refused refused_audience "
            "refused_reentry refused_concurrency refused_before_live refused_duplicate_key active "
            "completed exited messages_queued messages_held_out messages_skipped "
            "skipped_no_address skipped_consent skipped_unsubscribed skipped_suppressed "
            "skipped_stale skipped_frequency_cap skipped_smart_sending skipped_quiet_hours "
            "skipped_discount_active skipped_coupon_pool_empty messages_sent messages_delivered "
            "messages_opened messages_clicked messages_bounced messages_unsubscribed "
            "messages_failed recipients conversions",
            _N,
        ),
        *_columns("attributed_revenue", _M),
        *_columns("revenue_per_recipient", _F),
        *_columns("goal_conversions", _N),
    ],
    "flow_reasons": [
        *_columns("flow_id", _T), *_columns("day", _D), *_columns("stage reason", _T),
        *_columns("count", _N),
    ],
    "flow_steps": [
        *_columns("flow_id step_id step_kind", _T), *_columns("position", _N),
        *_columns("next_step_id channel label", _T),
        *_columns("reached executed waiting_now exited_here", _N),
        *_columns("drop_off_rate", _F),
        *_columns(
            "messages_queued messages_held_out messages_skipped messages_sent messages_delivered "
            "messages_opened messages_clicked messages_bounced messages_unsubscribed", _N,
        ),
        *_columns("open_rate click_rate", _F), *_columns("attributed_orders", _N),
        *_columns("attributed_revenue", _M),
    ],
    "flow_branches": [
        *_columns("flow_id step_id step_kind path", _T), *_columns("position enrollments", _N),
        *_columns("share", _F),
    ],
    "flow_variants": [
        *_columns("flow_id split_step_id arm", _T), *_columns("is_control", _B),
        *_columns("control_arm", _T), *_columns("recipients conversions", _N),
        *_columns("conversion_rate", _F), *_columns("revenue", _M),
        *_columns(
            "revenue_per_recipient conversion_rate_lift conversion_rate_lift_ci_low "
            "conversion_rate_lift_ci_high conversion_rate_p_value relative_lift "
            "revenue_per_recipient_lift revenue_per_recipient_lift_ci_low "
            "revenue_per_recipient_lift_ci_high revenue_per_recipient_p_value", _F,
        ),
        *_columns("is_significant", _B),
    ],
    "flow_holdout_lift": [
        *_columns("flow_id period", _T), *_columns("period_start period_end", _D),
        *_columns(
            "treatment_enrollees holdout_enrollees treatment_conversions holdout_conversions", _N
        ),
        *_columns(
            "treatment_conversion_rate holdout_conversion_rate conversion_rate_lift "
            "conversion_rate_lift_ci_low conversion_rate_lift_ci_high conversion_rate_p_value "
            "relative_lift", _F,
        ),
        *_columns("treatment_revenue holdout_revenue", _M),
        *_columns(
            "treatment_revenue_per_enrollee holdout_revenue_per_enrollee "
            "revenue_per_enrollee_lift revenue_per_enrollee_lift_ci_low "
            "revenue_per_enrollee_lift_ci_high revenue_per_enrollee_p_value "
            "incremental_conversions incremental_conversions_ci_low "
            "incremental_conversions_ci_high", _F,
        ),
        *_columns("incremental_revenue incremental_revenue_ci_low incremental_revenue_ci_high",
                  _M),
        *_columns("attributed_conversions", _N), *_columns("attributed_revenue", _M),
        *_columns("enrollees_window_open", _N), *_columns("is_significant", _B),
    ],
    "message_facts": [
        *_columns("message_id enrollment_id flow_id flow_version step_id customer_id channel", _T),
        *_columns("is_sent", _B),
    ],
}  # fmt: skip

# -- what the tests know -------------------------------------------------------------------------

#: enrolled per day (treatment, holdout) of each live flow
ENROLLED = {
    "cart_abandonment": [(40, 5), (52, 6), (61, 7), (48, 5), (55, 6), (50, 5), (44, 6)],
    "welcome": [(30, 3), (28, 4), (35, 4), (31, 3), (29, 3), (33, 4), (30, 3)],
    "post_purchase": [(20, 2), (22, 2), (19, 2), (25, 3), (21, 2), (18, 1), (24, 0)],
    "wholesale_approval": [(1, 0), (0, 0), (2, 0), (0, 0), (1, 0), (0, 0), (1, 0)],
}
#: attributed revenue per day (last touch)
REVENUE = {
    "cart_abandonment": [610.5, 820.0, 905.25, 700.0, 1010.0, 760.75, 594.0],
    "welcome": [120.0, 95.5, 140.0, 80.0, 133.0, 90.0, 101.5],
    "post_purchase": [45.0, 60.0, 0.0, 75.0, 30.0, 20.0, 10.0],
    "wholesale_approval": [0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0],
}
#: distinct customers sent a message (marts.message_facts where is_sent)
RECIPIENTS = {
    "cart_abandonment": 300,
    "welcome": 150,
    "post_purchase": 120,
    "wholesale_approval": 5,
}


def _daily(flow_id: str, name: str) -> Iterable[Row]:
    for day, (treat, hold), revenue in zip(DAYS, ENROLLED[flow_id], REVENUE[flow_id], strict=True):
        sent = treat * 2
        yield {
            "flow_id": flow_id, "flow_name": name, "day": day, "triggered": treat + hold + 3,
            "enrolled": treat + hold, "enrolled_treatment": treat, "enrolled_holdout": hold,
            "refused": 3, "refused_concurrency": 2, "refused_duplicate_key": 1,
            "completed": treat // 2, "exited": 1, "messages_queued": sent + 4,
            "messages_held_out": hold, "messages_skipped": 4, "skipped_consent": 3,
            "skipped_no_address": 1, "messages_sent": sent, "messages_delivered": sent - 1,
            "messages_opened": sent // 2, "messages_clicked": sent // 10, "messages_bounced": 1,
            "recipients": treat, "conversions": round(revenue / 50),
            "attributed_revenue": revenue, "revenue_per_recipient": revenue / treat if treat else None,
            "goal_conversions": treat // 8,
        }  # fmt: skip


# cart_abandonment's steps as the tests read them (other flows get generic numbers)
CART_STEPS: dict[str, Row] = {
    "reminder": {"reached": 355, "executed": 355},
    "reminder_plain": {
        "reached": 178, "executed": 178, "messages_sent": 140, "messages_delivered": 138,
        "messages_opened": 57, "messages_clicked": 9, "open_rate": 0.413, "click_rate": 0.065,
        "messages_skipped": 20, "messages_held_out": 18, "attributed_orders": 12,
        "attributed_revenue": 1234.5,
    },
    "reminder_question": {
        "reached": 177, "executed": 177, "messages_sent": 150, "messages_delivered": 149,
        "messages_opened": 70, "messages_clicked": 12, "open_rate": 0.47, "click_rate": 0.081,
        "messages_skipped": 10, "messages_held_out": 17, "attributed_orders": 1,
        "attributed_revenue": 80.0,
    },
    "wait_to_24h": {"reached": 350, "executed": 310, "waiting_now": 40, "exited_here": 5},
}  # fmt: skip
CART_PATHS = {
    ("reminder", "plain"): (178, 0.501),
    ("reminder", "question"): (177, 0.499),
    ("urgency", "path_1"): (96, 0.32),
    ("urgency", "else"): (204, 0.68),
    ("offer_by_margin", "path_1"): (60, 0.25),
    ("offer_by_margin", "path_2"): (84, 0.35),
    ("offer_by_margin", "else"): (96, 0.40),
}


def _steps(compiled: CompiledFlow) -> Iterable[Row]:
    for s in compiled.steps:
        known = CART_STEPS.get(s.step_id) if compiled.id == "cart_abandonment" else None
        row: Row = known or _generic_step(s.kind, s.position)
        yield {
            "flow_id": compiled.id, "step_id": s.step_id, "step_kind": s.kind,
            "position": s.position, "next_step_id": s.next_step,
            "channel": s.params.get("channel"), "label": s.params.get("subject"),
            "drop_off_rate": 0.0, **row,
        }  # fmt: skip


def _generic_step(kind: str, position: int) -> Row:
    reached = 200 - 10 * position
    row: Row = {"reached": reached, "executed": reached, "waiting_now": 0, "exited_here": 0}
    if kind == "send":
        row.update(messages_sent=reached - 20, messages_delivered=reached - 22,
                   messages_opened=(reached - 22) // 2, messages_clicked=(reached - 22) // 10,
                   open_rate=0.5, click_rate=0.1, messages_skipped=20)  # fmt: skip
    return row


def _paths(compiled: CompiledFlow) -> Iterable[Row]:
    for step_id, paths in compiled.paths.items():
        kind = compiled.step(step_id).kind
        for i, p in enumerate(paths):
            key = {"event": "event_received", "timeout": "timed_out"}.get(p.label, p.label)
            n, share = CART_PATHS.get((step_id, key), (50 + 10 * i, 1 / len(paths)))
            if compiled.id != "cart_abandonment":
                n, share = 50 + 10 * i, 1 / len(paths)
            yield {
                "flow_id": compiled.id, "step_id": step_id, "step_kind": kind, "path": key,
                "position": i + 1, "enrollments": n, "share": share,
            }  # fmt: skip


VARIANTS: list[Row] = [
    # cart_abandonment: question beat plain, clearly
    {"flow_id": "cart_abandonment", "split_step_id": "reminder", "arm": "plain",
     "is_control": True, "control_arm": "plain", "recipients": 1480, "conversions": 151,
     "conversion_rate": 0.102, "revenue": 6000.0, "revenue_per_recipient": 4.05},
    {"flow_id": "cart_abandonment", "split_step_id": "reminder", "arm": "question",
     "is_control": False, "control_arm": "plain", "recipients": 1500, "conversions": 185,
     "conversion_rate": 0.123, "revenue": 6900.0, "revenue_per_recipient": 4.6,
     "conversion_rate_lift": 0.021, "conversion_rate_lift_ci_low": 0.008,
     "conversion_rate_lift_ci_high": 0.034, "conversion_rate_p_value": 0.003,
     "relative_lift": 0.206, "revenue_per_recipient_lift": 0.55,
     "revenue_per_recipient_lift_ci_low": -0.1, "revenue_per_recipient_lift_ci_high": 1.2,
     "revenue_per_recipient_p_value": 0.09, "is_significant": True},
    # welcome: no clear difference between the two picks
    {"flow_id": "welcome", "split_step_id": "picks_test", "arm": "grid", "is_control": False,
     "control_arm": "featured", "recipients": 1200, "conversions": 132, "conversion_rate": 0.11,
     "revenue": 3000.0, "revenue_per_recipient": 2.5, "conversion_rate_lift": 0.008,
     "conversion_rate_lift_ci_low": -0.012, "conversion_rate_lift_ci_high": 0.028,
     "conversion_rate_p_value": 0.41, "relative_lift": 0.078, "is_significant": False},
    {"flow_id": "welcome", "split_step_id": "picks_test", "arm": "featured", "is_control": True,
     "control_arm": "featured", "recipients": 1200, "conversions": 122, "conversion_rate": 0.102,
     "revenue": 2800.0, "revenue_per_recipient": 2.33},
]  # fmt: skip

_WEEK_2 = FIRST_DAY + timedelta(days=7)
HOLDOUT: list[Row] = [
    {"flow_id": "cart_abandonment", "period": "all", "period_start": FIRST_DAY,
     "period_end": FIRST_DAY + timedelta(days=7), "treatment_enrollees": 3150,
     "holdout_enrollees": 350, "treatment_conversions": 252, "holdout_conversions": 23,
     "treatment_conversion_rate": 0.08, "holdout_conversion_rate": 0.065,
     "conversion_rate_lift": 0.015, "conversion_rate_lift_ci_low": 0.004,
     "conversion_rate_lift_ci_high": 0.026, "conversion_rate_p_value": 0.01,
     "incremental_conversions": 23.4, "incremental_conversions_ci_low": 5.2,
     "incremental_conversions_ci_high": 41.0, "incremental_revenue": 1840.0,
     "incremental_revenue_ci_low": 310.0, "incremental_revenue_ci_high": 3370.0,
     "attributed_conversions": 61, "attributed_revenue": 5400.5, "enrollees_window_open": 120,
     "is_significant": True},
    {"flow_id": "cart_abandonment", "period": "week", "period_start": FIRST_DAY,
     "period_end": _WEEK_2, "treatment_enrollees": 3150, "holdout_enrollees": 350,
     "treatment_conversion_rate": 0.08, "holdout_conversion_rate": 0.065,
     "conversion_rate_lift": 0.015, "conversion_rate_lift_ci_low": 0.004,
     "conversion_rate_lift_ci_high": 0.026, "conversion_rate_p_value": 0.01,
     "is_significant": True},
    {"flow_id": "welcome", "period": "all", "period_start": FIRST_DAY, "period_end": _WEEK_2,
     "treatment_enrollees": 2100, "holdout_enrollees": 240, "treatment_conversion_rate": 0.05,
     "holdout_conversion_rate": 0.046, "conversion_rate_lift": 0.004,
     "conversion_rate_lift_ci_low": -0.02, "conversion_rate_lift_ci_high": 0.028,
     "conversion_rate_p_value": 0.62, "incremental_conversions": 8.4,
     "incremental_conversions_ci_low": -42.0, "incremental_conversions_ci_high": 58.8,
     "incremental_revenue": 410.0, "incremental_revenue_ci_low": -900.0,
     "incremental_revenue_ci_high": 1700.0, "attributed_conversions": 15,
     "attributed_revenue": 760.0, "enrollees_window_open": 0, "is_significant": False},
    {"flow_id": "post_purchase", "period": "all", "period_start": FIRST_DAY,
     "period_end": _WEEK_2, "treatment_enrollees": 149, "holdout_enrollees": 12,
     "treatment_conversion_rate": 0.07, "holdout_conversion_rate": 0.0,
     "attributed_conversions": 4, "attributed_revenue": 240.0, "is_significant": False},
]  # fmt: skip

REASONS: list[Row] = [
    {"flow_id": "cart_abandonment", "day": DAYS[0], "stage": "skipped", "reason": "consent", "count": 70},
    {"flow_id": "cart_abandonment", "day": DAYS[1], "stage": "skipped", "reason": "consent", "count": 50},
    {"flow_id": "cart_abandonment", "day": DAYS[1], "stage": "skipped", "reason": "no_address", "count": 30},
    {"flow_id": "cart_abandonment", "day": DAYS[2], "stage": "exited", "reason": "order_placed", "count": 45},
    {"flow_id": "cart_abandonment", "day": DAYS[2], "stage": "refused", "reason": "concurrency", "count": 12},
    {"flow_id": "welcome", "day": DAYS[3], "stage": "refused", "reason": "audience", "count": 9},
]  # fmt: skip


def _message_facts() -> Iterable[Row]:
    """Sent messages to RECIPIENTS[flow] distinct customers (some twice), plus unsent ones."""
    for flow_id, people in RECIPIENTS.items():
        for i in range(people):
            for j in range(1 + i % 2):
                yield {"message_id": f"{flow_id}-{i}-{j}", "flow_id": flow_id,
                       "customer_id": f"c{i}", "is_sent": True}  # fmt: skip
        for i in range(people, people + 25):
            yield {"message_id": f"{flow_id}-{i}-x", "flow_id": flow_id, "customer_id": f"c{i}",
                   "is_sent": False}  # fmt: skip


# -- building it -----------------------------------------------------------------------------------


def compiled_flows(names: Sequence[str]) -> list[CompiledFlow]:
    out = []
    for name in names:
        flow, problems = parse_flow(FLOWS / f"{name}.yml")
        assert flow is not None, problems
        out.append(compile_flow(flow))
    return out


def deploy_flows(wh: Warehouse, flows: list[CompiledFlow], now: datetime) -> None:
    """Deploy `flows` as a tick at `now` would (flows, flow_versions, steps)."""
    ctx = Context(wh, "flowhouse", now, None, flows, load_settings(FLOWS))
    deploy(ctx)
    wh.commit()


def insert(wh: Warehouse, table: str, rows: Iterable[Mapping[str, Any]]) -> None:
    columns = [c for c, _, _ in MARTS[table.split(".")[-1]]]
    kinds = {c: k for c, k, _ in MARTS[table.split(".")[-1]]}
    tuples = [exp.tuple_(*[_value(r.get(c), kinds[c]) for c in columns]) for r in rows]
    if tuples:
        wh.execute(exp.insert(exp.values(tuples), table, columns=columns))


def _value(value: Any, kind: ColumnType) -> exp.Expr:
    if value is None:
        return exp.null()
    if kind == "date":
        return exp.cast(exp.Literal.string(value.isoformat()), "date")
    return literal(value)


def build(location: Location) -> None:
    """The whole fixture warehouse at `location` (a new DuckDB file or an empty database)."""
    with Warehouse.open(location) as wh:
        ensure_state(wh, "flowhouse")
        everything = compiled_flows([*LIVE, REMOVED])
        deploy_flows(wh, everything, DEPLOYED_AT)
        live = [f for f in everything if f.id != REMOVED]
        deploy_flows(wh, live, DEPLOYED_AT + timedelta(hours=1))
        wh.ensure_schema("marts")
        for name, columns in MARTS.items():
            wh.execute(create_table(f"marts.{name}", columns, wh.dialect))
        _fill(wh, everything)
        wh.commit()


def _fill(wh: Warehouse, flows: list[CompiledFlow]) -> None:
    insert(wh, "marts.flow_daily", (r for f in flows for r in _daily_of(f)))
    insert(wh, "marts.flow_steps", (r for f in flows for r in _steps(f)))
    insert(wh, "marts.flow_branches", (r for f in flows for r in _paths(f)))
    insert(wh, "marts.flow_variants", VARIANTS)
    insert(wh, "marts.flow_holdout_lift", HOLDOUT)
    insert(wh, "marts.flow_reasons", REASONS)
    insert(wh, "marts.message_facts", _message_facts())


def _daily_of(f: CompiledFlow) -> Iterable[Row]:
    if f.id == REMOVED:  # the removed flow still has history: the report leaves it out
        return [{"flow_id": REMOVED, "flow_name": "Birthday", "day": FIRST_DAY, "enrolled": 999,
                 "messages_sent": 999, "attributed_revenue": 99999.0}]  # fmt: skip
    return _daily(f.id, f.flow.name)


def expected_total(flow_id: str, what: str) -> float:
    """A total the tests compare the report with, summed here from the literals above."""
    if what == "enrolled":
        return sum(t + h for t, h in ENROLLED[flow_id])
    if what == "attributed_revenue":
        return sum(REVENUE[flow_id])
    raise KeyError(what)
