"""How the engine writes SQL: fixed statement texts parsed by sqlglot, values bound as literals.

Each statement of the engine is a constant text in DuckDB's dialect that names the state schema
``flowhouse`` and marks values with ``:name`` placeholders. :func:`statement` parses it (once),
replaces the placeholders with expression nodes (literals, or compiled flow predicates), points
``flowhouse.*`` at the schema in use, and :func:`render` writes it for the target warehouse. Two
functions of our own keep the texts portable: ``json_text(json, 'key')``, ``json_with(json, 'key',
value)`` (the object with one more key) and ``unit_hash(text)`` (a number in [0, 1) from md5, the
same on every warehouse).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime
from functools import cache
from typing import Any

import sqlglot
from sqlglot import exp

STATE_SCHEMA = "flowhouse"
_HEX_DIGITS = 6  # unit_hash resolution: 16**6 buckets


@cache
def _parsed(text: str) -> exp.Expr:
    return sqlglot.parse_one(text, read="duckdb")


def literal(value: Any) -> exp.Expr:
    """A Python value as a SQL literal node."""
    if isinstance(value, exp.Expr):
        return value
    if value is None:
        return exp.null()
    if isinstance(value, bool):
        return exp.Boolean(this=value)
    if isinstance(value, (int, float)):
        return exp.Literal.number(value)
    if isinstance(value, datetime):
        return exp.cast(exp.Literal.string(value.isoformat(sep=" ")), "timestamp")
    return exp.Literal.string(str(value))


def statement(text: str, schema: str = STATE_SCHEMA, **values: Any) -> exp.Expr:
    """The statement `text` with its placeholders bound and its state tables in `schema`."""
    # replace_placeholders transforms a copy: the cached parse stays untouched.
    tree = exp.replace_placeholders(_parsed(text), **{k: literal(v) for k, v in values.items()})
    # anonymous placeholders (``?``) are bound as parameters when the statement runs
    missing = [p.name for p in tree.find_all(exp.Placeholder) if p.name not in ("", "?")]
    if missing:
        raise KeyError(f"unbound placeholders {missing} in: {text[:80]}")
    if schema != STATE_SCHEMA:
        for table in tree.find_all(exp.Table):
            if table.db == STATE_SCHEMA:
                table.set("db", exp.to_identifier(schema))
    return tree


def render(tree: exp.Expr, dialect: str) -> str:
    """`tree` in the warehouse's dialect, with the engine's portable functions expanded (in
    place: pass a tree of your own, such as :func:`statement` returns)."""
    tree = tree.transform(lambda node: _expand(node, dialect), copy=False)
    return tree.sql(dialect=dialect)


def _expand(node: exp.Expr, dialect: str) -> exp.Expr:
    if not isinstance(node, exp.Anonymous):
        return node
    name = node.name.lower()
    if name == "json_text":
        return _json_text(node.expressions[0], node.expressions[1], dialect)
    if name == "json_with":
        value, key, item = node.expressions
        if dialect == "postgres":
            return exp.DPipe(
                this=value,
                expression=exp.Anonymous(this="jsonb_build_object", expressions=[key, item]),
            )
        return exp.Anonymous(
            this="json_merge_patch",
            expressions=[value, exp.Anonymous(this="json_object", expressions=[key, item])],
        )
    if name == "unit_hash":
        return unit_hash(node.expressions[0])
    return node


def _json_text(value: exp.Expr, key: exp.Expr, dialect: str) -> exp.Expr:
    if dialect == "postgres":
        return exp.Anonymous(this="jsonb_extract_path_text", expressions=[value, key])
    path = exp.Literal.string("$." + key.name)
    return exp.Anonymous(this="json_extract_string", expressions=[value, path])


def unit_hash(value: exp.Expr) -> exp.Expr:
    """A number in [0, 1) from the first hex digits of ``md5(value)``: portable and stable."""
    digest = exp.func("md5", value)
    total: exp.Expr = exp.Literal.number(0)
    for i in range(_HEX_DIGITS):
        digit = exp.paren(exp.Sub(
            this=exp.func(
                "strpos",
                exp.Literal.string("0123456789abcdef"),
                exp.Substring(this=digest.copy(), start=exp.Literal.number(i + 1),
                              length=exp.Literal.number(1)),
            ),
            expression=exp.Literal.number(1),
        ))  # fmt: skip
        total = exp.paren(
            exp.Add(this=exp.Mul(this=total, expression=exp.Literal.number(16)), expression=digit)
        )
    return exp.Div(
        this=exp.cast(exp.paren(total), "double"),
        expression=exp.Literal.number(16**_HEX_DIGITS),
    )


def case(
    branches: Mapping[tuple[str, ...], exp.Expr],
    keys: tuple[str, ...],
    default: exp.Expr | None = None,
) -> exp.Expr:
    """``case when k1 = v1 and k2 = v2 then e ... else default end`` over key columns."""
    if not branches:
        return default if default is not None else exp.null()
    expr = exp.Case()
    for values, then in branches.items():
        cond = exp.and_(
            *[
                exp.column(*reversed(k.split("."))).eq(literal(v))
                for k, v in zip(keys, values, strict=True)
            ]
        )
        expr = expr.when(cond, then)
    if default is not None:
        expr = expr.else_(default)
    return expr


def array_column(column: str, kind: str) -> exp.Expr:
    """``unnest(cast(? as kind[])) as column``: one column of rows bound as one array parameter,
    so thousands of rows go in one statement without their values written into the SQL."""
    array = exp.DataType.build(f"{kind}[]")
    return exp.alias_(exp.func("unnest", exp.cast(exp.Placeholder(), array)), column)


def array_rows(columns: Sequence[tuple[str, str]], alias: str) -> exp.Expr:
    """A subquery of rows given as one array parameter per (column, type), in that order."""
    return exp.select(*[array_column(c, kind) for c, kind in columns]).subquery(alias)
