"""Provider engagement back into the warehouse: webhook files in, canonical events and outbox
statuses out.

The receiver (:mod:`flowhouse.activation.receiver`) stores every webhook it accepts as one JSON file
in an inbox, one folder per source::

    <inbox>/sendgrid/*.json    SendGrid event webhook bodies (a JSON array of events)
    <inbox>/twilio/*.json      one Twilio status callback each (form fields, our query, received_at)
    <inbox>/vonage/*.json      one Vonage status webhook each (its JSON body, received_at)
    <inbox>/flowhouse/*.json   unsubscribes from signed links, clicks on SMS short links

:func:`ingest` reads every file in one set-based pass in an in-memory DuckDB, maps the providers'
notifications onto canonical events (each provider's ``inbound.py``,
:mod:`flowhouse.activation.providers.inbound`, assembled here with flowhouse's own :data:`LINKS`),
writes the new ones to ``raw.events`` through the loader (so they are validated like any other load,
on DuckDB or PostgreSQL), marks the outbox rows they concern ``delivered`` or ``bounced``, and only
then moves the files to ``done/``. A file that is not JSON or lacks a required field moves to
``rejected/`` and is named in the report.

Every step can be repeated: an event's id is the md5 of its provider and the provider's own id for
the notification, ids already in ``raw.events`` are skipped, and the outbox updates only move a
message forward. A crash between the load and the move therefore costs nothing but a second pass.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

import duckdb
import pyarrow as pa
import sqlglot
from sqlglot import exp

from flowhouse.activation.providers import INBOUND
from flowhouse.activation.providers.inbound import Inbound
from flowhouse.core.clock import utc
from flowhouse.core.contract import RAW_SCHEMA
from flowhouse.core.sql import STATE_SCHEMA, literal, statement
from flowhouse.core.warehouse import Location, Warehouse
from flowhouse.flows.channels import CHANNELS
from flowhouse.load import LoadReport, load_file

#: The channels flowhouse's own links (unsubscribe pages, SMS short links) name: those with an
#: unsubscribe page, and ``all``.
LINK_CHANNELS = (*(c.name for c in CHANNELS.values() if c.unsubscribe_page), "all")
_LINK_CHANNELS_SQL = ", ".join(f"'{c}'" for c in LINK_CHANNELS)


def _missing(name: str) -> str:
    """The condition "the notification lacks ``name``" (a constant field name, not data)."""
    return f"nullif(trim(json_extract_string(item, '$.{name}')), '') is null"


#: flowhouse's own notifications, stored by the receiver: unsubscribes from signed links, clicks
#: on SMS short links (each click its own event, named by the link and the moment), and clicks on
#: expired short links (no event: the link, and so its message and customer, is gone; counted).
LINKS = Inbound(
    source="flowhouse",
    body="object",
    required=("kind", "channel"),
    notes="""
select path, item_no, provider, json_extract_string(item, '$.kind') as status, '' as subtype,
       'link:' || trim(json_extract_string(item, '$.message_id')) || ':'
           || json_extract_string(item, '$.kind')
           || case when json_extract_string(item, '$.kind') = 'click'
                   then ':' || coalesce(json_extract_string(item, '$.link'), '') || ':'
                        || coalesce(json_extract_string(item, '$.received_at'), '')
                   else '' end
           as provider_event_id,
       trim(json_extract_string(item, '$.message_id')) as message_id,
       trim(json_extract_string(item, '$.customer_id')) as customer_id,
       null as flow_id, null as step_id, lower(json_extract_string(item, '$.channel')) as channel,
       json_extract_string(item, '$.url') as url, null as reason, null as error_code,
       coalesce(try_cast(json_extract_string(item, '$.received_at') as timestamptz)
                    at time zone 'UTC', :now) as occurred_at
from _items where provider = 'flowhouse'
""",
    events=(
        ("unsubscribe", "", "unsubscribed", None, ""),
        ("click", "", "message_clicked", None, ""),
    ),
    item_checks=(
        (
            "coalesce(json_extract_string(item, '$.kind'), '')"
            " not in ('unsubscribe', 'click', 'expired_click')",
            "kind is not 'unsubscribe', 'click' or 'expired_click'",
        ),
        *(
            (
                f"json_extract_string(item, '$.kind') <> 'expired_click' and {_missing(name)}",
                f"missing {name}",
            )
            for name in ("message_id", "customer_id")
        ),
        (
            "json_extract_string(item, '$.kind') = 'expired_click'"
            " and nullif(trim(json_extract_string(item, '$.token')), '') is null",
            "missing token",
        ),
        (
            "lower(coalesce(json_extract_string(item, '$.channel'), ''))"
            f" not in ({_LINK_CHANNELS_SQL})",
            f"channel is not {', '.join(LINK_CHANNELS[:-1])} or {LINK_CHANNELS[-1]}",
        ),
    ),
)

#: Every source of inbox files, in the order they are read: the providers', then flowhouse's.
SOURCES: tuple[Inbound, ...] = (*INBOUND, LINKS)

#: Outbox statuses a delivery or a bounce report moves forward (never back from ``bounced``).
DELIVERABLE = ("sent", "sending", "unconfirmed")
BOUNCEABLE = ("sent", "sending", "unconfirmed", "delivered")

_ISO = "%Y-%m-%dT%H:%M:%S.%fZ"
_ID_CHUNK = 1000


@dataclass(frozen=True)
class RejectedFile:
    path: str
    reason: str


@dataclass
class IngestReport:
    """What one pass did. ``events`` counts the distinct events the files carried, per type;
    ``already_present`` of them were in ``raw.events`` before; ``load`` is the loader's report for
    the rest (None when nothing was new). ``ignored`` counts notifications that are not events
    (SendGrid processed/deferred, Twilio queued/sent, or mail not sent by flowhouse)."""

    files_read: int = 0
    files_rejected: list[RejectedFile] = field(default_factory=list)
    events: dict[str, int] = field(default_factory=dict)
    ignored: int = 0
    already_present: int = 0
    load: LoadReport | None = None
    messages_delivered: int = 0
    messages_bounced: int = 0
    #: Clicks on SMS short links past ``delivery.sms_link_days`` (or erased): sent to the store,
    #: no event.
    expired_clicks: int = 0

    @property
    def loaded(self) -> int:
        return self.load.rows_loaded if self.load else 0

    def describe(self) -> str:
        kinds = ", ".join(f"{n} {k}" for k, n in sorted(self.events.items())) or "no events"
        lines = [
            f"{self.files_read} files read, {len(self.files_rejected)} rejected: {kinds}; "
            f"{self.loaded} new, {self.already_present} already present, {self.ignored} ignored; "
            f"{self.messages_delivered} messages delivered, {self.messages_bounced} bounced"
        ]
        if self.expired_clicks:
            lines.append(
                f"  {self.expired_clicks} click(s) on expired SMS links (sent to the store)"
            )
        lines += [f"  rejected {r.path}: {r.reason}" for r in self.files_rejected]
        if self.load and self.load.rows_rejected:
            lines.append(self.load.describe())
        return "\n".join(lines)


# -- the inbox -----------------------------------------------------------------------------------


def inbox_files(inbox: Path) -> list[tuple[str, Path]]:
    """Every ``*.json`` file waiting in the inbox, as (provider, path), oldest name first."""
    found: list[tuple[str, Path]] = []
    for provider in (s.source for s in SOURCES):
        folder = inbox / provider
        if folder.is_dir():
            found += [(provider, p) for p in sorted(folder.iterdir()) if _waiting(p)]
    return found


def _waiting(path: Path) -> bool:
    return path.is_file() and path.suffix == ".json" and not path.name.startswith(".")


def _move(path: Path, folder: str) -> None:
    target = path.parent / folder
    target.mkdir(exist_ok=True)
    os.replace(path, target / path.name)


# -- reading and checking, in DuckDB -------------------------------------------------------------

_DOCS = """
create temp table _docs as
select p.provider, p.path,
       case when json_valid(try(decode(b.content))) then json(try(decode(b.content))) end as doc
from _paths as p left join read_blob(:files) as b on b.filename = p.path
"""

#: How a file's notifications become rows of ``_items``, by the source's body.
_ITEMS = {
    "object": """
select provider, path, 0 as item_no, doc as item
from _docs where provider = :source and doc is not null
""",
    "array": """
select provider, path, item_no, item from (
    select provider, path, unnest(json_extract(doc, '$[*]')) as item,
           generate_subscripts(json_extract(doc, '$[*]'), 1) as item_no
    from _docs where provider = :source and json_type(doc) = 'ARRAY'
) as unnested
""",
}

#: Checks of every file and every notification, whatever the source: (condition, reason).
_DOC_CHECK = ("doc is null", "not valid JSON (or not UTF-8 text)")
_ITEM_CHECK = ("json_type(item) <> 'OBJECT'", "not a JSON object")


def _checks() -> list[tuple[str, str, str, str]]:
    """Every check as (source table, provider, condition, reason), in the order they report."""
    found = [("_docs", "", *_DOC_CHECK)] + [("_docs", s.source, *s.file_check) for s in SOURCES]
    found.append(("_items", "", *_ITEM_CHECK))
    for source in SOURCES:
        found += [("_items", source.source, _missing(n), f"missing {n}") for n in source.required]
    for source in SOURCES:
        found += [("_items", source.source, *c) for c in source.item_checks]
    return found


def _problems_query() -> exp.Query:
    parts: list[exp.Query] = []
    for number, (table, provider, condition, reason) in enumerate(_checks()):
        item_no = "item_no" if table == "_items" else "0"
        where = sqlglot.parse_one(condition, read="duckdb")
        if provider:
            where = exp.and_(exp.column("provider").eq(literal(provider)), where)
        parts.append(
            exp.select(
                "path",
                sqlglot.parse_one(item_no).as_("item_no"),
                exp.Literal.number(number).as_("check_no"),
                exp.Literal.string(reason).as_("reason"),
            )
            .from_(table)
            .where(where)
        )
    return _union_all(parts)


def _union_all(parts: Sequence[exp.Query]) -> exp.Query:
    union = parts[0]
    for part in parts[1:]:
        union = exp.union(union, part, distinct=False)
    return union


def _assembled(pieces: Sequence[exp.Expr]) -> exp.Query:
    """Every source's piece, as one ``union all``."""
    return _union_all([piece.assert_is(exp.Query) for piece in pieces])


def _items_query() -> exp.Query:
    return _assembled([statement(_ITEMS[s.body], source=s.source) for s in SOURCES])


def _notes_query(now: datetime) -> exp.Query:
    return _assembled([statement(s.notes, now=now, **s.params) for s in SOURCES])


def _mapping_rows() -> list[tuple[str, str, str, str, str | None, str]]:
    """(provider, status, subtype, event_type, bounce_type, id suffix) of every source."""
    return [(s.source, *event) for s in SOURCES for event in s.events]


_REJECTED = """
create temp table _rejected as
select path,
       arg_min(case when item_no > 0 then 'event ' || item_no || ': ' else '' end || reason,
               item_no * 1000 + check_no) as reason,
       count(*) as problems
from _problems group by path
"""


# -- mapping notifications onto events -----------------------------------------------------------

_EVENTS = """
create temp table _events as
select md5(n.provider || ':' || n.provider_event_id || m.id_suffix) as event_id,
       n.customer_id, m.event_type, n.occurred_at, :now as loaded_at,
       json_merge_patch('{}', json_object(
           'channel', n.channel, 'message_id', n.message_id, 'flow_id', n.flow_id,
           'step_id', n.step_id, 'provider', n.provider,
           'provider_event_id', n.provider_event_id || m.id_suffix, 'url', n.url,
           'bounce_type', m.bounce_type, 'reason', n.reason, 'error_code', n.error_code
       )) as properties,
       n.message_id,
       coalesce(n.reason, 'error ' || n.error_code, m.bounce_type || ' bounce') as failure_reason
from _notes as n
join _mapping as m on m.provider = n.provider and m.status = n.status and m.subtype = n.subtype
where n.message_id is not null and n.customer_id is not null
qualify row_number() over (partition by event_id order by n.path, n.item_no) = 1
"""

_IGNORED = """
select count(*) from _notes as n
where (n.message_id is null or n.customer_id is null or not exists (
    select 1 from _mapping as m
    where m.provider = n.provider and m.status = n.status and m.subtype = n.subtype))
    and not (n.provider = 'flowhouse' and n.status = 'expired_click')
"""

_EXPIRED_CLICKS = """
select count(*) from _notes as n where n.provider = 'flowhouse' and n.status = 'expired_click'
"""

_NEW = """
select event_id, customer_id, event_type, strftime(occurred_at, :iso) as occurred_at,
       strftime(loaded_at, :iso) as loaded_at, properties
from _events where event_id not in (select event_id from _present)
order by occurred_at, event_id
"""

_DELIVERED = """
select message_id, min(occurred_at) from _events
where event_type = 'message_delivered' group by message_id order by message_id
"""

_BOUNCED = """
select message_id, arg_max(failure_reason, occurred_at) from _events
where event_type = 'message_bounced' group by message_id order by message_id
"""


def _run(con: Any, text: str, **values: Any) -> list[tuple[Any, ...]]:
    """Run a fixed DuckDB statement with its ``:name`` placeholders bound as literals."""
    return list(con.execute(statement(text, **values).sql("duckdb")).fetchall())


def _table(con: Any, name: str, columns: Sequence[str], rows: Sequence[tuple[Any, ...]]) -> None:
    """A temp table of constant text rows, handed to DuckDB as an Arrow table."""
    data = {c: pa.array([row[i] for row in rows], pa.string()) for i, c in enumerate(columns)}
    con.register("_constant_rows", pa.table(data))
    _create(con, name, exp.select("*").from_("_constant_rows"))
    con.unregister("_constant_rows")


def _create(con: Any, name: str, query: exp.Query) -> None:
    """A temp table of what ``query`` selects."""
    create = exp.Create(
        this=exp.to_table(name),
        kind="TABLE",
        expression=query,
        properties=exp.Properties(expressions=[exp.TemporaryProperty()]),
    )
    con.execute(create.sql("duckdb"))


def _read(
    con: Any, files: Sequence[tuple[str, Path]], now: datetime, loc: Location
) -> list[RejectedFile]:
    """Read and check every file, and map the good ones' notifications into ``_events``."""
    _table(con, "_paths", ("provider", "path"), [(p, str(f)) for p, f in files])
    names = exp.Array(expressions=[exp.Literal.string(str(f)) for _, f in files])
    _run(con, _DOCS, files=names)
    _create(con, "_items", _items_query())
    _create(con, "_problems", _problems_query())
    _run(con, _REJECTED)
    rejected = _rejected(con)
    con.execute("delete from _items where path in (select path from _rejected)")
    _table(con, "_mapping", ("provider", "status", "subtype", "event_type", "bounce_type",
                             "id_suffix"), _mapping_rows())  # fmt: skip
    _create(con, "_notes", _notes_query(now))
    _owners(con, loc)
    _run(con, _EVENTS, now=now)
    return rejected


_ORPHANS = """
select distinct message_id from _notes
where customer_id is null and message_id is not null order by message_id
"""

_ADOPT = """
update _notes set customer_id = o.customer_id
from _owners as o where _notes.message_id = o.message_id and _notes.customer_id is null
"""


def _owners(con: Any, loc: Location) -> None:
    """The customer of notifications that name only their message (Vonage's carry our
    ``client_ref``, nothing more): the outbox row's. A message the outbox does not hold stays
    without one, and its notification is ignored."""
    ids = [str(r[0]) for r in con.execute(_ORPHANS).fetchall()]
    if not ids:
        return
    found: list[tuple[Any, ...]] = []
    with Warehouse.open(loc) as wh:
        if "customer_id" not in wh.columns(STATE_SCHEMA, "messages"):
            return
        for start in range(0, len(ids), _ID_CHUNK):
            chunk = [exp.Literal.string(i) for i in ids[start : start + _ID_CHUNK]]
            query = (
                exp.select("message_id", "customer_id")
                .from_(f"{STATE_SCHEMA}.messages")
                .where(exp.column("message_id").isin(*chunk))
            )
            found += [tuple(map(str, row)) for row in wh.query(query)]
    _table(con, "_owners", ("message_id", "customer_id"), found)
    con.execute(_ADOPT)


def _rejected(con: Any) -> list[RejectedFile]:
    rows = con.execute("select path, reason, problems from _rejected order by path").fetchall()
    return [RejectedFile(path, _reason(reason, int(n))) for path, reason, n in rows]


def _reason(first: str, problems: int) -> str:
    return first if problems == 1 else f"{first} (and {problems - 1} more problems)"


# -- the warehouse -------------------------------------------------------------------------------


def _present(wh: Warehouse, ids: Sequence[str]) -> list[str]:
    """Which of ``ids`` ``raw.events`` already holds (asked in chunks of literal lists)."""
    found: list[str] = []
    for start in range(0, len(ids), _ID_CHUNK):
        chunk = [exp.Literal.string(i) for i in ids[start : start + _ID_CHUNK]]
        query = (
            exp.select("event_id")
            .from_(f"{RAW_SCHEMA}.events")
            .where(exp.column("event_id").isin(*chunk))
        )
        found += [str(r[0]) for r in wh.query(query)]
    return found


def _write_new(con: Any, folder: Path) -> Path | None:
    """The events not yet in the warehouse as a JSON Lines file for the loader (None if none)."""
    if not _run(con, f"select count(*) from ({_NEW}) as n", iso=_ISO)[0][0]:
        return None
    path = folder / "engagement-webhooks.jsonl"
    query = statement(_NEW, iso=_ISO)
    copy = exp.Copy(
        this=exp.Subquery(this=query),
        kind=False,
        files=[exp.Literal.string(str(path))],
        params=[exp.CopyParameter(this=exp.var("FORMAT"), expression=exp.var("json"))],
    )
    con.execute(copy.sql("duckdb"))
    return path


def _outbox_update(
    status: str, sources: Sequence[str], rows: Sequence[tuple[Any, ...]], now: datetime,
    columns: Sequence[str],
) -> exp.Update:  # fmt: skip
    """One set-based update of ``flowhouse.messages`` for every message in ``rows``
    ((message_id, value)): delivered_at or failure_reason, where those columns exist."""
    value_column = {"delivered": "delivered_at", "bounced": "failure_reason"}[status]
    values = exp.values([(literal(m), literal(v)) for m, v in rows], "v", ["message_id", "value"])
    sets: dict[str, exp.Expr] = {"status": literal(status), "updated_at": literal(now)}
    if value_column in columns:
        sets[value_column] = exp.column("value", "v")
    where = exp.and_(
        exp.column("message_id", "m").eq(exp.column("message_id", "v")),
        exp.column("status", "m").isin(*[literal(s) for s in sources]),
    )
    return exp.Update(
        this=exp.to_table(f"{STATE_SCHEMA}.messages").as_("m"),
        expressions=[exp.EQ(this=exp.column(k), expression=v) for k, v in sets.items()],
        from_=exp.From(this=values),
        where=exp.Where(this=where),
    )


def _update_outbox(wh: Warehouse, con: Any, now: datetime) -> tuple[int, int]:
    """Mark delivered and bounced messages; (delivered, bounced). Nothing without an outbox."""
    columns = wh.columns(STATE_SCHEMA, "messages")
    if "status" not in columns:
        return 0, 0
    counts: list[int] = []
    with wh.transaction():
        for status, sources, text in (
            ("delivered", DELIVERABLE, _DELIVERED),
            ("bounced", BOUNCEABLE, _BOUNCED),
        ):
            rows = _run(con, text)
            update = _outbox_update(status, sources, rows, now, columns)
            counts.append(wh.execute_count(update) if rows else 0)
    return counts[0], counts[1]


# -- one pass ------------------------------------------------------------------------------------


def _utc(now: datetime) -> datetime:
    return utc(now)


def ingest(location: str | Location, inbox: Path, now: datetime) -> IngestReport:
    """Read every webhook file in ``inbox`` into ``raw.events`` and the outbox, then file it
    under ``done/`` (or ``rejected/``, with the reason in the report)."""
    loc = location if isinstance(location, Location) else Location.parse(location)
    files = inbox_files(inbox)
    report = IngestReport(files_read=len(files))
    if not files:
        return report
    moment = _utc(now)
    con = duckdb.connect()
    try:
        con.execute("set TimeZone = 'UTC'")
        report.files_rejected = _read(con, files, moment, loc)
        _store(loc, con, moment, report)
    finally:
        con.close()
    bad = {r.path for r in report.files_rejected}
    for _, path in files:
        _move(path, "rejected" if str(path) in bad else "done")
    return report


def _store(loc: Location, con: Any, now: datetime, report: IngestReport) -> None:
    """Load the new events, then update the outbox from all of them (a repeat changes nothing)."""
    kinds = con.execute("select event_type, count(*) from _events group by event_type").fetchall()
    report.events = {str(k): int(n) for k, n in kinds}
    report.ignored = int(_run(con, _IGNORED)[0][0])
    report.expired_clicks = int(_run(con, _EXPIRED_CLICKS)[0][0])
    ids = [str(r[0]) for r in con.execute("select event_id from _events").fetchall()]
    with Warehouse.open(loc) as wh:
        wh.ensure_raw_tables()
        present = _present(wh, ids)
    report.already_present = len(present)
    _table(con, "_present", ("event_id",), [(i,) for i in present])
    with tempfile.TemporaryDirectory() as tmp:
        path = _write_new(con, Path(tmp))
        if path is not None:
            report.load = load_file(loc, "events", path)
    with Warehouse.open(loc) as wh:
        report.messages_delivered, report.messages_bounced = _update_outbox(wh, con, now)
