"""Viber through Vonage's Messages API (``POST https://api.nexmo.com/v0.1/messages/``, as Vonage's
published document ``specs/vonage_messages_olympus.yml`` describes it).

One JSON request per message, with HTTP Basic authentication (API key and secret, read from the
environment variables named in ``delivery.vonage``). The sender is the store's Viber Service
Message ID (``viber_service_id``, required); the recipient is the customer's phone number in E.164
without the ``+``. The text is the rendered ``.txt.j2`` template (Viber takes 1,000 characters).
Marketing messages go out in Viber's ``promotion`` category, transactional ones as
``transaction``; ``ttl`` is ``viber_ttl``. ``client_ref`` carries the message id (32 characters of
the 40 allowed), so that status webhooks name the message they are about. The response (202)
gives the ``message_uuid``.

Reconciliation (``reconcile = "none"``): the document offers neither a message lookup nor an
idempotency key, so a message left in flight by a crash is marked ``unconfirmed``, never resent.
Only the ``viber`` channel goes through Vonage (:func:`flowhouse.activation.render.route_of`
refuses another channel routed here with a reason).
"""

from __future__ import annotations

import re
from typing import Any, ClassVar

import httpx

from flowhouse.activation.message import Outcome, Outgoing
from flowhouse.activation.providers.base import (
    Call,
    PerMessage,
    Reconcile,
    Secrets,
    basic_auth,
    json_object,
)
from flowhouse.activation.providers.vonage.config import Vonage
from flowhouse.core.errors import ConfigError

#: The one channel Vonage sends, and its type in the document.
CHANNEL = "viber"
VIBER_TYPE = "viber_service_msg"
MESSAGES_PATH = "/v0.1/messages/"
_NOT_DIGITS = re.compile(r"\D")


class VonageDestination(PerMessage):
    """Viber through Vonage (see the module docstring)."""

    name: ClassVar[str] = "vonage"
    default_base_url: ClassVar[str] = "https://api.nexmo.com"
    reconcile: Reconcile = "none"
    config: Vonage

    def __init__(self, config: Vonage, secrets: Secrets, base_url: str | None = None) -> None:
        if not config.viber_service_id:
            raise ConfigError(
                "Vonage has no Viber sender", expected="delivery.vonage.viber_service_id"
            )
        super().__init__(config, secrets, base_url)
        key = secrets.get(config.api_key_env, "The Vonage API key")
        secret = secrets.get(config.api_secret_env, "The Vonage API secret")
        self._auth = basic_auth(key, secret)

    @property
    def messages_url(self) -> str:
        return self.base_url + MESSAGES_PATH

    def message_request(self, message: Outgoing) -> httpx.Request:
        return httpx.Request(
            "POST",
            self.messages_url,
            headers={"authorization": self._auth, "accept": "application/json"},
            json=self.body(message),
        )

    def body(self, message: Outgoing) -> dict[str, Any]:
        """The JSON that sends ``message`` to Viber."""
        category = "promotion" if message.is_marketing else "transaction"
        return {
            "to": {"type": VIBER_TYPE, "number": number(message.address or "")},
            "from": {"type": VIBER_TYPE, "id": self.config.viber_service_id},
            "message": {
                "content": {"type": "text", "text": message.text or ""},
                VIBER_TYPE: {
                    "category": category,
                    "ttl": int(self.config.viber_ttl.total_seconds()),
                },
            },
            "client_ref": message.message_id,
        }

    def accepted(self, call: Call, response: httpx.Response) -> list[Outcome]:
        uuid = json_object(response).get("message_uuid")
        provider_id = uuid if isinstance(uuid, str) else None
        code = response.status_code
        return [Outcome(m, "sent", provider_id, status_code=code) for m in call.message_ids]

    def reason(self, response: httpx.Response) -> str:
        body = json_object(response)
        title, detail = body.get("title"), body.get("detail")
        if not title and not detail:
            return response.text
        return f"{title or ''}: {detail or ''}".strip(": ")


def number(address: str) -> str:
    """A phone number as Vonage takes it: E.164 digits, without ``+`` or ``00``."""
    digits = _NOT_DIGITS.sub("", address)
    return digits[2:] if address.strip().startswith("00") else digits
