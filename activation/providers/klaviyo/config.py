"""``delivery.klaviyo`` in ``_settings.yml``."""

from __future__ import annotations

from flowhouse.activation.providers.config import ProviderConfig


class Klaviyo(ProviderConfig):
    api_key_env: str = "KLAVIYO_API_KEY"
    revision: str = "2026-07-15"
    metric_prefix: str = "flowhouse"
