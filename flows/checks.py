"""Checks a flow must pass beyond its shape: SQL predicates (their columns, the trigger's event
properties and the types of the literals they compare), the event types, segment and entry key it
names (:mod:`flowhouse.flows.vocabulary`), unique step ids, split weights."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import Any

from flowhouse.flows.flowfile import (
    METRIC_CHANNELS,
    Arm,
    Branch,
    Filter,
    Flow,
    Send,
    Split,
    Step,
    Suppress,
    WaitFor,
)
from flowhouse.flows.predicates import Columns, check_predicate, customer_only, event_and_customer
from flowhouse.flows.vocabulary import Vocabulary, suggest

Loc = tuple[str | int, ...]
Finding = tuple[Loc, str, Any]


def walk_steps(steps: Sequence[Step], loc: Loc) -> Iterator[tuple[Step, Loc]]:
    """Every step, nested ones included, with its location in the file."""
    for i, step in enumerate(steps):
        here = (*loc, i)
        yield step, here
        if isinstance(step, Branch):
            for j, path in enumerate(step.branch):
                yield from walk_steps(path.steps, (*here, "branch", j, "steps"))
        elif isinstance(step, Split):
            for j, arm in enumerate(step.split):
                yield from walk_steps(arm.steps, (*here, "split", j, "steps"))
        elif isinstance(step, WaitFor):
            yield from walk_steps(step.on_event, (*here, "on_event"))
            yield from walk_steps(step.on_timeout, (*here, "on_timeout"))


Tables = dict[str, Columns]


def flow_predicates(flow: Flow) -> Iterator[tuple[Loc, str]]:
    """Every predicate of ``flow`` (SQL text) and where it is in the file."""
    for loc, sql, _, _ in _predicates(flow, Vocabulary()):
        yield loc, sql


def _predicates(flow: Flow, vocabulary: Vocabulary) -> Iterator[tuple[Loc, str, Tables, str]]:
    """Every predicate, the tables it sees and the event type ``event`` is."""
    trigger = flow.trigger.event
    declared = vocabulary.customer_properties
    both = event_and_customer(vocabulary.properties(trigger), declared)
    customer = customer_only(declared)
    for loc, sql, tables in _predicates_of(flow, both, customer):
        yield loc, sql, tables, trigger
    for step, loc in walk_steps(flow.steps, ("steps",)):
        if isinstance(step, WaitFor) and step.wait_for.where:
            awaited = step.wait_for.event
            tables = event_and_customer(vocabulary.properties(awaited), declared)
            yield (*loc, "wait_for", "where"), step.wait_for.where, tables, awaited


def _predicates_of(flow: Flow, both: Tables, customer: Tables) -> Iterator[tuple[Loc, str, Tables]]:
    if flow.trigger.where:
        yield ("trigger", "where"), flow.trigger.where, both
    if flow.audience.where:
        yield ("audience", "where"), flow.audience.where, customer
    if flow.exit.where:
        yield ("exit", "where"), flow.exit.where, both
    if isinstance(flow.filter, str):
        yield ("filter",), flow.filter, customer
    elif flow.filter and flow.filter.where:
        yield ("filter", "where"), flow.filter.where, customer
    if isinstance(flow.suppress, str):
        yield ("suppress",), flow.suppress, both
    elif flow.suppress and flow.suppress.where:
        yield ("suppress", "where"), flow.suppress.where, both
    for step, loc in walk_steps(flow.steps, ("steps",)):
        if isinstance(step, Branch):
            for j, path in enumerate(step.branch):
                if path.when:
                    yield (*loc, "branch", j, "when"), path.when, both


def check_flow(flow: Flow, vocabulary: Vocabulary | None = None) -> Iterator[Finding]:
    """Every problem with ``flow`` beyond its shape; names are checked against ``vocabulary``
    (default: flowhouse's event types and the project's segments)."""
    vocabulary = vocabulary or Vocabulary()
    yield from _names(flow, vocabulary)
    for loc, sql, tables, event_type in _predicates(flow, vocabulary):
        for problem in check_predicate(sql, tables, {"event": event_type}):
            yield loc, problem.message, problem.value
    seen: dict[str, Loc] = {}
    for step, loc in walk_steps(flow.steps, ("steps",)):
        if step.id in seen:
            yield (*loc, "id"), "duplicate step id; ids must be unique within a flow", step.id
        seen.setdefault(step.id, loc)
        if isinstance(step, Branch):
            yield from _check_branch(step, loc)
        if isinstance(step, Split):
            yield from _check_split(step, loc)
            yield from _check_auto_winner(step, loc)


def _check_split(step: Split, loc: Loc) -> Iterator[Finding]:
    if not step.split:
        yield (*loc, "split"), "a split needs at least one arm", None
    elif len({a.name for a in step.split}) != len(step.split):
        yield (*loc, "split"), "split arm names must be unique", None
    elif not any(a.weight > 0 for a in step.split):
        yield (
            (*loc, "split"),
            "at least one arm needs a weight above 0 (an arm weighted 0 gets nobody new)",
            None,
        )


def arm_sends(arm: Arm) -> list[Send]:
    """The send steps of an arm, nested ones included."""
    return [s for s, _ in walk_steps(arm.steps, ()) if isinstance(s, Send)]


def candidates(step: Split) -> list[Arm]:
    """The arms an automatic decision chooses from: weighted, and not the split's holdout."""
    return [a for a in step.split if a.weight > 0 and not a.is_holdout]


def _check_auto_winner(step: Split, loc: Loc) -> Iterator[Finding]:
    rule = step.auto_winner
    if rule is None:
        return
    arms = candidates(step)
    if len(arms) < 2:
        yield (
            (*loc, "auto_winner"),
            "an automatic winner needs two arms to choose from: arms with steps and a weight "
            "above 0 (an arm without steps is the split's holdout; it never wins)",
            [a.name for a in arms],
        )
        return
    channels = METRIC_CHANNELS.get(rule.metric)
    if channels is None:
        return
    for j, arm in enumerate(step.split):
        if arm in arms and not any(s.send.channel in channels for s in arm_sends(arm)):
            yield (
                (*loc, "split", j, "steps"),
                f"arm {arm.name} sends no {' or '.join(channels)} message: its "
                f"{rule.metric.replace('_', ' ')} cannot be measured",
                arm.name,
            )


def _check_branch(step: Branch, loc: Loc) -> Iterator[Finding]:
    for j, path in enumerate(step.branch):
        last = j == len(step.branch) - 1
        if path.otherwise and path.when:
            yield (*loc, "branch", j), "a path has either when: or else: true, not both", None
        elif not path.otherwise and not path.when:
            yield (*loc, "branch", j), "a path needs when: <predicate> (or else: true)", None
        elif path.otherwise and not last:
            yield (*loc, "branch", j), "else: must be the last path", None


def _names(flow: Flow, vocabulary: Vocabulary) -> Iterator[Finding]:
    """The event types, segment and entry key the flow names."""
    events: list[tuple[Loc, str]] = [
        (("exit", "events", i), e) for i, e in enumerate(flow.exit.events)
    ]
    events.append((("goal", "event"), flow.goal.event))
    events += [
        ((*loc, "wait_for", "event"), step.wait_for.event)
        for step, loc in walk_steps(flow.steps, ("steps",))
        if isinstance(step, WaitFor)
    ]
    problem = vocabulary.check_event_type(flow.trigger.event, trigger=True)
    if problem:
        yield ("trigger", "event"), problem, flow.trigger.event
    events += list(_recent_events(flow))
    for loc, name in events:
        problem = vocabulary.check_event_type(name)
        if problem:
            yield loc, problem, name
    for loc, name in memberships(flow, "segment"):
        problem = vocabulary.check_segment(name)
        if problem:
            yield loc, problem, name
    yield from _entry_key(flow, vocabulary)


def memberships(flow: Flow, kind: str) -> Iterator[tuple[Loc, str]]:
    """The segments (``kind`` segment) or lists (``list``) the audience and the filter name, in
    or out, and where."""
    for part, spec in (("audience", flow.audience), ("filter", flow.filter)):
        if spec is None or isinstance(spec, str):
            continue
        for field in (kind, f"not_{kind}"):
            name = getattr(spec, field)
            if name:
                yield (part, field), name


def _recent_events(flow: Flow) -> Iterator[tuple[Loc, str]]:
    """The event types the filter and the suppression look for in the customer's recent events."""
    if isinstance(flow.filter, Filter) and flow.filter.no_recent_event:
        for i, name in enumerate(flow.filter.no_recent_event):
            yield ("filter", "no_recent_event", i), name
    if isinstance(flow.suppress, Suppress) and flow.suppress.recent_event:
        for i, name in enumerate(flow.suppress.recent_event):
            yield ("suppress", "recent_event", i), name


def _entry_key(flow: Flow, vocabulary: Vocabulary) -> Iterator[Finding]:
    key, trigger = flow.entry.key, flow.trigger.event
    properties = vocabulary.properties(trigger)
    if key and properties is not None and key not in properties:
        yield (
            ("entry", "key"),
            f"{trigger} events have no property {key}{suggest(key, properties)}",
            key,
        )
