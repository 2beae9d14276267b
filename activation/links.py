"""Signed links in every message: unsubscribe and preferences (served by ``flowhouse receive``).

A token names the message, the customer and the channel, and carries an HMAC-SHA256 of them under
the store's signing key (``FLOWHOUSE_SIGNING_KEY``), so a link cannot be forged or altered to
unsubscribe someone else. The webhook receiver verifies it before it records an unsubscribe.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
from dataclasses import dataclass
from urllib.parse import urlencode

from flowhouse.core.errors import FlowhouseError


class BadToken(FlowhouseError):
    """A link token that is malformed or whose signature does not match."""


@dataclass(frozen=True)
class Claims:
    message_id: str
    customer_id: str
    channel: str


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def _mac(body: str, key: str) -> str:
    digest = hmac.new(key.encode(), body.encode(), hashlib.sha256).digest()
    return _b64(digest[:18])


def sign(claims: Claims, key: str) -> str:
    """``<claims>.<mac>``, URL-safe."""
    body = _b64(
        json.dumps(
            {"m": claims.message_id, "c": claims.customer_id, "ch": claims.channel},
            separators=(",", ":"),
        ).encode()
    )
    return f"{body}.{_mac(body, key)}"


def verify(token: str, key: str) -> Claims:
    """The claims of ``token``; :class:`BadToken` if it is malformed or was not signed with
    ``key``."""
    body, _, mac = token.partition(".")
    if not body or not mac or not hmac.compare_digest(mac, _mac(body, key)):
        raise BadToken("the link's signature does not match")
    try:
        data = json.loads(_unb64(body))
        return Claims(str(data["m"]), str(data["c"]), str(data["ch"]))
    except (ValueError, KeyError, TypeError) as err:
        raise BadToken("the link's token is malformed") from err


def message_links(base_url: str, claims: Claims, key: str) -> dict[str, str]:
    """The ``links`` every template gets for one message."""
    root = base_url.rstrip("/")
    query = urlencode({"token": sign(claims, key)})
    return {
        "unsubscribe": f"{root}/unsubscribe?{query}",
        "preferences": f"{root}/preferences?{query}",
    }
