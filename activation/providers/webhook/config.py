"""``delivery.webhook`` in ``_settings.yml``."""

from __future__ import annotations

from flowhouse.activation.providers.config import ProviderConfig


class Webhook(ProviderConfig):
    """``base_url`` is the endpoint every webhook, push and admin task is posted to (an action's
    own ``url`` wins, except when every destination is pointed at one place, the fake provider)."""

    secret_env: str = "FLOWHOUSE_WEBHOOK_SECRET"
