"""``flowhouse plan``: what the flow files would change against what is deployed.

For every flow: new, changed (new, changed and removed steps), removed or unchanged; and for the
enrollments in flight, what the next tick will do with them: those waiting on a removed step exit
with ``step_removed``, those of a removed flow with ``flow_removed``, and the others carry on with
the new definition of their step (their due time, already computed, stays).
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

from flowhouse.core.sql import STATE_SCHEMA, render, statement
from flowhouse.core.warehouse import Warehouse
from flows.compile import CompiledFlow


@dataclass
class StepChange:
    step_id: str
    change: str  # new | changed | removed
    active: int = 0


@dataclass
class FlowPlan:
    flow_id: str
    status: str  # new | changed | removed | unchanged
    deployed_version: str | None
    version: str | None
    steps: list[StepChange] = field(default_factory=list)
    active: int = 0

    def lines(self) -> list[str]:
        head = f"{_SIGN[self.status]} {self.flow_id}: {self.status}"
        if self.status == "changed":
            head += f" (version {self.deployed_version} -> {self.version})"
        if self.active:
            head += f", {self.active} active enrollment(s)"
        out = [head]
        for s in self.steps:
            note = ""
            if s.change == "removed" and s.active:
                note = f": {s.active} enrollment(s) waiting here will exit (step_removed)"
            elif s.change == "changed" and s.active:
                note = f": {s.active} enrollment(s) waiting here carry on with the new definition"
            out.append(f"    {_SIGN[s.change]} step {s.step_id} {s.change}{note}")
        if self.status == "removed" and self.active:
            out.append(f"    {self.active} active enrollment(s) will exit (flow_removed)")
        return out


_SIGN = {"new": "+", "changed": "~", "removed": "-", "unchanged": "="}


def plan(wh: Warehouse, flows: list[CompiledFlow], schema: str = STATE_SCHEMA) -> list[FlowPlan]:
    if wh.table_exists(schema, "flows"):
        deployed, steps, active = (
            _deployed(wh, schema),
            _deployed_steps(wh, schema),
            _active(wh, schema),
        )
    else:  # nothing deployed yet: every flow is new
        deployed, steps, active = {}, {}, {}
    plans = [_plan_flow(f, deployed, steps, active) for f in flows]
    names = {f.id for f in flows}
    for flow_id, (version, removed_at) in sorted(deployed.items()):
        if flow_id not in names and removed_at is None:
            waiting = active.get(flow_id, {})
            plans.append(FlowPlan(flow_id, "removed", version, None, [], sum(waiting.values())))
    return plans


def _plan_flow(
    f: CompiledFlow,
    deployed: dict[str, tuple[str, Any]],
    steps: dict[str, dict[str, tuple[str, str | None, str]]],
    active: dict[str, dict[str, int]],
) -> FlowPlan:
    if f.id not in deployed:
        return FlowPlan(
            f.id, "new", None, f.version, [StepChange(s.step_id, "new") for s in f.steps]
        )
    version, removed_at = deployed[f.id]
    waiting = active.get(f.id, {})
    total = sum(waiting.values())
    if version == f.version and removed_at is None:
        return FlowPlan(f.id, "unchanged", version, f.version, [], total)
    old = steps.get(f.id, {})
    changes: list[StepChange] = []
    for s in f.steps:
        now = (s.kind, s.next_step, json.dumps(s.params, sort_keys=True))
        if s.step_id not in old:
            changes.append(StepChange(s.step_id, "new"))
        elif old[s.step_id] != now:
            changes.append(StepChange(s.step_id, "changed", waiting.get(s.step_id, 0)))
    current = {s.step_id for s in f.steps}
    changes += [
        StepChange(step_id, "removed", waiting.get(step_id, 0))
        for step_id in old
        if step_id not in current
    ]
    return FlowPlan(f.id, "changed", version, f.version, changes, total)


def _query(wh: Warehouse, schema: str, text: str) -> list[tuple[Any, ...]]:
    return wh.query(render(statement(text, schema), wh.dialect))


def _deployed(wh: Warehouse, schema: str) -> dict[str, tuple[str, Any]]:
    rows = _query(wh, schema, "select flow_id, version, removed_at from flowhouse.flows")
    return {r[0]: (r[1], r[2]) for r in rows}


def _deployed_steps(
    wh: Warehouse, schema: str
) -> dict[str, dict[str, tuple[str, str | None, str]]]:
    out: dict[str, dict[str, tuple[str, str | None, str]]] = {}
    text = "select flow_id, step_id, kind, next_step, params from flowhouse.steps"
    for flow_id, step_id, kind, next_step, params in _query(wh, schema, text):
        out.setdefault(flow_id, {})[step_id] = (kind, next_step, params)
    return out


def _active(wh: Warehouse, schema: str) -> dict[str, dict[str, int]]:
    out: dict[str, dict[str, int]] = {}
    text = (
        "select flow_id, step_id, count(*) from flowhouse.enrollments "
        "where status = 'active' group by flow_id, step_id"
    )
    for flow_id, step_id, n in _query(wh, schema, text):
        out.setdefault(flow_id, {})[step_id] = int(n)
    return out
