"""Simulated engagement, written as the real providers' webhooks would post it.

When an inbox directory is configured, every accepted SendGrid mail-send request leaves one file
``<inbox>/sendgrid/<name>.json`` holding an array of SendGrid event-webhook events (``processed``,
``delivered``, ``open``, ``click``, ``bounce``, ``spamreport``, ``unsubscribe``) with the
personalization's custom args at the top level, as SendGrid posts them. Every accepted Twilio
message with a ``StatusCallback`` leaves ``<inbox>/twilio/<name>.json``: the callback's form
fields as a JSON object (``MessageStatus`` ``delivered`` or ``undelivered`` with ``ErrorCode``
30003, and ``RawDlrDoneDate``, the delivery time as YYMMDDhhmm UTC) plus ``message_id``,
``customer_id`` and ``channel`` from the callback URL's query (a WhatsApp message that is opened
gets a later ``read`` callback too). Every accepted Vonage Viber message leaves
``<inbox>/vonage/<name>.json`` per status webhook (``delivered`` then ``read``, or
``undeliverable``), its JSON body as Vonage posts it.

Names sort in the order the files were written; each is written to a hidden temporary name and
renamed, so a reader listing ``*.json`` never sees half a file.

What happens to a message is decided from a hash of its id (:func:`fate`), so it is the same on
every run; event times count from the message's ``send_at`` or, without one, the time it was
received (the fake's clock, which the demo moves through simulated days).
"""

from __future__ import annotations

import base64
import hashlib
import itertools
import json
import os
import re
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Annotated, Any, Protocol

from pydantic import BaseModel, ConfigDict, Field, model_validator

from flowhouse.core.clock import utcnow

Share = Annotated[float, Field(ge=0.0, le=1.0)]
BOUNCE_REASON = "550 5.1.1 The email account that you tried to reach does not exist."
UNDELIVERED = "30003"
#: Twilio's "free-form WhatsApp message outside the 24-hour customer service window".
OUTSIDE_WINDOW = "63016"


class Rates(BaseModel):
    """Shares of messages: ``delivered`` and hard ``bounce`` of all (the rest stay processed
    only); ``open``, ``click`` (clickers also open), ``spam_report`` and ``unsubscribe`` of the
    delivered. An SMS is ``delivered`` at the same rate, else undelivered."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    delivered: Share = 0.97
    open: Share = 0.35
    click: Share = 0.08
    bounce: Share = 0.02
    spam_report: Share = 0.001
    unsubscribe: Share = 0.005

    @model_validator(mode="after")
    def _consistent(self) -> Rates:
        if self.delivered + self.bounce > 1.0:
            raise ValueError("delivered + bounce must not exceed 1")
        if self.click > self.open:
            raise ValueError("click must not exceed open (a click is also an open)")
        return self


@dataclass(frozen=True)
class Fate:
    """What happens to one message; ``delays`` are seconds: to delivery, delivery to open, open to
    click, open to a complaint or unsubscribe."""

    delivered: bool
    bounced: bool
    opened: bool
    clicked: bool
    spam_report: bool
    unsubscribed: bool
    delays: tuple[int, int, int, int]


def _uniforms(key: str) -> list[float]:
    digest = hashlib.sha256(key.encode()).digest()
    return [int.from_bytes(digest[i : i + 4], "big") / 2**32 for i in range(0, 32, 4)]


def fate(key: str, rates: Rates) -> Fate:
    """The fate of the message ``key`` (its flowhouse message id), the same on every run."""
    u = _uniforms(key)
    bounced = u[0] < rates.bounce
    delivered = not bounced and u[0] < rates.bounce + rates.delivered
    delays = (
        2 + int(u[4] * 28),
        60 + int(u[5] * 6 * 3600),
        10 + int(u[6] * 600),
        60 + int(u[7] * 3600),
    )
    return Fate(
        delivered=delivered,
        bounced=bounced,
        opened=delivered and u[1] < rates.open,
        clicked=delivered and u[1] < rates.click,
        spam_report=delivered and u[2] < rates.spam_report,
        unsubscribed=delivered and u[3] < rates.unsubscribe,
        delays=delays,
    )


def unix(when: datetime) -> int:
    """Seconds since the epoch of a naive-UTC time."""
    return int(when.replace(tzinfo=UTC).timestamp())


@dataclass(frozen=True)
class Recipient:
    """One SendGrid personalization as its events describe it."""

    email: str
    sg_message_id: str
    key: str
    base: datetime
    custom_args: dict[str, str] = field(default_factory=dict)


def _event_id(sg_message_id: str, event: str) -> str:
    digest = hashlib.sha256(f"{sg_message_id}/{event}".encode()).digest()[:16]
    return base64.urlsafe_b64encode(digest).rstrip(b"=").decode()


def _event(r: Recipient, event: str, at: int, **extra: Any) -> dict[str, Any]:
    core = {
        "email": r.email,
        "timestamp": at,
        "event": event,
        "sg_event_id": _event_id(r.sg_message_id, event),
        "sg_message_id": r.sg_message_id,
        "smtp-id": f"<{r.sg_message_id.split('.')[0]}@fake.sendgrid.net>",
    }
    return {**r.custom_args, **core, **extra}


def sendgrid_events(r: Recipient, rates: Rates, url: str) -> list[dict[str, Any]]:
    """The events SendGrid would post for ``r``, in time order per kind."""
    f = fate(r.key, rates)
    start = unix(r.base)
    done = start + f.delays[0]
    opened = done + f.delays[1]
    events = [_event(r, "processed", start)]
    if f.bounced:
        bounce = {"type": "bounce", "reason": BOUNCE_REASON, "status": "5.1.1"}
        events.append(_event(r, "bounce", done, **bounce))
    if f.delivered:
        events.append(_event(r, "delivered", done, response="250 OK"))
    if f.opened:
        events.append(_event(r, "open", opened, sg_machine_open=False, useragent="Mozilla/5.0"))
    if f.clicked:
        events.append(_event(r, "click", opened + f.delays[2], url=url, useragent="Mozilla/5.0"))
    if f.spam_report:
        events.append(_event(r, "spamreport", opened + f.delays[3]))
    if f.unsubscribed:
        events.append(_event(r, "unsubscribe", opened + f.delays[3] + 1))
    return events


def twilio_callback(
    message: dict[str, Any], query: dict[str, str], rates: Rates, base: datetime
) -> dict[str, str]:
    """The final status callback Twilio would post for ``message`` (form fields, as strings)."""
    f = fate(query.get("message_id") or str(message["sid"]), rates)
    status = "delivered" if f.delivered else "undelivered"
    fields = {
        "MessageSid": str(message["sid"]),
        "SmsSid": str(message["sid"]),
        "AccountSid": str(message["account_sid"]),
        "ApiVersion": "2010-04-01",
        "To": str(message["to"]),
        "MessageStatus": status,
        "SmsStatus": status,
        "RawDlrDoneDate": (base + timedelta(seconds=f.delays[0])).strftime("%y%m%d%H%M"),
    }
    for name, key in (("From", "from"), ("MessagingServiceSid", "messaging_service_sid")):
        if message.get(key):
            fields[name] = str(message[key])
    if not f.delivered:
        fields["ErrorCode"] = UNDELIVERED
    fields.update({k: query[k] for k in ("message_id", "customer_id", "channel") if k in query})
    return fields


def vonage_statuses(
    message_uuid: str, payload: dict[str, Any], rates: Rates, base: datetime
) -> list[tuple[int, dict[str, Any]]]:
    """The status webhooks Vonage would post for a Viber message, with their Unix times:
    ``delivered`` (then ``read`` when opened) or ``undeliverable``."""
    f = fate(str(payload.get("client_ref") or message_uuid), rates)
    done = unix(base) + f.delays[0]

    def status(name: str, at: int) -> dict[str, Any]:
        body: dict[str, Any] = {
            "message_uuid": message_uuid,
            "to": {"type": "viber_service_msg", "number": payload["to"]["number"]},
            "from": {"type": "viber_service_msg", "id": payload["from"]["id"]},
            "timestamp": datetime.fromtimestamp(at, UTC).strftime("%Y-%m-%dT%H:%M:%S.000Z"),
            "status": name,
            "client_ref": payload.get("client_ref"),
        }
        if name == "undeliverable":
            body["error"] = {"code": 1300, "reason": "Not part of the provider network"}
        return body

    if not f.delivered:
        return [(done, status("undeliverable", done))]
    found = [(done, status("delivered", done))]
    if f.opened:
        found.append((done + f.delays[1], status("read", done + f.delays[1])))
    return found


def twilio_read(callback: dict[str, str]) -> dict[str, str]:
    """WhatsApp's later ``read`` callback for a delivered message."""
    return callback | {"MessageStatus": "read", "SmsStatus": "read"}


_UNSAFE = re.compile(r"[^A-Za-z0-9_-]+")
_counter = itertools.count()


class Sink(Protocol):
    """Where simulated webhooks go: the inbox folder, or a receiver they are posted to
    (:class:`flowhouse.activation.fake.webhooks.Poster`)."""

    @property
    def enabled(self) -> bool: ...

    def write(self, provider: str, ident: str, payload: Any) -> object: ...


class Inbox:
    """Where simulated webhooks are written (nothing is written without a directory)."""

    def __init__(self, root: Path | None) -> None:
        self.root = None if root is None else Path(root)
        self._made: set[Path] = set()

    @property
    def enabled(self) -> bool:
        return self.root is not None

    def write(self, provider: str, ident: str, payload: Any) -> Path | None:
        """Write ``payload`` as ``<root>/<provider>/<sortable name>.json``, atomically."""
        if self.root is None:
            return None
        folder = self.root / provider
        if folder not in self._made:
            folder.mkdir(parents=True, exist_ok=True)
            self._made.add(folder)
        stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%S%f")
        name = f"{stamp}-{next(_counter):09d}-{_UNSAFE.sub('_', ident)[:60]}.json"
        temporary = folder / f".{name}.tmp"
        temporary.write_text(json.dumps(payload), encoding="utf-8")
        os.replace(temporary, folder / name)
        return folder / name


class Engagement:
    """Writes the simulated webhooks of accepted messages into the inbox, each when it happens.

    A provider posts a webhook when the event occurs, not when the message is sent: events whose
    time is still ahead of the fake's clock wait here and are written by :meth:`release` once
    the clock has passed them (the clock moves with requests and with ``set_now``), SendGrid's
    bundled into one file per release as its event webhook batches them.
    """

    def __init__(
        self,
        rates: Rates,
        inbox: Path | None,
        clock: Callable[[], datetime] | None = None,
        sink: Sink | None = None,
    ) -> None:
        self.rates = rates
        self.inbox: Sink = sink or Inbox(inbox)
        self.clock = clock or utcnow
        self._events: list[dict[str, Any]] = []
        self._callbacks: list[tuple[int, str, dict[str, str]]] = []
        self._statuses: list[tuple[int, str, dict[str, Any]]] = []
        self._lock = threading.Lock()

    @property
    def enabled(self) -> bool:
        return self.inbox.enabled

    def sendgrid(self, message_id: str, recipients: list[Recipient], url: str) -> None:
        """Hold the events of one mail-send request (``message_id``: its ``X-Message-Id``)."""
        events = [e for r in recipients for e in sendgrid_events(r, self.rates, url)]
        with self._lock:
            self._events += events
        self.release()

    def twilio(
        self,
        message: dict[str, Any],
        query: dict[str, str],
        base: datetime,
        free_whatsapp: bool = False,
    ) -> None:
        """Hold the status callback of one message until its delivery report is due. Free text to
        WhatsApp (no ``ContentSid``) fails with 63016: the fake's customers never wrote to the
        store, so no 24-hour window is open."""
        callback = twilio_callback(message, query, self.rates, base)
        outcome = fate(query.get("message_id") or str(message["sid"]), self.rates)
        due = unix(base) + outcome.delays[0]
        if free_whatsapp:
            callback |= {"MessageStatus": "failed", "SmsStatus": "failed",
                         "ErrorCode": OUTSIDE_WINDOW}  # fmt: skip
        held = [(due, str(message["sid"]), callback)]
        if query.get("channel") == "whatsapp" and outcome.opened and not free_whatsapp:
            held.append((due + outcome.delays[1], f"{message['sid']}-read", twilio_read(callback)))
        with self._lock:
            self._callbacks += held
        self.release()

    def vonage(self, message_uuid: str, payload: dict[str, Any], base: datetime) -> None:
        """Hold the status webhooks of one Viber message until each is due."""
        held = [
            (due, f"{message_uuid}-{body['status']}", body)
            for due, body in vonage_statuses(message_uuid, payload, self.rates, base)
        ]
        with self._lock:
            self._statuses += held
        self.release()

    def release(self, now: datetime | None = None) -> int:
        """Write every held event whose time has come; returns how many."""
        cutoff = unix(now or self.clock())
        with self._lock:
            events = [e for e in self._events if e["timestamp"] <= cutoff]
            self._events = [e for e in self._events if e["timestamp"] > cutoff]
            callbacks = [c for c in self._callbacks if c[0] <= cutoff]
            self._callbacks = [c for c in self._callbacks if c[0] > cutoff]
            statuses = [c for c in self._statuses if c[0] <= cutoff]
            self._statuses = [c for c in self._statuses if c[0] > cutoff]
        if events:
            events.sort(key=lambda e: (e["timestamp"], e["sg_event_id"]))
            self.inbox.write("sendgrid", f"batch-{cutoff}", events)
        for _, sid, callback in callbacks:
            self.inbox.write("twilio", sid, callback)
        for _, ident, body in sorted(statuses, key=lambda c: (c[0], c[1])):
            self.inbox.write("vonage", ident, body)
        return len(events) + len(callbacks) + len(statuses)

    def pending(self) -> int:
        with self._lock:
            return len(self._events) + len(self._callbacks) + len(self._statuses)
