"""GDPR erasure: take customers out of the warehouse, keeping anonymous counts (docs/privacy.md).

One run is one transaction, set-based: the ids go into a temp table, then one statement per table.

- raw inputs: the customers' rows leave ``raw.customers``, ``raw.events``,
  ``raw.retracted_events`` and ``raw.device_tokens``; ``raw.rejects`` loses every reject whose value
  or record holds their id, e-mail, phone or a device token;
- the engine's and activation's tables (every state schema: ``flowhouse``, the backtest's and the
  preview's): ``customer_id`` becomes ``'erased:' || md5(customer_id)`` so the flow totals do not
  change, and what was about them goes (addresses, rendered subjects and payloads, trigger
  properties, profile values, provider answers); their onsite messages and the device tokens FCM
  answered dead are deleted. Their active enrollments end (``exited``,
  ``erased``); their queued messages are skipped (``erased``), so nothing more is sent;
- syncs: a row a ``mirror`` sync's destination holds stays in ``flowhouse.sync_state`` until the
  next run of that sync removes it there (the removal needs the key and the fields the destination
  was told); rows of ``upsert`` and ``add_only`` syncs leave the snapshot (those syncs remove
  nobody: the report names the destinations to clean by hand). ``sync_rows`` keys are anonymised;
- models: the derived-event and history tables dbt builds incrementally (``core``) lose their
  rows; the mart tables (``marts``) are anonymised like the engine's;
- ``flowhouse.erased_customers`` keeps the md5 of each id: the engine enrolls nobody whose id
  hashes to one (a customer loaded again later), and every run also erases again whatever the
  warehouse got back about an erased customer since (a removal a sync logged, a re-loaded row).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

from flowhouse.activation.links import LINKS_FOLDER
from flowhouse.activation.links import erase as erase_links
from flowhouse.core.contract import RAW_SCHEMA
from flowhouse.core.state import ensure_retracted, ensure_state
from flowhouse.core.warehouse import Location, Warehouse
from flowhouse.corrections import id_table, rows, run

#: State schemas that may hold customers: the live one, the backtest's, the preview's.
STATE_SCHEMAS = ("flowhouse", "flowhouse_backtest", "flowhouse_preview")
#: Schemas of tables dbt builds: rows about a customer are deleted (staging, core) or anonymised
#: (marts, whose counts must not change).
MODEL_SCHEMAS = {"staging": "delete", "core": "delete", "marts": "anonymise"}

#: The erased customers: the ids given, and any id the warehouse holds whose md5 is erased.
_ERASE = """
select customer_id, md5(customer_id) as customer_hash, 'erased:' || md5(customer_id) as anon
from (
    select customer_id from _fh_erase_given
    union
    select customer_id from raw.customers
    where md5(customer_id) in (select customer_hash from flowhouse.erased_customers)
    union
    select customer_id from raw.events
    where md5(customer_id) in (select customer_hash from flowhouse.erased_customers)
    union
    select sync_key from flowhouse.sync_rows
    where md5(sync_key) in (select customer_hash from flowhouse.erased_customers)
) as ids
where customer_id is not null
"""

_NEWLY_ERASED = """
insert into flowhouse.erased_customers (customer_hash, erased_at)
select distinct e.customer_hash, :now from _fh_erase as e
where not exists (
    select 1 from flowhouse.erased_customers as done where done.customer_hash = e.customer_hash
)
"""

#: Their e-mail addresses, phone numbers and device tokens, as the customer rows, the device
#: tokens and the outbox hold them.
_CONTACTS = """
select email as value from raw.customers where customer_id in (select customer_id from _fh_erase)
union
select phone from raw.customers where customer_id in (select customer_id from _fh_erase)
union
select token from raw.device_tokens where customer_id in (select customer_id from _fh_erase)
"""

_MESSAGE_ADDRESSES = """
insert into _fh_erase_contacts
select distinct address from flowhouse.messages
where customer_id in (select customer_id from _fh_erase) and address is not null
"""

_REJECTS = """
delete from raw.rejects
where value in (select customer_id from _fh_erase)
    or value in (select value from _fh_erase_contacts)
    or exists (
        select 1 from _fh_erase_contacts as c
        where c.value is not null and strpos(record, c.value) > 0
    )
    or exists (
        select 1 from _fh_erase as c
        where strpos(',' || record || ',', ',' || c.customer_id || ',') > 0
            or strpos(record, '"' || c.customer_id || '"') > 0
    )
"""

_RAW = [
    f"delete from {RAW_SCHEMA}.{table} where customer_id in (select customer_id from _fh_erase)"
    for table in ("events", "retracted_events", "customers", "device_tokens")
]

_WHERE = "where customer_id in (select customer_id from _fh_erase)"
_ANON = "customer_id = 'erased:' || md5(customer_id)"

#: (table, statement) per state table; run in this order (send_attempts finds its messages by
#: their anonymised customer).
_STATE = (
    (
        "enrollments",
        f"""
update flowhouse.enrollments set {_ANON}, trigger_properties = null, entry_key = null,
    end_reason = case when status = 'active' then 'erased' else end_reason end,
    ended_at = case when status = 'active' then :now else ended_at end,
    due_at = case when status = 'active' then null else due_at end,
    status = case when status = 'active' then 'exited' else status end,
    updated_at_tick = :now
{_WHERE}""",
    ),
    ("decisions", f"update flowhouse.decisions set {_ANON}, detail = null {_WHERE}"),
    (
        "messages",
        f"""
update flowhouse.messages set {_ANON}, address = null, subject = null, preheader = null,
    payload = null, failure_reason = null,
    skip_reason = case when status = 'queued' then 'erased' else skip_reason end,
    status = case when status = 'queued' then 'skipped' else status end,
    updated_at = :now
{_WHERE}""",
    ),
    (
        "send_attempts",
        """
update flowhouse.send_attempts set reason = null
where message_id in (
    select message_id from flowhouse.messages where customer_id in (select anon from _fh_erase)
)""",
    ),
    ("test_sends", f"update flowhouse.test_sends set {_ANON} {_WHERE}"),
    ("onsite_messages", f"delete from flowhouse.onsite_messages {_WHERE}"),
    ("invalid_device_tokens", f"delete from flowhouse.invalid_device_tokens {_WHERE}"),
    ("coupon_codes", f"update flowhouse.coupon_codes set {_ANON} {_WHERE}"),
    ("profile_updates", f"update flowhouse.profile_updates set {_ANON}, value = null {_WHERE}"),
    (
        "sync_rows",
        """
update flowhouse.sync_rows set sync_key = 'erased:' || md5(sync_key), reason = null
where sync_key in (select customer_id from _fh_erase)""",
    ),
)

#: The syncs whose latest run was in mirror mode: they send removals.
_MIRRORED = """
select r.sync_id from flowhouse.sync_runs as r
where r.mode = 'mirror' and r.started_at = (
    select max(latest.started_at) from flowhouse.sync_runs as latest
    where latest.sync_id = r.sync_id
)
"""

_SNAPSHOT_ROWS = f"""
select sync_id, count(*) from flowhouse.sync_state
where sync_key in (select customer_id from _fh_erase)
    and sync_id {{}} ({_MIRRORED})
group by sync_id order by sync_id
"""

_UNMIRRORED_ROWS = f"""
delete from flowhouse.sync_state
where sync_key in (select customer_id from _fh_erase)
    and sync_id not in ({_MIRRORED})
"""

_MODEL_TABLES = """
select c.table_schema, c.table_name from information_schema.columns as c
join information_schema.tables as t
    on t.table_schema = c.table_schema and t.table_name = c.table_name
where c.column_name = 'customer_id' and t.table_type = 'BASE TABLE'
    and c.table_schema in ('staging', 'core', 'marts')
order by 1, 2
"""


@dataclass
class ErasureReport:
    given: list[str]
    #: Customers erased in this run (the given ones, and any erased before that came back).
    erased: int = 0
    #: Rows left in ``raw.customers`` and ``raw.events`` for the given ids, before.
    customer_rows: int = 0
    event_rows: int = 0
    #: Per mirror sync, rows its next run removes at the destination.
    pending_removals: dict[str, int] = field(default_factory=dict)
    #: Per upsert / add_only sync, rows its destination still holds (removed from the snapshot).
    left_at_destination: dict[str, int] = field(default_factory=dict)
    model_tables: list[str] = field(default_factory=list)
    #: SMS short links of erased customers removed from ``<inbox>/links/`` (None: no inbox given,
    #: not looked at).
    short_links: int | None = None
    #: Lines of ``<inbox>/links/`` that are not short links (located): left as they are, since
    #: whose link they hold cannot be told.
    unreadable_links: list[str] = field(default_factory=list)

    def describe(self) -> str:
        lines = [
            f"erased {self.erased} customer(s) ({len(self.given)} given): "
            f"{self.customer_rows} customer row(s), {self.event_rows} event(s) deleted; "
            "engine and mart rows anonymised"
        ]
        if self.short_links is None:
            lines.append(
                "  SMS short links (<inbox>/links/) not checked: give --inbox (or set "
                "FLOWHOUSE_INBOX) to remove the erased customers' links"
            )
        else:
            lines.append(f"  {self.short_links} SMS short link(s) removed from <inbox>/links/")
        if self.unreadable_links:
            lines.append(
                f"  {len(self.unreadable_links)} line(s) of <inbox>/links/ are not short links, so "
                "were not checked for the erased customers (left as they are: fix or delete "
                "them, then run flowhouse erase --inbox again):"
            )
            lines += [f"    {where}" for where in self.unreadable_links]
        for sync_id, n in self.pending_removals.items():
            lines.append(f"  sync {sync_id}: {n} row(s) removed at the destination by its next run")
        for sync_id, n in self.left_at_destination.items():
            lines.append(
                f"  sync {sync_id}: {n} row(s) still held by the destination (this sync never "
                "removes rows): delete them there"
            )
        return "\n".join(lines)


def erase(
    location: Location, customer_ids: Sequence[str], now: datetime, inbox: Path | None = None
) -> ErasureReport:
    """Erase `customer_ids` (and any erased customer the warehouse got back) in one transaction;
    then, given the receiver's ``inbox``, the SMS short links of every customer ever erased."""
    report = ErasureReport(list(dict.fromkeys(i.strip() for i in customer_ids if i.strip())))
    with Warehouse.open(location) as wh:
        wh.ensure_raw_tables()
        ensure_retracted(wh)
        ensure_state(wh, "flowhouse")
        with wh.transaction():
            _erase(wh, report, now)
        hashes = {
            str(r[0]) for r in rows(wh, "select customer_hash from flowhouse.erased_customers")
        }
    if inbox is not None:
        erased = erase_links(inbox / LINKS_FOLDER, hashes)
        report.short_links = erased.removed
        report.unreadable_links = [str(problem) for problem in erased.unreadable]
    return report


def _erase(wh: Warehouse, report: ErasureReport, now: datetime) -> None:
    id_table(wh, "_fh_erase_given", "customer_id", report.given)
    _temp(wh, "_fh_erase", _ERASE)
    report.erased = wh.count("_fh_erase")
    report.customer_rows = _count(wh, "raw.customers")
    report.event_rows = _count(wh, "raw.events")
    run(wh, _NEWLY_ERASED, now=now)
    _temp(wh, "_fh_erase_contacts", _CONTACTS)
    schemas = [s for s in STATE_SCHEMAS if wh.table_exists(s, "messages")]
    for schema in schemas:
        run(wh, _MESSAGE_ADDRESSES, schema)
    run(wh, _REJECTS)
    for statement in _RAW:
        run(wh, statement)
    _syncs(wh, report)
    for schema in schemas:
        for table, statement in _STATE:
            if wh.table_exists(schema, table):
                run(wh, statement, schema, now=now)
    report.model_tables = _models(wh)
    for name in ("_fh_erase_given", "_fh_erase", "_fh_erase_contacts"):
        wh.execute(f"drop table if exists {name}")


def _temp(wh: Warehouse, name: str, text: str) -> None:
    wh.execute(f"drop table if exists {name}")
    run(wh, f"create temp table {name} as {text}")


def _count(wh: Warehouse, table: str) -> int:
    found = rows(wh, f"select count(*) from {table} {_WHERE}")
    return int(found[0][0])


def _syncs(wh: Warehouse, report: ErasureReport) -> None:
    """Mirror syncs keep the rows to remove; the others' snapshot rows go."""
    report.pending_removals = dict(rows(wh, _SNAPSHOT_ROWS.format("in")))
    report.left_at_destination = dict(rows(wh, _SNAPSHOT_ROWS.format("not in")))
    run(wh, _UNMIRRORED_ROWS)


def _models(wh: Warehouse) -> list[str]:
    """Rows about the customers in the tables dbt builds: deleted, or anonymised in the marts."""
    tables = [(s, t) for s, t in rows(wh, _MODEL_TABLES)]
    for schema, table in tables:
        if MODEL_SCHEMAS[schema] == "delete":
            run(wh, f"delete from {schema}.{table} {_WHERE}")
        else:
            run(wh, f"update {schema}.{table} set {_ANON} {_WHERE}")
    return [f"{s}.{t}" for s, t in tables]
