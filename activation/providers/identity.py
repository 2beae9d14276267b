"""How providers tell people apart: e-mail and phone normalised (phone as E.164 digits), and
hashed (SHA-256) as paid-ads customer lists take them. Shared by the audience and Klaviyo, and by
the sync comparison."""

from __future__ import annotations

import hashlib
import re

#: E.164: a country code that does not start with 0, and 7 to 15 digits in all.
_E164_DIGITS = re.compile(r"^[1-9][0-9]{6,14}$")
_PHONE_SEPARATORS = re.compile(r"[\s\-().]")


def normalize_email(email: str | None) -> str | None:
    """Trimmed and lowercased, or None when there is no address."""
    cleaned = (email or "").strip().lower()
    return cleaned if "@" in cleaned else None


def normalize_phone(phone: str | None) -> str | None:
    """E.164 digits without ``+`` (spaces, dashes, dots and parentheses dropped; a leading ``00``
    read as ``+``), or None when what is left is not 7 to 15 digits. The number must carry its
    country code, as the warehouse keeps it."""
    cleaned = _PHONE_SEPARATORS.sub("", phone or "")
    if cleaned.startswith("+"):
        cleaned = cleaned[1:]
    elif cleaned.startswith("00"):
        cleaned = cleaned[2:]
    return cleaned if _E164_DIGITS.match(cleaned) else None


def sha256_hex(value: str | None) -> str:
    """Lowercase hex SHA-256 of ``value``, or ``""`` for None."""
    return hashlib.sha256(value.encode()).hexdigest() if value is not None else ""


def hashed_row(email: str | None, phone: str | None) -> list[str]:
    """``[sha256(e-mail), sha256(phone)]`` after normalising; ``""`` for a missing one."""
    return [sha256_hex(normalize_email(email)), sha256_hex(normalize_phone(phone))]
