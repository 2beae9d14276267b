"""Mappings: how a store's own export becomes a canonical input.

A mapping file (YAML) has one section per input (``customers``, ``events``, ``products``); each
names, for a canonical column or property, the source column (matched by ``read.normalize``, so
``Customer ID`` and ``customer_id`` are the same) or an expression::

    customers:
      columns:
        customer_id: Customer ID                 # a column of the file
        created_at: {sql: "current_timestamp"}   # a DuckDB SQL expression over the file's columns
      properties:
        last_name: Last Name                     # a key of properties
    events:
      columns:
        event_type: {value: order_placed}        # a constant
        customer_id: {customer_with_email: Email}  # the customer whose e-mail this is
      one_record_per: Name                       # rows sharing a Name are one event
      lines: {sku: Lineitem sku, quantity: Lineitem quantity}  # each row's line item

Columns a mapping does not name are matched by name; the rest are kept in ``properties`` (customers
and events) or reported as ignored (products). The shipped mappings live in ``mappings/`` beside
this module; ``--mapping`` takes their name or a path.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError
from sqlglot import exp, parse_one
from sqlglot.errors import ParseError

from flowhouse.core.errors import LoadError
from flowhouse.core.yamlfile import describe, load_yaml

SHIPPED = Path(__file__).parent / "mappings"


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Sql(_Strict):
    sql: str


class Value(_Strict):
    value: str


class CustomerWithEmail(_Strict):
    customer_with_email: str


Source = Annotated[str | Sql | Value | CustomerWithEmail, Field(union_mode="left_to_right")]


class LinesFromColumns(_Strict):
    """Line items packed one per column (``line_item_1``, ``line_item_2``, ...) as
    ``key:value|key:value`` text; ``fields`` names each line field's key, or ``a/b`` for the
    quotient of two keys (a line total over its quantity)."""

    columns_starting: str
    fields: dict[str, str]


class InputMapping(_Strict):
    description: str = ""
    columns: dict[str, Source] = {}
    properties: dict[str, Source] = {}
    one_record_per: str | None = None
    lines: dict[str, Source] = {}
    lines_from_columns: LinesFromColumns | None = None


class Mapping(_Strict):
    description: str = ""
    customers: InputMapping | None = None
    events: InputMapping | None = None
    products: InputMapping | None = None


def shipped_mappings() -> list[str]:
    return sorted(p.stem for p in SHIPPED.glob("*.yml"))


def load_mapping(name_or_path: str, input_name: str) -> tuple[InputMapping, str]:
    """The section for ``input_name`` of a shipped mapping (by name) or a mapping file."""
    path = SHIPPED / f"{name_or_path}.yml"
    if not path.is_file():
        path = Path(name_or_path)
    if not path.is_file():
        raise LoadError(
            f"no mapping {name_or_path!r}: expected one of {', '.join(shipped_mappings())} "
            "or the path of a mapping file"
        )
    try:
        raw: Any = load_yaml(path)
        mapping = Mapping.model_validate(raw or {})
    except yaml.YAMLError as err:
        raise LoadError(f"{path}: not valid YAML: {describe(err)}") from err
    except ValidationError as err:
        problems = "; ".join(
            f"{'.'.join(str(p) for p in e['loc'])}: {e['msg']}" for e in err.errors()
        )
        raise LoadError(f"{path}: {problems}") from err
    section: InputMapping | None = getattr(mapping, input_name)
    if section is None:
        raise LoadError(f"{path}: the mapping has no {input_name} section")
    return section, str(path)


def parse_sql(text: str, where: str) -> exp.Expr:
    try:
        parsed = parse_one(text, dialect="duckdb")
    except ParseError as err:
        raise LoadError(f"{where}: not a SQL expression {text!r}: {err}") from err
    if isinstance(parsed, exp.Query | exp.DDL | exp.DML):
        raise LoadError(f"{where}: expected an expression, got a statement: {text!r}")
    return parsed
