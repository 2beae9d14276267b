"""What the sender hands a destination, and what a destination reports back.

An :class:`Outgoing` is one outbox row, rendered: the message (or external action) exactly as it
will be sent. A destination answers each one with an :class:`Outcome`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Literal

#: ``sent``: the provider accepted it; ``failed``: it refused it for good (a permanent 4xx, with
#: its reason); ``retry``: a transient failure (429, 5xx, time-out) worth another attempt.
Status = Literal["sent", "failed", "retry"]


@dataclass(frozen=True)
class Sender:
    """Who a message is from, as its flow's ``sender`` says (fields it leaves out fall back to
    the provider's configured defaults): the e-mail ``name``, ``email`` and ``reply_to``, and
    ``sms_from`` (a phone number, or a Twilio Messaging Service SID ``MG...``)."""

    name: str | None = None
    email: str | None = None
    reply_to: str | None = None
    sms_from: str | None = None


@dataclass(frozen=True)
class Device:
    """One device a push can reach: its registration token and ``platform`` (``ios``,
    ``android`` or ``web``)."""

    token: str
    platform: str


@dataclass(frozen=True)
class Outgoing:
    """One message or external action, ready to send.

    ``channel`` is the outbox channel (``email``, ``sms``, ``push``, ``webhook``, ``admin_task``,
    ``audience_sync``). ``address`` is the e-mail address or phone number for messages.
    ``subject``/``html``/``text`` are the rendered content (``text`` is the SMS or push body, or
    the plain-text part of an e-mail). ``data`` is the render context as JSON-ready values (for
    dynamic templates and Klaviyo event properties); ``payload`` the action's own fields (a
    webhook's ``url``, an ``audience``, an admin ``task``). ``customer`` holds the profile fields a
    destination may need (email, phone, first_name, ...). ``send_at`` asks the provider to deliver
    later (UTC, naive) where it can schedule. ``headers`` are extra e-mail headers
    (``List-Unsubscribe``). ``sender`` is the flow's sender, when it names one. ``is_test`` marks a
    test send (``flowhouse test-send``): destinations tag it where the provider's API allows (a
    SendGrid category and custom argument, a Klaviyo event property). ``devices`` are the
    customer's valid device tokens, newest first, for a push sent through FCM. ``properties`` are
    the customer's own properties (``raw.customers.properties``) on an action that changes the
    customer in the shop, for a destination that addresses the shop's own user id by one of them
    (``delivery.spree.user_id_property``).
    """

    message_id: str
    channel: str
    customer_id: str
    flow_id: str
    step_id: str
    address: str | None = None
    subject: str | None = None
    html: str | None = None
    text: str | None = None
    template: str | None = None
    data: dict[str, Any] = field(default_factory=dict)
    payload: dict[str, Any] = field(default_factory=dict)
    customer: dict[str, Any] = field(default_factory=dict)
    headers: dict[str, str] = field(default_factory=dict)
    send_at: datetime | None = None
    is_marketing: bool = True
    sender: Sender | None = None
    is_test: bool = False
    devices: tuple[Device, ...] = ()
    properties: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class Outcome:
    """What happened to one message: ``provider_message_id`` when sent, ``reason`` (the provider's
    own words) when it failed or will be retried, ``retry_after`` seconds when the provider said."""

    message_id: str
    status: Status
    provider_message_id: str | None = None
    reason: str | None = None
    retry_after: float | None = None
    status_code: int | None = None
