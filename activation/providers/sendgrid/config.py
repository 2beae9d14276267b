"""``delivery.sendgrid`` in ``_settings.yml``."""

from __future__ import annotations

from datetime import timedelta

from pydantic import Field

from flowhouse.activation.providers.config import ProviderConfig
from flowhouse.flows.flowfile import Duration


class SendGrid(ProviderConfig):
    api_key_env: str = "SENDGRID_API_KEY"
    from_email: str = "hello@shop.example"
    from_name: str | None = None
    reply_to: str | None = None
    templates: dict[str, str] = Field(
        default_factory=dict,
        description="Template file -> SendGrid dynamic template id (d-...); others send rendered",
    )
    lookup: bool = Field(
        default=True, description="Reconcile in-flight mail through the Email Activity API"
    )
    lookup_delay: Duration = Field(
        default=timedelta(minutes=10),
        description="Email Activity lags: an 'absent' answer sooner than this after a request "
        "is not trusted (the row stays in flight for a later run)",
    )
