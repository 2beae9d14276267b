"""``delivery.spree`` in ``_settings.yml``."""

from __future__ import annotations

import unicodedata
from urllib.parse import urlsplit

from pydantic import Field, field_validator

from flowhouse.activation.providers.config import ProviderConfig


def store_url(value: str) -> str:
    """``value`` as a store URL (``http(s)://host[/path]``, no control character), without its
    trailing ``/``; a :class:`ValueError` says what is wrong, without repeating a bad value's
    control characters."""
    if any(unicodedata.category(c) == "Cc" for c in value):
        raise ValueError(
            "the store URL holds a control character (a carriage return from a .env file?); "
            "expected the store's address on one line, e.g. https://shop.example"
        )
    parts = urlsplit(value.strip())
    if parts.scheme not in ("http", "https") or not parts.netloc or parts.query or parts.fragment:
        raise ValueError(
            f"not a store URL: {value.strip()!r} (expected http(s)://host, e.g. "
            "https://shop.example, without a query)"
        )
    return value.strip().rstrip("/")


class Spree(ProviderConfig):
    """``base_url`` is the store's root (``https://shop.example``; the Platform API is under
    ``/api/v2/platform``); when it is not written it is read from the environment variable
    ``url_env``. The Platform API token (an OAuth access token with the ``admin`` scope) is read
    from ``token_env``. Flowhouse's action state goes under ``metadata_key`` in each user's
    ``private_metadata``, on the user ``user_id_property`` names (a customer property holding the
    Spree user id), else the user whose id is the ``customer_id``."""

    token_env: str = "FLOWHOUSE_SPREE_TOKEN"
    url_env: str = "FLOWHOUSE_SPREE_URL"
    metadata_key: str = "flowhouse"
    user_id_property: str | None = Field(
        default=None,
        description="The customer property (raw.customers.properties) holding the customer's "
        "Spree user id; unset: the customer_id is the Spree user id",
    )

    @field_validator("base_url")
    @classmethod
    def _store_url(cls, value: str | None) -> str | None:
        return None if value is None else store_url(value)

    @field_validator("metadata_key", "user_id_property")
    @classmethod
    def _key(cls, value: str | None) -> str | None:
        if value is None:
            return None
        if not value.strip() or any(unicodedata.category(c) == "Cc" for c in value):
            raise ValueError("expected a non-empty key without control characters")
        return value
