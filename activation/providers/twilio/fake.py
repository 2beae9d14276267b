"""Twilio in the fake provider: ``POST`` (201, the message resource; a status callback written to
the inbox) and ``GET /2010-04-01/Accounts/{AccountSid}/Messages.json`` (the message list)."""

from __future__ import annotations

import base64
import json
import uuid
from datetime import UTC, datetime
from email.utils import format_datetime
from typing import Any
from urllib.parse import parse_qsl, urlsplit

from anyio import to_thread
from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from flowhouse.activation.fake.common import (
    EXCERPT,
    Fake,
    FakeApi,
    FakeRoute,
    parse_time,
    reject,
    validate,
)
from flowhouse.activation.fake.state import (
    Received,
)

TWILIO_API = "2010-04-01"

_TWILIO_CODES = {401: 20003, 404: 20404, 429: 20429, 500: 20500, 504: 20504}
#: Twilio's error code for a missing or bad field (others are generic).
_FIELD_CODES = {"To": 21604, "Body": 21602, "From": 21603}


def _json_object(text: str) -> bool:
    try:
        return isinstance(json.loads(text), dict)
    except ValueError:
        return False


def error_body(status: int, message: str, field: str | None, code: int | None) -> dict[str, Any]:
    """Twilio's error body: ``{"code", "message", "more_info", "status"}``."""
    number = code or _FIELD_CODES.get(field or "") or _TWILIO_CODES.get(status, 20001)
    more = f"https://www.twilio.com/docs/errors/{number}"
    return {"code": number, "message": message, "more_info": more, "status": status}


# -- Twilio --------------------------------------------------------------------------------


def _basic(fake: Fake, request: Request, account_sid: str) -> Response | None:
    """Basic credentials of this account (or an API key ``SK...``) with a secret."""
    scheme, _, encoded = request.headers.get("authorization", "").partition(" ")
    try:
        user, _, password = base64.b64decode(encoded, validate=True).decode().partition(":")
    except ValueError:
        user = password = ""
    if scheme.lower() == "basic" and password and (user == account_sid or user[:2] == "SK"):
        return None
    return reject(fake, "twilio", 401, "unauthorized", "Authenticate")


def _twilio_rules(fake: Fake, form: dict[str, str]) -> Response | None:
    """What Twilio requires beyond its document: a sender, content, a valid SendAt."""
    if not form.get("From") and not form.get("MessagingServiceSid"):
        message = "A 'From' phone number or a MessagingServiceSid is required."
        return reject(fake, "twilio", 400, "invalid", message, code=21603)
    if not (form.get("Body") or form.get("MediaUrl") or form.get("ContentSid")):
        return reject(fake, "twilio", 400, "invalid", "Message body is required.", code=21602)
    if form.get("ContentVariables") and not form.get("ContentSid"):
        message = "ContentVariables requires ContentSid."
        return reject(fake, "twilio", 400, "invalid", message, code=21656)
    if form.get("ContentVariables") and not _json_object(form["ContentVariables"]):
        message = "ContentVariables must be a JSON object."
        return reject(fake, "twilio", 400, "invalid", message, code=21656)
    whatsapp = [form.get(k, "").startswith("whatsapp:") for k in ("To", "From")]
    if form.get("From") and whatsapp[0] != whatsapp[1]:
        message = "To and From must both be WhatsApp addresses, or neither."
        return reject(fake, "twilio", 400, "invalid", message, code=63007)
    if form.get("SendAt") and parse_time(form["SendAt"]) is None:
        message = "Scheduling does not support this timestamp"
        return reject(fake, "twilio", 400, "invalid", message, code=35114)
    return None


async def twilio_create(fake: Fake, request: Request) -> Response:
    """``POST .../Messages.json``: 201 with the message resource."""
    account_sid = request.path_params["account_sid"]
    body = await request.body()
    form = dict(parse_qsl(body.decode("utf-8", "replace"), keep_blank_values=True))
    refused = (
        validate(fake, "twilio", request, body)
        or _basic(fake, request, account_sid)
        or _twilio_rules(fake, form)
    )
    if refused:
        return refused
    now = fake.clock.now()
    callback = dict(parse_qsl(urlsplit(form.get("StatusCallback", "")).query))
    send_at = _scheduled(form)
    message = _twilio_message(account_sid, form, now, send_at)
    record = Received(
        provider="twilio",
        message_id=callback.get("message_id"),
        provider_message_id=message["sid"],
        address=form["To"],
        subject=None,
        body=(form.get("Body") or _template(form))[:EXCERPT],
        send_at=send_at,
        received_at=now,
        customer_id=callback.get("customer_id"),
        sender=" ".join(form[k] for k in ("From", "MessagingServiceSid") if form.get(k)),
    )
    fake.state.accept("twilio", [record])
    fake.state.add_twilio(now.replace(microsecond=0), message)
    if fake.engagement.enabled and form.get("StatusCallback"):
        free = form["To"].startswith("whatsapp:") and not form.get("ContentSid")
        await to_thread.run_sync(fake.engagement.twilio, message, callback, send_at or now, free)
    return JSONResponse(message, status_code=201)


def _template(form: dict[str, str]) -> str:
    """What a WhatsApp template message is recorded as: its template and variables."""
    return " ".join(form[k] for k in ("ContentSid", "ContentVariables") if form.get(k))


def _scheduled(form: dict[str, str]) -> datetime | None:
    """SendAt, when Twilio honours it (ScheduleType fixed and a Messaging Service)."""
    if form.get("ScheduleType") != "fixed" or not form.get("MessagingServiceSid"):
        return None
    return parse_time(form.get("SendAt", ""))


def _rfc2822(when: datetime) -> str:
    return format_datetime(when.replace(tzinfo=UTC, microsecond=0))


def _twilio_message(
    account_sid: str, form: dict[str, str], now: datetime, send_at: datetime | None
) -> dict[str, Any]:
    sid = "SM" + uuid.uuid4().hex
    root = f"/{TWILIO_API}/Accounts/{account_sid}/Messages/{sid}"
    stamp = _rfc2822(now)
    return {
        "account_sid": account_sid,
        "api_version": TWILIO_API,
        "body": form.get("Body", ""),
        "date_created": stamp,
        "date_sent": stamp,
        "date_updated": stamp,
        "direction": "outbound-api",
        "error_code": None,
        "error_message": None,
        "from": form.get("From") or None,
        "messaging_service_sid": form.get("MessagingServiceSid") or None,
        "num_media": "0",
        "num_segments": str(segments(form.get("Body", ""))),
        "price": None,
        "price_unit": "USD",
        "sid": sid,
        "status": "scheduled" if send_at else "queued",
        "subresource_uris": {"media": f"{root}/Media.json"},
        "to": form["To"],
        "uri": f"{root}.json",
    }


def segments(body: str) -> int:
    """SMS segments: 160 GSM characters (153 when split), 70 UCS-2 (67 when split)."""
    ascii_only = body.isascii()
    single, part = (160, 153) if ascii_only else (70, 67)
    return 1 if len(body) <= single else -(-len(body) // part)


async def twilio_list(fake: Fake, request: Request) -> Response:
    """``GET .../Messages.json``: messages filtered by To, From and DateSent, newest first."""
    account_sid = request.path_params["account_sid"]
    refused = validate(fake, "twilio", request, b"") or _basic(fake, request, account_sid)
    if refused:
        return refused
    query = dict(request.query_params)
    size, page = int(query.get("PageSize", "50")), int(query.get("Page", "0"))
    found = [
        (when, m)
        for when, m in fake.state.twilio_messages(query.get("To"))
        if m["account_sid"] == account_sid and _sent_within(when, m, query)
    ]
    found.sort(key=lambda item: item[0], reverse=True)
    chosen = [m for _, m in found[page * size : (page + 1) * size]]
    return JSONResponse(_twilio_page(request, chosen, page, size))


def _sent_within(when: datetime, message: dict[str, Any], query: dict[str, str]) -> bool:
    if query.get("From") and message["from"] != query["From"]:
        return False
    bounds = ("DateSent>", "DateSent<", "DateSent")
    after, before, on = (parse_time(query.get(k, "")) for k in bounds)
    if after is not None and when < after:
        return False
    if before is not None and when > before:
        return False
    return on is None or when.date() == on.date()


def _twilio_page(
    request: Request, messages: list[dict[str, Any]], page: int, size: int
) -> dict[str, Any]:
    uri = request.url.path + ("?" + request.url.query if request.url.query else "")
    return {
        "messages": messages,
        "page": page,
        "page_size": size,
        "start": page * size,
        "end": page * size + max(len(messages) - 1, 0),
        "uri": uri,
        "first_page_uri": uri,
        "next_page_uri": None,
        "previous_page_uri": None,
    }


_MESSAGES = f"/{TWILIO_API}/Accounts/{{account_sid}}/Messages.json"

FAKE = FakeApi(
    routes=(
        FakeRoute(_MESSAGES, twilio_create, "POST"),
        FakeRoute(_MESSAGES, twilio_list, "GET"),
    ),
    error=error_body,
)
