"""``delivery.audience`` in ``_settings.yml``."""

from __future__ import annotations

from flowhouse.activation.providers.config import ProviderConfig


class Audience(ProviderConfig):
    """``base_url`` is the audience API root; members go to ``{base_url}/{audience}/users``."""

    api_key_env: str = "FLOWHOUSE_AUDIENCE_TOKEN"
