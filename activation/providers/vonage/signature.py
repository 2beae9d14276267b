"""Vonage's signed webhooks: every status webhook carries ``Authorization: Bearer <JWT>``, signed
HS256 with the account's signature secret, whose claims hold ``iat`` (when it was signed) and
``payload_hash`` (the SHA-256 of the body, hex). :func:`check` accepts a post only when the
signature, the hash and the age all check out; :func:`sign` makes such a token (the fake
provider signs what it posts with it)."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
from dataclasses import dataclass
from datetime import timedelta
from typing import Any


@dataclass(frozen=True)
class Refusal:
    status_code: int
    reason: str


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def _mac(secret: str, signed: str) -> bytes:
    return hmac.new(secret.encode(), signed.encode(), hashlib.sha256).digest()


def sign(secret: str, body: bytes, now: float, **claims: Any) -> str:
    """A JWT as Vonage signs a webhook of ``body`` at Unix time ``now``."""
    header = _b64(json.dumps({"alg": "HS256", "typ": "JWT"}).encode())
    payload = {"iat": int(now), "payload_hash": hashlib.sha256(body).hexdigest()} | claims
    signed = f"{header}.{_b64(json.dumps(payload).encode())}"
    return f"{signed}.{_b64(_mac(secret, signed))}"


def check(
    secret: str, body: bytes, authorization: str | None, now: float, tolerance: timedelta
) -> Refusal | None:
    """Why the post of ``body`` with this ``Authorization`` header is refused, or None."""
    scheme, _, token = (authorization or "").partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        return Refusal(401, "Authorization: Bearer <signed JWT> is required")
    parts = token.strip().split(".")
    if len(parts) != 3:
        return Refusal(403, "the token is not a JWT")
    try:
        header = json.loads(_unb64(parts[0]))
        claims = json.loads(_unb64(parts[1]))
        given = _unb64(parts[2])
    except ValueError:
        return Refusal(403, "the token is not a JWT")
    if not isinstance(header, dict) or header.get("alg") != "HS256":
        return Refusal(403, "the token is not signed HS256")
    if not hmac.compare_digest(_mac(secret, f"{parts[0]}.{parts[1]}"), given):
        return Refusal(403, "the signature does not match")
    if not isinstance(claims, dict):
        return Refusal(403, "the token has no claims")
    digest = hashlib.sha256(body).hexdigest()
    if not hmac.compare_digest(str(claims.get("payload_hash", "")).encode(), digest.encode()):
        return Refusal(403, "the body does not match the token's payload_hash")
    issued = claims.get("iat")
    if not isinstance(issued, int | float) or abs(now - issued) > tolerance.total_seconds():
        return Refusal(403, "the token's iat is missing or outside the tolerance (a replay?)")
    return None
