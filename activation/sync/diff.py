"""What a sync run must send, computed in the warehouse.

The source (a segment or a list of customers, or any relation with a key) is read into
``_fh_sync_source`` — one row per key with the mapped fields and ``row_hash``, the md5 of their
values — and compared with ``flowhouse.sync_state``, the snapshot of what the destination was
told:

- ``add``: a key the snapshot does not hold;
- ``change``: a key it holds with another hash (one changed field changes the hash);
- ``remove``: a key it holds that the source no longer has (sent in ``mirror`` mode only).

Comparing hashes, not timestamps, means a tie in ``updated_at`` or a re-built model can never
cause a full re-export: a row is sent again only when what the destination holds differs.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import sqlglot
from sqlglot import exp

from flowhouse.activation.render import jsonable
from flowhouse.activation.sync.target import SyncRow
from flowhouse.core.errors import ConfigError
from flowhouse.core.sql import literal
from flowhouse.flows.sync.syncfile import Sync
from flowhouse.rules.context import Context
from flowhouse.rules.sendtime import create_temp

#: Separates field values in the hashed text (the ASCII unit separator never occurs in data).
_SEPARATOR = "\x1f"
_NULL = "\x1e"  # the record separator: never in data, allowed in every warehouse

_MEMBERS = {
    "segment": ("core.segment_members", "segment"),
    "list": ("core.list_members", "list_name"),
}

_ADDS = """
select s.* from _fh_sync_source as s
where not exists (
    select 1 from flowhouse.sync_state as st
    where st.sync_id = :sync and st.sync_key = s.sync_key
)
order by s.sync_key
"""

_CHANGES = """
select s.*, st.destination_id as destination_id from _fh_sync_source as s
join flowhouse.sync_state as st on st.sync_id = :sync and st.sync_key = s.sync_key
where st.row_hash <> s.row_hash
order by s.sync_key
"""

_REMOVES = """
select st.sync_key, st.fields, st.destination_id from flowhouse.sync_state as st
where st.sync_id = :sync and not exists (
    select 1 from _fh_sync_source as s where s.sync_key = st.sync_key
)
order by st.sync_key
"""

_DUPLICATES = """
select sync_key, count(*) as n from _fh_sync_source
group by sync_key
having count(*) > 1
order by n desc, sync_key
limit 3
"""


@dataclass(frozen=True)
class Pending:
    """A row to send: its operation, and its hash (written to the snapshot once accepted)."""

    operation: str
    row: SyncRow
    row_hash: str | None = None


@dataclass(frozen=True)
class Diff:
    source_rows: int
    adds: list[Pending]
    changes: list[Pending]
    removes: list[Pending]


def source_query(sync: Sync) -> exp.Select:
    """One row per key of the source: ``sync_key``, ``f0``.. (the mapped fields, in the order of
    the sync file), ``row_hash``."""
    source = sync.source
    relation = exp.to_table(source.relation).as_("src")
    key = exp.column(source.key, "src")
    columns = [exp.column(column, "src") for column in sync.fields.values()]
    hashed = exp.func("md5", _joined(columns))
    query = (
        exp.select(exp.alias_(exp.cast(key, "text"), "sync_key"))
        .select(*[exp.alias_(c.copy(), f"f{i}") for i, c in enumerate(columns)])
        .select(exp.alias_(hashed, "row_hash"))
        .from_(relation)
        .where(exp.not_(exp.Is(this=key.copy(), expression=exp.null())))
    )
    membership = _membership(sync)
    if membership is not None:
        query = query.where(membership)
    if source.where:
        query = query.where(_predicate(source.where))
    return query


def _joined(columns: Sequence[exp.Expr]) -> exp.Expr:
    parts: list[exp.Expr] = [
        exp.func("coalesce", exp.cast(c.copy(), "text"), literal(_NULL)) for c in columns
    ]
    joined = parts[0]
    for part in parts[1:]:
        joined = exp.DPipe(
            this=exp.DPipe(this=joined, expression=literal(_SEPARATOR)), expression=part
        )
    return joined


def _membership(sync: Sync) -> exp.Expr | None:
    source = sync.source
    for kind, (table, column) in _MEMBERS.items():
        name = getattr(source, kind)
        if name is None:
            continue
        inner = (
            exp.select("1")
            .from_(exp.to_table(table).as_("m"))
            .where(exp.column("customer_id", "m").eq(exp.column(source.key, "src")))
            .where(exp.column(column, "m").eq(literal(name)))
        )
        return exp.Exists(this=inner)
    return None


def _predicate(text: str) -> exp.Expr:
    """The sync's ``where``, its bare columns read from the source (checked at validation)."""
    tree = sqlglot.parse_one(text, read="duckdb")
    for column in tree.find_all(exp.Column):
        if not column.table:
            column.set("table", exp.to_identifier("src"))
    return tree


def compute(ctx: Context, sync: Sync) -> Diff:
    """Read the source into ``_fh_sync_source`` and diff it against the snapshot."""
    create_temp(ctx, "_fh_sync_source", source_query(sync))
    n = int(ctx.value("select count(*) from _fh_sync_source") or 0)
    duplicates = ctx.rows(_DUPLICATES)
    if duplicates:
        shown = ", ".join(f"{k!r} ({c} rows)" for k, c in duplicates)
        raise ConfigError(
            f"sync {sync.sync}: the source's key {sync.source.key!r} is not unique",
            value=shown,
            expected="one row per key",
        )
    names = list(sync.fields)
    adds = [_pending("add", r, names) for r in ctx.rows(_ADDS, sync=sync.sync)]
    changes = [_pending("change", r, names) for r in ctx.rows(_CHANGES, sync=sync.sync)]
    removes = [
        Pending("remove", SyncRow(str(k), json.loads(f), d))
        for k, f, d in ctx.rows(_REMOVES, sync=sync.sync)
    ]
    return Diff(n, adds, changes, removes)


def _pending(operation: str, row: tuple[Any, ...], names: list[str]) -> Pending:
    """``row`` is (sync_key, f0.., row_hash[, destination_id])."""
    values = row[1 : 1 + len(names)]
    row_hash = row[1 + len(names)]
    destination_id = row[2 + len(names)] if len(row) > 2 + len(names) else None
    fields = {name: _plain(v) for name, v in zip(names, values, strict=True)}
    return Pending(operation, SyncRow(str(row[0]), fields, destination_id), str(row_hash))


def _plain(value: Any) -> Any:
    """A warehouse value as JSON takes it (dates as ISO text, decimals as floats)."""

    return jsonable(value)


def fields_json(fields: Any) -> str:
    return json.dumps(fields, sort_keys=True, default=str)
