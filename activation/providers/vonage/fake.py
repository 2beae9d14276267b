"""Vonage in the fake provider: ``POST /v0.1/messages/`` (202 with the ``message_uuid``; Viber
only, as flowhouse sends nothing else through Vonage), validated against the document, with the
message's status webhooks simulated (delivered or undeliverable, then read for an opened one)."""

from __future__ import annotations

import base64
import uuid
from typing import Any

from anyio import to_thread
from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from flowhouse.activation.fake.common import (
    EXCERPT,
    Fake,
    FakeApi,
    FakeRoute,
    read_json,
    reject,
    validate,
)
from flowhouse.activation.fake.state import Received
from flowhouse.activation.providers.vonage.destination import MESSAGES_PATH, VIBER_TYPE

_TITLES = {401: "Unauthorized", 402: "Low balance", 422: "Invalid params", 429: "Throttled"}


def error_body(status: int, message: str, field: str | None, code: int | None) -> dict[str, Any]:
    """Vonage's error body: ``{"type", "title", "detail", "instance"}``."""
    title = _TITLES.get(status, "Invalid params" if status < 500 else "Internal error")
    kind = title.replace(" ", "")
    detail = f"{message} ({field})" if field else message
    return {
        "type": f"https://developer.nexmo.com/api-errors/messages-olympus#{kind}",
        "title": title,
        "detail": detail,
        "instance": uuid.uuid4().hex,
    }


def _basic(fake: Fake, request: Request) -> Response | None:
    """Basic credentials (an API key and a secret), or a bearer JWT."""
    scheme, _, encoded = request.headers.get("authorization", "").partition(" ")
    if scheme.lower() == "bearer" and encoded.strip():
        return None
    try:
        key, _, secret = base64.b64decode(encoded, validate=True).decode().partition(":")
    except ValueError:
        key = secret = ""
    if scheme.lower() == "basic" and key and secret:
        return None
    return reject(fake, "vonage", 401, "unauthorized", "Authenticate with the API key and secret")


def _viber_rules(fake: Fake, payload: dict[str, Any]) -> Response | None:
    """What Vonage requires beyond its document: a Viber message to a number, from a service."""
    to, sender = payload.get("to") or {}, payload.get("from") or {}
    if to.get("type") != VIBER_TYPE or sender.get("type") != VIBER_TYPE:
        return reject(fake, "vonage", 422, "invalid", "only Viber is served here", field="to")
    if not str(to.get("number", "")).isdigit():
        message = "the number must be E.164 digits without + or 00"
        return reject(fake, "vonage", 422, "invalid", message, field="to.number")
    if not sender.get("id"):
        return reject(fake, "vonage", 422, "invalid", "the Viber service id is missing", "from.id")
    return None


async def send(fake: Fake, request: Request) -> Response:
    """``POST /v0.1/messages/``: 202 with the message's uuid."""
    body = await request.body()
    refused = validate(fake, "vonage", request, body) or _basic(fake, request)
    found, bad = (None, refused) if refused else read_json(fake, "vonage", body)
    if bad:
        return bad
    if not isinstance(found, dict):
        return reject(fake, "vonage", 422, "invalid", "the body is not a JSON object")
    payload: dict[str, Any] = found
    refused = _viber_rules(fake, payload)
    if refused:
        return refused
    now = fake.clock.now()
    message_uuid = str(uuid.uuid4())
    content = payload["message"]["content"]
    record = Received(
        provider="vonage",
        message_id=payload.get("client_ref"),
        provider_message_id=message_uuid,
        address=payload["to"]["number"],
        subject=None,
        body=str(content.get("text", ""))[:EXCERPT],
        send_at=None,
        received_at=now,
        customer_id=None,
        sender=payload["from"]["id"],
    )
    fake.state.accept("vonage", [record])
    if fake.engagement.enabled:
        await to_thread.run_sync(fake.engagement.vonage, message_uuid, payload, now)
    return JSONResponse({"message_uuid": message_uuid}, status_code=202)


FAKE = FakeApi(routes=(FakeRoute(MESSAGES_PATH, send, "POST"),), error=error_body)
