"""``delivery.onsite`` in ``_settings.yml``."""

from __future__ import annotations

from datetime import timedelta
from typing import Annotated

from pydantic import Field

from flowhouse.activation.providers.config import ProviderConfig
from flowhouse.flows.flowfile import Duration


class Onsite(ProviderConfig):
    """Onsite messages are no HTTP request: ``base_url``, ``concurrency``, ``rate_per_second``,
    ``timeout`` and ``max_attempts`` do not apply. ``secret_env`` names the variable holding the
    secret the storefront signs customer tokens with (HMAC-SHA256, shared with ``flowhouse
    receive``)."""

    secret_env: str = "FLOWHOUSE_ONSITE_SECRET"
    expires_after: Duration = Field(
        default=timedelta(days=7),
        description="How long after its due time an onsite message may be shown (a step's own "
        "expires_after wins); then it ends as expired",
    )
    max_token_age: Duration = Field(
        default=timedelta(days=1),
        description="The furthest ahead a customer token may expire (longer-lived tokens are "
        "refused)",
    )
    max_messages: Annotated[int, Field(ge=1, le=100)] = Field(
        default=20, description="The most pending messages one poll answers (newest first)"
    )
