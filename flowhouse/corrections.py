"""Corrections: retract raw events, so a corrected version can be loaded with the same id.

Events are immutable and keyed by ``event_id`` (a second load of an id is "already present"). A
correction is a retraction, then the corrected event loaded with the same id:
:func:`retract` moves the rows out of ``raw.events`` into ``raw.retracted_events`` (the row as it
was, with the reason and when), in one transaction.

Downstream (docs/events.md, "Corrections"):

- derived events: the derived models are incremental and only append, so a retraction empties
  their tables (``core.derived_*``); the next build re-derives every derived event from the raw
  stream. Derived event ids are deterministic and a derived model's rows do not depend on how
  often it is built, so what comes back is what was there less what the retracted rows produced;
- models incremental by what changed (stg_orders, int_customer_*, product_interest: the tables
  with a ``loaded_through`` column, docs/engine.md "Incremental models") recompute only the keys
  with new rows, so a retraction empties them too and the next build rebuilds them in full;
- observations: the segment membership and tier histories record what each build saw at its now;
  what they record after the retraction's clock (a build that took "now" from a row from the
  future) is undone, so the next build observes again from the right time;
- the engine: nothing is undone. An enrollment a retracted event triggered goes on, its decisions
  stay journaled and nothing is sent again; an enrollment id is the md5 of the flow and the
  trigger's event id, so the corrected event, loaded with the same id, enrolls nobody again.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

from sqlglot import exp

from flowhouse.core.contract import EVENTS, RAW_SCHEMA
from flowhouse.core.errors import ConfigError
from flowhouse.core.sql import array_column, literal, render, statement
from flowhouse.core.state import ensure_retracted
from flowhouse.core.warehouse import Location, Warehouse

#: The schema of the derived-event tables (``models/derived``, built incrementally).
DERIVED_SCHEMA = "core"

_EVENT_COLUMNS = ", ".join(EVENTS.column_names)

_FOUND = "select event_id from raw.events where event_id in (select event_id from _fh_retract)"

_KEEP = f"""
insert into raw.retracted_events ({_EVENT_COLUMNS}, reason, retracted_at)
select {_EVENT_COLUMNS}, :reason, :now from raw.events
where event_id in (select event_id from _fh_retract)
"""

_REMOVE = "delete from raw.events where event_id in (select event_id from _fh_retract)"

#: History tables that record observations at a build's now: (table, opened at, closed at).
_HISTORIES = (
    ("segment_membership_history", "entered_at", "exited_at"),
    ("customer_tier_history", "valid_from", "valid_to"),
)

_TABLES = """
select table_name from information_schema.tables
where table_schema = :derived_schema and table_type = 'BASE TABLE'
"""

_DERIVED_TABLES = """
select table_name from information_schema.tables
where table_schema = :derived_schema and substr(table_name, 1, 8) = 'derived_'
    and table_type = 'BASE TABLE'
order by table_name
"""

#: Models incremental by what changed: the tables of ``staging`` and ``core`` with the
#: ``loaded_through`` stamp (dbt_project/macros/incremental.sql).
_BY_CHANGE_TABLES = """
select c.table_schema, c.table_name from information_schema.columns as c
join information_schema.tables as t
    on t.table_schema = c.table_schema and t.table_name = c.table_name
where c.column_name = 'loaded_through' and c.table_schema in ('staging', 'core')
    and t.table_type = 'BASE TABLE'
order by c.table_schema, c.table_name
"""


@dataclass
class RetractReport:
    retracted: list[str] = field(default_factory=list)
    unknown: list[str] = field(default_factory=list)
    #: Derived-event tables emptied, re-derived in full by the next build.
    emptied: list[str] = field(default_factory=list)
    #: Models incremental by what changed emptied (schema.table), rebuilt in full by the next build.
    emptied_models: list[str] = field(default_factory=list)
    #: History rows dated after the retraction's clock, undone (:func:`undo_future_observations`).
    undone: int = 0

    def describe(self) -> str:
        lines = [f"retracted {len(self.retracted)} event(s) into {RAW_SCHEMA}.retracted_events"]
        if self.unknown:
            lines.append(
                f"  not in {RAW_SCHEMA}.events (unknown or already retracted): "
                + ", ".join(self.unknown)
            )
        if self.emptied:
            lines.append(
                f"  {len(self.emptied)} derived-event table(s) emptied: the next build "
                "(flowhouse build or tick) derives them again without the retracted rows"
            )
        if self.emptied_models:
            lines.append(
                f"  {len(self.emptied_models)} incremental model table(s) emptied: the next build "
                "rebuilds them in full without the retracted rows"
            )
        if self.undone:
            lines.append(
                f"  {self.undone} segment or tier observation(s) dated after now undone: "
                "the next build observes from the right time"
            )
        return "\n".join(lines)


def read_ids(path: Path, what: str) -> list[str]:
    """Ids from a file, one a line (blank lines and ``#`` comments skipped)."""
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as err:
        raise ConfigError(f"{path}: cannot read the {what} file: {err.strerror}") from err
    out = []
    for line in text.splitlines():
        value = line.split("#", 1)[0].strip()
        if value:
            out.append(value)
    return out


def unique(ids: Sequence[str], what: str) -> list[str]:
    """`ids` stripped and without repeats, in order; an error when none is left."""
    found = list(dict.fromkeys(i.strip() for i in ids if i.strip()))
    if not found:
        raise ConfigError(f"no {what} given", expected=f"one or more {what}s, or --file")
    return found


def id_table(wh: Warehouse, name: str, column: str, ids: Sequence[str]) -> None:
    """Temp table ``name(column)`` holding `ids`, bound as one array parameter."""
    _drop_temp(wh, name)
    rows = exp.select(array_column(column, "text"))
    create = exp.Create(
        this=exp.to_table(name),
        kind="TABLE",
        expression=rows,
        properties=exp.Properties(expressions=[exp.TemporaryProperty()]),
    )
    wh.execute(create, [list(ids)])


def _drop_temp(wh: Warehouse, name: str) -> None:
    wh.execute(exp.Drop(tables=[exp.to_table(name)], kind="TABLE", exists=True))


def run(wh: Warehouse, text: str, schema: str = "flowhouse", **values: Any) -> None:
    """One statement text (DuckDB dialect, ``:name`` values) run on the warehouse."""
    wh.execute(render(statement(text, schema, **values), wh.dialect))


def rows(wh: Warehouse, text: str, schema: str = "flowhouse", **values: Any) -> list[Any]:
    return wh.query(render(statement(text, schema, **values), wh.dialect))


def retract(
    location: Location, event_ids: Sequence[str], reason: str, now: datetime
) -> RetractReport:
    """Move the events `event_ids` out of ``raw.events``, in one transaction."""
    if not reason.strip():
        raise ConfigError("--reason is empty", expected="why the events are retracted")
    ids = unique(event_ids, "event id")
    report = RetractReport()
    with Warehouse.open(location) as wh:
        wh.ensure_raw_tables()
        ensure_retracted(wh)
        wh.commit()
        with wh.transaction():
            id_table(wh, "_fh_retract", "event_id", ids)
            found = {r[0] for r in rows(wh, _FOUND)}
            report.retracted = [i for i in ids if i in found]
            report.unknown = [i for i in ids if i not in found]
            if found:
                run(wh, _KEEP, reason=reason.strip(), now=now)
                run(wh, _REMOVE)
                report.emptied = empty_derived(wh)
                report.emptied_models = empty_incremental_models(wh)
                report.undone = undo_future_observations(wh, now)
            _drop_temp(wh, "_fh_retract")
    return report


def empty_derived(wh: Warehouse) -> list[str]:
    """Delete every row of the derived-event tables; the next build derives them again in full
    (``derived_since`` reads the whole stream for an empty table)."""
    tables = [r[0] for r in rows(wh, _DERIVED_TABLES, derived_schema=DERIVED_SCHEMA)]
    for table in tables:
        wh.execute(exp.delete(exp.to_table(f"{DERIVED_SCHEMA}.{table}")))
    return tables


def empty_incremental_models(wh: Warehouse) -> list[str]:
    """Delete every row of the models incremental by what changed; the next build rebuilds them
    in full (an empty table has no watermark)."""
    tables = [f"{r[0]}.{r[1]}" for r in rows(wh, _BY_CHANGE_TABLES)]
    for table in tables:
        wh.execute(exp.delete(exp.to_table(table)))
    return tables


def undo_future_observations(wh: Warehouse, now: datetime) -> int:
    """Undo what the history tables record after `now`: a period opened later is deleted, one
    closed later is open again. Only a build that took "now" from a row from the future records
    such a change (a build's now is never past the wall clock); returns the rows changed."""
    present = {r[0] for r in rows(wh, _TABLES, derived_schema=DERIVED_SCHEMA)}
    changed = 0
    for table, opened, closed in _HISTORIES:
        if table not in present:
            continue
        target = exp.to_table(f"{DERIVED_SCHEMA}.{table}")
        later = exp.column(opened) > literal(now)
        changed += wh.execute_count(exp.delete(target, where=later))
        reopen = exp.update(target, {closed: exp.null()}, where=exp.column(closed) > literal(now))
        changed += wh.execute_count(reopen)
    return changed
