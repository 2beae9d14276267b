"""Read sync files (``flows/library/syncs/*.yml``) into :class:`~flowhouse.flows.sync.syncfile.Sync`, with
every problem located at ``file:line``.

As for flow files (:mod:`flowhouse.flows.files`), all problems of a file are reported at once, each with the
dotted field path, the value received and what was expected. Beyond the file's shape,
:func:`check_sync` checks it against the project: the destination's field names, the source's
columns (``core.customer_attributes`` for segments and lists; the columns a model's ``.yml``
documents, or ``raw.*`` as :mod:`flowhouse.core.contract` defines them), the segment's name, and the
``where`` predicate (parsed with sqlglot, safe expressions on known columns only).
"""

from __future__ import annotations

import difflib
from collections.abc import Iterable, Iterator, Sequence
from functools import cache
from pathlib import Path
from typing import Any

import sqlglot
import yaml
from pydantic import ValidationError
from sqlglot import exp
from sqlglot.errors import ParseError, SqlglotError

from flowhouse.core.contract import INPUTS, RAW_SCHEMA
from flowhouse.core.errors import ConfigError
from flowhouse.core.paths import DBT_PROJECT, MODELS
from flowhouse.flows.files import FLOW_SUFFIXES, Lines, Problem, line_of, read_yaml, yaml_problem
from flowhouse.flows.predicates import check_predicate, customer_columns
from flowhouse.flows.sync.syncfile import CUSTOMER_RELATION, Sync

SYNCS_DIR = "syncs"
DOCS = "docs/syncs.md"

Loc = tuple[str | int, ...]
Finding = tuple[Loc, str, Any]

#: Destination field names each target takes: fixed names, and a prefix for open-ended ones.
TARGET_FIELDS: dict[str, tuple[tuple[str, ...], str | None]] = {
    "klaviyo": (("email", "phone_number", "first_name", "last_name", "external_id"), "properties."),
    "sendgrid": (
        ("email", "first_name", "last_name", "phone_number", "city", "country", "postal_code"),
        "custom_fields.",
    ),
    "audience": (("email", "phone"), None),
}
#: Fields a target cannot do without: (any of these, why).
REQUIRED_FIELDS: dict[str, tuple[tuple[str, ...], str]] = {
    "sendgrid": (("email",), "sendgrid needs an email field: SendGrid keys contacts by e-mail"),
    "audience": (("email", "phone"), "an audience needs an email or a phone field (or both)"),
}
#: Friendlier words for pattern mismatches, by the field's name.
_PATTERNS = {
    "sync": "a lower_snake_case id: letters, digits and _, starting with a letter",
    "list_id": "a Klaviyo list id: letters and digits, e.g. Xy12Ab",
    "list_ids": "a SendGrid list id: a UUID such as 3f2c1a8e-5b7d-4c2e-9f10-2a4b6c8d0e1f",
    "audience": "an audience name: letters, digits, _, . and -",
    "url": "a URL starting with http:// or https://",
}


# -- finding files ------------------------------------------------------------------------------


def sync_files(folder: Path) -> list[Path]:
    """The sync files of a flows folder: ``folder/syncs/*.yml`` (sorted; skips ``_`` and hidden
    files). A folder that is itself ``syncs/`` gives its own files."""
    here = folder if folder.name == SYNCS_DIR else folder / SYNCS_DIR
    if not here.is_dir():
        return []
    return [
        f
        for f in sorted(here.iterdir())
        if f.is_file() and f.suffix in FLOW_SUFFIXES and not f.name.startswith(("_", "."))
    ]


def is_sync_file(path: Path) -> bool:
    """Whether ``path`` is a sync file rather than a flow file (it lies in a ``syncs/`` folder)."""
    return path.parent.name == SYNCS_DIR


# -- reading one file ---------------------------------------------------------------------------


def parse_sync(path: Path) -> tuple[Sync | None, list[Problem]]:
    """Parse and check one file; the sync (None when it has any problem) and every problem."""
    sync, problems, _ = _read(path)
    return sync, problems


def _read(path: Path) -> tuple[Sync | None, list[Problem], Lines]:
    file = str(path)
    try:
        data, lines = read_yaml(path)
    except yaml.YAMLError as err:
        return None, [yaml_problem(file, err)], {}
    if not isinstance(data, dict):
        problem = Problem(file, 1, "", "a sync file is a YAML mapping (sync:, name:, ...)")
        return None, [problem], lines
    try:
        sync = Sync.model_validate(data)
    except ValidationError as err:
        return None, list(_problems_from(err, file, lines)), lines
    problems = check_sync(sync, path, lines)
    return (None if problems else sync), problems, lines


def _clean_loc(loc: Loc) -> Loc:
    """Drop the union tag pydantic adds (``destination.klaviyo.klaviyo`` -> ``destination.klaviyo``)
    and validator wrappers."""
    parts = [p for p in loc if not (isinstance(p, str) and p.startswith("function-"))]
    if len(parts) >= 3 and parts[0] == "destination" and parts[1] == parts[2]:
        del parts[1]
    return tuple(parts)


def _problems_from(err: ValidationError, file: str, lines: Lines) -> Iterator[Problem]:
    for e in err.errors(include_url=False):
        loc = _clean_loc(tuple(e["loc"]))
        yield Problem(file, line_of(lines, loc), _dotted(loc), _message(e, loc), _value(e))


def _message(error: Any, loc: Loc) -> str:
    if error["type"] == "extra_forbidden":
        return f"unknown field; check the spelling ({DOCS} lists every field)"
    if error["type"] == "string_pattern_mismatch":
        named = [p for p in loc if isinstance(p, str)]
        if named and named[-1] in _PATTERNS:
            return f"expected {_PATTERNS[named[-1]]}"
    return str(error["msg"]).removeprefix("Value error, ")


def _value(error: Any) -> Any:
    value = error.get("input") if error["type"] != "missing" else None
    return None if isinstance(value, (dict, list)) else value


def _dotted(loc: Loc) -> str:
    return ".".join(map(str, loc))


# -- loading and validating many ----------------------------------------------------------------


def load_syncs(flows_dir: Path) -> list[Sync]:
    """Every sync in ``flows_dir/syncs/``; any problem (duplicate ids too) raises a
    :class:`ConfigError` listing them all. No ``syncs/`` folder: no syncs."""
    syncs, problems = _collect(sync_files(flows_dir))
    if problems:
        listed = "\n  ".join(str(p) for p in problems)
        raise ConfigError(f"invalid sync files (run flowhouse validate):\n  {listed}")
    return syncs


def validate_syncs(paths: Sequence[Path]) -> tuple[list[Problem], int]:
    """Every problem in the sync files under ``paths`` (flows folders, ``syncs/`` folders or sync
    files), and how many files were checked; ids must be unique across them."""
    files: list[Path] = []
    for path in paths:
        files += sync_files(path) if path.is_dir() else [path] if _is_sync(path) else []
    _, problems = _collect(list(dict.fromkeys(files)))
    return problems, len(set(files))


def _is_sync(path: Path) -> bool:
    return path.is_file() and is_sync_file(path)


def _collect(files: Iterable[Path]) -> tuple[list[Sync], list[Problem]]:
    syncs: list[Sync] = []
    problems: list[Problem] = []
    seen: dict[str, str] = {}
    for path in files:
        sync, found, lines = _read(path)
        problems += found
        if sync is None:
            continue
        if sync.sync in seen:
            message = f"duplicate sync id, also in {seen[sync.sync]}"
            problems.append(
                Problem(str(path), line_of(lines, ("sync",)), "sync", message, sync.sync)
            )
            continue
        seen[sync.sync] = str(path)
        syncs.append(sync)
    return syncs, problems


# -- checks against the project -----------------------------------------------------------------


def check_sync(sync: Sync, path: Path, lines: Lines) -> list[Problem]:
    """What the file's shape cannot say: field names per destination, columns, segment, where."""
    return [
        Problem(str(path), line_of(lines, loc), _dotted(loc), message, value)
        for loc, message, value in _findings(sync)
    ]


def _findings(sync: Sync) -> Iterator[Finding]:
    yield from _destination_fields(sync)
    yield from _segment(sync)
    relation = sync.source.relation
    columns = relation_columns(relation)
    if columns is None:
        yield ("source", "model"), _unknown_relation(relation), None
        return
    yield from _source_key(sync, relation, columns)
    for name, column in sync.fields.items():
        yield from _column(("fields", name), column, relation, columns)
    if sync.source.where:
        for message, value in where_problems(sync.source.where, relation, columns):
            yield ("source", "where"), message, value


def _destination_fields(sync: Sync) -> Iterator[Finding]:
    target = sync.target_name
    if target not in TARGET_FIELDS:
        return
    fixed, prefix = TARGET_FIELDS[target]
    for name in sync.fields:
        message = _field_problem(target, name, fixed, prefix)
        if message:
            yield ("fields", name), message, None
    needed, why = REQUIRED_FIELDS.get(target, ((), ""))
    if needed and not set(needed) & set(sync.fields):
        yield ("fields",), why, None


def _field_problem(target: str, name: str, fixed: tuple[str, ...], prefix: str | None) -> str:
    if name in fixed:
        return ""
    if prefix and name.startswith(prefix):
        return "" if name.removeprefix(prefix).strip() else f"{prefix}<name> needs a name"
    candidates = list(fixed)
    if prefix and "." in name:
        candidates.append(prefix + name.rsplit(".", 1)[-1])
    takes = ", ".join([*fixed, *([f"{prefix}<name>"] if prefix else [])])
    hint = _suggest(name, candidates, 0.8)
    return f"unknown {target} field {name!r}{hint} ({target} takes {takes})"


def _segment(sync: Sync) -> Iterator[Finding]:
    name = sync.source.segment
    known = segment_names()
    if name is not None and name not in known:
        listed = ", ".join(sorted(known)) or "none"
        message = f"unknown segment {name!r}{_suggest(name, known)} (segments: {listed})"
        yield ("source", "segment"), message, None


def _source_key(sync: Sync, relation: str, columns: frozenset[str]) -> Iterator[Finding]:
    key = sync.source.key
    if sync.source.kind != "model" and key != "customer_id":
        message = f"a {sync.source.kind} source is keyed by customer_id (its members' id)"
        yield ("source", "key"), message, key
        return
    yield from _column(("source", "key"), key, relation, columns)


def _column(loc: Loc, name: str, relation: str, columns: frozenset[str]) -> Iterator[Finding]:
    if name not in columns:
        yield loc, f"unknown column {name!r} in {relation}{_suggest(name, columns)}", name


def _unknown_relation(relation: str) -> str:
    raw = [f"{RAW_SCHEMA}.{name}" for name in sorted(INPUTS)]
    known = [*dbt_relations(), *raw]
    name = relation.partition(".")[2]
    elsewhere = [r for r in known if r.partition(".")[2] == name]
    hint = _suggest(relation, known, 0.85)
    if elsewhere:
        hint = f"; did you mean {', '.join(elsewhere)}?"
    return (
        f"{relation!r} is not a model of this project (models/) nor a raw input "
        f"({', '.join(raw)}){hint}"
    )


def _suggest(name: str, known: Iterable[str], cutoff: float = 0.6) -> str:
    close = difflib.get_close_matches(name, sorted(known), n=3, cutoff=cutoff)
    return f"; did you mean {', '.join(close)}?" if close else ""


# -- the where predicate ------------------------------------------------------------------------

_SOURCE = "src"
_REWORDED = {
    "expected a boolean expression": "expected a boolean expression such as order_count > 0",
}


def where_problems(
    sql: str, relation: str, columns: frozenset[str] | None
) -> list[tuple[str, Any]]:
    """Problems with ``sql`` as a sync's ``where``: a safe boolean expression (as flow predicates
    are, :func:`flowhouse.flows.predicates.check_predicate`) over the source's columns named without a
    table (``tier = 'vip'``); ``columns`` None: any column."""
    try:
        tree = sqlglot.parse_one(sql, read="duckdb")
    except ParseError:
        return [(p.message, p.value) for p in check_predicate(sql, {})]
    except SqlglotError as err:
        return [(f"not valid SQL: {err}", sql)]
    found = list(_qualified(tree, relation))
    found += _safety(tree, sql)
    if columns is not None:
        found += [
            (f"unknown column {c.name!r} in {relation}{_suggest(c.name, columns)}", c.name)
            for c in tree.find_all(exp.Column)
            if not c.table and c.name not in columns
        ]
    return found


def _qualified(tree: exp.Expr, relation: str) -> Iterator[tuple[str, Any]]:
    for column in tree.find_all(exp.Column):
        if column.table:
            message = f"name columns of {relation} without a table: {column.name} rather than"
            yield f"{message} {column.sql(dialect='duckdb')}", column.sql(dialect="duckdb")


def _safety(tree: exp.Expr, sql: str) -> list[tuple[str, Any]]:
    """Statements, subqueries, non-boolean expressions and unsafe functions, as flows reject
    them: every column is put in one table whose columns are not checked here."""
    qualified = tree.copy()
    for column in qualified.find_all(exp.Column):
        column.set("table", exp.to_identifier(_SOURCE))
    rendered = qualified.sql(dialect="duckdb")
    return [
        (_reword(p.message), sql if p.value == rendered else p.value)
        for p in check_predicate(rendered, {_SOURCE: None})
    ]


def _reword(message: str) -> str:
    return next((new for old, new in _REWORDED.items() if message.startswith(old)), message)


# -- what the project defines -------------------------------------------------------------------


def relation_columns(relation: str) -> frozenset[str] | None:
    """The columns of ``relation`` (``schema.name``): the customer attributes', a dbt model's as
    its ``.yml`` documents them, or a raw input's; None when the project has no such relation."""
    if relation == CUSTOMER_RELATION:
        return customer_columns()
    schema, _, name = relation.partition(".")
    if schema == RAW_SCHEMA and name in INPUTS:
        return frozenset(INPUTS[name].column_names)
    return dbt_relations().get(relation)


@cache
def dbt_relations(models_dir: Path = MODELS) -> dict[str, frozenset[str]]:
    """Every model documented under ``models_dir``: ``schema.name`` -> its documented columns. The
    schema is the model's ``config.schema``, else its folder's ``+schema`` in dbt_project.yml."""
    folders = _folder_config()
    found: dict[str, frozenset[str]] = {}
    for yml in sorted(models_dir.rglob("*.yml")):
        for model in _models_in(yml):
            config = model.get("config") or {}
            schema = config.get("schema") or _schema(folders, yml.relative_to(models_dir).parent)
            if schema:
                columns = model.get("columns") or []
                found[f"{schema}.{model['name']}"] = frozenset(c["name"] for c in columns)
    return found


@cache
def segment_names(models_dir: Path = MODELS) -> frozenset[str]:
    """The segments the project defines: ``meta.segment`` of its models (models/segments/)."""
    names: set[str] = set()
    for yml in sorted(models_dir.rglob("*.yml")):
        for model in _models_in(yml):
            meta = (model.get("config") or {}).get("meta") or model.get("meta") or {}
            if meta.get("segment"):
                names.add(str(meta["segment"]))
    return frozenset(names)


def _models_in(yml: Path) -> list[dict[str, Any]]:
    doc = yaml.safe_load(yml.read_text(encoding="utf-8")) or {}
    return [m for m in doc.get("models") or [] if isinstance(m, dict) and "name" in m]


def _folder_config() -> dict[str, Any]:
    doc = yaml.safe_load((DBT_PROJECT / "dbt_project.yml").read_text(encoding="utf-8"))
    return dict((doc.get("models") or {}).get(doc.get("name"), {}) or {})


def _schema(config: dict[str, Any], folder: Path) -> str | None:
    """The innermost ``+schema`` configured on the way down to ``folder``."""
    schema = config.get("+schema")
    for part in folder.parts:
        config = config.get(part) or {}
        schema = config.get("+schema", schema)
    return str(schema) if schema else None
