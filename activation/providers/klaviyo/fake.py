"""Klaviyo in the fake provider: ``POST /api/events`` (202, deduplicated on ``unique_id``),
``POST /api/profile-import``, ``GET /api/profiles`` and list memberships
(``/api/lists/{id}/relationships/profiles``)."""

from __future__ import annotations

import json
import re
import uuid
from collections.abc import Callable
from datetime import datetime
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from flowhouse.activation.fake.common import (
    EXCERPT,
    Fake,
    FakeApi,
    FakeRoute,
    Handler,
    as_text,
    reject,
    valid_email,
    validate,
)
from flowhouse.activation.fake.state import (
    Received,
    Stored,
    SyncEntry,
)

KLAVIYO_HOST = "https://a.klaviyo.com"

_KLAVIYO = {
    400: ("invalid", "Invalid input."),
    401: ("not_authenticated", "Authentication credentials were not provided."),
    429: ("throttled", "Request was throttled."),
}


def error_body(status: int, message: str, field: str | None, code: int | None) -> dict[str, Any]:
    """Klaviyo's JSON:API error body: ``{"errors": [{"id", "code", "title", "detail", ...}]}``."""
    kind, title = _KLAVIYO.get(status, ("error", "A server error occurred."))
    item = {
        "id": str(uuid.uuid4()),
        "status": status,
        "code": kind,
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


# -- Klaviyo -------------------------------------------------------------------------------

_REVISION = re.compile(r"^\d{4}-\d{2}-\d{2}(\.[A-Za-z0-9_-]+)?$")


def _klaviyo_auth(fake: Fake, request: Request) -> Response | None:
    """A private key, and a revision header (required here although the document defaults it)."""
    scheme, _, key = request.headers.get("authorization", "").partition(" ")
    if scheme != "Klaviyo-API-Key" or not key.strip():
        message = "Missing or invalid private key."
        return reject(fake, "klaviyo", 401, "unauthorized", message)
    if not _REVISION.match(request.headers.get("revision", "")):
        message = "The revision header is missing or malformed (YYYY-MM-DD[.suffix])."
        return reject(fake, "klaviyo", 400, "missing_revision", message, field="revision")
    return None


def _dig(data: Any, *keys: str) -> Any:
    for key in keys:
        data = data.get(key) if isinstance(data, dict) else None
    return data


async def klaviyo_event(fake: Fake, request: Request) -> Response:
    """``POST /api/events``: 202; a repeated ``unique_id`` is accepted but not recorded."""
    body = await request.body()
    refused = validate(fake, "klaviyo", request, body) or _klaviyo_auth(fake, request)
    if refused:
        return refused
    attributes = _dig(json.loads(body), "data", "attributes") or {}
    unique_id = as_text(attributes.get("unique_id"))
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
        customer_id=as_text(profile.get("external_id") or properties.get("customer_id")),
    )
    fake.state.accept("klaviyo", [record])
    return Response(status_code=202)


_E164 = re.compile(r"^\+[1-9][0-9]{6,14}$")
JSON_API = "application/vnd.api+json"
#: Profiles per list-membership request, as Klaviyo documents.
KLAVIYO_MAX_RELATIONSHIPS = 1000


def _klaviyo_identity(fake: Fake, data: dict[str, Any]) -> Response | None:
    """Klaviyo's checks of a profile's identifiers: a valid e-mail, a phone in E.164, and one
    identifier at least (or the id of a known profile)."""
    attributes = data.get("attributes") or {}
    email, phone = attributes.get("email"), attributes.get("phone_number")
    if email is not None and not valid_email(email):
        return reject(fake, "klaviyo", 400, "invalid_email", "Invalid email address", "email")
    if phone is not None and not _E164.match(phone):
        message = "Invalid phone number format (Example of a valid format: +12345678901)"
        return reject(fake, "klaviyo", 400, "invalid_phone", message, "phone_number")
    known = fake.state.klaviyo_profile(str(data.get("id"))) is not None
    if known or any(attributes.get(k) for k in ("email", "phone_number", "external_id")):
        return None
    message = "A profile requires an email, phone_number or external_id (or a known id)."
    return reject(fake, "klaviyo", 400, "invalid", message)


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
    refused = validate(fake, "klaviyo", request, body) or _klaviyo_auth(fake, request)
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
        refused = validate(fake, "klaviyo", request, body) or _klaviyo_auth(fake, request)
        if refused:
            return refused
        ids = [str(item["id"]) for item in json.loads(body)["data"]]
        if len(ids) > KLAVIYO_MAX_RELATIONSHIPS:
            message = f"At most {KLAVIYO_MAX_RELATIONSHIPS} profiles per request."
            return reject(fake, "klaviyo", 400, "invalid", message, field="/data")
        list_id = request.path_params["list_id"]
        unknown = fake.state.klaviyo_relate(list_id, ids, add)
        if unknown:
            message = f"{len(unknown)} profile id(s) do not exist."
            field = f"/data/{unknown[0]}/id"
            return reject(fake, "klaviyo", 400, "unknown_profile", message, field=field)
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
    refused = validate(fake, "klaviyo", request, b"") or _klaviyo_auth(fake, request)
    if refused:
        return refused
    keep = _profile_filter(request, fields)
    if isinstance(keep, str):
        return reject(fake, "klaviyo", 400, "invalid", keep, field="?filter")
    page = _page(request, found(keep))
    if page is None:
        return reject(fake, "klaviyo", 400, "invalid", "Invalid page cursor.", "?page[cursor]")
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


_MEMBERS = "/api/lists/{list_id}/relationships/profiles"

FAKE = FakeApi(
    routes=(
        FakeRoute("/api/events", klaviyo_event, "POST"),
        FakeRoute("/api/profile-import", klaviyo_profile, "POST"),
        FakeRoute("/api/profiles", klaviyo_profiles, "GET"),
        FakeRoute(_MEMBERS, _klaviyo_membership(add=True), "POST"),
        FakeRoute(_MEMBERS, _klaviyo_membership(add=False), "DELETE"),
        FakeRoute(_MEMBERS, klaviyo_list_profiles, "GET"),
    ),
    error=error_body,
)
