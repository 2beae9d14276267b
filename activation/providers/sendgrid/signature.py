"""SendGrid's Signed Event Webhook.

SendGrid signs each event post with the private half of an ECDSA key pair (P-256, SHA-256) it
keeps for the account: the signature, base64 of its DER form, is in
``X-Twilio-Email-Event-Webhook-Signature`` and covers the text of
``X-Twilio-Email-Event-Webhook-Timestamp`` (Unix seconds) followed by the raw body, byte for byte.
The public half, the "verification key" of Mail Settings > Signed Event Webhook, is base64 of
its DER ``SubjectPublicKeyInfo``. A post older than the tolerance is refused as a replay.

:func:`sign` is what SendGrid does (the fake provider and the tests use it).
"""

from __future__ import annotations

import base64
import binascii
from dataclasses import dataclass
from datetime import timedelta
from typing import Literal

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec

from flowhouse.core.errors import ConfigError

SIGNATURE_HEADER = "X-Twilio-Email-Event-Webhook-Signature"
TIMESTAMP_HEADER = "X-Twilio-Email-Event-Webhook-Timestamp"
DEFAULT_TOLERANCE = timedelta(minutes=10)

PublicKey = ec.EllipticCurvePublicKey


@dataclass(frozen=True)
class Refusal:
    """Why a post is refused: ``unsigned`` (401) or ``forged`` (403), in words."""

    kind: Literal["unsigned", "forged"]
    reason: str

    @property
    def status_code(self) -> int:
        return 401 if self.kind == "unsigned" else 403


def public_key(text: str, variable: str) -> PublicKey:
    """The verification key as SendGrid shows it (base64 DER; a PEM block is accepted too), or a
    :class:`ConfigError` naming ``variable``."""
    text = text.strip()
    try:
        if text.startswith("-----BEGIN"):
            key = serialization.load_pem_public_key(text.encode())
        else:
            key = serialization.load_der_public_key(base64.b64decode(text, validate=True))
    except (ValueError, TypeError, binascii.Error) as err:
        raise ConfigError(
            f"the SendGrid event webhook verification key in {variable} cannot be read",
            expected="the base64 key of Mail Settings > Signed Event Webhook "
            "(an ECDSA P-256 public key)",
        ) from err
    if not isinstance(key, ec.EllipticCurvePublicKey) or key.curve.name != "secp256r1":
        raise ConfigError(
            f"the SendGrid event webhook verification key in {variable} is not a P-256 key",
            expected="the base64 key of Mail Settings > Signed Event Webhook",
        )
    return key


def check(
    key: PublicKey,
    body: bytes,
    signature: str | None,
    timestamp: str | None,
    now: float,
    tolerance: timedelta = DEFAULT_TOLERANCE,
) -> Refusal | None:
    """None when ``signature`` is SendGrid's over ``timestamp`` + ``body`` and ``timestamp`` is
    within ``tolerance`` of ``now`` (Unix seconds); else why not."""
    if not signature or not timestamp:
        return Refusal("unsigned", f"{SIGNATURE_HEADER} and {TIMESTAMP_HEADER} are required")
    if not timestamp.isdigit() or len(timestamp) > 12:
        return Refusal("forged", f"{TIMESTAMP_HEADER} is not Unix seconds")
    if abs(now - int(timestamp)) > tolerance.total_seconds():
        return Refusal("forged", f"{TIMESTAMP_HEADER} is outside the tolerance (a replay?)")
    try:
        der = base64.b64decode(signature, validate=True)
        key.verify(der, timestamp.encode() + body, ec.ECDSA(hashes.SHA256()))
    except (InvalidSignature, ValueError, binascii.Error):
        return Refusal("forged", "the signature does not match")
    return None


def sign(key: ec.EllipticCurvePrivateKey, body: bytes, timestamp: int) -> dict[str, str]:
    """The headers SendGrid posts ``body`` with, signed at ``timestamp``."""
    stamp = str(timestamp)
    der = key.sign(stamp.encode() + body, ec.ECDSA(hashes.SHA256()))
    return {SIGNATURE_HEADER: base64.b64encode(der).decode(), TIMESTAMP_HEADER: stamp}


def public_text(key: ec.EllipticCurvePrivateKey) -> str:
    """The public half of ``key`` as SendGrid shows a verification key (base64 DER)."""
    der = key.public_key().public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    return base64.b64encode(der).decode()
