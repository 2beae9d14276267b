"""Google's published API discovery documents, and checking a request against them.

Firebase Cloud Messaging publishes no OpenAPI document; Google describes its REST APIs with
discovery documents instead (``specs/fcm_v1.json``, copied unchanged, see ``specs/README.md``):
``resources`` name each method's HTTP verb, path template and parameters, and ``schemas`` hold the
bodies, objects whose properties carry a ``type`` (``string``, ``integer``, ``number``,
``boolean``, ``array``, ``object``, ``any``), an ``enum``, a ``format`` or a ``$ref`` to another
schema by name. :func:`problems` checks one ``httpx.Request`` against such a document, as
:mod:`flowhouse.activation.openapi` does against OpenAPI: the method and path (each path
parameter against its ``pattern``), the query (only the document's parameters), the OAuth bearer
credentials the document's scopes ask for, the JSON content type, and the body against the
method's ``request`` schema:

- every value of the type its schema states (an ``int32`` within 32 bits, a
  ``google-duration`` as ``"3.5s"``, a ``google-datetime`` as RFC 3339);
- an ``enum`` value among the listed ones;
- ``$ref`` followed, to any depth;
- a property the schema does not list refused (unless the schema takes ``additionalProperties``);
- required fields present: discovery documents state required-ness of body fields only in the
  field's description (``"Required. Message to send."``), which is read as such.

Problems name the dotted path of the field, the value received and what was expected.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Mapping
from datetime import datetime
from functools import cache
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl

import httpx

from flowhouse.core.errors import ConfigError

#: The discovery documents in ``specs/``, by provider.
DISCOVERY_FILES = {"fcm": "fcm_v1.json"}

_DURATION = re.compile(r"^-?\d+(\.\d{1,9})?s$")
_INT32 = (-(2**31), 2**31 - 1)
_UINT32 = (0, 2**32 - 1)
#: Longest value shown in a problem.
_SHOWN = 80


def specs_dir() -> Path:
    """``specs/`` in the project (the documents beside the OpenAPI ones)."""
    return Path(__file__).resolve().parents[1] / "specs"


@cache
def document(name: str) -> dict[str, Any]:
    """The discovery document ``name`` (a key of :data:`DISCOVERY_FILES`), loaded once."""
    path = specs_dir() / DISCOVERY_FILES[name]
    if not path.exists():
        raise ConfigError("the provider's discovery document is missing", value=str(path))
    loaded: dict[str, Any] = json.loads(path.read_text())
    return loaded


def methods(doc: Mapping[str, Any]) -> list[dict[str, Any]]:
    """Every method of the document's (nested) resources."""
    found: list[dict[str, Any]] = []
    stack = [doc]
    while stack:
        node = stack.pop()
        found += list((node.get("methods") or {}).values())
        stack += list((node.get("resources") or {}).values())
    return found


def _path_pattern(method: Mapping[str, Any]) -> re.Pattern[str]:
    """The method's ``path`` as a regular expression, one named group per parameter (``{+x}``
    may span slashes, ``{x}`` may not)."""
    out, pos = "", 0
    template = str(method["path"])
    for found in re.finditer(r"\{(\+?)([^}]+)\}", template):
        out += re.escape(template[pos : found.start()])
        out += f"(?P<{found.group(2)}>{'.+' if found.group(1) else '[^/]+'})"
        pos = found.end()
    return re.compile("^" + out + re.escape(template[pos:]) + "$")


def find_method(
    doc: Mapping[str, Any], verb: str, path: str
) -> tuple[dict[str, Any], dict[str, str]] | None:
    """The method ``verb path`` calls and its path parameters, or None."""
    relative = path.lstrip("/")
    base = str(doc.get("servicePath") or "")
    relative = relative.removeprefix(base) if base else relative
    for method in methods(doc):
        if method.get("httpMethod", "").upper() != verb.upper():
            continue
        matched = _path_pattern(method).match(relative)
        if matched:
            return method, matched.groupdict()
    return None


def problems(request: httpx.Request, name: str = "fcm") -> list[str]:
    """What is wrong with ``request`` according to the discovery document ``name`` (empty:
    valid), whatever host it is sent to."""
    return check(
        name,
        request.method,
        request.url.path,
        request.url.query.decode(),
        dict(request.headers),
        request.read(),
    )


def check(
    name: str, verb: str, path: str, query: str, headers: Mapping[str, str], body: bytes
) -> list[str]:
    """Problems of one request given by its parts (the fake provider checks what it receives)."""
    doc = document(name)
    found = find_method(doc, verb, path)
    if found is None:
        return [f"no method of the {name} document is {verb.upper()} {path}"]
    method, params = found
    lowered = {k.lower(): v for k, v in headers.items()}
    out = _parameters(doc, method, params, query)
    out += _security(doc, method, lowered)
    request = method.get("request")
    if request is not None:
        out += _body(doc, request, lowered, body)
    elif body:
        out.append("(body): this method takes no body")
    return out


def _parameters(
    doc: Mapping[str, Any], method: Mapping[str, Any], params: Mapping[str, str], query: str
) -> list[str]:
    declared = dict(doc.get("parameters") or {}) | dict(method.get("parameters") or {})
    out = []
    for key, spec in declared.items():
        if spec.get("location") == "path":
            value = params.get(key)
            pattern = spec.get("pattern")
            if value is None and spec.get("required"):
                out.append(f"{key}: required path parameter missing")
            elif value is not None and pattern and not re.match(pattern, value):
                out.append(f"{key}: {_shown(value)} does not match {pattern}")
    for key, value in parse_qsl(query, keep_blank_values=True):
        spec = declared.get(key)
        if spec is None or spec.get("location") != "query":
            out.append(f"{key}: not a query parameter of this method")
        elif spec.get("type") == "boolean" and value not in ("true", "false"):
            out.append(f"{key}: {_shown(value)} is not true or false")
        elif "enum" in spec and value not in spec["enum"]:
            out.append(f"{key}: {_shown(value)} is not one of {', '.join(spec['enum'])}")
    return out


def _security(
    doc: Mapping[str, Any], method: Mapping[str, Any], headers: Mapping[str, str]
) -> list[str]:
    """OAuth 2.0 scopes ask for ``Authorization: Bearer <token>``."""
    if not method.get("scopes"):
        return []
    scheme, _, token = headers.get("authorization", "").partition(" ")
    if scheme.lower() == "bearer" and token.strip():
        return []
    return ["SecurityValidationError: an OAuth 2.0 bearer token is required (Authorization)"]


def _body(
    doc: Mapping[str, Any], request: Mapping[str, Any], headers: Mapping[str, str], body: bytes
) -> list[str]:
    content_type = headers.get("content-type", "").split(";")[0].strip().lower()
    if content_type != "application/json":
        return [f"content-type: {content_type or '(none)'} is not application/json"]
    try:
        value = json.loads(body)
    except ValueError:
        return ["(body): not valid JSON"]
    return validate(doc, request, value, "")


def validate(
    doc: Mapping[str, Any], schema: Mapping[str, Any], value: Any, where: str
) -> list[str]:
    """Problems of ``value`` against ``schema`` (a schema of ``doc``), at the dotted ``where``."""
    if "$ref" in schema:
        target = (doc.get("schemas") or {}).get(schema["$ref"])
        if target is None:
            return [f"{where or '(body)'}: the document has no schema {schema['$ref']}"]
        return validate(doc, target, value, where)
    return _value(doc, schema, value, where or "(body)")


def _value(doc: Mapping[str, Any], schema: Mapping[str, Any], value: Any, where: str) -> list[str]:
    kind = schema.get("type", "any")
    checker = _TYPES.get(kind)
    if checker is None:
        return [f"{where}: the document's type {kind!r} is unknown"]
    if not checker(value, schema):
        expected = f"{kind} ({schema['format']})" if schema.get("format") else kind
        return [f"{where}: {_shown(value)} is not of type {expected}"]
    if "enum" in schema and value not in schema["enum"]:
        return [f"{where}: {_shown(value)} is not one of {', '.join(schema['enum'])}"]
    if kind == "object":
        return _object(doc, schema, value, where)
    if kind == "array":
        items = schema.get("items") or {}
        return [p for i, v in enumerate(value) for p in validate(doc, items, v, f"{where}.{i}")]
    return []


def _object(
    doc: Mapping[str, Any], schema: Mapping[str, Any], value: Mapping[str, Any], where: str
) -> list[str]:
    prefix = "" if where == "(body)" else f"{where}."
    properties = schema.get("properties") or {}
    extra = schema.get("additionalProperties")
    out = []
    for key, spec in properties.items():
        if key not in value and _required(spec):
            out.append(f"{prefix}{key}: required property missing")
    for key, item in value.items():
        if key in properties:
            out += validate(doc, properties[key], item, prefix + key)
        elif extra is not None:
            out += validate(doc, extra, item, prefix + key)
        else:
            known = ", ".join(sorted(properties)) or "none"
            out.append(f"{prefix}{key}: unknown property (the schema has {known})")
    return out


def _required(spec: Mapping[str, Any]) -> bool:
    """Discovery documents mark a required body field in its description only."""
    return str(spec.get("description", "")).startswith("Required.") or bool(spec.get("required"))


def _is_string(value: Any, schema: Mapping[str, Any]) -> bool:
    if not isinstance(value, str):
        return False
    fmt = schema.get("format")
    if fmt == "google-duration":
        return bool(_DURATION.match(value))
    if fmt == "google-datetime":
        try:
            datetime.fromisoformat(value.replace("Z", "+00:00"))
        except ValueError:
            return False
        return "T" in value
    if fmt in ("int64", "uint64"):
        return value.lstrip("-").isdigit() and not (fmt == "uint64" and value.startswith("-"))
    return True


def _is_integer(value: Any, schema: Mapping[str, Any]) -> bool:
    if isinstance(value, bool) or not isinstance(value, int):
        return False
    low, high = {"int32": _INT32, "uint32": _UINT32}.get(schema.get("format", ""), (None, None))
    return low is None or (high is not None and low <= value <= high)


def _is_number(value: Any, schema: Mapping[str, Any]) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


_TYPES: dict[str, Callable[[Any, Mapping[str, Any]], bool]] = {
    "string": _is_string,
    "integer": _is_integer,
    "number": _is_number,
    "boolean": lambda value, schema: isinstance(value, bool),
    "array": lambda value, schema: isinstance(value, list),
    "object": lambda value, schema: isinstance(value, dict),
    "any": lambda value, schema: True,
}


def _shown(value: Any) -> str:
    text = json.dumps(value, default=str)
    return text if len(text) <= _SHOWN else text[: _SHOWN - 3] + "..."
