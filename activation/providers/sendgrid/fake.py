"""SendGrid in the fake provider: ``POST /v3/mail/send`` (202, ``X-Message-Id``; engagement events
written to the inbox), the Email Activity lookup ``GET /v3/messages``, and marketing contacts
and lists (upsert, search by e-mail, removal from a list)."""

from __future__ import annotations

import json
import re
import secrets
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

from anyio import to_thread
from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from flowhouse.activation.fake.common import (
    EXCERPT,
    Fake,
    FakeApi,
    FakeRoute,
    as_text,
    bearer,
    reject,
    valid_email,
    validate,
)
from flowhouse.activation.fake.engagement import Recipient, fate
from flowhouse.activation.fake.state import (
    SENDGRID_IDENTIFIERS,
    Activity,
    Received,
    Stored,
    SyncEntry,
)
from flowhouse.core.clock import utc


def error_body(status: int, message: str, field: str | None, code: int | None) -> dict[str, Any]:
    """SendGrid's error body: ``{"errors": [{"field", "message"}]}``."""
    return {"errors": [{"message": message, "field": field, "help": None}]}


# -- mail send ------------------------------------------------------------------------------


async def sendgrid_send(fake: Fake, request: Request) -> Response:
    """``POST /v3/mail/send``: 202 with ``X-Message-Id``; one record per personalization."""
    body = await request.body()
    refused = validate(fake, "sendgrid", request, body) or bearer(fake, "sendgrid", request)
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
        message_id=as_text(args.get("message_id")),
        provider_message_id=message_id,
        address=",".join(t["email"] for t in p["to"]),
        subject=_substitute(subject, subs) if subject else None,
        body=text[:EXCERPT],
        send_at=_from_unix(p.get("send_at", mail.get("send_at"))),
        received_at=now,
        customer_id=as_text(args.get("customer_id")),
        sender=_who(mail.get("from")),
        reply_to=_who(mail.get("reply_to")),
    )


def _who(address: Any) -> str | None:
    """``Name <email>`` (or the e-mail alone) of a SendGrid address object."""
    if not isinstance(address, dict) or not address.get("email"):
        return None
    name = address.get("name")
    return f"{name} <{address['email']}>" if name else str(address["email"])


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


_ACTIVITY_QUERY = re.compile(r"""unique_args\['message_id'\]\s*=\s*(["'])(.*)\1""")


async def sendgrid_activity(fake: Fake, request: Request) -> Response:
    """``GET /v3/messages`` (Email Activity): the recipients of one ``message_id``."""
    refused = bearer(fake, "sendgrid", request)
    if refused:
        return refused
    found = _ACTIVITY_QUERY.fullmatch(request.query_params.get("query", "").strip())
    limit = request.query_params.get("limit", "10")
    if not found:
        message = "query must be unique_args['message_id']=\"<id>\""
        return reject(fake, "sendgrid", 400, "invalid", message, field="query")
    if not limit.isdigit() or not 1 <= int(limit) <= 1000:
        message = "limit must be an integer from 1 to 1000"
        return reject(fake, "sendgrid", 400, "invalid", message, field="limit")
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
    refused = validate(fake, "sendgrid", request, body) or bearer(fake, "sendgrid", request)
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
    refused = validate(fake, "sendgrid", request, body) or bearer(fake, "sendgrid", request)
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
    refused = validate(fake, "sendgrid", request, b"") or bearer(fake, "sendgrid", request)
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


FAKE = FakeApi(
    routes=(
        FakeRoute("/v3/mail/send", sendgrid_send, "POST"),
        FakeRoute("/v3/messages", sendgrid_activity, "GET"),
        FakeRoute("/v3/marketing/contacts", sendgrid_contacts, "PUT"),
        FakeRoute("/v3/marketing/contacts/search/emails", sendgrid_search_emails, "POST"),
        FakeRoute("/v3/marketing/lists/{list_id}/contacts", sendgrid_list_remove, "DELETE"),
    ),
    error=error_body,
)
