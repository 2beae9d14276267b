"""What one source of webhook files adds to the inbound mapping (:mod:`flowhouse.activation.engagement`).

Each provider that posts engagement back (``<provider>/inbound.py``) describes, as data and SQL:
how a file holds its notifications (one JSON object, or an array of them), the fields every
notification must carry and any further checks, one DuckDB ``select`` that reads its notifications
from ``_items`` into the columns of :data:`NOTE_COLUMNS`, and which (status, subtype) pairs are
canonical events. The engagement pass assembles every source's pieces into one set-based pass.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

#: The columns every source's ``notes`` select yields, in this order.
NOTE_COLUMNS = (
    "path", "item_no", "provider", "status", "subtype", "provider_event_id", "message_id",
    "customer_id", "flow_id", "step_id", "channel", "url", "reason", "error_code", "occurred_at",
)  # fmt: skip

#: (condition over one notification ``item`` or one file's ``doc``, reason when it holds)
Check = tuple[str, str]

#: (status, subtype, event_type, bounce_type, suffix of the provider event id). The subtype tells
#: bounces apart (SendGrid's bounce ``type``, Twilio's error code class).
Event = tuple[str, str, str, str | None, str]


@dataclass(frozen=True)
class Inbound:
    """One source of inbox files (the folder ``<inbox>/<source>/``)."""

    source: str
    #: ``object``: one notification per file; ``array``: a JSON array of notifications.
    body: Literal["object", "array"]
    #: Fields every notification must carry (non-blank).
    required: tuple[str, ...]
    #: A ``select`` of :data:`NOTE_COLUMNS` over ``_items`` where ``provider`` is this source.
    notes: str
    #: The notifications that are events; any other is ignored.
    events: tuple[Event, ...]
    item_checks: tuple[Check, ...] = ()
    #: Values bound to the ``:name`` placeholders of :attr:`notes`.
    params: Mapping[str, Any] = field(default_factory=dict)

    @property
    def file_check(self) -> Check:
        """The check that a file holds what :attr:`body` says."""
        if self.body == "array":
            return "json_type(doc) <> 'ARRAY'", "expected a JSON array of events"
        return "json_type(doc) <> 'OBJECT'", "expected a JSON object"
