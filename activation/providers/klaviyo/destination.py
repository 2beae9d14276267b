"""Messages handed to Klaviyo flows, and audiences kept as Klaviyo profile properties.

flowhouse decides who gets what and when; Klaviyo sends. Each message becomes one event
(``POST /api/events``, JSON:API) whose metric, ``"{metric_prefix} {flow_id} {step_id}"``, is the
trigger of a Klaviyo flow that holds the template. The event's properties are the render context
(``Outgoing.data``) plus ``subject``, ``message_id``, ``flow`` and ``step`` (and
``flowhouse_test`` on a test send); its profile is the
customer (e-mail, phone in E.164, first name, ``external_id`` = customer id); its ``time`` is
when it is meant to be sent; its ``unique_id`` is the message id, on which Klaviyo deduplicates.
Klaviyo cannot be told to deliver later: a Klaviyo flow triggers when it receives the event.

A message on the ``audience_sync`` channel instead updates the customer's profile
(``POST /api/profile-import``) with the property ``"{metric_prefix} audience {audience}": true``,
for a Klaviyo segment to pick up.

Events answer 202 (the provider id is the ``unique_id``); profile imports 200 or 201 with the
profile (its id is the provider id). Reconciliation is ``idempotent``: a resent event is dropped
by Klaviyo for its ``unique_id``, and a profile update sets the same property again.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any, ClassVar

import httpx

from flowhouse.activation.message import Outcome, Outgoing
from flowhouse.activation.providers.base import Call, PerMessage, Reconcile, Secrets
from flowhouse.activation.providers.identity import normalize_phone
from flowhouse.activation.providers.klaviyo.config import Klaviyo

EVENTS = "/api/events"
PROFILE_IMPORT = "/api/profile-import"
JSON_API = "application/vnd.api+json"


class KlaviyoDestination(PerMessage):
    """Events that trigger Klaviyo flows (see the module docstring)."""

    name: ClassVar[str] = "klaviyo"
    default_base_url: ClassVar[str] = "https://a.klaviyo.com"
    reconcile: Reconcile = "idempotent"
    config: Klaviyo

    def __init__(self, config: Klaviyo, secrets: Secrets, base_url: str | None = None) -> None:
        super().__init__(config, secrets, base_url)
        self._key = secrets.get(config.api_key_env, "The Klaviyo API key")

    def message_request(self, message: Outgoing) -> httpx.Request:
        if message.channel == "audience_sync":
            return self.profile_import_request(self._audience_profile(message))
        return self._post(EVENTS, {"data": {"type": "event", "attributes": self.event(message)}})

    def event(self, message: Outgoing) -> dict[str, Any]:
        """The attributes of the event that hands ``message`` to its Klaviyo flow."""
        metric = f"{self.config.metric_prefix} {message.flow_id} {message.step_id}"
        return {
            "properties": _properties(message),
            "time": _iso(message.send_at or datetime.now(UTC)),
            "unique_id": message.message_id,
            "metric": {"data": {"type": "metric", "attributes": {"name": metric}}},
            "profile": {"data": {"type": "profile", "attributes": profile_attributes(message)}},
        }

    def profile_import_request(self, attributes: Mapping[str, Any]) -> httpx.Request:
        """Create or update one profile (``attributes`` as Klaviyo names them: ``email``,
        ``phone_number``, ``external_id``, ``first_name``, ``properties``, ...)."""
        data = {"type": "profile", "attributes": dict(attributes)}
        return self._post(PROFILE_IMPORT, {"data": data})

    def _audience_profile(self, message: Outgoing) -> dict[str, Any]:
        audience = str(message.payload.get("audience") or "")
        flag = f"{self.config.metric_prefix} audience {audience}"
        return {**profile_attributes(message), "properties": {flag: True}}

    def _post(self, path: str, body: Mapping[str, Any]) -> httpx.Request:
        headers = {
            "authorization": f"Klaviyo-API-Key {self._key}",
            "revision": self.config.revision,
            "accept": JSON_API,
            "content-type": JSON_API,
        }
        content = json.dumps(body, separators=(",", ":"), ensure_ascii=False, default=str).encode()
        return httpx.Request("POST", self.base_url + path, headers=headers, content=content)

    def accepted(self, call: Call, response: httpx.Response) -> list[Outcome]:
        imported = call.request.url.path.endswith(PROFILE_IMPORT)
        profile = _profile_id(response) if imported else None
        code = response.status_code
        return [
            Outcome(m, "sent", profile if imported else m, status_code=code)
            for m in call.message_ids
        ]

    def reason(self, response: httpx.Response) -> str:
        return klaviyo_reason(response)


def profile_attributes(message: Outgoing) -> dict[str, str]:
    """The customer's profile as Klaviyo names it (empty fields left out)."""
    customer = message.customer
    email = customer.get("email") or (message.address if message.channel == "email" else None)
    phone = customer.get("phone") or (message.address if message.channel == "sms" else None)
    digits = normalize_phone(phone)
    found = {
        "email": email,
        "phone_number": f"+{digits}" if digits else None,
        "first_name": customer.get("first_name"),
        "external_id": message.customer_id,
    }
    return {key: str(value) for key, value in found.items() if value}


def _properties(message: Outgoing) -> dict[str, Any]:
    own = {
        "subject": message.subject,
        "message_id": message.message_id,
        "flow": message.flow_id,
        "step": message.step_id,
        "flowhouse_test": True if message.is_test else None,
    }
    return {**message.data, **{k: v for k, v in own.items() if v is not None}}


def _iso(moment: datetime) -> str:
    """Naive UTC (or aware) as ISO 8601 with its offset, to the second."""
    aware = moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)
    return aware.replace(microsecond=0).isoformat()


def _profile_id(response: httpx.Response) -> str | None:
    try:
        found = response.json()["data"]["id"]
    except (ValueError, KeyError, TypeError):
        return None
    return found if isinstance(found, str) else None


def klaviyo_reason(response: httpx.Response) -> str:
    """Klaviyo's ``{"errors": [{"code", "title", "detail"}]}`` as ``code: detail; ...``."""
    try:
        errors = response.json().get("errors") or []
        parts = [_error(e) for e in errors if isinstance(e, dict)]
    except (ValueError, AttributeError):
        parts = []
    return "; ".join(parts) or response.text


def _error(error: Mapping[str, Any]) -> str:
    text = str(error.get("detail") or error.get("title") or "")
    return f"{error['code']}: {text}" if error.get("code") else text
