"""The fake provider's HTTP application (Starlette): SendGrid, Twilio, Klaviyo, a generic webhook
receiver and a paid-audience API, plus the ``/_fake`` inspection endpoints.

Every request to a path a provider document covers is checked against that document
(:func:`activation.openapi.check`) once, as a whole; what fails is refused as the real API would
(401 for a security failure, else 400 in the provider's own error shape) and is not recorded.
Before anything else, each provider request draws its fate from the failure injector.
Engagement files are written in a worker thread (the response still waits for them, so a file
exists once its request was answered), keeping the event loop free for other requests.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import hmac
import json
import re
import secrets
import threading
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qsl, urlsplit

from anyio import to_thread
from pydantic import ValidationError
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from activation.fake.engagement import Engagement, Recipient, fate
from activation.fake.failures import Failures, Fault, Injector
from activation.fake.state import (
    SENDGRID_IDENTIFIERS,
    Activity,
    Clock,
    Received,
    Recording,
    Stored,
    SyncEntry,
    member_key,
)
from activation.openapi import check, document_for
from flowhouse.core.clock import utc

if TYPE_CHECKING:
    from activation.fake.server import FakeSettings

Endpoint = Callable[[Request], Awaitable[Response]]
EXCERPT = 200
TWILIO_API = "2010-04-01"
KLAVIYO_HOST = "https://a.klaviyo.com"


@dataclass
class Fake:
    """Everything one running fake provider holds."""

    settings: FakeSettings
    state: Recording
    injector: Injector
    clock: Clock
    engagement: Engagement
    stopping: threading.Event = field(default_factory=threading.Event)


def create_app(settings: FakeSettings) -> Starlette:
    """The fake provider for ``settings``; its live :class:`Fake` is ``app.state.fake``."""
    clock = Clock(settings.clock)
    fake = Fake(
        settings=settings,
        state=Recording(settings.record_dir),
        injector=Injector(settings.failures),
        clock=clock,
        engagement=Engagement(settings.engagement, settings.inbox, clock.now),
    )
    app = Starlette(routes=_routes(), lifespan=_lifespan)
    app.state.fake = fake
    return app


@asynccontextmanager
async def _lifespan(app: Starlette) -> AsyncIterator[None]:
    yield
    app.state.fake.stopping.set()
    app.state.fake.state.close()


def _routes() -> list[Route]:
    twilio = f"/{TWILIO_API}/Accounts/{{account_sid}}/Messages.json"
    members = "/api/lists/{list_id}/relationships/profiles"
    search = "/v3/marketing/contacts/search/emails"
    unlist = "/v3/marketing/lists/{list_id}/contacts"
    users = "/audiences/{audience}/users"
    return [
        Route("/v3/mail/send", _provider("sendgrid", sendgrid_send), methods=["POST"]),
        Route("/v3/messages", _provider("sendgrid", sendgrid_activity), methods=["GET"]),
        Route(twilio, _provider("twilio", twilio_create), methods=["POST"]),
        Route(twilio, _provider("twilio", twilio_list), methods=["GET"]),
        Route("/api/events", _provider("klaviyo", klaviyo_event), methods=["POST"]),
        Route("/api/profile-import", _provider("klaviyo", klaviyo_profile), methods=["POST"]),
        Route("/api/profiles", _provider("klaviyo", klaviyo_profiles), methods=["GET"]),
        Route(members, _provider("klaviyo", _klaviyo_membership(add=True)), methods=["POST"]),
        Route(members, _provider("klaviyo", _klaviyo_membership(add=False)), methods=["DELETE"]),
        Route(members, _provider("klaviyo", klaviyo_list_profiles), methods=["GET"]),
        Route("/v3/marketing/contacts", _provider("sendgrid", sendgrid_contacts), methods=["PUT"]),
        Route(search, _provider("sendgrid", sendgrid_search_emails), methods=["POST"]),
        Route(unlist, _provider("sendgrid", sendgrid_list_remove), methods=["DELETE"]),
        Route("/hooks/{name:path}", _provider("webhook", webhook), methods=["POST"]),
        Route(users, _provider("audience", audience_add), methods=["POST"]),
        Route(users, _provider("audience", audience_remove), methods=["DELETE"]),
        Route(users, _inspect(audience_list), methods=["GET"]),
        Route("/_fake/messages", _inspect(fake_messages), methods=["GET"]),
        Route("/_fake/lists", _inspect(fake_lists), methods=["GET"]),
        Route("/_fake/sync", _inspect(fake_sync), methods=["GET"]),
        Route("/_fake/stats", _inspect(fake_stats), methods=["GET"]),
        Route("/_fake/failures", _inspect(fake_failures), methods=["POST"]),
        Route("/_fake/clock", _inspect(fake_clock), methods=["POST"]),
        Route("/_fake/reset", _inspect(fake_reset), methods=["POST"]),
    ]


Handler = Callable[[Fake, Request], Awaitable[Response]]


def _inspect(handler: Handler) -> Endpoint:
    async def endpoint(request: Request) -> Response:
        return await handler(request.app.state.fake, request)

    return endpoint


def _provider(provider: str, handler: Handler) -> Endpoint:
    """``handler`` behind the failure injector: a drawn fault answers instead of it."""

    async def endpoint(request: Request) -> Response:
        fake: Fake = request.app.state.fake
        decision = fake.injector.decide()
        if decision.fault is not None:
            return await _fault(fake, provider, decision.fault)
        if decision.delay:
            fake.state.inject("slow")
            await asyncio.sleep(decision.delay)
        return await handler(fake, request)

    return endpoint


async def _fault(fake: Fake, provider: str, fault: Fault) -> Response:
    fake.state.inject(fault)
    failures = fake.injector.failures
    if fault == "rate_limited":
        headers = {"Retry-After": str(failures.retry_after)}
        return error(provider, 429, "Too many requests", headers=headers)
    if fault == "server_error":
        return error(provider, 500, "Internal server error")
    await _hold(fake, failures.timeout_seconds)
    return error(provider, 504, "Gateway time-out")


async def _hold(fake: Fake, seconds: float) -> None:
    """Wait ``seconds``, or less when the server stops."""
    deadline = time.monotonic() + seconds
    while not fake.stopping.is_set() and (left := deadline - time.monotonic()) > 0:
        await asyncio.sleep(min(0.05, left))


# -- errors in each provider's shape ---------------------------------------------------------

_TWILIO_CODES = {401: 20003, 404: 20404, 429: 20429, 500: 20500, 504: 20504}
_KLAVIYO = {
    400: ("invalid", "Invalid input."),
    401: ("not_authenticated", "Authentication credentials were not provided."),
    429: ("throttled", "Request was throttled."),
}


def error(
    provider: str,
    status: int,
    message: str,
    field: str | None = None,
    code: int | None = None,
    headers: dict[str, str] | None = None,
) -> JSONResponse:
    """An error response as ``provider`` words it."""
    if provider == "sendgrid":
        body: dict[str, Any] = {"errors": [{"message": message, "field": field, "help": None}]}
    elif provider == "twilio":
        body = _twilio_error(status, message, code)
    elif provider == "klaviyo":
        body = _klaviyo_error(status, message, field)
    else:
        body = {"error": {"status": status, "message": message, "field": field}}
    return JSONResponse(body, status_code=status, headers=headers)


def _twilio_error(status: int, message: str, code: int | None) -> dict[str, Any]:
    number = code or _TWILIO_CODES.get(status, 20001)
    more = f"https://www.twilio.com/docs/errors/{number}"
    return {"code": number, "message": message, "more_info": more, "status": status}


def _klaviyo_error(status: int, message: str, field: str | None) -> dict[str, Any]:
    code, title = _KLAVIYO.get(status, ("error", "A server error occurred."))
    item = {
        "id": str(uuid.uuid4()),
        "status": status,
        "code": code,
        "title": title,
        "detail": message,
        "source": _klaviyo_source(field),
    }
    return {"errors": [item]}


def _klaviyo_source(field: str | None) -> dict[str, str]:
    """Where an error is: ``/...`` is a JSON pointer, ``?name`` a query parameter, else an
    attribute of ``data``."""
    if field and field.startswith("/"):
        return {"pointer": field}
    if field and field.startswith("?"):
        return {"parameter": field[1:]}
    return {"pointer": "/data/" + ("attributes/" + field.replace(".", "/") if field else "")}


def _reject(
    fake: Fake,
    provider: str,
    status: int,
    reason: str,
    message: str,
    field: str | None = None,
    code: int | None = None,
) -> Response:
    fake.state.reject(provider, reason)
    return error(provider, status, message, field=field, code=code)


# -- validation against the documents ------------------------------------------------------

_AFTER_VALUE = re.compile(r"^.*>,?\); (.+)$", re.S)
_REQUIRED = re.compile(r"'([^']+)' is a required property")
_PARAMETER = re.compile(r"parameter: (\S+)")
_WHERE = re.compile(r"^([\w.-]+): ")


def summary(problem: str) -> tuple[str, str | None]:
    """A short message and the field at fault, from one of :func:`check`'s problems (without
    the repeated request body)."""
    found = _AFTER_VALUE.match(problem)
    text = (found.group(1) if found else problem).replace("(body): ", "")
    first = text.split("; ")[0]
    named = _REQUIRED.search(first) or _PARAMETER.search(first)
    if named is None and found:
        named = _WHERE.match(first)
    return text[:500], named.group(1) if named else None


def _validate(fake: Fake, provider: str, request: Request, body: bytes) -> Response | None:
    """Refuse what the provider's document does not allow (once for the whole request)."""
    spec = document_for(request.url.path)
    if spec is None:
        return None
    path, query = request.url.path, request.url.query
    problems = check(spec, request.method, path, query, request.headers, body)
    if not problems:
        return None
    if any(p.startswith("SecurityValidationError") for p in problems):
        return _reject(fake, provider, 401, "unauthorized", "authorization required")
    message, field = summary(problems[0])
    return _reject(fake, provider, 400, "invalid", message, field=field, code=_code(field))


def _code(field: str | None) -> int | None:
    """Twilio's error code for a missing or bad field (others are generic)."""
    return {"To": 21604, "Body": 21602, "From": 21603}.get(field or "")


def _bearer(fake: Fake, provider: str, request: Request) -> Response | None:
    scheme, _, token = request.headers.get("authorization", "").partition(" ")
    if scheme.lower() == "bearer" and token.strip():
        return None
    return _reject(fake, provider, 401, "unauthorized", "authorization required")


def _json(fake: Fake, provider: str, body: bytes) -> tuple[Any, Response | None]:
    try:
        return json.loads(body), None
    except ValueError:
        return None, _reject(fake, provider, 400, "invalid", "the body is not valid JSON")


# -- SendGrid ------------------------------------------------------------------------------


async def sendgrid_send(fake: Fake, request: Request) -> Response:
    """``POST /v3/mail/send``: 202 with ``X-Message-Id``; one record per personalization."""
    body = await request.body()
    refused = _validate(fake, "sendgrid", request, body) or _bearer(fake, "sendgrid", request)
    if refused:
        return refused
    mail = json.loads(body)
    message_id = secrets.token_urlsafe(16)
    now = fake.clock.now()
    records, recipients, activity = _personalizations(mail, message_id, now)
    fake.state.accept("sendgrid", records)
    fake.state.add_activity(activity)
    if fake.engagement.enabled:
        url = _first_link(mail)
        await to_thread.run_sync(fake.engagement.sendgrid, message_id, recipients, url)
    return Response(status_code=202, headers={"X-Message-Id": message_id})


def _personalizations(
    mail: dict[str, Any], message_id: str, now: datetime
) -> tuple[list[Received], list[Recipient], list[Activity]]:
    source = _content(mail)
    sender = (mail.get("from") or {}).get("email")
    records: list[Received] = []
    recipients: list[Recipient] = []
    activity: list[Activity] = []
    for position, p in enumerate(mail["personalizations"]):
        record = _sendgrid_record(mail, p, source, message_id, now)
        records.append(record)
        args = {k: str(v) for k, v in (p.get("custom_args") or {}).items()}
        for j, to in enumerate(p["to"]):
            sg_id = f"{message_id}.filter{position:04d}.{j}"
            key = record.message_id or sg_id
            base = record.send_at or now
            recipients.append(Recipient(to["email"], sg_id, key, base, args))
            activity.append(Activity(record, sg_id, to["email"], sender))
    return records, recipients, activity


def _sendgrid_record(
    mail: dict[str, Any], p: dict[str, Any], source: str, message_id: str, now: datetime
) -> Received:
    args = p.get("custom_args") or {}
    subs = {str(k): str(v) for k, v in (p.get("substitutions") or {}).items()}
    data = p.get("dynamic_template_data")
    subject = p.get("subject") or mail.get("subject")
    if subject is None and isinstance(data, dict):
        subject = data.get("subject")
    if mail.get("template_id") and data is not None:
        text = f"template {mail['template_id']}: {json.dumps(data)[:EXCERPT]}"
    else:
        text = _substitute(source, subs)
    return Received(
        provider="sendgrid",
        message_id=_str(args.get("message_id")),
        provider_message_id=message_id,
        address=",".join(t["email"] for t in p["to"]),
        subject=_substitute(subject, subs) if subject else None,
        body=text[:EXCERPT],
        send_at=_from_unix(p.get("send_at", mail.get("send_at"))),
        received_at=now,
        customer_id=_str(args.get("customer_id")),
    )


def _content(mail: dict[str, Any]) -> str:
    """The start of the mail's plain-text part (else its first part), before substitutions."""
    parts = mail.get("content") or []
    plain = [c for c in parts if c.get("type") == "text/plain"]
    chosen = (plain or parts or [{"value": ""}])[0]
    return str(chosen.get("value", ""))[: EXCERPT * 5]


def _substitute(text: str, subs: dict[str, str]) -> str:
    for key, value in subs.items():
        text = text.replace(key, value)
    return text


_HREF = re.compile(r'href="(https?://[^"]+)"')


def _first_link(mail: dict[str, Any]) -> str:
    """The first link of the HTML part that is not an unsubscribe or preference link."""
    for part in mail.get("content") or []:
        for url in _HREF.findall(str(part.get("value", ""))):
            if "unsubscribe" not in url and "preferences" not in url:
                return str(url)
    return "https://shop.example/"


def _from_unix(value: Any) -> datetime | None:
    if value is None:
        return None
    return utc(datetime.fromtimestamp(int(value), UTC))


def _str(value: Any) -> str | None:
    return None if value is None else str(value)


_ACTIVITY_QUERY = re.compile(r"""unique_args\['message_id'\]\s*=\s*(["'])(.*)\1""")


async def sendgrid_activity(fake: Fake, request: Request) -> Response:
    """``GET /v3/messages`` (Email Activity): the recipients of one ``message_id``."""
    refused = _bearer(fake, "sendgrid", request)
    if refused:
        return refused
    found = _ACTIVITY_QUERY.fullmatch(request.query_params.get("query", "").strip())
    limit = request.query_params.get("limit", "10")
    if not found:
        message = "query must be unique_args['message_id']=\"<id>\""
        return _reject(fake, "sendgrid", 400, "invalid", message, field="query")
    if not limit.isdigit() or not 1 <= int(limit) <= 1000:
        message = "limit must be an integer from 1 to 1000"
        return _reject(fake, "sendgrid", 400, "invalid", message, field="limit")
    items = fake.state.activity(found.group(2))[: int(limit)]
    return JSONResponse({"messages": [_activity_json(fake, a) for a in items]})


def _activity_json(fake: Fake, item: Activity) -> dict[str, Any]:
    record = item.received
    f = fate(record.message_id or item.msg_id, fake.engagement.rates)
    status = "delivered" if f.delivered else "not_delivered" if f.bounced else "processed"
    base = record.send_at or record.received_at
    last = base if status == "processed" else base + timedelta(seconds=f.delays[0])
    return {
        "from_email": item.from_email,
        "msg_id": item.msg_id,
        "subject": record.subject,
        "to_email": item.to_email,
        "status": status,
        "opens_count": int(f.opened),
        "clicks_count": int(f.clicked),
        "last_event_time": last.strftime("%Y-%m-%dT%H:%M:%SZ"),
    }


# -- SendGrid marketing contacts and lists -------------------------------------------------

#: Addresses per ``search/emails`` request, as SendGrid documents.
SENDGRID_MAX_SEARCH = 100


def _sendgrid_errors(fake: Fake, status: int, errors: list[tuple[str, str]]) -> Response:
    """Refuse with one SendGrid error per (field, message)."""
    fake.state.reject("sendgrid", "invalid" if status == 400 else "not_found")
    items = [{"field": f, "message": m, "help": None} for f, m in errors]
    return JSONResponse({"errors": items}, status_code=status)


def _contact_problems(contacts: list[dict[str, Any]]) -> list[tuple[str, str]]:
    """What SendGrid refuses in upserted contacts: no identifier, an invalid e-mail."""
    problems: list[tuple[str, str]] = []
    for i, contact in enumerate(contacts):
        if not any(contact.get(k) for k in SENDGRID_IDENTIFIERS):
            message = "must include one of email, phone_number_id, external_id, anonymous_id"
            problems.append((f"contacts[{i}]", message))
        elif "email" in contact and not valid_email(contact["email"]):
            problems.append((f"contacts[{i}].email", "must be a valid email address"))
    return problems


def _lowered(contact: dict[str, Any]) -> dict[str, Any]:
    email = contact.get("email")
    return {**contact, "email": email.lower()} if isinstance(email, str) else contact


def _job() -> JSONResponse:
    return JSONResponse({"job_id": str(uuid.uuid4())}, status_code=202)


async def sendgrid_contacts(fake: Fake, request: Request) -> Response:
    """``PUT /v3/marketing/contacts``: upsert contacts (by lower-cased e-mail) and add them to
    ``list_ids``; 202 with a ``job_id``. Applied at once (SendGrid queues the job); one
    invalid contact refuses the whole request, each listed in ``errors``."""
    body = await request.body()
    refused = _validate(fake, "sendgrid", request, body) or _bearer(fake, "sendgrid", request)
    if refused:
        return refused
    payload = json.loads(body)
    problems = _contact_problems(payload["contacts"])
    if problems:
        return _sendgrid_errors(fake, 400, problems)
    contacts = [_lowered(c) for c in payload["contacts"]]
    list_ids: list[str] = payload.get("list_ids") or []
    now = fake.clock.now()
    stored = fake.state.sendgrid_upsert(contacts, list_ids, now)
    targets: list[str | None] = [*list_ids] or [None]
    entries = [
        SyncEntry("sendgrid", "upsert", target, _contact_key(s), sent, now)
        for s, sent in zip(stored, contacts, strict=True)
        for target in targets
    ]
    fake.state.log_sync("sendgrid.contacts_upsert", entries)
    return _job()


def _contact_key(contact: Stored) -> str:
    """A contact's e-mail, else its other identifier, else its id."""
    attributes = contact.attributes
    found = (str(attributes[k]) for k in SENDGRID_IDENTIFIERS if attributes.get(k))
    return next(found, contact.id)


async def sendgrid_search_emails(fake: Fake, request: Request) -> Response:
    """``POST /v3/marketing/contacts/search/emails``: 200 with ``result`` keyed by lower-cased
    address (``{"contact": ...}`` or ``{"error": "contact not found"}``), 404 when none is
    found, 400 for an invalid address or more than 100."""
    body = await request.body()
    refused = _validate(fake, "sendgrid", request, body) or _bearer(fake, "sendgrid", request)
    if refused:
        return refused
    emails = [e.lower() for e in json.loads(body)["emails"] if e != ""]
    if not emails or len(emails) > SENDGRID_MAX_SEARCH:
        message = f"emails must hold 1 to {SENDGRID_MAX_SEARCH} addresses"
        return _sendgrid_errors(fake, 400, [("emails", message)])
    if not all(valid_email(e) for e in emails):
        return _sendgrid_errors(fake, 400, [("emails", "one or more addresses are invalid")])
    found = fake.state.sendgrid_find(emails)
    if not found:
        return _sendgrid_errors(fake, 404, [("emails", "no contacts found")])
    missing: dict[str, Any] = {"error": "contact not found"}
    result = {e: {"contact": _contact_json(*found[e])} if e in found else missing for e in emails}
    return JSONResponse({"result": result})


def _contact_json(contact: Stored, list_ids: list[str]) -> dict[str, Any]:
    return {
        **contact.attributes,
        "id": contact.id,
        "list_ids": list_ids,
        "segment_ids": [],
        "created_at": contact.created.strftime("%Y-%m-%dT%H:%M:%SZ"),
        "updated_at": contact.updated.strftime("%Y-%m-%dT%H:%M:%SZ"),
    }


async def sendgrid_list_remove(fake: Fake, request: Request) -> Response:
    """``DELETE /v3/marketing/lists/{id}/contacts?contact_ids=a,b``: 202 with a ``job_id``;
    404 when the list was never used or a contact id is unknown (nothing changes). A contact
    that is not on the list is left as it is."""
    refused = _validate(fake, "sendgrid", request, b"") or _bearer(fake, "sendgrid", request)
    if refused:
        return refused
    raw = request.query_params.get("contact_ids", "")
    ids = list(dict.fromkeys(i.strip() for i in raw.split(",") if i.strip()))
    if not ids:
        return _sendgrid_errors(fake, 400, [("contact_ids", "contact_ids is required")])
    list_id = request.path_params["list_id"]
    missing, contacts = fake.state.sendgrid_unlist(list_id, ids)
    if missing == "list":
        return _sendgrid_errors(fake, 404, [("id", "list not found")])
    if missing:
        return _sendgrid_errors(fake, 404, [("contact_ids", "one or more contacts not found")])
    now = fake.clock.now()
    entries = [
        SyncEntry("sendgrid", "remove", list_id, _contact_key(c), {"id": c.id}, now)
        for c in contacts
    ]
    fake.state.log_sync("sendgrid.list_remove", entries)
    return _job()


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
    return _reject(fake, "twilio", 401, "unauthorized", "Authenticate")


def _twilio_rules(fake: Fake, form: dict[str, str]) -> Response | None:
    """What Twilio requires beyond its document: a sender, content, a valid SendAt."""
    if not form.get("From") and not form.get("MessagingServiceSid"):
        message = "A 'From' phone number or a MessagingServiceSid is required."
        return _reject(fake, "twilio", 400, "invalid", message, code=21603)
    if not (form.get("Body") or form.get("MediaUrl") or form.get("ContentSid")):
        return _reject(fake, "twilio", 400, "invalid", "Message body is required.", code=21602)
    if form.get("SendAt") and _parse_time(form["SendAt"]) is None:
        message = "Scheduling does not support this timestamp"
        return _reject(fake, "twilio", 400, "invalid", message, code=35114)
    return None


async def twilio_create(fake: Fake, request: Request) -> Response:
    """``POST .../Messages.json``: 201 with the message resource."""
    account_sid = request.path_params["account_sid"]
    body = await request.body()
    form = dict(parse_qsl(body.decode("utf-8", "replace"), keep_blank_values=True))
    refused = (
        _validate(fake, "twilio", request, body)
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
        body=form.get("Body", "")[:EXCERPT],
        send_at=send_at,
        received_at=now,
        customer_id=callback.get("customer_id"),
    )
    fake.state.accept("twilio", [record])
    fake.state.add_twilio(now.replace(microsecond=0), message)
    if fake.engagement.enabled and form.get("StatusCallback"):
        await to_thread.run_sync(fake.engagement.twilio, message, callback, send_at or now)
    return JSONResponse(message, status_code=201)


def _scheduled(form: dict[str, str]) -> datetime | None:
    """SendAt, when Twilio honours it (ScheduleType fixed and a Messaging Service)."""
    if form.get("ScheduleType") != "fixed" or not form.get("MessagingServiceSid"):
        return None
    return _parse_time(form.get("SendAt", ""))


def _parse_time(text: str) -> datetime | None:
    """An ISO 8601 time as naive UTC, or None."""
    try:
        when = datetime.fromisoformat(text)
    except ValueError:
        return None
    return utc(when)


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
    refused = _validate(fake, "twilio", request, b"") or _basic(fake, request, account_sid)
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
    after, before, on = (_parse_time(query.get(k, "")) for k in bounds)
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


# -- Klaviyo -------------------------------------------------------------------------------

_REVISION = re.compile(r"^\d{4}-\d{2}-\d{2}(\.[A-Za-z0-9_-]+)?$")


def _klaviyo_auth(fake: Fake, request: Request) -> Response | None:
    """A private key, and a revision header (required here although the document defaults it)."""
    scheme, _, key = request.headers.get("authorization", "").partition(" ")
    if scheme != "Klaviyo-API-Key" or not key.strip():
        message = "Missing or invalid private key."
        return _reject(fake, "klaviyo", 401, "unauthorized", message)
    if not _REVISION.match(request.headers.get("revision", "")):
        message = "The revision header is missing or malformed (YYYY-MM-DD[.suffix])."
        return _reject(fake, "klaviyo", 400, "missing_revision", message, field="revision")
    return None


def _dig(data: Any, *keys: str) -> Any:
    for key in keys:
        data = data.get(key) if isinstance(data, dict) else None
    return data


async def klaviyo_event(fake: Fake, request: Request) -> Response:
    """``POST /api/events``: 202; a repeated ``unique_id`` is accepted but not recorded."""
    body = await request.body()
    refused = _validate(fake, "klaviyo", request, body) or _klaviyo_auth(fake, request)
    if refused:
        return refused
    attributes = _dig(json.loads(body), "data", "attributes") or {}
    unique_id = _str(attributes.get("unique_id"))
    if unique_id and not fake.state.first_time("klaviyo", unique_id):
        return Response(status_code=202)
    profile = _dig(attributes, "profile", "data", "attributes") or {}
    properties = attributes.get("properties") or {}
    record = Received(
        provider="klaviyo",
        message_id=unique_id,
        provider_message_id=None,
        address=profile.get("email") or profile.get("phone_number"),
        subject=_dig(attributes, "metric", "data", "attributes", "name"),
        body=json.dumps(properties)[:EXCERPT],
        send_at=None,
        received_at=fake.clock.now(),
        customer_id=_str(profile.get("external_id") or properties.get("customer_id")),
    )
    fake.state.accept("klaviyo", [record])
    return Response(status_code=202)


_EMAIL = re.compile(r"^[^@\s]+@[^@\s.]+(\.[^@\s.]+)*\.[^@\s.]{2,}$")
_E164 = re.compile(r"^\+[1-9][0-9]{6,14}$")
JSON_API = "application/vnd.api+json"
#: Profiles per list-membership request, as Klaviyo documents.
KLAVIYO_MAX_RELATIONSHIPS = 1000


def valid_email(value: str) -> bool:
    """An address with a local part, an ``@`` and a dotted domain whose last label has two
    characters at least (no spaces, no empty label)."""
    return bool(_EMAIL.match(value))


def _klaviyo_identity(fake: Fake, data: dict[str, Any]) -> Response | None:
    """Klaviyo's checks of a profile's identifiers: a valid e-mail, a phone in E.164, and one
    identifier at least (or the id of a known profile)."""
    attributes = data.get("attributes") or {}
    email, phone = attributes.get("email"), attributes.get("phone_number")
    if email is not None and not valid_email(email):
        return _reject(fake, "klaviyo", 400, "invalid_email", "Invalid email address", "email")
    if phone is not None and not _E164.match(phone):
        message = "Invalid phone number format (Example of a valid format: +12345678901)"
        return _reject(fake, "klaviyo", 400, "invalid_phone", message, "phone_number")
    known = fake.state.klaviyo_profile(str(data.get("id"))) is not None
    if known or any(attributes.get(k) for k in ("email", "phone_number", "external_id")):
        return None
    message = "A profile requires an email, phone_number or external_id (or a known id)."
    return _reject(fake, "klaviyo", 400, "invalid", message)


def _unset(data: dict[str, Any], attributes: dict[str, Any]) -> dict[str, Any]:
    """``attributes`` with ``meta.patch_properties.unset`` applied as properties set to null."""
    unset = _dig(data, "meta", "patch_properties", "unset")
    names = [unset] if isinstance(unset, str) else list(unset or [])
    if not names:
        return attributes
    properties = {**(attributes.get("properties") or {}), **dict.fromkeys(names)}
    return {**attributes, "properties": properties}


async def klaviyo_profile(fake: Fake, request: Request) -> Response:
    """``POST /api/profile-import``: create (201) or update (200) the profile of ``data.id``,
    else of its external id, e-mail or phone; null clears a field, properties merge."""
    body = await request.body()
    refused = _validate(fake, "klaviyo", request, body) or _klaviyo_auth(fake, request)
    data = {} if refused else json.loads(body)["data"]
    refused = refused or _klaviyo_identity(fake, data)
    if refused:
        return refused
    attributes = _unset(data, data.get("attributes") or {})
    now = fake.clock.now()
    profile, created = fake.state.klaviyo_upsert(attributes, data.get("id"), _klaviyo_id(), now)
    entry = SyncEntry("klaviyo", "upsert", None, profile.id, attributes, now)
    fake.state.log_sync("klaviyo.profile_import", [entry])
    return JSONResponse(
        {"data": _profile_json(profile)},
        status_code=201 if created else 200,
        media_type=JSON_API,
    )


def _profile_json(profile: Stored) -> dict[str, Any]:
    stamps = {"created": _zulu(profile.created), "updated": _zulu(profile.updated)}
    return {
        "type": "profile",
        "id": profile.id,
        "attributes": {**profile.attributes, **stamps},
        "links": {"self": f"{KLAVIYO_HOST}/api/profiles/{profile.id}/"},
    }


def _zulu(when: datetime) -> str:
    return when.strftime("%Y-%m-%dT%H:%M:%S+00:00")


def _klaviyo_membership(add: bool) -> Handler:
    """``POST`` (add) or ``DELETE`` (remove) ``/api/lists/{id}/relationships/profiles``: 204.
    A profile id Klaviyo never issued makes the whole request 400 (nothing changes)."""

    async def handler(fake: Fake, request: Request) -> Response:
        body = await request.body()
        refused = _validate(fake, "klaviyo", request, body) or _klaviyo_auth(fake, request)
        if refused:
            return refused
        ids = [str(item["id"]) for item in json.loads(body)["data"]]
        if len(ids) > KLAVIYO_MAX_RELATIONSHIPS:
            message = f"At most {KLAVIYO_MAX_RELATIONSHIPS} profiles per request."
            return _reject(fake, "klaviyo", 400, "invalid", message, field="/data")
        list_id = request.path_params["list_id"]
        unknown = fake.state.klaviyo_relate(list_id, ids, add)
        if unknown:
            message = f"{len(unknown)} profile id(s) do not exist."
            field = f"/data/{unknown[0]}/id"
            return _reject(fake, "klaviyo", 400, "unknown_profile", message, field=field)
        operation, now = ("add" if add else "remove"), fake.clock.now()
        entries = [SyncEntry("klaviyo", operation, list_id, p, {}, now) for p in ids]
        fake.state.log_sync(f"klaviyo.list_{operation}", entries)
        return Response(status_code=204)

    return handler


_FILTER = re.compile(r"^(equals|any)\((\w+),(.*)\)$", re.S)
_QUOTED = re.compile(r"\"([^\"]*)\"|'([^']*)'")


def parse_filter(text: str) -> tuple[str, list[str]] | None:
    """``equals(field,"x")`` or ``any(field,["x","y"])`` (either quotes): the field and the
    values, or None for anything else."""
    found = _FILTER.match(text.strip())
    if not found:
        return None
    operator, name, raw = found.group(1), found.group(2), found.group(3).strip()
    if operator == "any":
        if not (raw.startswith("[") and raw.endswith("]")):
            return None
        raw = raw[1:-1]
    parts = [_QUOTED.fullmatch(p.strip()) for p in raw.split(",")]
    if not all(parts) or (operator == "equals" and len(parts) != 1):
        return None
    return name, [p.group(1) if p.group(1) is not None else p.group(2) for p in parts if p]


def _matches(profile: Stored, name: str, values: list[str]) -> bool:
    if name == "id":
        return profile.id in values
    value = profile.attributes.get(name)
    if name == "email" and isinstance(value, str):
        return value.lower() in {v.lower() for v in values}
    return value in values


Keep = Callable[[Stored], bool]


def _profile_filter(request: Request, fields: tuple[str, ...]) -> Keep | str:
    """The profiles ``?filter=`` keeps (``fields``: the ones this endpoint filters on), or
    what is wrong with it."""
    text = request.query_params.get("filter")
    if text is None:
        return lambda _: True
    parsed = parse_filter(text)
    if parsed is None or parsed[0] not in fields:
        return f'Unsupported filter: use equals(field,"value") or any(...) on {", ".join(fields)}.'
    name, values = parsed
    return lambda p: _matches(p, name, values)


Links = dict[str, str | None]


def _page(request: Request, items: list[Any]) -> tuple[list[Any], Links] | None:
    """One page of ``items`` (``page[size]``, default 20; ``page[cursor]``: an offset) and the
    JSON:API links, or None for a cursor this fake did not issue."""
    size = int(request.query_params.get("page[size]", "20"))
    cursor = request.query_params.get("page[cursor]", "0")
    if not cursor.isdigit():
        return None
    start, url = int(cursor), request.url
    links: Links = {"self": str(url), "next": None, "prev": None}
    if start + size < len(items):
        links["next"] = str(url.include_query_params(**{"page[cursor]": start + size}))
    if start > 0:
        links["prev"] = str(url.include_query_params(**{"page[cursor]": max(start - size, 0)}))
    return items[start : start + size], links


def _klaviyo_listing(
    fake: Fake, request: Request, fields: tuple[str, ...], found: Callable[[Keep], list[Any]]
) -> tuple[list[Any], Links] | Response:
    """Check, filter and page a Klaviyo listing (``found``: the items a filter keeps)."""
    refused = _validate(fake, "klaviyo", request, b"") or _klaviyo_auth(fake, request)
    if refused:
        return refused
    keep = _profile_filter(request, fields)
    if isinstance(keep, str):
        return _reject(fake, "klaviyo", 400, "invalid", keep, field="?filter")
    page = _page(request, found(keep))
    if page is None:
        return _reject(fake, "klaviyo", 400, "invalid", "Invalid page cursor.", "?page[cursor]")
    return page


_PROFILE_FIELDS = ("id", "email", "phone_number", "external_id")
_MEMBER_FIELDS = ("email", "phone_number")


async def klaviyo_profiles(fake: Fake, request: Request) -> Response:
    """``GET /api/profiles[?filter=equals(email,"x")]``: matching profiles, paged."""

    def found(keep: Keep) -> list[Stored]:
        return [p for p in fake.state.klaviyo_profiles().values() if keep(p)]

    page = _klaviyo_listing(fake, request, _PROFILE_FIELDS, found)
    if isinstance(page, Response):
        return page
    body = {"data": [_profile_json(p) for p in page[0]], "links": page[1]}
    return JSONResponse(body, media_type=JSON_API)


async def klaviyo_list_profiles(fake: Fake, request: Request) -> Response:
    """``GET /api/lists/{id}/relationships/profiles``: the list's profile ids in the order they
    were added, paged (a list never used is empty)."""

    def found(keep: Keep) -> list[str]:
        profiles = fake.state.klaviyo_profiles()
        members = fake.state.klaviyo_list(request.path_params["list_id"])
        return [p for p in members if keep(profiles[p])]

    page = _klaviyo_listing(fake, request, _MEMBER_FIELDS, found)
    if isinstance(page, Response):
        return page
    body = {"data": [{"type": "profile", "id": p} for p in page[0]], "links": page[1]}
    return JSONResponse(body, media_type=JSON_API)


_CROCKFORD = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"


def _klaviyo_id() -> str:
    """A 26-character ULID-like id, as Klaviyo's profile ids are."""
    number = uuid.uuid4().int
    return "".join(_CROCKFORD[(number >> (5 * i)) & 31] for i in reversed(range(26)))


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
    return _reject(fake, "webhook", 401, "bad_signature", "signature does not match")


def _idempotent(fake: Fake, key: str) -> Response | None:
    if key:
        return None
    message = "the Idempotency-Key header is required"
    return _reject(fake, "webhook", 400, "missing_idempotency_key", message)


async def webhook(fake: Fake, request: Request) -> Response:
    """``POST /hooks/{name}``: signed JSON, deduplicated on ``Idempotency-Key``; the payload is
    kept (:meth:`Recording.hook_payloads`) and its rows logged (:func:`_hook_rows`)."""
    body = await request.body()
    key = request.headers.get("idempotency-key", "").strip()
    refused = _signed(fake, request, body) or _idempotent(fake, key)
    payload, bad = (None, refused) if refused else _json(fake, "webhook", body)
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
        subject=_str(kind),
        body=body.decode("utf-8", "replace")[:EXCERPT],
        send_at=None,
        received_at=fake.clock.now(),
        customer_id=_str(payload.get("customer_id")) if isinstance(payload, dict) else None,
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


# -- paid audience -------------------------------------------------------------------------

_HASH = re.compile(r"^[0-9a-f]{64}$")
_COLUMN = re.compile(r"^[A-Z][A-Z0-9_]*_SHA256$")
Member = tuple[tuple[str, str], ...]


def members(payload: Any) -> tuple[list[Member], str | None]:
    """The members of ``{"schema": [...], "data": [[...], ...]}`` (empty values skipped), or
    what is wrong with it."""
    schema = payload.get("schema") if isinstance(payload, dict) else None
    rows = payload.get("data") if isinstance(payload, dict) else None
    if not isinstance(schema, list) or not schema or not all(_COLUMN.match(str(c)) for c in schema):
        return [], "schema must be a list of column names such as EMAIL_SHA256"
    if not isinstance(rows, list):
        return [], "data must be a list of rows"
    found: list[Member] = []
    for row in rows:
        if not isinstance(row, list) or len(row) != len(schema):
            return [], "each row must have one value per schema column"
        if not all(v == "" or (isinstance(v, str) and _HASH.match(v)) for v in row):
            return [], "values must be lower-case hex SHA-256 digests (or empty)"
        found.append(tuple(sorted((str(c), v) for c, v in zip(schema, row, strict=True) if v)))
    return [m for m in found if m], None


async def audience_add(fake: Fake, request: Request) -> Response:
    """``POST /audiences/{audience}/users``: add hashed members (a set: repeats are harmless)."""
    refused = _bearer(fake, "audience", request)
    body = await request.body()
    payload, bad = (None, refused) if refused else _json(fake, "audience", body)
    if bad:
        return bad
    found, problem = members(payload)
    if problem:
        return _reject(fake, "audience", 400, "invalid", problem)
    audience = request.path_params["audience"]
    added = fake.state.add_members(audience, found)
    _log_members(fake, "add", audience, found)
    record = Received(
        provider="audience",
        message_id=request.headers.get("idempotency-key"),
        provider_message_id=None,
        address=audience,
        subject=None,
        body=f"{len(found)} users",
        send_at=None,
        received_at=fake.clock.now(),
    )
    fake.state.accept("audience", [record])
    size = len(fake.state.members(audience))
    answer = {"audience": audience, "received": len(found), "added": added, "size": size}
    return JSONResponse(answer)


async def audience_remove(fake: Fake, request: Request) -> Response:
    """``DELETE /audiences/{audience}/users`` (the body of a POST): take members out, each
    matched exactly as it was added (a member not there is no error)."""
    refused = _bearer(fake, "audience", request)
    body = await request.body()
    payload, bad = (None, refused) if refused else _json(fake, "audience", body)
    if bad:
        return bad
    found, problem = members(payload)
    if problem:
        return _reject(fake, "audience", 400, "invalid", problem)
    audience = request.path_params["audience"]
    removed = fake.state.remove_members(audience, found)
    _log_members(fake, "remove", audience, found)
    size = len(fake.state.members(audience))
    answer = {"audience": audience, "received": len(found), "removed": removed, "size": size}
    return JSONResponse(answer)


def _log_members(fake: Fake, operation: str, audience: str, found: list[Member]) -> None:
    now = fake.clock.now()
    entries = [
        SyncEntry("audience", operation, audience, member_key(m), dict(m), now) for m in found
    ]
    fake.state.log_sync(f"audience.{operation}", entries)


async def audience_list(fake: Fake, request: Request) -> Response:
    """``GET /audiences/{audience}/users``: the members, each as ``{column: hash}``."""
    refused = _bearer(fake, "audience", request)
    if refused:
        return refused
    audience = request.path_params["audience"]
    users = [dict(m) for m in sorted(fake.state.members(audience))]
    return JSONResponse({"audience": audience, "users": users})


# -- inspection ----------------------------------------------------------------------------


async def fake_messages(fake: Fake, request: Request) -> Response:
    """``GET /_fake/messages[?provider=...&message_id=...]``."""
    wanted = request.query_params.get("message_id")
    found = fake.state.messages(request.query_params.get("provider"))
    chosen = [r.to_json() for r in found if wanted is None or r.message_id == wanted]
    return JSONResponse({"messages": chosen})


async def fake_lists(fake: Fake, request: Request) -> Response:
    """``GET /_fake/lists``: every Klaviyo list, SendGrid list and audience the fake holds."""
    return JSONResponse(fake.state.lists())


async def fake_sync(fake: Fake, request: Request) -> Response:
    """``GET /_fake/sync[?destination=...]``: the rows sync endpoints accepted, and those sent
    again unchanged."""
    wanted = request.query_params.get("destination")
    entries = [e.to_json() for e in fake.state.sync_log(wanted)]
    repeats = [e.to_json() for e in fake.state.sync_repeats(wanted)]
    return JSONResponse({"entries": entries, "repeats": repeats})


async def fake_stats(fake: Fake, request: Request) -> Response:
    """``GET /_fake/stats``: the counts, the failure settings and the clock."""
    stats = fake.state.stats()
    stats["failures"] = fake.injector.failures.model_dump()
    stats["now"] = fake.clock.now().isoformat()
    return JSONResponse(stats)


async def fake_failures(fake: Fake, request: Request) -> Response:
    """``POST /_fake/failures``: replace the failure settings (a :class:`Failures` as JSON)."""
    try:
        failures = Failures.model_validate_json(await request.body() or b"{}")
    except ValidationError as err:
        return JSONResponse({"error": str(err)}, status_code=400)
    fake.injector.configure(failures)
    return JSONResponse({"failures": failures.model_dump()})


async def fake_clock(fake: Fake, request: Request) -> Response:
    """``POST /_fake/clock`` ``{"now": iso or null}``: pin the simulated time, or release it."""
    try:
        payload = json.loads(await request.body() or b"{}")
    except ValueError:
        payload = {"now": "not JSON"}
    text = payload.get("now") if isinstance(payload, dict) else None
    now = _parse_time(text) if isinstance(text, str) else None
    if text is not None and now is None:
        return JSONResponse({"error": "now must be an ISO 8601 time or null"}, status_code=400)
    fake.clock.set_now(now)
    fake.engagement.release()
    return JSONResponse({"now": fake.clock.now().isoformat()})


async def fake_reset(fake: Fake, request: Request) -> Response:
    """``POST /_fake/reset``: forget every message, count, list, profile, contact and audience
    (failures and clock stay)."""
    fake.state.reset()
    return JSONResponse({"reset": True})
