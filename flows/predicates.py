"""SQL predicates in flow files: parse with sqlglot, accept only safe boolean expressions, and check
every column against what really exists.

A predicate names columns through two tables:

- ``customer.<attribute>`` — a column of ``core.customer_attributes`` (documented in
  ``models/customers/customer_attributes.yml``);
- ``customer.properties.<key>`` — a customer property the store declares (``customer_properties``
  in ``_settings.yml``), of its declared type (the column ``properties__<key>`` of the attributes);
- ``event.<column or property>`` — a column of the event (``event_id``, ``occurred_at``, ...) or a
  key of its ``properties`` (``event.cart_id``, ``event.value``), as the event contract
  (:data:`flowhouse.core.contract.EVENT_PROPERTIES`) declares them for the event's type.

Where a column's type is known, a literal compared with it must be of that type: ``event.value >=
'ten'`` compares a number with text, which the warehouse would answer with no match, never an error.

Only expressions are accepted: no statements, no subqueries, and no function sqlglot does not know
(so nothing can read files, settings or other tables). A predicate runs for every row of every tick,
so it is bounded too: no function that generates a set or a value of unbounded size
(``generate_series``, ``range``, ``repeat``, ``lpad``, ``unnest``, lambdas), no aggregate or window
function, and limits on its length, nesting, size and literals (:data:`LIMITS`).
"""

from __future__ import annotations

import difflib
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

import sqlglot
from sqlglot import exp
from sqlglot.errors import ParseError, TokenError

from flowhouse.core.contract import EVENTS
from flowhouse.flows.dbtmodels import customer_attributes

EVENT_COLUMNS = frozenset(EVENTS.column_names)

#: A table's columns: their names, or their names and types (``text``, ``number``, ``boolean``,
#: ``timestamp``, ``list``, ``object``; ``""``: unknown); None: any column.
Columns = frozenset[str] | Mapping[str, str] | None

#: The warehouse types of the models' ``data_type`` and the contract's, as predicates compare them.
_TYPES = {
    "text": "text", "varchar": "text", "string": "text", "integer": "number", "bigint": "number",
    "numeric": "number", "decimal": "number", "double": "number", "number": "number",
    "boolean": "boolean", "timestamp": "timestamp", "date": "timestamp", "json": "object",
    "object": "object", "list": "list",
}  # fmt: skip
#: Event columns and their types.
EVENT_COLUMN_TYPES: dict[str, str] = {c.name: _TYPES[c.type] for c in EVENTS.columns}

#: Statement-like or state-reading nodes that never belong in a predicate.
_FORBIDDEN: tuple[type[exp.Expr], ...] = (
    exp.Select, exp.Subquery, exp.Union, exp.Insert, exp.Update, exp.Delete, exp.Create,
    exp.Drop, exp.Command, exp.Pragma, exp.Set, exp.Use, exp.Copy, exp.Merge, exp.Alter,
)  # fmt: skip


#: Functions that read files, settings or the environment (by name prefix).
_FORBIDDEN_FUNCTIONS = (
    "READ_", "GETENV", "CURRENT_SETTING", "GLOB", "PARQUET_", "SNIFF_", "QUERY", "PG_", "DUCKDB_",
)  # fmt: skip
#: Functions that generate sets or values of unbounded size: one call can exhaust the warehouse's
#: memory on every tick.
_UNBOUNDED: tuple[type[exp.Expr], ...] = (
    exp.GenerateSeries, exp.GenerateDateArray, exp.GenerateTimestampArray,
    exp.Repeat, exp.Pad, exp.Space, exp.Format, exp.Explode, exp.Unnest, exp.Inline,
    exp.Transform, exp.ArrayFilter, exp.Reduce, exp.Lambda,
)  # fmt: skip
_UNBOUNDED_NAMES = ("RANGE", "GENERATE_", "REPEAT", "LPAD", "RPAD", "UNNEST", "PRINTF", "LIST_")
#: What a user wrote, where sqlglot names a function otherwise.
_WRITTEN = {
    "GENERATE_SERIES": "range()/generate_series", "PAD": "lpad()/rpad", "EXPLODE": "unnest",
    "TRANSFORM": "list_transform", "ARRAY_FILTER": "list_filter",
}  # fmt: skip


@dataclass(frozen=True)
class Limits:
    """How big a predicate may be."""

    #: characters of the predicate's text
    length: int = 4000
    #: parentheses (and brackets) open at once
    nesting: int = 20
    #: depth of its expression tree
    depth: int = 40
    #: nodes of its expression tree (columns, literals, operators, functions)
    nodes: int = 500
    #: characters of one text literal
    literal: int = 1000


LIMITS = Limits()

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
    value: object = None


def customer_columns() -> frozenset[str]:
    """Columns of ``core.customer_attributes``, as the models' documentation lists them."""
    return frozenset(customer_types())


def customer_types() -> dict[str, str]:
    """Columns of ``core.customer_attributes`` and their types (each column's ``data_type`` in
    the models' documentation, the store's attribute models' included; ``""`` when it gives
    none)."""
    return {name: _TYPES.get(kind, "") for name, kind in customer_attributes().items()}


#: A declared customer property's type, as predicates compare it.
PROPERTY_TYPES = {
    "string": "text", "number": "number", "boolean": "boolean", "date": "timestamp",
    "timestamp": "timestamp",
}  # fmt: skip
#: How ``customer.properties.<key>`` is named among the customer's columns while it is checked.
PROPERTY_PREFIX = "properties."


def with_properties(types: Mapping[str, str], declared: Mapping[str, str]) -> dict[str, str]:
    """The customer's columns and types plus the declared properties (``properties.<key>``)."""
    return dict(types) | {PROPERTY_PREFIX + k: PROPERTY_TYPES[v] for k, v in declared.items()}


def property_key(column: exp.Column) -> str | None:
    """The key of ``customer.properties.<key>``, or None for any other column."""
    if column.args.get("db") is None or column.args.get("catalog") is not None:
        return None
    if column.text("db") == "customer" and column.table == "properties":
        return column.name
    return None


def _named_properties(tree: exp.Expr) -> exp.Expr:
    """``customer.properties.<key>`` as the column ``customer."properties.<key>"``."""
    for column in list(tree.find_all(exp.Column)):
        key = property_key(column)
        if key is not None:
            column.replace(exp.column(exp.to_identifier(PROPERTY_PREFIX + key, quoted=True),
                                      "customer"))  # fmt: skip
    return tree


def _suggest(name: str, known: Iterable[str]) -> str:
    close = difflib.get_close_matches(name, sorted(known), n=3, cutoff=0.6)
    return f"; did you mean {', '.join(close)}?" if close else ""


def check_predicate(
    sql: str,
    tables: Mapping[str, Columns],
    kinds: Mapping[str, str] | None = None,
) -> list[PredicateError]:
    """Every problem with `sql` as a predicate over `tables` (name -> columns, typed or not;
    None: any). ``kinds`` names what a table's rows are (``{"event": "cart_abandoned"}``), so
    an unknown ``event.<name>`` is reported as a property that type does not have."""
    too_big = _text_limits(sql)
    if too_big:
        return [too_big]
    try:
        tree = sqlglot.parse_one(sql, read="duckdb")
    except ParseError as err:
        first = err.errors[0] if err.errors else {}
        return [PredicateError(f"not valid SQL: {first.get('description', err)}", sql)]
    except TokenError as err:
        return [PredicateError(f"not valid SQL: {err}", sql)]
    except (TypeError, ValueError, IndexError):  # sqlglot fails on some fragments (``->``)
        return [PredicateError("not valid SQL", sql)]
    except RecursionError:
        return [PredicateError(f"nested too deeply (at most {LIMITS.nesting} levels)")]
    too_big = _tree_limits(tree)
    if too_big:
        return [too_big]
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
    problems += _function_problems(tree)
    tree = _named_properties(tree)
    problems += _column_problems(tree, tables, kinds or {})
    problems += _type_problems(tree, tables)
    return problems


def _text_limits(sql: str) -> PredicateError | None:
    """The predicate's length and nesting, checked before it is parsed (a parser recurses)."""
    if len(sql) > LIMITS.length:
        return PredicateError(
            f"too long: {len(sql)} characters, at most {LIMITS.length} in a predicate"
        )
    depth = deepest = 0
    quote: str | None = None
    for char in sql:
        if quote:
            quote = None if char == quote else quote
        elif char in "'\"":
            quote = char
        elif char in "([{":
            depth += 1
            deepest = max(deepest, depth)
        elif char in ")]}":
            depth -= 1
    if deepest > LIMITS.nesting:
        return PredicateError(
            f"nested too deeply: {deepest} levels of parentheses, at most {LIMITS.nesting}"
        )
    return None


def _tree_limits(tree: exp.Expr) -> PredicateError | None:
    """The size and depth of the parsed predicate, and of its text literals."""
    for nodes, node in enumerate(tree.walk(), start=1):
        if nodes > LIMITS.nodes:
            return PredicateError(f"too large: more than {LIMITS.nodes} terms in a predicate")
        if node.depth > LIMITS.depth:
            return PredicateError(f"nested too deeply: at most {LIMITS.depth} levels of operators")
        if isinstance(node, exp.Literal) and node.is_string and len(node.this) > LIMITS.literal:
            return PredicateError(
                f"text literal too long: {len(node.this)} characters, at most {LIMITS.literal}"
            )
    return None


def _function_problems(tree: exp.Expr) -> Iterable[PredicateError]:
    for node in tree.find_all(exp.Func, exp.Window, exp.Lambda):
        if isinstance(node, (exp.Window, exp.Lambda)):
            what = "a window function (OVER)" if isinstance(node, exp.Window) else "a lambda (->)"
            yield PredicateError(f"{what} is not allowed in a predicate")
            continue
        assert isinstance(node, exp.Func)
        upper = _name(node).upper()
        name = _WRITTEN.get(upper, _name(node))
        if isinstance(node, exp.AggFunc):
            yield PredicateError(
                f"aggregate function {name}() is not allowed in a predicate (it judges one row)",
                name,
            )
        elif isinstance(node, _UNBOUNDED) or upper.startswith(_UNBOUNDED_NAMES):
            yield PredicateError(
                f"function {name}() is not allowed in a predicate: it generates a set or a "
                "value of unbounded size",
                name,
            )
        elif isinstance(node, exp.Anonymous) or upper.startswith(_FORBIDDEN_FUNCTIONS):
            yield PredicateError(f"function {name}() is not allowed in a predicate", name)


def _column_problems(
    tree: exp.Expr, tables: Mapping[str, Columns], kinds: Mapping[str, str]
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
        if known is None or name in known:
            continue
        hint = _suggest(name, known)
        if name.startswith(PROPERTY_PREFIX):
            key = name.removeprefix(PROPERTY_PREFIX)
            declared = [
                k.removeprefix(PROPERTY_PREFIX) for k in known if k.startswith(PROPERTY_PREFIX)
            ]
            yield PredicateError(
                f"unknown customer property {key}{_suggest(key, declared)} (declare it under "
                "customer_properties in _settings.yml, with its type)",
                f"customer.{name}",
            )
        elif table in kinds:
            yield PredicateError(f"{kinds[table]} events have no property {name}{hint}", name)
        else:
            yield PredicateError(f"unknown column {table}.{name}{hint}", name)


#: Comparisons whose operands must be of one type.
_COMPARISONS: tuple[type[exp.Expr], ...] = (
    exp.EQ, exp.NEQ, exp.GT, exp.GTE, exp.LT, exp.LTE, exp.NullSafeEQ, exp.NullSafeNEQ, exp.In,
    exp.Between, exp.Like, exp.ILike,
)  # fmt: skip


def _type_problems(tree: exp.Expr, tables: Mapping[str, Columns]) -> Iterable[PredicateError]:
    """Literals compared with a column of another type (``event.value >= 'ten'``)."""
    for column in tree.find_all(exp.Column):
        known = tables.get(column.table)
        kind = known.get(column.name, "") if isinstance(known, Mapping) else ""
        comparison = column.parent
        while isinstance(comparison, exp.Paren):
            comparison = comparison.parent
        if not kind or not isinstance(comparison, _COMPARISONS):
            continue
        for literal in _literals(comparison, column):
            found = _literal_type(literal)
            if found and not _fits(kind, found):
                shown = literal.sql(dialect="duckdb")
                yield PredicateError(
                    f"{column.table}.{column.name} is {_article(kind)} {kind}, compared with "
                    f"the {found} {shown}",
                    literal.to_py(),
                )


def _literals(comparison: exp.Expr, column: exp.Column) -> Iterable[exp.Expr]:
    for node in comparison.iter_expressions():
        if node is column:
            continue
        while isinstance(node, (exp.Paren, exp.Neg)):
            node = node.this
        if isinstance(node, (exp.Literal, exp.Boolean)):
            yield node


def _literal_type(node: exp.Expr) -> str:
    if isinstance(node, exp.Boolean):
        return "boolean"
    return "text" if node.is_string else "number"


def _fits(kind: str, literal: str) -> bool:
    """Whether a ``literal`` (text, number, boolean) can be compared with a ``kind`` column."""
    if kind == "timestamp":
        return literal == "text"  # an ISO 8601 text: '2025-01-01', '2025-01-01 09:00'
    return kind == literal


def _article(kind: str) -> str:
    return "an" if kind[0] in "aeiou" else "a"


def event_and_customer(
    event: Mapping[str, str] | None = None, properties: Mapping[str, str] | None = None
) -> dict[str, Columns]:
    """Tables a trigger predicate sees: the event (its columns and ``event`` properties, by
    type; None: any property) and the customer's attributes with the declared ``properties``."""
    fields = None if event is None else EVENT_COLUMN_TYPES | dict(event)
    return {"event": fields, "customer": with_properties(customer_types(), properties or {})}


def customer_only(properties: Mapping[str, str] | None = None) -> dict[str, Columns]:
    return {"customer": with_properties(customer_types(), properties or {})}
