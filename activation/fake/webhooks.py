"""Engagement posted to a webhook receiver (``flowhouse receive``) as the providers post it, signed
as they sign it: SendGrid's event batches with the fake's own Signed Event Webhook key pair
(:data:`SENDGRID_KEY`; its verification key is :data:`SENDGRID_PUBLIC_KEY`), Twilio's status
callbacks with ``X-Twilio-Signature`` under the auth token the fake is given, Vonage's status
webhooks with a JWT (HS256) under the signature secret it is given.

A :class:`Poster` stands in for the inbox folder
(:class:`flowhouse.activation.fake.engagement.Inbox`) when the fake is started with a receiver's
URL; a post the receiver refuses is kept in :attr:`Poster.refused`, never dropped silently.
"""

from __future__ import annotations

import hashlib
import json
import threading
import time
from collections.abc import Callable
from typing import Any
from urllib.parse import urlencode

import httpx
from cryptography.hazmat.primitives.asymmetric import ec

from flowhouse.activation.providers import sendgrid_signature, vonage_signature
from flowhouse.activation.receiver import SIGNATURE_HEADER, twilio_signature

#: The fake's Signed Event Webhook key pair (fixed, so its verification key can be written down).
SENDGRID_KEY = ec.derive_private_key(
    int.from_bytes(hashlib.sha256(b"flowhouse fake provider: sendgrid").digest()[:31], "big"),
    ec.SECP256R1(),
)
#: What to set ``SENDGRID_WEBHOOK_PUBLIC_KEY`` to for a receiver fed by the fake provider.
SENDGRID_PUBLIC_KEY = sendgrid_signature.public_text(SENDGRID_KEY)
#: The Twilio auth token the fake signs callbacks with unless told otherwise (the placeholder
#: ``flowhouse send --provider-url`` uses when ``TWILIO_AUTH_TOKEN`` is not set).
TWILIO_AUTH_TOKEN = "fake-twilio_auth_token"
#: The signature secret the fake signs Vonage's status webhooks with unless told otherwise.
VONAGE_SIGNATURE_SECRET = "fake-vonage_signature_secret"
#: What the fake takes from a Twilio callback's fields back into its URL's query.
QUERY_FIELDS = ("message_id", "customer_id", "channel")


class Poster:
    """Posts engagement to the receiver at ``url`` (its base: ``/webhooks/<provider>`` is added),
    through ``client`` when one is given."""

    enabled = True

    def __init__(
        self,
        url: str,
        twilio_auth_token: str = TWILIO_AUTH_TOKEN,
        clock: Callable[[], float] = time.time,
        client: httpx.Client | None = None,
        vonage_signature_secret: str = VONAGE_SIGNATURE_SECRET,
    ) -> None:
        self.url = url.rstrip("/")
        self.client = client
        self.twilio_auth_token = twilio_auth_token
        self.vonage_signature_secret = vonage_signature_secret
        self.clock = clock
        self.refused: list[str] = []
        self._lock = threading.Lock()

    def write(self, provider: str, ident: str, payload: Any) -> None:
        """Post ``payload`` as ``provider`` would (``ident`` names it in :attr:`refused`)."""
        if provider == "sendgrid":
            body = json.dumps(payload).encode()
            headers = sendgrid_signature.sign(SENDGRID_KEY, body, int(self.clock()))
            self._post(ident, f"{self.url}/webhooks/sendgrid", headers, content=body)
        elif provider == "vonage":
            body = json.dumps(payload).encode()
            token = vonage_signature.sign(self.vonage_signature_secret, body, self.clock())
            headers = {"authorization": f"Bearer {token}", "content-type": "application/json"}
            self._post(ident, f"{self.url}/webhooks/vonage", headers, content=body)
        else:
            fields = {k: str(v) for k, v in payload.items() if k not in QUERY_FIELDS}
            query = urlencode({k: payload[k] for k in QUERY_FIELDS if k in payload})
            url = f"{self.url}/webhooks/{provider}" + (f"?{query}" if query else "")
            signed = twilio_signature(self.twilio_auth_token, url, list(fields.items()))
            self._post(ident, url, {SIGNATURE_HEADER: signed}, data=fields)

    def _post(self, ident: str, url: str, headers: dict[str, str], **body: Any) -> None:
        try:
            if self.client is not None:
                answer = self.client.post(url, headers=headers, **body)
            else:
                answer = httpx.post(url, headers=headers, timeout=10.0, **body)
            problem = None if answer.is_success else f"{answer.status_code} {answer.text[:200]}"
        except httpx.HTTPError as err:
            problem = f"{type(err).__name__}: {err}"
        if problem is not None:
            with self._lock:
                self.refused.append(f"{ident}: {problem}")
