"""``flowhouse plan``: what the flow files would change against what is deployed.

For every flow: new, changed (new, changed and removed steps), removed, paused, resumed,
unchanged, or a draft (never deployed); and for the enrollments in flight, what the next tick will
do with them: those waiting on a removed step exit with ``step_removed``, those of a removed flow
(its file gone, or set back to ``draft``) with ``flow_removed``, those of a paused flow hold their
steps, and the others carry on with the new definition of their step (their due time, already
computed, stays).

A removal with enrollments in flight is a :class:`Removal`: a tick makes it only when it was
approved (:mod:`flowhouse.orchestration.engine.intent`).
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

from flowhouse.core.sql import STATE_SCHEMA, render, statement
from flowhouse.core.warehouse import Warehouse
from flowhouse.flows.compile import CompiledFlow


@dataclass
class StepChange:
    step_id: str
    change: str  # new | changed | removed
    active: int = 0


@dataclass(frozen=True)
class Removal:
    """A deployed flow (``step_id`` None) or step that the flow files remove while enrollments are
    in flight on it."""

    flow_id: str
    step_id: str | None
    active: int

    @property
    def key(self) -> str:
        return self.flow_id if self.step_id is None else f"{self.flow_id}.{self.step_id}"

    def __str__(self) -> str:
        what = "flow" if self.step_id is None else "step"
        reason = "flow_removed" if self.step_id is None else "step_removed"
        return f"{what} {self.key}: {self.active} enrollment(s) in flight would exit ({reason})"


@dataclass
class FlowPlan:
    flow_id: str
    status: str  # new | changed | removed | paused | resumed | unchanged | draft
    deployed_version: str | None
    version: str | None
    steps: list[StepChange] = field(default_factory=list)
    active: int = 0
    #: paused | resumed, when the flow's state changes along with a new version (or at launch)
    pause: str | None = None
    #: why a flow is removed: its file is gone, or it went back to draft
    note: str | None = None

    @property
    def changes(self) -> bool:
        return self.status not in ("unchanged", "draft")

    def removals(self) -> list[Removal]:
        if self.status == "removed":
            return [Removal(self.flow_id, None, self.active)] if self.active else []
        return [
            Removal(self.flow_id, s.step_id, s.active)
            for s in self.steps
            if s.change == "removed" and s.active
        ]

    def head(self) -> str:
        """What happens to the flow, in a few words: ``changed (version a -> b), paused``."""
        out = self.status
        if self.note:
            out += f" ({self.note})"
        if self.status == "changed":
            out += f" (version {self.deployed_version} -> {self.version})"
        if self.pause:
            out += f", {self.pause}"
        return out

    def consequences(self) -> list[str]:
        """What the next tick does with the enrollments in flight and the new triggers."""
        state = self.pause or (self.status if self.status in ("paused", "resumed") else None)
        out = []
        if self.status == "removed" and self.active:
            out.append(f"{self.active} active enrollment(s) will exit (flow_removed)")
        if state == "paused":
            out.append("new triggers are refused (paused)")
            if self.active:
                out.append(f"{self.active} active enrollment(s) hold their steps until it resumes")
        if state == "resumed" and self.active:
            out.append(
                f"{self.active} active enrollment(s) carry on; messages due longer ago than the "
                "flow's max_lateness are skipped (stale)"
            )
        if self.status == "draft":
            out.append("not deployed (state: draft)")
        return out

    def step_lines(self) -> list[str]:
        out = []
        for s in self.steps:
            note = ""
            if s.change == "removed" and s.active:
                note = f": {s.active} enrollment(s) waiting here will exit (step_removed)"
            elif s.change == "changed" and s.active:
                note = f": {s.active} enrollment(s) waiting here carry on with the new definition"
            out.append(f"{_SIGN[s.change]} step {s.step_id} {s.change}{note}")
        return out

    def lines(self) -> list[str]:
        head = f"{_SIGN[self.status]} {self.flow_id}: {self.head()}"
        if self.active and self.status not in ("removed", "paused", "resumed"):
            head += f", {self.active} active enrollment(s)"
        return [head] + [f"    {line}" for line in self.step_lines() + self.consequences()]


_SIGN = {
    "new": "+",
    "changed": "~",
    "removed": "-",
    "unchanged": "=",
    "paused": "|",
    "resumed": ">",
    "draft": ".",
}

#: A deployed flow: its version, when it was removed, when it was paused.
Deployed = tuple[str, Any, Any]


def plan(
    wh: Warehouse, flows: list[CompiledFlow], schema: str = STATE_SCHEMA, counts: bool = True
) -> list[FlowPlan]:
    """The plan of `flows` against what is deployed in `schema`. Without ``counts``, enrollments
    in flight are counted only when the plan removes something (what a tick needs to know)."""
    if not wh.table_exists(schema, "flows"):  # nothing deployed yet: every flow is new
        return _plans(flows, {}, {}, {})
    deployed, steps = _deployed(wh, schema), _deployed_steps(wh, schema)
    plans = _plans(flows, deployed, steps, {})
    if counts or removes(plans):
        plans = _plans(flows, deployed, steps, _active(wh, schema))
    return plans


def removes(plans: list[FlowPlan]) -> bool:
    """Whether the plan removes a flow or a step (with enrollments in flight or not)."""
    return any(p.status == "removed" or any(s.change == "removed" for s in p.steps) for p in plans)


def removals(plans: list[FlowPlan]) -> list[Removal]:
    return [r for p in plans for r in p.removals()]


def _plans(
    flows: list[CompiledFlow],
    deployed: dict[str, Deployed],
    steps: dict[str, dict[str, tuple[str, str | None, str]]],
    active: dict[str, dict[str, int]],
) -> list[FlowPlan]:
    plans = [_plan_flow(f, deployed, steps, active) for f in flows]
    names = {f.id for f in flows}
    for flow_id, (version, removed_at, _) in sorted(deployed.items()):
        if flow_id not in names and removed_at is None:
            waiting = active.get(flow_id, {})
            plans.append(FlowPlan(flow_id, "removed", version, None, [], sum(waiting.values())))
    return plans


def _plan_flow(
    f: CompiledFlow,
    deployed: dict[str, Deployed],
    steps: dict[str, dict[str, tuple[str, str | None, str]]],
    active: dict[str, dict[str, int]],
) -> FlowPlan:
    state = f.flow.state
    version, removed_at, paused_at = deployed.get(f.id, (None, None, None))
    waiting = active.get(f.id, {})
    total = sum(waiting.values())
    if state == "draft":
        if version is not None and removed_at is None:
            return FlowPlan(f.id, "removed", version, None, [], total, note="set to draft")
        return FlowPlan(f.id, "draft", version, f.version)
    if version is None:
        new = [StepChange(s.step_id, "new") for s in f.steps]
        pause = "paused" if state == "paused" else None
        return FlowPlan(f.id, "new", None, f.version, new, pause=pause)
    pause = _pause(state, paused_at if removed_at is None else None)
    if version == f.version and removed_at is None:
        return FlowPlan(f.id, pause or "unchanged", version, f.version, [], total)
    changes = _step_changes(f, steps.get(f.id, {}), waiting)
    return FlowPlan(f.id, "changed", version, f.version, changes, total, pause=pause)


def _pause(state: str, paused_at: object) -> str | None:
    if state == "paused" and paused_at is None:
        return "paused"
    if state == "live" and paused_at is not None:
        return "resumed"
    return None


def _step_changes(
    f: CompiledFlow, old: dict[str, tuple[str, str | None, str]], waiting: dict[str, int]
) -> list[StepChange]:
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
    return changes


def _query(wh: Warehouse, schema: str, text: str) -> list[tuple[Any, ...]]:
    return wh.query(render(statement(text, schema), wh.dialect))


def _deployed(wh: Warehouse, schema: str) -> dict[str, Deployed]:
    # a state schema from before flows could be paused has no paused_at yet: none is paused
    paused = "paused_at" if "paused_at" in wh.columns(schema, "flows") else "null"
    rows = _query(wh, schema, f"select flow_id, version, removed_at, {paused} from flowhouse.flows")
    return {r[0]: (r[1], r[2], r[3]) for r in rows}


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
