"""Onsite messages: the warehouse table ``flowhouse.onsite_messages`` is their destination.

``flowhouse send`` writes each due onsite message there instead of sending a request
(:func:`post`: title, rendered body (``body_format`` ``html`` from an ``.html.j2`` template,
auto-escaped, else ``text``, for the storefront to escape), deep link, and when it expires: its
due time plus the step's ``expires_after``, else ``delivery.onsite.expires_after``) and records
it ``sent``; the storefront polls a customer's pending ones through ``flowhouse receive``
(``GET /onsite/messages``, :func:`pending`), and posts back ``seen`` and ``dismissed``, which the
inbox turns into ``message_delivered``/``message_opened`` and ``message_dismissed`` events.

Every send run first moves the table forward (:func:`refresh`), set-based: ``pending`` becomes
``seen`` on a loaded ``message_opened`` event, ``pending`` or ``seen`` becomes ``dismissed`` on a
``message_dismissed`` one, and whatever is still pending or seen past its ``expires_at`` ends
``expired`` with the reason. A message is never written twice (the insert skips ids already
there), so a crash between the write and the outbox's record costs nothing.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import datetime
from typing import Any

import duckdb

from flowhouse.activation.message import Outgoing
from flowhouse.activation.outbox import Final, record
from flowhouse.activation.providers.onsite.config import Onsite
from flowhouse.core.errors import FlowhouseError
from flowhouse.core.sql import array_rows, render, statement
from flowhouse.core.warehouse import Location, Warehouse
from flowhouse.rules.context import Context

_COLUMNS = (
    ("message_id", "text"), ("customer_id", "text"), ("flow_id", "text"), ("step_id", "text"),
    ("title", "text"), ("body", "text"), ("body_format", "text"), ("deep_link", "text"),
    ("ttl_seconds", "integer"),
)  # fmt: skip

_POST = """
insert into flowhouse.onsite_messages
    (message_id, customer_id, flow_id, step_id, title, body, body_format, deep_link, created_at,
     expires_at, status)
select r.message_id, r.customer_id, r.flow_id, r.step_id, r.title, r.body, r.body_format,
    r.deep_link, :now,
    m.due_at + coalesce(r.ttl_seconds, :default_ttl) * interval 1 second, 'pending'
from :rows
join flowhouse.messages as m on m.message_id = r.message_id
where not exists (
    select 1 from flowhouse.onsite_messages as o where o.message_id = r.message_id
)
"""


def post(ctx: Context, claim_id: str, messages: Sequence[Outgoing], config: Onsite) -> list[Final]:
    """Write ``messages`` to the onsite table and record them sent (one commit each)."""
    if not messages:
        return []
    rows = [_row(m) for m in messages]
    tree = statement(
        _POST,
        ctx.schema,
        now=ctx.now,
        default_ttl=int(config.expires_after.total_seconds()),
        rows=array_rows(_COLUMNS, "r"),
    )
    ctx.wh.execute(
        render(tree, ctx.wh.dialect), [[r[i] for r in rows] for i in range(len(_COLUMNS))]
    )
    finals = [Final(m.message_id, "sent", m.message_id) for m in messages]
    record(ctx, claim_id, finals, [])
    return finals


def _row(m: Outgoing) -> tuple[Any, ...]:
    ttl = m.payload.get("expires_after_seconds")
    link = m.payload.get("deep_link")
    body, kind = (m.html, "html") if m.html is not None else (m.text or "", "text")
    return (
        m.message_id, m.customer_id, m.flow_id, m.step_id, m.subject or "", body, kind,
        link or None, int(ttl) if ttl is not None else None,
    )  # fmt: skip


_SEEN = """
update flowhouse.onsite_messages as o
set status = 'seen', seen_at = e.at
from (
    select json_text(ev.properties, 'message_id') as message_id, min(ev.occurred_at) as at
    from raw.events as ev
    where ev.event_type = 'message_opened' and ev.loaded_at <= :now
        and json_text(ev.properties, 'channel') = 'onsite'
        and ev.customer_id in (
            select customer_id from flowhouse.onsite_messages where status = 'pending'
        )
    group by 1
) as e
where o.message_id = e.message_id and o.status = 'pending'
"""

_DISMISSED = """
update flowhouse.onsite_messages as o
set status = 'dismissed', dismissed_at = e.at, ended_at = e.at,
    end_reason = 'dismissed by the customer'
from (
    select json_text(ev.properties, 'message_id') as message_id, min(ev.occurred_at) as at
    from raw.events as ev
    where ev.event_type = 'message_dismissed' and ev.loaded_at <= :now
        and ev.customer_id in (
            select customer_id from flowhouse.onsite_messages where status in ('pending', 'seen')
        )
    group by 1
) as e
where o.message_id = e.message_id and o.status in ('pending', 'seen')
"""

_EXPIRED = """
update flowhouse.onsite_messages
set ended_at = :now,
    end_reason = case when status = 'seen' then 'expired: seen, never dismissed, past its time '
        || 'to live' else 'expired: never seen within its time to live' end,
    status = 'expired'
where status in ('pending', 'seen') and expires_at <= :now
"""


def refresh(ctx: Context) -> dict[str, int]:
    """Move the onsite table forward: seen, dismissed, expired (counts of each)."""
    found: dict[str, int] = {}
    if ctx.wh.table_exists("raw", "events"):
        for name, text in (("seen", _SEEN), ("dismissed", _DISMISSED)):
            found[name] = ctx.wh.execute_count(
                render(statement(text, ctx.schema, now=ctx.now), ctx.wh.dialect)
            )
    found["expired"] = ctx.wh.execute_count(
        render(statement(_EXPIRED, ctx.schema, now=ctx.now), ctx.wh.dialect)
    )
    ctx.wh.commit()
    return {k: n for k, n in found.items() if n}


_PENDING = """
select message_id, flow_id, step_id, title, body, body_format, deep_link, created_at, expires_at,
    status
from flowhouse.onsite_messages
where customer_id = :customer and status in ('pending', 'seen') and expires_at > :now
order by created_at desc, message_id
limit :limit
"""

PENDING_COLUMNS = (
    "message_id", "flow_id", "step_id", "title", "body", "body_format", "deep_link", "created_at",
    "expires_at", "status",
)  # fmt: skip


def pending(wh: Warehouse, customer_id: str, now: datetime, limit: int) -> list[dict[str, Any]]:
    """The customer's onsite messages to show, newest first (``created_at``, ``expires_at`` as
    ISO text)."""
    if not wh.table_exists("flowhouse", "onsite_messages"):
        return []
    tree = statement(_PENDING, customer=customer_id, now=now, limit=limit)
    rows = wh.query(render(tree, wh.dialect))
    out = []
    for row in rows:
        item = dict(zip(PENDING_COLUMNS, row, strict=True))
        for key in ("created_at", "expires_at"):
            item[key] = item[key].isoformat() + "Z" if item[key] is not None else None
        out.append(item)
    return out


class WarehouseBusy(FlowhouseError):
    """The warehouse cannot be read now (a DuckDB file another process is writing: a tick or a
    send); the storefront asks again shortly."""


Reader = Callable[[str, datetime, int], list[dict[str, Any]]]


def reader(location: Location) -> Reader:
    """Read a customer's pending onsite messages from the warehouse at ``location``, opening it
    for each poll (read-only on DuckDB, so ticks and sends are never blocked by a storefront)."""

    def read(customer_id: str, now: datetime, limit: int) -> list[dict[str, Any]]:
        try:
            with Warehouse.open(location, read_only=location.dialect == "duckdb") as wh:
                return pending(wh, customer_id, now, limit)
        except duckdb.IOException as err:
            raise WarehouseBusy("the warehouse is being written; ask again shortly") from err

    return read
