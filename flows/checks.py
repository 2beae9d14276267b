"""Checks a flow must pass beyond its shape: SQL predicates, unique step ids, split weights."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import Any

from flows.flowfile import Branch, Flow, Split, Step, WaitFor
from flows.predicates import check_predicate, customer_only, event_and_customer

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


def _predicates(flow: Flow) -> Iterator[tuple[Loc, str, dict[str, frozenset[str] | None]]]:
    both, customer = event_and_customer(), customer_only()
    if flow.trigger.where:
        yield ("trigger", "where"), flow.trigger.where, both
    if flow.audience.where:
        yield ("audience", "where"), flow.audience.where, customer
    if flow.exit.where:
        yield ("exit", "where"), flow.exit.where, both
    if flow.filter:
        yield ("filter",), flow.filter, customer
    if flow.suppress:
        yield ("suppress",), flow.suppress, both
    for step, loc in walk_steps(flow.steps, ("steps",)):
        if isinstance(step, Branch):
            for j, path in enumerate(step.branch):
                if path.when:
                    yield (*loc, "branch", j, "when"), path.when, both
        if isinstance(step, WaitFor) and step.wait_for.where:
            yield (*loc, "wait_for", "where"), step.wait_for.where, both


def check_flow(flow: Flow) -> Iterator[Finding]:
    for loc, sql, tables in _predicates(flow):
        for problem in check_predicate(sql, tables):
            yield loc, problem.message, problem.value
    seen: dict[str, Loc] = {}
    for step, loc in walk_steps(flow.steps, ("steps",)):
        if step.id in seen:
            yield (*loc, "id"), "duplicate step id; ids must be unique within a flow", step.id
        seen.setdefault(step.id, loc)
        if isinstance(step, Branch):
            yield from _check_branch(step, loc)
        if isinstance(step, Split) and len({a.name for a in step.split}) != len(step.split):
            yield (*loc, "split"), "split arm names must be unique", None


def _check_branch(step: Branch, loc: Loc) -> Iterator[Finding]:
    for j, path in enumerate(step.branch):
        last = j == len(step.branch) - 1
        if path.otherwise and path.when:
            yield (*loc, "branch", j), "a path has either when: or else: true, not both", None
        elif not path.otherwise and not path.when:
            yield (*loc, "branch", j), "a path needs when: <predicate> (or else: true)", None
        elif path.otherwise and not last:
            yield (*loc, "branch", j), "else: must be the last path", None
