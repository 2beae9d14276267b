"""The providers' published OpenAPI documents, and checking a request against them.

The documents live in ``specs/`` beside this package's project (copied unchanged from the providers'
repositories, see ``specs/README.md``). :func:`problems` checks one ``httpx.Request`` — method,
path, query, headers, security and body — against the document of the provider it is addressed to,
whatever host it is sent to (the real API, a regional endpoint, a proxy or the local fake provider):
the request is judged as if it went to the document's own server.

Tests validate every request a destination builds; the fake provider rejects what fails here, as
the real API would.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl

import httpx
import yaml
from openapi_core import Config, OpenAPI
from openapi_core.datatypes import RequestParameters
from werkzeug.datastructures import Headers, ImmutableMultiDict

from flowhouse.core.errors import ConfigError

SPEC_FILES = {
    "sendgrid": "sendgrid_mail_v3.json",
    "sendgrid_contacts": "sendgrid_mc_contacts.json",
    "sendgrid_lists": "sendgrid_mc_lists.json",
    "twilio": "twilio_api_v2010.json",
    "klaviyo": "klaviyo_stable.json",
    "vonage": "vonage_messages_olympus.yml",
    "spree": "spree_platform.yaml",
}
#: Which document a request path belongs to (longest prefix first).
_PREFIXES = (
    ("/v3/marketing/contacts", "sendgrid_contacts"),
    ("/v3/marketing/lists", "sendgrid_lists"),
    ("/v3/", "sendgrid"),
    ("/2010-04-01/", "twilio"),
    ("/api/v2/platform/", "spree"),
    ("/api/", "klaviyo"),
    ("/v0.1/messages", "vonage"),
)


def specs_dir() -> Path:
    """``specs/`` in the project, or ``FLOWHOUSE_SPECS`` when the documents live elsewhere."""
    import os

    found = os.environ.get("FLOWHOUSE_SPECS")
    return Path(found) if found else Path(__file__).resolve().parents[1] / "specs"


@cache
def document(name: str) -> OpenAPI:
    """The OpenAPI document ``name`` (a key of :data:`SPEC_FILES`), loaded once."""
    path = specs_dir() / SPEC_FILES[name]
    if not path.exists():
        raise ConfigError("the provider's OpenAPI document is missing", value=str(path))
    text = path.read_text()
    data = yaml.safe_load(text) if path.suffix in (".yml", ".yaml") else json.loads(text)
    # Klaviyo's document fails strict validation of itself; requests are still checked in full.
    return OpenAPI.from_dict(data, config=Config(spec_validator_cls=None))


def document_for(path: str) -> str | None:
    """The document that describes requests to ``path``, or None (webhooks, exports)."""
    return next((name for prefix, name in _PREFIXES if path.startswith(prefix)), None)


@dataclass
class _Request:
    """What openapi-core reads from a request, taken from an ``httpx.Request``."""

    host_url: str
    path: str
    method: str
    content_type: str
    body: bytes | None
    parameters: RequestParameters = field(default_factory=RequestParameters)

    @property
    def full_url_pattern(self) -> str:
        return self.host_url + self.path


@cache
def _server(name: str) -> str:
    servers = document(name).spec.get("servers") or [{"url": "/"}]
    return str(servers[0]["url"]).rstrip("/")


def as_openapi_request(
    method: str, path: str, query: str, headers: Mapping[str, str], body: bytes, spec: str
) -> _Request:
    content_type = headers.get("content-type", "").lower()
    params = RequestParameters(
        query=ImmutableMultiDict(parse_qsl(query, keep_blank_values=True)),
        header=Headers(list(headers.items())),
        cookie=ImmutableMultiDict(),
    )
    return _Request(
        host_url=_server(spec),
        path=path,
        method=method.lower(),
        content_type=content_type.split(";")[0].strip(),
        body=body or None,
        parameters=params,
    )


def problems(request: httpx.Request, spec: str | None = None) -> list[str]:
    """What is wrong with ``request`` according to its provider's document (empty: valid).

    ``spec`` names the document; by default it is found from the path. A path no document covers
    is a problem too, so a typo in a destination cannot pass unchecked.
    """
    path = request.url.path
    name = spec or document_for(path)
    if name is None:
        return [f"no provider document describes {request.method} {path}"]
    return check(
        name,
        request.method,
        path,
        request.url.query.decode(),
        dict(request.headers),
        request.read(),
    )


def check(
    spec: str, method: str, path: str, query: str, headers: Mapping[str, str], body: bytes
) -> list[str]:
    """Problems of one request given by its parts (the fake provider checks what it receives)."""
    doc = document(spec)
    lowered = {k.lower(): v for k, v in headers.items()}
    req = as_openapi_request(method, path, query, lowered, body, spec)
    return [_describe(err) for err in doc.iter_request_errors(req)]


def _describe(err: Exception) -> str:
    """The error and, for a schema failure, every failing field with its path."""
    details: list[str] = []
    cause: Any = err.__cause__
    for inner in getattr(cause, "schema_errors", None) or []:
        where = ".".join(str(p) for p in getattr(inner, "absolute_path", [])) or "(body)"
        details.append(f"{where}: {getattr(inner, 'message', inner)}")
    head = f"{type(err).__name__}: {err}"
    if cause is not None and not details:
        head += f" ({cause})"
    return "; ".join([head, *details])
