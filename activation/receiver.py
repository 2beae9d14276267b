"""The webhook receiver: a small Starlette app that stores what providers and recipients send.

It does no warehouse work: every accepted request becomes one JSON file in an inbox folder, written
atomically (a hidden temp name, then a rename) under a name that sorts by arrival, and
:func:`flowhouse.activation.engagement.ingest` loads the inbox later. So the receiver answers in
milliseconds and never holds the DuckDB warehouse's single writer lock.

- ``POST /webhooks/sendgrid``: the SendGrid event webhook body (a JSON array), as is.
- ``POST /webhooks/twilio``: a status callback's fields, the ``message_id`` and ``customer_id`` of
  its query and ``received_at``, once ``X-Twilio-Signature`` checks out.
- ``GET /unsubscribe?token=``: nothing; a confirmation page (link scanners follow GETs).
- ``POST /unsubscribe?token=``: an unsubscribe, once the signed token checks out (RFC 8058
  one-click, or the confirmation page's button).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import html
import json
import os
import uuid
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl

from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import HTMLResponse, PlainTextResponse, Response
from starlette.routing import Route

from flowhouse.activation import links

SIGNATURE_HEADER = "X-Twilio-Signature"
MAX_BODY = 5 * 1024 * 1024  # bytes: SendGrid batches stay far below this

_CONFIRM_PAGE = """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>Unsubscribe</title></head>
<body>
<h1>Unsubscribe</h1>
<p>Stop receiving marketing {what} from us?</p>
<form method="post">
<button type="submit">Unsubscribe</button>
</form>
</body></html>
"""

_PREFERENCES_PAGE = """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>Your preferences</title></head>
<body>
<h1>Your preferences</h1>
<p>You are getting marketing {what} from us. Nothing to do to keep them coming.</p>
<form method="post" action="unsubscribe?token={token}">
<button type="submit">Stop marketing {what}</button>
</form>
</body></html>
"""

_DONE_PAGE = """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>Unsubscribed</title></head>
<body><h1>You are unsubscribed</h1><p>You will not receive marketing {what} from us any more.</p>
</body></html>
"""

_CHANNEL_WORDS = {"email": "e-mails", "sms": "text messages"}


# -- storing ---------------------------------------------------------------------------------------


def received_at() -> str:
    """Now, as the ISO UTC text stored with callbacks that carry no time of their own."""
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def file_name() -> str:
    """A unique name that sorts by arrival: ``<UTC time to the microsecond>-<random>.json``."""
    return f"{datetime.now(UTC):%Y%m%dT%H%M%S%fZ}-{uuid.uuid4().hex[:12]}.json"


def store(inbox: Path, source: str, body: bytes) -> Path:
    """Write ``body`` to ``<inbox>/<source>/`` atomically; returns the file's path."""
    folder = inbox / source
    folder.mkdir(parents=True, exist_ok=True)
    name = file_name()
    temp = folder / f".{name}.tmp"
    with temp.open("wb") as handle:
        handle.write(body)
        handle.flush()
        os.fsync(handle.fileno())
    target = folder / name
    os.replace(temp, target)
    return target


async def _store(inbox: Path, source: str, body: bytes) -> Path:
    return await run_in_threadpool(store, inbox, source, body)


def _json(data: dict[str, Any]) -> bytes:
    return json.dumps(data, sort_keys=True).encode()


# -- Twilio's signature ----------------------------------------------------------------------------


def twilio_signature(auth_token: str, url: str, params: list[tuple[str, str]]) -> str:
    """Twilio's ``X-Twilio-Signature``: base64 HMAC-SHA1 of the full URL followed by every form
    parameter, sorted, as key then value, under the account's auth token."""
    payload = url + "".join(k + v for k, v in sorted(params))
    digest = hmac.new(auth_token.encode(), payload.encode(), hashlib.sha1).digest()
    return base64.b64encode(digest).decode()


def _public_url(request: Request, public_url: str | None) -> str:
    """The URL Twilio called: the public base (behind a proxy) with this path and query."""
    if public_url is None:
        return str(request.url)
    query = f"?{request.url.query}" if request.url.query else ""
    return public_url.rstrip("/") + request.url.path + query


def _form(body: bytes) -> list[tuple[str, str]]:
    return parse_qsl(body.decode("utf-8", "replace"), keep_blank_values=True)


# -- the app ---------------------------------------------------------------------------------------


def create_app(
    inbox: Path, signing_key: str, twilio_auth_token: str | None, public_url: str | None
) -> Starlette:
    """The receiver, storing into ``inbox``; Twilio callbacks are checked when a token is given,
    against ``public_url`` (the address Twilio was given) when the app sits behind a proxy."""

    async def sendgrid(request: Request) -> Response:
        body = await _body(request)
        if body is None:
            return PlainTextResponse("payload too large", status_code=413)
        if not _is_json_array(body):
            return PlainTextResponse("expected a JSON array of events", status_code=400)
        await _store(inbox, "sendgrid", body)
        return PlainTextResponse("ok")

    async def twilio(request: Request) -> Response:
        body = await _body(request)
        if body is None:
            return PlainTextResponse("payload too large", status_code=413)
        params = _form(body)
        if twilio_auth_token is not None and not _signed(request, params):
            return PlainTextResponse("bad signature", status_code=403)
        record: dict[str, Any] = dict(params)
        for key in ("message_id", "customer_id"):
            record[key] = request.query_params.get(key)
        record["received_at"] = received_at()
        await _store(inbox, "twilio", _json(record))
        return PlainTextResponse("ok")

    def _signed(request: Request, params: list[tuple[str, str]]) -> bool:
        assert twilio_auth_token is not None
        url = _public_url(request, public_url)
        expected = twilio_signature(twilio_auth_token, url, params)
        given = request.headers.get(SIGNATURE_HEADER, "")
        return hmac.compare_digest(expected.encode(), given.encode())

    async def unsubscribe_page(request: Request) -> Response:
        token = request.query_params.get("token", "")
        claims = _claims(token, signing_key)
        if claims is None:
            return _bad_link()
        what = _CHANNEL_WORDS.get(claims.channel, "messages")
        page = _CONFIRM_PAGE.format(what=what)
        return HTMLResponse(page)

    async def preferences_page(request: Request) -> Response:
        token = request.query_params.get("token", "")
        claims = _claims(token, signing_key)
        if claims is None:
            return _bad_link()
        what = _CHANNEL_WORDS.get(claims.channel, "messages")
        return HTMLResponse(_PREFERENCES_PAGE.format(what=what, token=html.escape(token)))

    async def unsubscribe(request: Request) -> Response:
        token = request.query_params.get("token") or await _form_token(request)
        claims = _claims(token, signing_key)
        if claims is None:
            return _bad_link()
        record = {
            "kind": "unsubscribe",
            "message_id": claims.message_id,
            "customer_id": claims.customer_id,
            "channel": claims.channel,
            "received_at": received_at(),
        }
        await _store(inbox, "flowhouse", _json(record))
        return HTMLResponse(_DONE_PAGE.format(what=_CHANNEL_WORDS.get(claims.channel, "messages")))

    return Starlette(
        routes=[
            Route("/webhooks/sendgrid", sendgrid, methods=["POST"]),
            Route("/webhooks/twilio", twilio, methods=["POST"]),
            Route("/unsubscribe", unsubscribe_page, methods=["GET"]),
            Route("/unsubscribe", unsubscribe, methods=["POST"]),
            Route("/preferences", preferences_page, methods=["GET"]),
        ]
    )


async def _body(request: Request) -> bytes | None:
    """The request body, or None past :data:`MAX_BODY`."""
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > MAX_BODY:
            return None
        chunks.append(chunk)
    return b"".join(chunks)


def _is_json_array(body: bytes) -> bool:
    try:
        return isinstance(json.loads(body), list)
    except ValueError:
        return False


async def _form_token(request: Request) -> str:
    """The token from an url-encoded form body (a page that posts it as a field)."""
    if not request.headers.get("content-type", "").startswith("application/x-www-form-urlencoded"):
        return ""
    body = await _body(request)
    return dict(_form(body or b"")).get("token", "")


def _claims(token: str, key: str) -> links.Claims | None:
    try:
        return links.verify(token, key)
    except links.BadToken:
        return None


def _bad_link() -> Response:
    return PlainTextResponse("This link is not valid.", status_code=400)


def serve(
    host: str,
    port: int,
    inbox: Path,
    signing_key: str,
    twilio_auth_token: str | None = None,
    public_url: str | None = None,
) -> None:
    """Run the receiver until interrupted."""
    import uvicorn

    app = create_app(inbox, signing_key, twilio_auth_token, public_url)
    # no access log: request lines carry unsubscribe tokens
    uvicorn.run(app, host=host, port=port, log_level="info", access_log=False)
