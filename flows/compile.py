"""Compile flow files into what the engine runs: a flat step graph and SQL predicate trees.

Each step becomes one row with its kind, its parameters and ``next_step``: the step that follows it
(or, at the end of a branch path, split arm or ``wait_for`` path, the step after that branch). A
flow's version is a hash of its canonical form, recorded on every decision.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

import sqlglot
from sqlglot import exp

from flowhouse.core.contract import EVENTS
from flowhouse.flows.flowfile import (
    Action,
    Branch,
    Flow,
    Send,
    Split,
    Step,
    Wait,
    WaitFor,
    WaitUntil,
)
from flowhouse.flows.predicates import property_key
from flowhouse.flows.settings import Settings

EVENT_COLUMNS = frozenset(EVENTS.column_names)
#: Warehouse actions write to tables; the others call another system and go through the outbox.
WAREHOUSE_ACTIONS = frozenset(
    {"add_tag", "remove_tag", "add_to_list", "remove_from_list", "set_property", "coupon",
     "loyalty_points", "change_tier"}
)  # fmt: skip


@dataclass(frozen=True)
class StepRow:
    """One step of the graph, flattened."""

    flow_id: str
    step_id: str
    kind: str
    position: int
    next_step: str | None
    params: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class CompiledPath:
    """One way out of a branch, split arm or wait: its predicate or weight, and its first step."""

    label: str
    first_step: str | None
    when: exp.Expr | None = None
    weight: float = 0.0


@dataclass
class CompiledFlow:
    flow: Flow
    version: str
    steps: list[StepRow]
    paths: dict[str, list[CompiledPath]]
    #: The flow file it was read from ("" when compiled from a model).
    source: str = ""

    @property
    def id(self) -> str:
        return self.flow.flow

    def step(self, step_id: str) -> StepRow:
        return next(s for s in self.steps if s.step_id == step_id)

    @property
    def first_step(self) -> str:
        return self.steps[0].step_id


def version_of(flow: Flow) -> str:
    canonical = json.dumps(flow.model_dump(mode="json", by_alias=True), sort_keys=True)
    return hashlib.md5(canonical.encode()).hexdigest()[:12]


def compile_flow(flow: Flow) -> CompiledFlow:
    steps: list[StepRow] = []
    paths: dict[str, list[CompiledPath]] = {}
    _flatten(flow.flow, flow.steps, None, steps, paths)
    return CompiledFlow(flow, version_of(flow), steps, paths)


def _first(steps: Sequence[Step], after: str | None) -> str | None:
    return steps[0].id if steps else after


def _flatten(
    flow_id: str,
    steps: Sequence[Step],
    after: str | None,
    out: list[StepRow],
    paths: dict[str, list[CompiledPath]],
) -> None:
    """Append `steps` to `out`; the last continues with `after`."""
    for i, step in enumerate(steps):
        following = steps[i + 1].id if i + 1 < len(steps) else after
        kind, params = _params(step)
        out.append(StepRow(flow_id, step.id, kind, len(out), following, params))
        for label, nested, when, weight in _children(step):
            paths.setdefault(step.id, []).append(
                CompiledPath(label, _first(nested, following), when, weight)
            )
            _flatten(flow_id, nested, following, out, paths)


def _children(step: Step) -> Iterator[tuple[str, Sequence[Step], exp.Expr | None, float]]:
    if isinstance(step, Branch):
        for j, p in enumerate(step.branch):
            label = "else" if p.otherwise else f"path_{j + 1}"
            yield label, p.steps, (predicate(p.when) if p.when else None), 0.0
    elif isinstance(step, Split):
        total = sum(a.weight for a in step.split) or 1.0
        for arm in step.split:
            yield arm.name, arm.steps, None, arm.weight / total
    elif isinstance(step, WaitFor):
        yield "event", step.on_event, None, 0.0
        yield "timeout", step.on_timeout, None, 0.0


def _params(step: Step) -> tuple[str, dict[str, Any]]:
    if isinstance(step, Wait):
        return "wait", {"seconds": int(step.wait.total_seconds())}
    if isinstance(step, WaitUntil):
        u = step.wait_until
        days = int(u.offset.total_seconds() // 86400) if u.offset else 0
        return "wait_until", {
            "time": u.time,
            "weekdays": u.weekdays,
            "date": u.date.removeprefix("customer.") if u.date else None,
            "offset_days": -days if u.before else days,
            "yearly": u.yearly,
        }
    if isinstance(step, WaitFor):
        w = step.wait_for
        return "wait_for", {
            "event": w.event,
            "timeout_seconds": int(w.timeout.total_seconds()),
            "same_key": w.same_key,
            "where": w.where,
            "paths": ["event_received", "timed_out"],
        }
    if isinstance(step, Send):
        return "send", step.send.model_dump(exclude_none=True)
    if isinstance(step, Action):
        return "action", step.action.model_dump(exclude_none=True)
    if isinstance(step, Branch):
        return "branch", {"paths": [label for label, *_ in _children(step)]}
    assert isinstance(step, Split)
    arms = [arm.name for arm in step.split]
    params: dict[str, Any] = {
        "paths": arms,
        "control": arms[0],
        "weights": [a.weight for a in step.split],
    }
    if step.auto_winner is not None:
        params["auto_winner"] = step.auto_winner.model_dump()
    return "split", params


def splits(flow: Flow) -> dict[str, Split]:
    """Every split step of ``flow``, nested ones included, by step id."""
    found: dict[str, Split] = {}
    pending: list[Step] = list(flow.steps)
    while pending:
        step = pending.pop()
        if isinstance(step, Split):
            found[step.id] = step
        for _, nested, _, _ in _children(step):
            pending += nested
    return found


# -- predicates ----------------------------------------------------------------------------------


def predicate(sql: str) -> exp.Expr:
    """A flow predicate as a tree over the tables ``customer`` and ``event``.

    ``event.<name>`` that is not an event column reads the property of that name from
    ``event.properties``: as text, or as a number or boolean where it is compared with one.
    ``customer.properties.<key>`` is the declared property's typed column ``properties__<key>``
    of the customer's attributes (models/customers/customer_attributes.sql).
    """
    tree = sqlglot.parse_one(sql, read="duckdb")
    for column in list(tree.find_all(exp.Column)):
        key = property_key(column)
        if key is not None:
            column.replace(exp.column(f"properties__{key}", "customer"))
        elif column.table == "event" and column.name not in EVENT_COLUMNS:
            column.replace(_typed(event_property(column.name), column))
    return exp.paren(tree, copy=False)


def event_property(name: str) -> exp.Expr:
    """``json_text(event.properties, 'name')``: rendered per warehouse by the engine."""
    return exp.Anonymous(
        this="json_text",
        expressions=[exp.column("properties", "event"), exp.Literal.string(name)],
    )


def _typed(value: exp.Expr, column: exp.Column) -> exp.Expr:
    parent = column.parent
    while isinstance(parent, exp.Paren):
        parent = parent.parent
    others: list[exp.Expr] = []
    if isinstance(parent, (exp.Binary, exp.Between, exp.In)):
        others = [n for n in parent.iter_expressions() if n is not column]  # type: ignore[comparison-overlap]
        others += list(parent.args.get("expressions") or [])
    if any(_is_number(o) for o in others) or isinstance(
        parent, (exp.Add, exp.Sub, exp.Mul, exp.Div)
    ):
        return exp.cast(value, "double")
    if any(isinstance(o, exp.Boolean) for o in others) or isinstance(
        parent, (exp.Connector, exp.Not)
    ):
        return exp.cast(value, "boolean")
    if parent is None or isinstance(parent, (exp.Connector, exp.Not)):
        return exp.cast(value, "boolean")
    return value


def _is_number(node: exp.Expr) -> bool:
    if isinstance(node, exp.Neg):
        node = node.this
    return isinstance(node, exp.Literal) and not node.is_string


# -- per-deployment settings each step needs -----------------------------------------------------


def quiet_window(settings: Settings, flow: Flow, channel: str) -> tuple[str, str] | None:
    if not flow.quiet_hours:
        return None
    window = settings.quiet_hours.get(channel)  # type: ignore[call-overload]
    return (window.start, window.end) if window and window.start != window.end else None
