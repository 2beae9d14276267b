"""What one tick works with: the warehouse, the state schema, the time, the compiled flows."""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlglot import exp

from flowhouse.core.sql import render, statement
from flowhouse.core.warehouse import Warehouse
from flowhouse.flows.compile import CompiledFlow
from flowhouse.flows.settings import Settings


@dataclass
class Context:
    wh: Warehouse
    schema: str
    now: datetime
    previous: datetime | None
    flows: list[CompiledFlow]
    settings: Settings
    counts: dict[str, int] = field(default_factory=dict)
    #: When set, statements read this table instead of ``core.events`` (see :meth:`reading`).
    events_source: str | None = None
    #: Statements rendered once per tick (they depend on the flows, not on the data).
    rendered: dict[str, str] = field(default_factory=dict)
    _rendered_sql: dict[Any, tuple[str, list[Any]]] = field(default_factory=dict, repr=False)
    _memo: dict[str, Any] = field(default_factory=dict, repr=False)

    def sql(self, text: str, **values: Any) -> str:
        """`text` rendered for the warehouse. Within a tick the same statement with the same
        values (expressions: the same objects, see :meth:`memo`) is rendered once."""
        key = (text, self.events_source, tuple(sorted(_keyed(values).items())))
        if key not in self._rendered_sql:
            # the values stay referenced so that an expression's id cannot be reused
            self._rendered_sql[key] = (self._render(text, values), list(values.values()))
        return self._rendered_sql[key][0]

    def memo(self, key: str, build: Any) -> Any:
        """`build()`, computed once per tick (flow-derived expressions do not change within it)."""
        if key not in self._memo:
            self._memo[key] = build()
        return self._memo[key]

    def _render(self, text: str, values: dict[str, Any]) -> str:
        tree = statement(text, self.schema, **values)
        if self.events_source:
            source = exp.to_table(self.events_source)
            for table in tree.find_all(exp.Table):
                if table.db == "core" and table.name == "events":
                    table.set("this", source.this.copy())
                    table.set("db", None)
        return render(tree, self.wh.dialect)

    @contextmanager
    def reading(self, events: str | None) -> Iterator[None]:
        """Statements inside read `events` (e.g. the tick's window of new events) for
        ``core.events``: the same rows they would select there, from a much smaller table."""
        before, self.events_source = self.events_source, events
        try:
            yield
        finally:
            self.events_source = before

    def run(self, text: str, **values: Any) -> None:
        self.wh.execute(self.sql(text, **values))

    def rows(self, text: str, **values: Any) -> list[tuple[Any, ...]]:
        return self.wh.query(self.sql(text, **values))

    def value(self, text: str, **values: Any) -> Any:
        rows = self.rows(text, **values)
        return rows[0][0] if rows else None

    def temp(self, name: str, text: str, **values: Any) -> int:
        """(Re)create temp table `name` as the query `text`; returns its row count."""
        if self.wh.dialect == "duckdb":
            create = f"create or replace temp table {name} as {text}"
        else:
            self.wh.execute(f"drop table if exists {name}")
            create = f"create temp table {name} as {text}"
        return self.wh.execute_count(self.sql(create, **values))

    def flow(self, flow_id: str) -> CompiledFlow:
        return next(f for f in self.flows if f.id == flow_id)

    def add(self, key: str, n: int) -> None:
        self.counts[key] = self.counts.get(key, 0) + n


def _keyed(values: dict[str, Any]) -> dict[str, Any]:
    return {k: ("expr", id(v)) if isinstance(v, exp.Expr) else (type(v).__name__, v)
            for k, v in values.items()}  # fmt: skip


def per_step(
    flows: Iterable[CompiledFlow],
    build: Any,
    kinds: Iterable[str],
    default: exp.Expr | None = None,
    on: str = "event",
) -> exp.Expr:
    """``case`` over (flow_id, step_id) of the due row: ``build(flow, step)`` for each step of
    `kinds` (skipped where it returns None)."""
    wanted = set(kinds)
    case = exp.Case()
    found = False
    for f in flows:
        for s in f.steps:
            if s.kind not in wanted:
                continue
            then = build(f, s)
            if then is None:
                continue
            found = True
            case = case.when(
                exp.and_(
                    exp.column("flow_id", on).eq(exp.Literal.string(f.id)),
                    exp.column("step_id", on).eq(exp.Literal.string(s.step_id)),
                ),
                then,
            )
    if not found:
        return default if default is not None else exp.null()
    return case.else_(default) if default is not None else case


def per_flow(
    flows: Iterable[CompiledFlow], build: Any, default: exp.Expr | None = None, on: str = "event"
) -> exp.Expr:
    """``case`` over the row's flow_id: ``build(flow)`` for each flow (skipped where None)."""
    case = exp.Case()
    found = False
    for f in flows:
        then = build(f)
        if then is None:
            continue
        found = True
        case = case.when(exp.column("flow_id", on).eq(exp.Literal.string(f.id)), then)
    if not found:
        return default if default is not None else exp.null()
    return case.else_(default) if default is not None else case
