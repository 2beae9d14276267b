"""FCM in the fake provider: ``POST /v1/projects/{project}/messages:send`` (validated against
Google's discovery document; 200 with the message's ``name``) and ``POST /token`` (a service
account's signed assertion traded for an access token).

Tokens as the fake reads them: one starting ``unregistered-`` answers ``UNREGISTERED`` (404), as
FCM does for an app uninstalled; one that is empty, holds a space or is longer than 4,096
characters answers ``INVALID_ARGUMENT`` on ``message.token`` (400). A delivery is recorded per
device, its ``message_id`` being ``{flowhouse message id}:{token}`` (so a push to two devices is
not a duplicate)."""

from __future__ import annotations

import json
import uuid
from typing import Any
from urllib.parse import parse_qsl

from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from flowhouse.activation.discovery import check
from flowhouse.activation.fake.common import (
    EXCERPT,
    Fake,
    FakeApi,
    FakeRoute,
    bearer,
    reject,
)
from flowhouse.activation.fake.state import Received

GRANT = "urn:ietf:params:oauth:grant-type:jwt-bearer"
#: A token the fake answers ``UNREGISTERED`` for.
UNREGISTERED_PREFIX = "unregistered-"
_STATUS = {400: "INVALID_ARGUMENT", 401: "UNAUTHENTICATED", 404: "NOT_FOUND",
           429: "RESOURCE_EXHAUSTED", 500: "INTERNAL", 503: "UNAVAILABLE"}  # fmt: skip
_FCM_CODES = {400: "INVALID_ARGUMENT", 401: "THIRD_PARTY_AUTH_ERROR", 404: "UNREGISTERED",
              429: "QUOTA_EXCEEDED", 500: "INTERNAL", 503: "UNAVAILABLE"}  # fmt: skip


def error_body(status: int, message: str, field: str | None, code: int | None) -> dict[str, Any]:
    """Google's error body, with FCM's own code in ``details`` (and the field at fault)."""
    details: list[dict[str, Any]] = [
        {
            "@type": "type.googleapis.com/google.firebase.fcm.v1.FcmError",
            "errorCode": _FCM_CODES.get(status, "UNSPECIFIED_ERROR"),
        }
    ]
    if field:
        details.append(
            {
                "@type": "type.googleapis.com/google.rpc.BadRequest",
                "fieldViolations": [{"field": field, "description": message}],
            }
        )
    return {
        "error": {
            "code": status,
            "message": message,
            "status": _STATUS.get(status, "UNKNOWN"),
            "details": details,
        }
    }


def _validated(fake: Fake, request: Request, body: bytes) -> Response | None:
    problems = check(
        "fcm", request.method, request.url.path, request.url.query, request.headers, body
    )
    if not problems:
        return None
    if any(p.startswith("SecurityValidationError") for p in problems):
        return reject(
            fake,
            "fcm",
            401,
            "unauthorized",
            "Request is missing required authentication credential.",
        )
    where = problems[0].partition(": ")[0]
    field = None if where.startswith("(") else f"message.{where}".removeprefix("message.message.")
    return reject(fake, "fcm", 400, "invalid", f"Invalid JSON payload: {problems[0]}", field=field)


def _token_problem(fake: Fake, token: Any) -> Response | None:
    if not isinstance(token, str) or not token or " " in token or len(token) > 4096:
        message = "The registration token is not a valid FCM registration token"
        return reject(fake, "fcm", 400, "invalid_token", message, field="message.token")
    if token.startswith(UNREGISTERED_PREFIX):
        return reject(fake, "fcm", 404, "unregistered", "Requested entity was not found.")
    return None


async def send(fake: Fake, request: Request) -> Response:
    """``POST /v1/projects/{project}/messages:send``: 200 with ``{"name": ...}``."""
    body = await request.body()
    refused = _validated(fake, request, body) or bearer(fake, "fcm", request)
    if refused:
        return refused
    message = json.loads(body).get("message") or {}
    targets = [k for k in ("token", "topic", "condition") if k in message]
    if len(targets) != 1:
        text = "Exactly one of token, topic or condition must be given"
        return reject(fake, "fcm", 400, "invalid", text, field="message")
    refused = _token_problem(fake, message.get("token"))
    if refused:
        return refused
    project = request.path_params["project"]
    name = f"projects/{project}/messages/{uuid.uuid4().hex}"
    data = message.get("data") or {}
    notification = message.get("notification") or {}
    record = Received(
        provider="fcm",
        message_id=f"{data.get('message_id')}:{message['token']}"
        if data.get("message_id")
        else None,
        provider_message_id=name,
        address=message["token"],
        subject=notification.get("title"),
        body=str(notification.get("body", ""))[:EXCERPT],
        send_at=None,
        received_at=fake.clock.now(),
        customer_id=None,
    )
    fake.state.accept("fcm", [record])
    return JSONResponse({"name": name})


async def token(fake: Fake, request: Request) -> Response:
    """``POST /token``: a signed assertion (three dot-separated parts) for an access token."""
    form = dict(parse_qsl((await request.body()).decode("utf-8", "replace")))
    if form.get("grant_type") != GRANT or form.get("assertion", "").count(".") != 2:
        fake.state.reject("fcm", "invalid_grant")
        body = {"error": "invalid_grant", "error_description": "Invalid JWT Signature."}
        return JSONResponse(body, status_code=400)
    answer = {"access_token": "ya29.fake-" + uuid.uuid4().hex, "expires_in": 3599}
    return JSONResponse(answer | {"token_type": "Bearer"})


FAKE = FakeApi(
    routes=(
        FakeRoute("/v1/projects/{project}/messages:send", send, "POST"),
        FakeRoute("/token", token, "POST"),
    ),
    error=error_body,
)
