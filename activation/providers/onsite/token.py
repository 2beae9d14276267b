"""The signed customer token a storefront polls onsite messages with.

The store's own back end, which knows who is signed in, mints ``v1.<expires>.<signature>``:
``expires`` is a Unix time, ``signature`` the hex HMAC-SHA256 of ``v1.<customer_id>.<expires>``
under the shared secret (``delivery.onsite.secret_env``). The customer id travels beside the
token (``?customer=``), so a token signs exactly one customer until it expires.

:func:`check` answers why a token is refused: ``401`` when it is missing, malformed or expired
(get a new one), ``403`` when its signature does not match (forged, or another customer's), or
when it expires further ahead than ``max_token_age`` allows.
"""

from __future__ import annotations

import hashlib
import hmac
from dataclasses import dataclass

VERSION = "v1"


def sign(secret: str, customer_id: str, expires: int) -> str:
    """The token for ``customer_id`` valid until the Unix time ``expires``."""
    return f"{VERSION}.{expires}.{_mac(secret, customer_id, expires)}"


def _mac(secret: str, customer_id: str, expires: int) -> str:
    signed = f"{VERSION}.{customer_id}.{expires}".encode()
    return hmac.new(secret.encode(), signed, hashlib.sha256).hexdigest()


@dataclass(frozen=True)
class Refusal:
    status_code: int
    reason: str


def check(
    secret: str, customer_id: str, token: str, now: float, max_age_seconds: float
) -> Refusal | None:
    """Why ``token`` does not let ``customer_id`` read their onsite messages at ``now`` (None:
    it does)."""
    if not customer_id:
        return Refusal(400, "customer is required")
    if not token:
        return Refusal(401, "a signed customer token is required")
    version, _, rest = token.partition(".")
    expires_text, _, signature = rest.partition(".")
    if version != VERSION or not expires_text.isdigit() or not signature:
        return Refusal(401, "the customer token is malformed")
    expires = int(expires_text)
    if not hmac.compare_digest(_mac(secret, customer_id, expires).encode(), signature.encode()):
        return Refusal(403, "the customer token does not match this customer")
    if expires <= now:
        return Refusal(401, "the customer token has expired")
    if expires - now > max_age_seconds:
        return Refusal(403, "the customer token expires further ahead than allowed")
    return None
