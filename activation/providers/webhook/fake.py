"""A generic webhook in the fake provider: ``POST /hooks/{name}``, signed, deduplicated on
``Idempotency-Key``; the payload kept and its rows logged as sync rows."""

from __future__ import annotations

import hashlib
import hmac
from datetime import datetime
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from flowhouse.activation.fake.common import (
    EXCERPT,
    Fake,
    FakeApi,
    FakeRoute,
    as_text,
    read_json,
    reject,
)
from flowhouse.activation.fake.state import (
    Received,
    SyncEntry,
)

# -- generic webhook -----------------------------------------------------------------------


def signature(secret: str, timestamp: str, body: bytes) -> str:
    """``v1=`` + hex HMAC-SHA256 of ``{timestamp}.{body}`` under ``secret``."""
    mac = hmac.new(secret.encode(), timestamp.encode() + b"." + body, hashlib.sha256)
    return "v1=" + mac.hexdigest()


def _signed(fake: Fake, request: Request, body: bytes) -> Response | None:
    timestamp = request.headers.get("x-flowhouse-timestamp", "")
    given = [s.strip() for s in request.headers.get("x-flowhouse-signature", "").split(",")]
    expected = signature(fake.settings.webhook_secret, timestamp, body)
    if timestamp and any(hmac.compare_digest(s, expected) for s in given):
        return None
    return reject(fake, "webhook", 401, "bad_signature", "signature does not match")


def _idempotent(fake: Fake, key: str) -> Response | None:
    if key:
        return None
    message = "the Idempotency-Key header is required"
    return reject(fake, "webhook", 400, "missing_idempotency_key", message)


async def webhook(fake: Fake, request: Request) -> Response:
    """``POST /hooks/{name}``: signed JSON, deduplicated on ``Idempotency-Key``; the payload is
    kept (:meth:`Recording.hook_payloads`) and its rows logged (:func:`_hook_rows`)."""
    body = await request.body()
    key = request.headers.get("idempotency-key", "").strip()
    refused = _signed(fake, request, body) or _idempotent(fake, key)
    payload, bad = (None, refused) if refused else read_json(fake, "webhook", body)
    if bad:
        return bad
    name = request.path_params["name"]
    if not fake.state.first_time("webhook", key):
        fake.state.log_sync("webhook.post", [])
        return JSONResponse({"received": True, "duplicate": True}, status_code=200)
    fake.state.add_hook(name, payload)
    fake.state.log_sync("webhook.post", _hook_rows(name, key, payload, fake.clock.now()))
    kind = payload.get("event") or payload.get("type") if isinstance(payload, dict) else None
    record = Received(
        provider="webhook",
        message_id=key,
        provider_message_id=None,
        address=name,
        subject=as_text(kind),
        body=body.decode("utf-8", "replace")[:EXCERPT],
        send_at=None,
        received_at=fake.clock.now(),
        customer_id=as_text(payload.get("customer_id")) if isinstance(payload, dict) else None,
    )
    fake.state.accept("webhook", [record])
    return JSONResponse({"received": True, "duplicate": False}, status_code=200)


def _hook_rows(name: str, key: str, payload: Any, now: datetime) -> list[SyncEntry]:
    """The sync rows of a webhook payload: each object of its ``rows`` list, else the payload
    itself; a row's key is its ``key`` (else the ``Idempotency-Key``), its operation its own
    ``operation`` or the payload's (else ``post``)."""
    shared = payload.get("operation") if isinstance(payload, dict) else None
    rows = payload.get("rows") if isinstance(payload, dict) else None
    if not isinstance(rows, list) or not all(isinstance(r, dict) for r in rows):
        rows = [payload]
    return [
        SyncEntry("webhook", _row_operation(row, shared), name, _row_key(row, key), row, now)
        for row in rows
    ]


def _row_operation(row: Any, shared: Any) -> str:
    own = row.get("operation") if isinstance(row, dict) else None
    return str(own or shared or "post")


def _row_key(row: Any, key: str) -> str:
    own = row.get("key") if isinstance(row, dict) else None
    return key if own is None else str(own)


FAKE = FakeApi(routes=(FakeRoute("/hooks/{name:path}", webhook, "POST"),))
