"""SMS through Twilio's Messages API (``POST /2010-04-01/Accounts/{AccountSid}/Messages.json``).

One form-encoded request per message, with HTTP Basic authentication (account SID and auth token,
read from the environment variables named in ``delivery.twilio``). The sender is the configured
Messaging Service (``MessagingServiceSid``) or else the configured number (``From``); one of them
is required. A flow's ``sender.sms_from`` overrides them for that flow's messages: a Messaging
Service SID (``MG...``) is sent as ``MessagingServiceSid``, a number as ``From`` (alongside the
configured Messaging Service, if any: Twilio then sends from that number of the service's
pool). ``StatusCallback`` carries the message's ``message_id`` and ``customer_id`` in its
query so that delivery reports name the message they are about. A message with ``send_at`` is
scheduled by Twilio (``SendAt`` with ``ScheduleType=fixed``) when a Messaging Service is
configured, as only Messaging Services can schedule; Twilio accepts schedules from 15 minutes to
35 days ahead. The response (201) gives the message's ``sid``.

WhatsApp goes through the same endpoint, ``To`` and ``From`` prefixed ``whatsapp:`` (the sender is
``whatsapp_from``, else ``from_number``, else the Messaging Service's WhatsApp sender). A step that
names an approved template sends ``ContentSid`` and its rendered ``ContentVariables`` (JSON) instead
of ``Body``; one without (transactional flows only, see :mod:`flowhouse.flows.load`) sends its text
as ``Body``, which Twilio accepts only within 24 hours of the customer's last message (else error
63016, and the message fails with that reason). The status callback's query carries the channel.

Reconciliation (``reconcile = "lookup"``): Twilio's message list is read for the recipient (``To``,
``DateSent>``); the messages to the same number with the same body, created on or after the attempt,
are listed by their ``sid`` and paired one to one with the rows in flight
(:func:`flowhouse.activation.providers.base.match`): identical texts to one number are told apart
only by their number, so two in flight and one listed leave one ``unconfirmed``; a ``sid`` a row
already recorded confirms no other. A confirmed row records the ``sid``. A scheduled message has no
``date_sent`` until its time, so a message still scheduled in the future cannot be found and is
reported ``unknown``.
"""

from __future__ import annotations

import email.utils
import json
from datetime import datetime, timedelta
from typing import Any, ClassVar

import httpx

from flowhouse.activation.message import Outcome, Outgoing, Sender
from flowhouse.activation.providers.base import (
    Call,
    Listed,
    Listing,
    PerMessage,
    Reconcile,
    Secrets,
    basic_auth,
    json_object,
)
from flowhouse.activation.providers.twilio.config import Twilio
from flowhouse.core.clock import utc, utcnow
from flowhouse.core.errors import ConfigError

#: How a Messaging Service SID begins (any other ``sms_from`` is a number or sender id).
SERVICE_PREFIX = "MG"
#: The outbox channel sent through WhatsApp, and how Twilio prefixes its addresses.
WHATSAPP = "whatsapp"
WHATSAPP_PREFIX = "whatsapp:"
#: Messages listed at most by one lookup (the document's maximum page size).
PAGE_SIZE = 1000
#: How much earlier than the attempt Twilio's clock may date a message and it still match.
CLOCK_SLACK = timedelta(minutes=5)


class TwilioDestination(PerMessage):
    """SMS through Twilio (see the module docstring)."""

    name: ClassVar[str] = "twilio"
    default_base_url: ClassVar[str] = "https://api.twilio.com"
    reconcile: Reconcile = "lookup"
    config: Twilio

    def __init__(self, config: Twilio, secrets: Secrets, base_url: str | None = None) -> None:
        if not (config.messaging_service_sid or config.from_number or config.whatsapp_from):
            raise ConfigError(
                "Twilio has no sender",
                expected="delivery.twilio.messaging_service_sid, delivery.twilio.from_number or "
                "delivery.twilio.whatsapp_from",
            )
        super().__init__(config, secrets, base_url)
        self._account = secrets.get(config.account_sid_env, "The Twilio account SID")
        token = secrets.get(config.auth_token_env, "The Twilio auth token")
        self._auth = basic_auth(self._account, token)

    @property
    def messages_url(self) -> str:
        return f"{self.base_url}/2010-04-01/Accounts/{self._account}/Messages.json"

    def message_request(self, message: Outgoing) -> httpx.Request:
        return httpx.Request(
            "POST",
            self.messages_url,
            headers={"authorization": self._auth},
            data=self.form(message),
        )

    def form(self, message: Outgoing) -> dict[str, str]:
        """The form fields that send ``message``."""
        if message.channel == WHATSAPP:
            fields = {"To": _whatsapp(message.address or "")} | self._content(message)
            fields |= self._whatsapp_sender()
        else:
            fields = {"To": message.address or "", "Body": message.text or ""}
            fields |= self._sender(message.sender)
        if self.config.status_callback:
            fields["StatusCallback"] = self._callback(message)
        when = self._schedule(message)
        if when is not None:
            fields |= {"SendAt": _iso(when), "ScheduleType": "fixed"}
        return fields

    def _sender(self, given: Sender | None = None) -> dict[str, str]:
        """The flow's ``sms_from`` (a number or a Messaging Service), else the configured one."""
        own = given.sms_from if given else None
        service = self.config.messaging_service_sid
        if own and own.startswith(SERVICE_PREFIX):
            return {"MessagingServiceSid": own}
        if own:
            return {"From": own} | ({"MessagingServiceSid": service} if service else {})
        if service:
            return {"MessagingServiceSid": service}
        return {"From": self.config.from_number or ""}

    def _whatsapp_sender(self) -> dict[str, str]:
        """The WhatsApp number, else the SMS number, else the Messaging Service."""
        number = self.config.whatsapp_from or self.config.from_number
        if number:
            return {"From": _whatsapp(number)}
        return {"MessagingServiceSid": self.config.messaging_service_sid or ""}

    @staticmethod
    def _content(message: Outgoing) -> dict[str, str]:
        """The approved template and its variables, or the text as free-form ``Body``."""
        sid = message.payload.get("content_sid")
        if not sid:
            return {"Body": message.text or ""}
        fields = {"ContentSid": str(sid)}
        variables = message.payload.get("content_variables")
        if variables:
            fields["ContentVariables"] = json.dumps(variables, sort_keys=True)
        return fields

    def _callback(self, message: Outgoing) -> str:
        url = httpx.URL(self.config.status_callback or "")
        ids = {"message_id": message.message_id, "customer_id": message.customer_id}
        if message.channel == WHATSAPP:
            ids["channel"] = WHATSAPP
        return str(url.copy_merge_params(ids))

    def _schedule(self, message: Outgoing) -> datetime | None:
        """When Twilio is asked to send ``message`` (only through a Messaging Service)."""
        if message.channel == WHATSAPP:
            sender = self._whatsapp_sender()
        else:
            sender = self._sender(message.sender)
        return message.send_at if "MessagingServiceSid" in sender else None

    def accepted(self, call: Call, response: httpx.Response) -> list[Outcome]:
        sid = json_object(response).get("sid")
        provider_id = sid if isinstance(sid, str) else None
        code = response.status_code
        return [Outcome(m, "sent", provider_id, status_code=code) for m in call.message_ids]

    def reason(self, response: httpx.Response) -> str:
        body = json_object(response)
        if body.get("code") is None and not body.get("message"):
            return response.text
        return f"{body.get('code')}: {body.get('message') or ''}".strip()

    def identity(self, message: Outgoing) -> str:
        """Twilio's list tells messages apart only by their number and text (a WhatsApp template
        by its number and template)."""
        return f"{_to(message)}\n{message.payload.get('content_sid') or message.text}"

    def lookup_request(self, message: Outgoing, since: datetime) -> httpx.Request:
        """The list of messages to ``message``'s number sent on or after ``since``."""
        params = {"To": _to(message), "DateSent>": _iso(since), "PageSize": str(PAGE_SIZE)}
        return httpx.Request(
            "GET", self.messages_url, params=params, headers={"authorization": self._auth}
        )

    async def lookup(
        self, client: httpx.AsyncClient, message: Outgoing, since: datetime
    ) -> Listing | None:
        when = self._schedule(message)
        if when is not None and _naive_utc(when) > _utcnow():
            return None  # still scheduled: not listed by DateSent until Twilio sends it
        try:
            response = await client.send(self.lookup_request(message, since))
        except httpx.HTTPError:
            return None
        return _found(response, message, _naive_utc(since))


def _found(response: httpx.Response, message: Outgoing, since: datetime) -> Listing | None:
    """The listed messages that may be ``message`` (each by its ``sid``)."""
    if response.status_code != 200:
        return None
    body = json_object(response)
    listed = body.get("messages")
    if not isinstance(listed, list):
        return None
    items = tuple(
        Listed(item["sid"], item["sid"], _parse_rfc2822(item.get("date_created")))
        for item in listed
        if isinstance(item, dict)
        and isinstance(item.get("sid"), str)
        and item["sid"]
        and _matches(item, message, since)
    )
    return Listing(items, complete=not body.get("next_page_uri"))


def _matches(item: dict[str, Any], message: Outgoing, since: datetime) -> bool:
    """The listed message went to the same number with the same body (a WhatsApp template's body
    is Twilio's rendering, unknown here: the number alone), not before the attempt."""
    templated = bool(message.payload.get("content_sid"))
    same = item.get("to") == _to(message) and (templated or item.get("body") == message.text)
    created = _parse_rfc2822(item.get("date_created"))
    return same and (created is None or created >= since - CLOCK_SLACK)


def _whatsapp(number: str) -> str:
    """A number as Twilio addresses WhatsApp: ``whatsapp:+15551234567``."""
    return number if number.startswith(WHATSAPP_PREFIX) else WHATSAPP_PREFIX + number


def _to(message: Outgoing) -> str:
    """The ``To`` of ``message`` as Twilio lists it."""
    address = message.address or ""
    return _whatsapp(address) if message.channel == WHATSAPP else address


def _parse_rfc2822(value: object) -> datetime | None:
    """Twilio's ``Thu, 24 Aug 2023 05:01:45 +0000`` as naive UTC, or None."""
    if not isinstance(value, str):
        return None
    try:
        parsed = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return _naive_utc(parsed)


def _naive_utc(moment: datetime) -> datetime:
    return utc(moment)


def _iso(moment: datetime) -> str:
    """UTC (naive, or aware of any zone) as ISO 8601 with a zone (``2026-05-01T10:00:00Z``)."""
    return _naive_utc(moment).replace(microsecond=0).isoformat() + "Z"


def _utcnow() -> datetime:
    return utcnow()
