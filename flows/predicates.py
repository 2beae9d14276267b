"""SQL predicates in flow files: parse with sqlglot, accept only safe boolean expressions, and check
every column against what really exists.

A predicate names columns through two tables:

- ``customer.<attribute>`` — a column of ``core.customer_attributes`` (documented in
  ``models/customers/customer_attributes.yml``);
- ``event.<column or property>`` — a column of the event (``event_id``, ``occurred_at``, ...) or a
  key of its ``properties`` (``event.cart_id``, ``event.value``).

Only expressions are accepted: no statements, no subqueries, and no function sqlglot does not know
(so nothing can read files, settings or other tables).
"""

from __future__ import annotations

import difflib
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from functools import cache
from pathlib import Path

import sqlglot
import yaml
from sqlglot import exp
from sqlglot.errors import ParseError

from flowhouse.core.contract import EVENTS
from flowhouse.core.paths import MODELS

CUSTOMER_MODEL = MODELS / "customers" / "customer_attributes.yml"
EVENT_COLUMNS = frozenset(EVENTS.column_names)

#: Statement-like or state-reading nodes that never belong in a predicate.
_FORBIDDEN: tuple[type[exp.Expr], ...] = (
    exp.Select, exp.Subquery, exp.Union, exp.Insert, exp.Update, exp.Delete, exp.Create,
    exp.Drop, exp.Command, exp.Pragma, exp.Set, exp.Use, exp.Copy, exp.Merge, exp.Alter,
)  # fmt: skip


#: Functions that read files, settings or the environment (by name prefix).
_FORBIDDEN_FUNCTIONS = (
    "READ_", "GETENV", "CURRENT_SETTING", "GLOB", "PARQUET_", "SNIFF_", "QUERY", "PG_", "DUCKDB_",
)  # fmt: skip
_BOOLEAN_NODES: tuple[type[exp.Expr], ...] = (
    exp.Predicate, exp.Connector, exp.Not, exp.Boolean, exp.Column, exp.RegexpLike,
    exp.StartsWith, exp.ArrayContains, exp.Xor,
)  # fmt: skip


def _is_boolean(node: exp.Expr) -> bool:
    if isinstance(node, exp.Paren):
        return _is_boolean(node.this)
    return isinstance(node, _BOOLEAN_NODES)


def _name(node: exp.Func) -> str:
    return node.name if isinstance(node, exp.Anonymous) else node.sql_name()


@dataclass(frozen=True)
class PredicateError:
    message: str
    value: str | None = None


@cache
def customer_columns(model_yml: Path = CUSTOMER_MODEL) -> frozenset[str]:
    """Columns of ``core.customer_attributes``, as its model documentation lists them."""
    doc = yaml.safe_load(model_yml.read_text())
    model = next(m for m in doc["models"] if m["name"] == "customer_attributes")
    return frozenset(c["name"] for c in model["columns"])


def _suggest(name: str, known: Iterable[str]) -> str:
    close = difflib.get_close_matches(name, sorted(known), n=3, cutoff=0.6)
    return f"; did you mean {', '.join(close)}?" if close else ""


def check_predicate(
    sql: str,
    tables: Mapping[str, frozenset[str] | None],
) -> list[PredicateError]:
    """Every problem with `sql` as a predicate over `tables` (name -> columns; None: any)."""
    try:
        tree = sqlglot.parse_one(sql, read="duckdb")
    except ParseError as err:
        first = err.errors[0] if err.errors else {}
        return [PredicateError(f"not valid SQL: {first.get('description', err)}", sql)]
    problems = [
        PredicateError(
            f"only an expression is allowed here, not {type(node).__name__.upper()}", sql
        )
        for node in tree.walk()
        if isinstance(node, _FORBIDDEN)
    ]
    if problems:
        return problems[:1]
    if not _is_boolean(tree):
        return [
            PredicateError("expected a boolean expression such as customer.order_count > 0", sql)
        ]
    problems += [
        PredicateError(f"function {_name(node)}() is not allowed in a predicate", _name(node))
        for node in tree.find_all(exp.Func)
        if isinstance(node, exp.Anonymous) or _name(node).upper().startswith(_FORBIDDEN_FUNCTIONS)
    ]
    problems += _column_problems(tree, tables)
    return problems


def _column_problems(
    tree: exp.Expr, tables: Mapping[str, frozenset[str] | None]
) -> Iterable[PredicateError]:
    for column in tree.find_all(exp.Column):
        table, name = column.table, column.name
        if not table:
            yield PredicateError(
                f"column {name!r} needs its table: "
                + " or ".join(f"{t}.{name}" for t in sorted(tables)),
                name,
            )
            continue
        if table not in tables:
            yield PredicateError(
                f"unknown table {table!r}; expected {' or '.join(sorted(tables))}", table
            )
            continue
        known = tables[table]
        if known is not None and name not in known:
            yield PredicateError(f"unknown column {table}.{name}{_suggest(name, known)}", name)


def event_and_customer() -> dict[str, frozenset[str] | None]:
    """Tables a trigger predicate sees: the event (any property) and the customer's attributes."""
    return {"event": None, "customer": customer_columns()}


def customer_only() -> dict[str, frozenset[str] | None]:
    return {"customer": customer_columns()}
