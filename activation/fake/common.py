"""What every provider's handlers in the fake provider share
(``activation/providers/<name>/fake.py``): the live :class:`Fake`, the shape of a provider's part
of the app (:class:`FakeApi`), refusals in the provider's own error shape, validation against the
provider's document, and small readers of values.
"""

from __future__ import annotations

import json
import re
import threading
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from flowhouse.activation.fake.engagement import Engagement
from flowhouse.activation.fake.failures import Injector
from flowhouse.activation.fake.settings import FakeSettings
from flowhouse.activation.fake.state import Clock, Recording
from flowhouse.activation.openapi import check, document_for
from flowhouse.core.clock import utc

#: Characters of a body kept in a record.
EXCERPT = 200

#: A provider's error body for (status, message, field at fault, provider's own code).
ErrorShape = Callable[[int, str, str | None, int | None], dict[str, Any]]


def generic_error(status: int, message: str, field: str | None, code: int | None) -> dict[str, Any]:
    """The error body of the APIs without a published one (webhook, audience)."""
    return {"error": {"status": status, "message": message, "field": field}}


@dataclass
class Fake:
    """Everything one running fake provider holds."""

    settings: FakeSettings
    state: Recording
    injector: Injector
    clock: Clock
    engagement: Engagement
    #: Each provider's error shape, by provider name.
    shapes: Mapping[str, ErrorShape] = field(default_factory=dict)
    stopping: threading.Event = field(default_factory=threading.Event)


Handler = Callable[[Fake, Request], Awaitable[Response]]


@dataclass(frozen=True)
class FakeRoute:
    """One endpoint of a provider; ``injected``: behind the failure injector (inspection
    endpoints are not)."""

    path: str
    handler: Handler
    method: str
    injected: bool = True


@dataclass(frozen=True)
class FakeApi:
    """One provider's part of the fake provider: its endpoints and its error shape."""

    routes: tuple[FakeRoute, ...]
    error: ErrorShape = generic_error


def error(
    fake: Fake,
    provider: str,
    status: int,
    message: str,
    field: str | None = None,
    code: int | None = None,
    headers: dict[str, str] | None = None,
) -> JSONResponse:
    """An error response as ``provider`` words it."""
    body = fake.shapes.get(provider, generic_error)(status, message, field, code)
    return JSONResponse(body, status_code=status, headers=headers)


def reject(
    fake: Fake,
    provider: str,
    status: int,
    reason: str,
    message: str,
    field: str | None = None,
    code: int | None = None,
) -> Response:
    fake.state.reject(provider, reason)
    return error(fake, provider, status, message, field=field, code=code)


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


def validate(fake: Fake, provider: str, request: Request, body: bytes) -> Response | None:
    """Refuse what the provider's document does not allow (once for the whole request)."""
    spec = document_for(request.url.path)
    if spec is None:
        return None
    path, query = request.url.path, request.url.query
    problems = check(spec, request.method, path, query, request.headers, body)
    if not problems:
        return None
    if any(p.startswith("SecurityValidationError") for p in problems):
        return reject(fake, provider, 401, "unauthorized", "authorization required")
    message, field = summary(problems[0])
    return reject(fake, provider, 400, "invalid", message, field=field)


def bearer(fake: Fake, provider: str, request: Request) -> Response | None:
    scheme, _, token = request.headers.get("authorization", "").partition(" ")
    if scheme.lower() == "bearer" and token.strip():
        return None
    return reject(fake, provider, 401, "unauthorized", "authorization required")


def read_json(fake: Fake, provider: str, body: bytes) -> tuple[Any, Response | None]:
    try:
        return json.loads(body), None
    except ValueError:
        return None, reject(fake, provider, 400, "invalid", "the body is not valid JSON")


# -- values -------------------------------------------------------------------------------------


def as_text(value: Any) -> str | None:
    return None if value is None else str(value)


_EMAIL = re.compile(r"^[^@\s]+@[^@\s.]+(\.[^@\s.]+)*\.[^@\s.]{2,}$")


def valid_email(value: str) -> bool:
    """An address with a local part, an ``@`` and a dotted domain whose last label has two
    characters at least (no spaces, no empty label)."""
    return bool(_EMAIL.match(value))


def parse_time(text: str) -> datetime | None:
    """An ISO 8601 time as naive UTC, or None."""
    try:
        when = datetime.fromisoformat(text)
    except ValueError:
        return None
    return utc(when)
