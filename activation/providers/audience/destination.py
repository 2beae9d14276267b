"""Members of a paid-ads customer list (an audience on an ad platform, or a bridge to one).

Messages on the ``audience_sync`` channel name their audience in ``payload["audience"]``; they are
grouped per audience, one request per audience (up to 10,000 members), to
``POST {base_url}/{audience}/users`` with a bearer token::

    {"schema": ["EMAIL_SHA256", "PHONE_SHA256"],
     "data": [["<sha256 of the e-mail>", "<sha256 of the phone>"], ...]}

Identifiers are normalised, then hashed (SHA-256, lowercase hex) as ad platforms' customer lists
take them: e-mail trimmed and lowercased; phone as E.164 digits without ``+``. A missing
identifier is an empty string. No raw address leaves flowhouse.

No published OpenAPI document describes this API (it is the shape the major ad platforms'
customer-list uploads share), so :mod:`flowhouse.activation.openapi` does not cover it; the tests check the
shape and the hashing directly. Reconciliation is ``idempotent``: adding a member twice is
harmless.
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Sequence
from typing import ClassVar
from urllib.parse import quote

import httpx

from flowhouse.activation.message import Outcome, Outgoing
from flowhouse.activation.providers.audience.config import Audience
from flowhouse.activation.providers.base import Call, Destination, Reconcile, Secrets
from flowhouse.activation.providers.identity import hashed_row

SCHEMA = ["EMAIL_SHA256", "PHONE_SHA256"]
MAX_MEMBERS = 10_000


class AudienceDestination(Destination):
    """Customer-list members for paid ads (see the module docstring)."""

    name: ClassVar[str] = "audience"
    default_base_url: ClassVar[str] = "https://ads.shop.example/audiences"
    max_batch: ClassVar[int] = MAX_MEMBERS
    reconcile: Reconcile = "idempotent"
    config: Audience

    def __init__(self, config: Audience, secrets: Secrets, base_url: str | None = None) -> None:
        super().__init__(config, secrets, base_url)
        self._token = secrets.get(config.api_key_env, "The audience API token")

    def calls(self, batch: Sequence[Outgoing]) -> list[Call]:
        groups: dict[str, list[Outgoing]] = {}
        for message in batch:
            groups.setdefault(audience_of(message), []).append(message)
        return [self._call(name, chunk) for name, chunk in _chunks(groups)]

    def _call(self, audience: str, members: Sequence[Outgoing]) -> Call:
        body = {"schema": SCHEMA, "data": [member_row(m) for m in members]}
        request = httpx.Request(
            "POST",
            f"{self.base_url}/{quote(audience, safe='')}/users",
            headers={"authorization": f"Bearer {self._token}", "content-type": "application/json"},
            content=json.dumps(body, separators=(",", ":")).encode(),
        )
        return Call(request, tuple(m.message_id for m in members))

    def accepted(self, call: Call, response: httpx.Response) -> list[Outcome]:
        code = response.status_code
        return [Outcome(m, "sent", status_code=code) for m in call.message_ids]


def audience_of(message: Outgoing) -> str:
    """The audience a message adds its customer to."""
    return str(message.payload.get("audience") or "")


def member_row(message: Outgoing) -> list[str]:
    """The hashed row of the message's customer (the address stands in for a missing field)."""
    customer = message.customer
    email = customer.get("email") or (message.address if message.channel == "email" else None)
    phone = customer.get("phone") or (message.address if message.channel == "sms" else None)
    return hashed_row(email, phone)


def _chunks(groups: dict[str, list[Outgoing]]) -> Iterator[tuple[str, list[Outgoing]]]:
    for name, members in groups.items():
        for start in range(0, len(members), MAX_MEMBERS):
            yield name, members[start : start + MAX_MEMBERS]
