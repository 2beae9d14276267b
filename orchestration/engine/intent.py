"""Destructive changes need intent: a tick never ends enrollments in flight by removing their flow
or step unless that removal was approved.

A removal is approved by ticking with ``--allow-removals`` (:attr:`Approval.everything`), or by
a reviewed plan: ``flowhouse plan --out plan.json`` writes the plan with a hash of the flow files
it was made from (each flow's id, version and state), and ``flowhouse apply plan.json`` runs the
tick with that plan's removals approved, refusing when the flow files are no longer the ones
reviewed. Anything else stops the tick, which changes nothing, with :class:`RemovalsNeedIntent`.

``flowhouse plan`` also writes Markdown for a pull-request comment (:func:`markdown`).
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from flowhouse.core.errors import ConfigError, FlowhouseError
from flowhouse.flows.compile import CompiledFlow
from flowhouse.orchestration.engine.plan import FlowPlan, Removal, removals

PLAN_FORMAT = 1


class RemovalsNeedIntent(FlowhouseError):
    """The flow files remove flows or steps with enrollments in flight, and nobody approved it."""

    def __init__(self, pending: list[Removal]) -> None:
        self.removals = pending
        listed = "\n".join(f"  - {r}" for r in pending)
        super().__init__(
            "the flow files remove flows or steps with enrollments in flight; the tick changed "
            f"nothing:\n{listed}\nReview the change with `flowhouse plan --out plan.json` and "
            "apply it with `flowhouse apply plan.json`, or tick with --allow-removals"
        )


def fingerprint(flows: list[CompiledFlow]) -> str:
    """A hash of the flow files as the engine sees them: each flow's id, version and state."""
    canonical = json.dumps(sorted([f.id, f.version, f.flow.state] for f in flows))
    return hashlib.md5(canonical.encode()).hexdigest()[:16]


@dataclass(frozen=True)
class ReviewedPlan:
    """A plan file read back: the flow files it was made from and the removals it shows."""

    path: str
    flows_hash: str
    removals: frozenset[str]

    def check_flows(self, flows: list[CompiledFlow]) -> None:
        now = fingerprint(flows)
        if now != self.flows_hash:
            raise ConfigError(
                f"{self.path}: the flow files changed since the plan was made; make a new plan "
                "and review it",
                value=now,
                expected=f"the flow files of the plan (hash {self.flows_hash})",
            )


@dataclass(frozen=True)
class Approval:
    """Which removals with enrollments in flight a tick may make."""

    everything: bool = False
    reviewed: ReviewedPlan | None = None

    def allows(self, removal: Removal) -> bool:
        return self.everything or (
            self.reviewed is not None and removal.key in self.reviewed.removals
        )


#: No removal of enrollments in flight approved: what a tick makes without intent.
NO_APPROVAL = Approval()


def check(plans: list[FlowPlan], flows: list[CompiledFlow], approval: Approval) -> None:
    """Raise unless every removal with enrollments in flight is approved (and a reviewed plan's
    flow files are the ones given)."""
    if approval.reviewed is not None:
        approval.reviewed.check_flows(flows)
    pending = [r for r in removals(plans) if not approval.allows(r)]
    if pending:
        raise RemovalsNeedIntent(pending)


# -- the plan file ------------------------------------------------------------------------------


def plan_json(plans: list[FlowPlan], flows: list[CompiledFlow], made_at: datetime) -> str:
    document: dict[str, Any] = {
        "flowhouse_plan": PLAN_FORMAT,
        "made_at": made_at.isoformat(sep=" "),
        "flows_hash": fingerprint(flows),
        "flows": [
            {
                "flow": p.flow_id,
                "status": p.status,
                "change": p.head(),
                "deployed_version": p.deployed_version,
                "version": p.version,
                "active": p.active,
                "steps": [
                    {"step": s.step_id, "change": s.change, "active": s.active} for s in p.steps
                ],
                "consequences": p.consequences(),
            }
            for p in plans
        ],
        "removals": [
            {"flow": r.flow_id, "step": r.step_id, "active": r.active} for r in removals(plans)
        ],
    }
    return json.dumps(document, indent=2)


def read_plan(path: Path) -> ReviewedPlan:
    """A plan written by ``flowhouse plan --out FILE.json``."""
    expected = "a plan written by `flowhouse plan --out plan.json`"
    try:
        document = json.loads(path.read_text())
    except FileNotFoundError:
        raise ConfigError("no such plan file", value=str(path), expected=expected) from None
    except (json.JSONDecodeError, UnicodeDecodeError) as err:
        raise ConfigError(f"{path}: not a JSON plan ({err})", expected=expected) from None
    if not isinstance(document, dict) or document.get("flowhouse_plan") != PLAN_FORMAT:
        raise ConfigError(f"{path}: not a flowhouse plan", expected=expected)
    try:
        keys = frozenset(
            r["flow"] if r["step"] is None else f"{r['flow']}.{r['step']}"
            for r in document["removals"]
        )
        return ReviewedPlan(str(path), str(document["flows_hash"]), keys)
    except (KeyError, TypeError):
        raise ConfigError(f"{path}: a damaged plan", expected=expected) from None


# -- Markdown, for a pull-request comment --------------------------------------------------------


def markdown(plans: list[FlowPlan], flows: list[CompiledFlow]) -> str:
    changing = [p for p in plans if p.changes]
    out = [
        "### flowhouse plan",
        "",
        f"**{len(changing)} of {len(plans)} flow(s) change at the next tick.** "
        f"Flow files `{fingerprint(flows)}`.",
        "",
    ]
    if changing:
        out += [
            "| | flow | change | in flight | what the next tick does |",
            "|---|---|---|---:|---|",
        ]
        out += [_row(p) for p in changing]
        out.append("")
    for label, status in (("Unchanged", "unchanged"), ("Drafts (not deployed)", "draft")):
        names = [f"`{p.flow_id}`" for p in plans if p.status == status]
        if names:
            out += [f"{label}: {', '.join(names)}", ""]
    pending = removals(plans)
    if pending:
        out += [
            "> [!WARNING]",
            "> This change ends enrollments in flight. A tick refuses it until it is approved:",
            "> `flowhouse apply plan.json` (this plan, with `--out plan.json`) or "
            "`flowhouse tick --allow-removals`.",
            ">",
            *[f"> - {r}" for r in pending],
            "",
        ]
    return "\n".join(out)


def _row(p: FlowPlan) -> str:
    sign = {"new": "+", "changed": "~", "removed": "-", "paused": "⏸", "resumed": "▶"}
    return f"| {sign.get(p.status, '')} | `{p.flow_id}` | {p.head()} | {p.active} | {_does(p)} |"


def _does(p: FlowPlan) -> str:
    """The last cell of a flow's row: its step changes and what happens to its enrollments."""
    if p.status == "new":
        parts = [f"goes live now with {len(p.steps)} step(s)"]
    elif p.status == "changed":
        parts = [f"`{line}`" for line in p.step_lines()] or ["deploys the new version"]
    elif p.status == "removed" and not p.active:
        parts = ["no enrollment in flight"]
    else:
        parts = []
    return "<br>".join(parts + p.consequences())
