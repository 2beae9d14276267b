"""Provider engagement back into the warehouse: webhook files in, canonical events and outbox
statuses out.

The receiver (:mod:`activation.receiver`) stores every webhook it accepts as one JSON file in an
inbox, one folder per source::

    <inbox>/sendgrid/*.json    SendGrid event webhook bodies (a JSON array of events)
    <inbox>/twilio/*.json      one Twilio status callback each (form fields, our query, received_at)
    <inbox>/flowhouse/*.json   unsubscribes from signed links

:func:`ingest` reads every file in one set-based pass in an in-memory DuckDB, maps the providers'
notifications onto canonical events (:data:`MAPPING`), writes the new ones to ``raw.events``
through the loader (so they are validated like any other load, on DuckDB or PostgreSQL), marks the
outbox rows they concern ``delivered`` or ``bounced``, and only then moves the files to ``done/``.
A file that is not JSON or lacks a required field moves to ``rejected/`` and is named in the report.

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

from flowhouse.core.clock import utc
from flowhouse.core.contract import RAW_SCHEMA
from flowhouse.core.sql import STATE_SCHEMA, literal, statement
from flowhouse.core.warehouse import Location, Warehouse
from flowhouse.load import LoadReport, load_file

PROVIDERS = ("sendgrid", "twilio", "flowhouse")

#: Twilio error codes that mean the number cannot be reached or has opted out: a hard bounce.
HARD_SMS_ERRORS = ("30003", "30005", "30006", "21610", "21211")
#: Twilio's "the recipient replied STOP": a hard bounce and an SMS unsubscribe.
STOP_ERROR = "21610"

#: (provider, notification, subtype) -> (event_type, bounce_type, suffix of the provider event
#: id). The subtype tells bounces apart: SendGrid's bounce ``type`` (``bounce``/``blocked``),
#: Twilio's error code class (``hard``/``soft``/``stop``). Notifications not listed (SendGrid
#: ``processed``/``deferred``, Twilio ``queued``/``sent``/``accepted``) are not events.
MAPPING: tuple[tuple[str, str, str, str, str | None, str], ...] = (
    ("sendgrid", "delivered", "", "message_delivered", None, ""),
    ("sendgrid", "open", "", "message_opened", None, ""),
    ("sendgrid", "click", "", "message_clicked", None, ""),
    ("sendgrid", "bounce", "bounce", "message_bounced", "hard", ""),
    ("sendgrid", "bounce", "blocked", "message_bounced", "soft", ""),
    ("sendgrid", "dropped", "", "message_bounced", "soft", ""),
    ("sendgrid", "spamreport", "", "message_complained", None, ""),
    ("sendgrid", "unsubscribe", "", "unsubscribed", None, ""),
    ("sendgrid", "group_unsubscribe", "", "unsubscribed", None, ""),
    ("twilio", "delivered", "", "message_delivered", None, ""),
    ("twilio", "undelivered", "hard", "message_bounced", "hard", ""),
    ("twilio", "undelivered", "soft", "message_bounced", "soft", ""),
    ("twilio", "undelivered", "stop", "message_bounced", "hard", ""),
    ("twilio", "undelivered", "stop", "unsubscribed", None, ":unsubscribe"),
    ("twilio", "failed", "hard", "message_bounced", "hard", ""),
    ("twilio", "failed", "soft", "message_bounced", "soft", ""),
    ("twilio", "failed", "stop", "message_bounced", "hard", ""),
    ("twilio", "failed", "stop", "unsubscribed", None, ":unsubscribe"),
    ("flowhouse", "unsubscribe", "", "unsubscribed", None, ""),
)

#: Fields a file's notifications must carry (SendGrid: every event of the array).
REQUIRED: dict[str, tuple[str, ...]] = {
    "sendgrid": ("event", "timestamp", "sg_event_id"),
    "twilio": ("MessageSid", "MessageStatus", "message_id", "customer_id"),
    "flowhouse": ("kind", "message_id", "customer_id", "channel"),
}

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
        lines += [f"  rejected {r.path}: {r.reason}" for r in self.files_rejected]
        if self.load and self.load.rows_rejected:
            lines.append(self.load.describe())
        return "\n".join(lines)


# -- the inbox -----------------------------------------------------------------------------------


def inbox_files(inbox: Path) -> list[tuple[str, Path]]:
    """Every ``*.json`` file waiting in the inbox, as (provider, path), oldest name first."""
    found: list[tuple[str, Path]] = []
    for provider in PROVIDERS:
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

_ITEMS = """
create temp table _items as
select provider, path, 0 as item_no, doc as item
from _docs where provider <> 'sendgrid' and doc is not null
union all
select provider, path, item_no, item from (
    select provider, path, unnest(json_extract(doc, '$[*]')) as item,
           generate_subscripts(json_extract(doc, '$[*]'), 1) as item_no
    from _docs where provider = 'sendgrid' and json_type(doc) = 'ARRAY'
) as unnested
"""

#: (provider or '' for all, condition over a file's ``doc``, reason)
_FILE_CHECKS: tuple[tuple[str, str, str], ...] = (
    ("", "doc is null", "not valid JSON (or not UTF-8 text)"),
    ("sendgrid", "json_type(doc) <> 'ARRAY'", "expected a JSON array of events"),
    ("twilio", "json_type(doc) <> 'OBJECT'", "expected a JSON object"),
    ("flowhouse", "json_type(doc) <> 'OBJECT'", "expected a JSON object"),
)

#: (provider or '' for all, condition over one notification ``item``, reason)
_ITEM_CHECKS: tuple[tuple[str, str, str], ...] = (
    ("", "json_type(item) <> 'OBJECT'", "not a JSON object"),
    (
        "sendgrid",
        "try_cast(json_extract_string(item, '$.timestamp') as double) is null",
        "timestamp is not a number",
    ),
    (
        "flowhouse",
        "coalesce(json_extract_string(item, '$.kind'), '') <> 'unsubscribe'",
        "kind is not 'unsubscribe'",
    ),
    (
        "flowhouse",
        "lower(coalesce(json_extract_string(item, '$.channel'), ''))"
        " not in ('email', 'sms', 'all')",
        "channel is not email, sms or all",
    ),
)


def _missing(name: str) -> str:
    """The condition "the notification lacks ``name``" (a constant field name, not data)."""
    return f"nullif(trim(json_extract_string(item, '$.{name}')), '') is null"


def _checks() -> list[tuple[str, str, str, str]]:
    """Every check as (source table, provider, condition, reason), in the order they report."""
    found = [("_docs", *c) for c in _FILE_CHECKS] + [("_items", *c) for c in _ITEM_CHECKS[:1]]
    for provider, names in REQUIRED.items():
        found += [("_items", provider, _missing(n), f"missing {n}") for n in names]
    return found + [("_items", *c) for c in _ITEM_CHECKS[1:]]


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
    union = parts[0]
    for part in parts[1:]:
        union = exp.union(union, part, distinct=False)
    return union


_REJECTED = """
create temp table _rejected as
select path,
       arg_min(case when item_no > 0 then 'event ' || item_no || ': ' else '' end || reason,
               item_no * 1000 + check_no) as reason,
       count(*) as problems
from _problems group by path
"""


# -- mapping notifications onto events -----------------------------------------------------------

_NOTES = """
create temp table _notes as
select path, item_no, provider,
       lower(json_extract_string(item, '$.event')) as status,
       case when lower(json_extract_string(item, '$.event')) <> 'bounce' then ''
            when lower(coalesce(json_extract_string(item, '$.type'), '')) = 'blocked' then 'blocked'
            else 'bounce' end as subtype,
       json_extract_string(item, '$.sg_event_id') as provider_event_id,
       nullif(trim(json_extract_string(item, '$.message_id')), '') as message_id,
       nullif(trim(json_extract_string(item, '$.customer_id')), '') as customer_id,
       json_extract_string(item, '$.flow_id') as flow_id,
       json_extract_string(item, '$.step_id') as step_id,
       'email' as channel,
       json_extract_string(item, '$.url') as url,
       json_extract_string(item, '$.reason') as reason,
       cast(null as varchar) as error_code,
       make_timestamp(cast(cast(json_extract_string(item, '$.timestamp') as double) * 1000000
                           as bigint)) as occurred_at
from _items where provider = 'sendgrid'
union all
select path, item_no, provider, status,
       case when status not in ('undelivered', 'failed') then ''
            when error_code = :stop then 'stop'
            when list_contains(:hard, error_code) then 'hard'
            else 'soft' end,
       json_extract_string(item, '$.MessageSid') || ':' || status,
       trim(json_extract_string(item, '$.message_id')),
       trim(json_extract_string(item, '$.customer_id')),
       null, null, 'sms', null, null, error_code,
       coalesce(try_cast(json_extract_string(item, '$.received_at') as timestamptz)
                    at time zone 'UTC', :now)
from (
    select *, lower(json_extract_string(item, '$.MessageStatus')) as status,
           nullif(trim(json_extract_string(item, '$.ErrorCode')), '') as error_code
    from _items where provider = 'twilio'
) as twilio
union all
select path, item_no, provider, 'unsubscribe', '',
       'link:' || trim(json_extract_string(item, '$.message_id')) || ':unsubscribe',
       trim(json_extract_string(item, '$.message_id')),
       trim(json_extract_string(item, '$.customer_id')),
       null, null, lower(json_extract_string(item, '$.channel')), null, null, null,
       coalesce(try_cast(json_extract_string(item, '$.received_at') as timestamptz)
                    at time zone 'UTC', :now)
from _items where provider = 'flowhouse'
"""

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
where n.message_id is null or n.customer_id is null or not exists (
    select 1 from _mapping as m
    where m.provider = n.provider and m.status = n.status and m.subtype = n.subtype)
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
    create = exp.Create(
        this=exp.to_table(name),
        kind="TABLE",
        expression=exp.select("*").from_("_constant_rows"),
        properties=exp.Properties(expressions=[exp.TemporaryProperty()]),
    )
    con.execute(create.sql("duckdb"))
    con.unregister("_constant_rows")


def _read(con: Any, files: Sequence[tuple[str, Path]], now: datetime) -> list[RejectedFile]:
    """Read and check every file, and map the good ones' notifications into ``_events``."""
    _table(con, "_paths", ("provider", "path"), [(p, str(f)) for p, f in files])
    names = exp.Array(expressions=[exp.Literal.string(str(f)) for _, f in files])
    _run(con, _DOCS, files=names)
    _run(con, _ITEMS)
    con.execute(f"create temp table _problems as {_problems_query().sql('duckdb')}")
    _run(con, _REJECTED)
    rejected = _rejected(con)
    con.execute("delete from _items where path in (select path from _rejected)")
    _table(con, "_mapping", ("provider", "status", "subtype", "event_type", "bounce_type",
                             "id_suffix"), MAPPING)  # fmt: skip
    hard = exp.Array(expressions=[exp.Literal.string(c) for c in HARD_SMS_ERRORS])
    _run(con, _NOTES, stop=STOP_ERROR, hard=hard, now=now)
    _run(con, _EVENTS, now=now)
    return rejected


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
        report.files_rejected = _read(con, files, moment)
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
