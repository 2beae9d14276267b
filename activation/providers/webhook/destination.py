"""Signed JSON posts: push notifications, webhook actions and admin tasks.

Each message is one ``POST`` of compact JSON::

    {"message_id", "channel", "flow_id", "step_id", "customer_id", "customer",
     "subject", "text", "payload"}

to the action's own ``payload["url"]`` when it has one, else to ``delivery.webhook.base_url``
(default ``https://hooks.shop.example/flowhouse``). When every destination is pointed at one
place (an explicit ``base_url`` given to the destination, as for the fake provider), everything
goes there.

Headers:

- ``X-Flowhouse-Timestamp``: unix seconds when the request was built;
- ``X-Flowhouse-Signature``: ``v1=<hex HMAC-SHA256 of "{timestamp}.{body}" under the secret>``
  (the secret is read from the environment variable ``delivery.webhook.secret_env``);
- ``Idempotency-Key``: the message id.

A receiver checks the signature and the timestamp's age with :func:`verify` and drops a request
whose ``Idempotency-Key`` it has seen, so reconciliation is ``idempotent``: a message in flight
during a crash is posted again. Any 2xx is accepted (the provider id is the message id).
"""

from __future__ import annotations

import hashlib
import hmac
import json
import time
from typing import Any, ClassVar

import httpx

from flowhouse.activation.message import Outcome, Outgoing
from flowhouse.activation.providers.base import Call, PerMessage, Reconcile, Secrets
from flowhouse.activation.providers.webhook.config import Webhook

VERSION = "v1"
TIMESTAMP_HEADER = "X-Flowhouse-Timestamp"
SIGNATURE_HEADER = "X-Flowhouse-Signature"


class WebhookDestination(PerMessage):
    """Signed JSON posts (see the module docstring)."""

    name: ClassVar[str] = "webhook"
    default_base_url: ClassVar[str] = "https://hooks.shop.example/flowhouse"
    reconcile: Reconcile = "idempotent"
    config: Webhook

    def __init__(self, config: Webhook, secrets: Secrets, base_url: str | None = None) -> None:
        super().__init__(config, secrets, base_url)
        self._pinned = base_url is not None
        self._secret = secrets.get(config.secret_env, "The webhook signing secret")

    def target(self, message: Outgoing) -> str:
        """Where ``message`` is posted."""
        own = message.payload.get("url")
        return str(own) if own and not self._pinned else self.base_url

    def message_request(self, message: Outgoing) -> httpx.Request:
        body = body_of(message)
        timestamp = int(time.time())
        headers = {
            "content-type": "application/json",
            TIMESTAMP_HEADER: str(timestamp),
            SIGNATURE_HEADER: sign(self._secret, timestamp, body),
            "Idempotency-Key": message.message_id,
        }
        return httpx.Request("POST", self.target(message), headers=headers, content=body)

    def accepted(self, call: Call, response: httpx.Response) -> list[Outcome]:
        code = response.status_code
        return [Outcome(m, "sent", m, status_code=code) for m in call.message_ids]


def body_of(message: Outgoing) -> bytes:
    """The compact JSON posted for ``message`` (values JSON has no type for, such as dates, as
    text)."""
    fields: dict[str, Any] = {
        "message_id": message.message_id,
        "channel": message.channel,
        "flow_id": message.flow_id,
        "step_id": message.step_id,
        "customer_id": message.customer_id,
        "customer": message.customer,
        "subject": message.subject,
        "text": message.text,
        "payload": message.payload,
    }
    return json.dumps(fields, separators=(",", ":"), ensure_ascii=False, default=str).encode()


def sign(secret: str, timestamp: int | str, body: bytes | str) -> str:
    """The signature header's value: ``v1=`` and the hex HMAC-SHA256 of ``{timestamp}.{body}``."""
    raw = body.encode() if isinstance(body, str) else body
    signed = f"{timestamp}.".encode() + raw
    return f"{VERSION}={hmac.new(secret.encode(), signed, hashlib.sha256).hexdigest()}"


def verify(
    secret: str,
    timestamp: int | str,
    body: bytes | str,
    signature: str,
    tolerance_seconds: float = 300,
    now: float | None = None,
) -> bool:
    """Whether ``signature`` (one or more comma-separated ``v1=...``) signs ``body`` at
    ``timestamp`` under ``secret``, and ``timestamp`` is within ``tolerance_seconds`` of ``now``.
    Signatures are compared in constant time."""
    try:
        moment = int(timestamp)
    except (TypeError, ValueError):
        return False
    current = time.time() if now is None else now
    if abs(current - moment) > tolerance_seconds:
        return False
    expected = sign(secret, str(timestamp).strip(), body)
    given = [part.strip() for part in signature.split(",")]
    return any(hmac.compare_digest(expected.encode(), part.encode()) for part in given)
