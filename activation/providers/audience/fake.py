"""A paid-ads audience in the fake provider: ``POST``, ``DELETE`` and ``GET
/audiences/{audience}/users`` (hashed members, a set)."""

from __future__ import annotations

import re
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from flowhouse.activation.fake.common import (
    Fake,
    FakeApi,
    FakeRoute,
    bearer,
    read_json,
    reject,
)
from flowhouse.activation.fake.state import (
    Received,
    SyncEntry,
    member_key,
)

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


async def _request_members(
    fake: Fake, request: Request
) -> tuple[str, list[Member], Response | None]:
    """The audience and the members a request names, or the answer that refuses it."""
    refused = bearer(fake, "audience", request)
    body = await request.body()
    payload, bad = (None, refused) if refused else read_json(fake, "audience", body)
    if bad:
        return "", [], bad
    found, problem = members(payload)
    if problem:
        return "", [], reject(fake, "audience", 400, "invalid", problem)
    return request.path_params["audience"], found, None


async def audience_add(fake: Fake, request: Request) -> Response:
    """``POST /audiences/{audience}/users``: add hashed members (a set: repeats are harmless)."""
    audience, found, refused = await _request_members(fake, request)
    if refused is not None:
        return refused
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
    audience, found, refused = await _request_members(fake, request)
    if refused is not None:
        return refused
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
    refused = bearer(fake, "audience", request)
    if refused:
        return refused
    audience = request.path_params["audience"]
    users = [dict(m) for m in sorted(fake.state.members(audience))]
    return JSONResponse({"audience": audience, "users": users})


_USERS = "/audiences/{audience}/users"

FAKE = FakeApi(
    routes=(
        FakeRoute(_USERS, audience_add, "POST"),
        FakeRoute(_USERS, audience_remove, "DELETE"),
        FakeRoute(_USERS, audience_list, "GET", injected=False),
    ),
)
