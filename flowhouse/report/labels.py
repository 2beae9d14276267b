"""Each step of a flow, and each path out of a branch, split or wait, described in words for the
diagram: a title (``Email``, ``Wait 23 hours``) and a detail (the subject, the condition)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import timedelta

from flowhouse.flows.channels import CHANNELS as REGISTRY
from flowhouse.flows.flowfile import (
    Action,
    ActionSpec,
    Branch,
    Flow,
    Send,
    Split,
    Step,
    UntilTime,
    Wait,
    WaitFor,
    WaitUntil,
)


@dataclass(frozen=True)
class Label:
    """What a box says: its kind (a CSS class), a title and detail lines (unwrapped)."""

    kind: str
    title: str
    detail: tuple[str, ...] = ()


@dataclass(frozen=True)
class PathSpec:
    """One way out of a branch, split or wait_for: its key in marts.flow_branches, its label and
    its steps."""

    key: str
    label: Label
    steps: tuple[Step, ...]


#: A send step's title, by channel.
CHANNELS = {c.name: c.label for c in REGISTRY.values()}
_WEEKDAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")


def duration_words(value: timedelta) -> str:
    """``timedelta(hours=23)`` -> ``23 hours``; ``1d12h`` -> ``1 day 12 hours``."""
    seconds = int(value.total_seconds())
    if seconds and seconds % (7 * 86400) == 0:
        return _plural(seconds // (7 * 86400), "week")
    parts = []
    for unit, size in (("day", 86400), ("hour", 3600), ("minute", 60), ("second", 1)):
        if seconds >= size:
            parts.append(_plural(seconds // size, unit))
            seconds %= size
    return " ".join(parts) or "no time"


def _plural(n: int, unit: str) -> str:
    return f"{n} {unit}" if n == 1 else f"{n} {unit}s"


def until_words(u: UntilTime) -> str:
    """``until Sat or Sun, 10:00``; ``until 3 days before birthday, 09:00``."""
    at = f", {u.time}" if u.time else ""
    if u.date:
        attribute = u.date.removeprefix("customer.").replace("_", " ")
        if u.offset:
            side = "before" if u.before else "after"
            return f"until {duration_words(u.offset)} {side} {attribute}{at}"
        return f"until {attribute}{at}"
    if u.weekdays:
        return f"until {_weekdays(u.weekdays)}{at}"
    return f"until {u.time}"


def _weekdays(days: Sequence[str]) -> str:
    ordered = [d for d in _WEEKDAYS if d in days]
    if ordered == list(_WEEKDAYS[:5]):
        return "a weekday"
    names = [d.capitalize() for d in ordered]
    return names[0] if len(names) == 1 else ", ".join(names[:-1]) + " or " + names[-1]


def step_label(step: Step, flow: Flow) -> Label:
    """The box of one step."""
    if isinstance(step, Send):
        return _send(step)
    if isinstance(step, Wait):
        return Label("wait", f"Wait {duration_words(step.wait)}")
    if isinstance(step, WaitUntil):
        return Label("wait", "Wait " + until_words(step.wait_until), ("in the customer's time",))
    if isinstance(step, WaitFor):
        return _wait_for(step, flow)
    if isinstance(step, Branch):
        return Label("branch", "Conditional split", ("first matching path wins",))
    if isinstance(step, Split):
        return _split(step)
    assert isinstance(step, Action)
    return _action(step.action)


def _send(step: Send) -> Label:
    m = step.send
    shown = m.subject or m.title  # a push's or an onsite message's title
    detail = [f"“{shown}”" if shown else m.template]
    if m.coupon_pool:
        detail.append(f"with a {m.coupon_pool} code")
    return Label(f"send {m.channel}", CHANNELS.get(m.channel, m.channel), tuple(detail))


def _wait_for(step: WaitFor, flow: Flow) -> Label:
    w = step.wait_for
    detail = f"up to {duration_words(w.timeout)}"
    if w.same_key:
        detail += f", same {(flow.entry.key or 'key').replace('_', ' ')}"
    return Label("wait_for", f"Wait for {w.event}", (detail, *((w.where,) if w.where else ())))


def _split(step: Split) -> Label:
    kind = "A/B test" if len(step.split) == 2 else f"A/B/n test ({len(step.split)} arms)"
    return Label("split", kind, ("random, by a stable hash",))


_ACTIONS = {
    "add_tag": ("Add tag", "tag"),
    "remove_tag": ("Remove tag", "tag"),
    "add_to_list": ("Add to list", "list"),
    "remove_from_list": ("Remove from list", "list"),
    "coupon": ("Issue a coupon", "pool"),
    "loyalty_points": ("Give loyalty points", "points"),
    "change_tier": ("Change tier", "tier"),
    "admin_task": ("Admin task", "task"),
    "webhook": ("Call a webhook", "url"),
    "audience_sync": ("Sync to an audience", "audience"),
}


def _action(a: ActionSpec) -> Label:
    if a.type == "set_property":
        return Label("action", "Set a profile property", (f"{a.property} = {a.value}",))
    title, field = _ACTIONS[a.type]
    value = getattr(a, field)
    return Label("action", title, (str(value),) if value is not None else ())


def paths(step: Step, flow: Flow) -> tuple[PathSpec, ...]:
    """The ways out of a branch, split or wait_for, in flow-file order (none for other steps)."""
    if isinstance(step, Branch):
        return tuple(
            PathSpec(
                "else" if p.otherwise else f"path_{i + 1}",
                Label("path", "Everyone else" if p.otherwise else f"If {p.when}"),
                tuple(p.steps),
            )
            for i, p in enumerate(step.branch)
        )
    if isinstance(step, Split):
        return _arms(step)
    if isinstance(step, WaitFor):
        timeout = f"No {step.wait_for.event} in {duration_words(step.wait_for.timeout)}"
        return (
            PathSpec("event_received", Label("path", f"{step.wait_for.event} happened"),
                     tuple(step.on_event)),
            PathSpec("timed_out", Label("path", timeout), tuple(step.on_timeout)),
        )  # fmt: skip
    return ()


def _arms(step: Split) -> tuple[PathSpec, ...]:
    total = sum(a.weight for a in step.split)
    out = []
    for i, arm in enumerate(step.split):
        share = f"{arm.weight / total * 100:.0f}% of enrollees" if arm.weight else "ended"
        role = " (control)" if i == 0 else ""
        out.append(
            PathSpec(arm.name, Label("path", f"{arm.name}{role}", (share,)), tuple(arm.steps))
        )
    return tuple(out)


def trigger_label(flow: Flow) -> Label:
    detail = [f"where {flow.trigger.where}"] if flow.trigger.where else []
    a = flow.audience
    if a.where or a.segment or a.list or a.not_segment or a.not_list:
        detail.append("audience: " + _audience(flow))
    return Label("trigger", f"When {flow.trigger.event}", tuple(detail))


def _audience(flow: Flow) -> str:
    a = flow.audience
    parts = [f"segment {a.segment}" if a.segment else "", f"list {a.list}" if a.list else ""]
    parts += [f"not segment {a.not_segment}" if a.not_segment else ""]
    parts += [f"not list {a.not_list}" if a.not_list else ""]
    return " and ".join(p for p in (*parts, a.where or "") if p)
