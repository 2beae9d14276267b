"""``delivery.twilio`` in ``_settings.yml``."""

from __future__ import annotations

from pydantic import Field

from flowhouse.activation.providers.config import ProviderConfig


class Twilio(ProviderConfig):
    account_sid_env: str = "TWILIO_ACCOUNT_SID"
    auth_token_env: str = "TWILIO_AUTH_TOKEN"
    messaging_service_sid: str | None = None
    from_number: str | None = None
    status_callback: str | None = None
    whatsapp_from: str | None = Field(
        default=None,
        pattern=r"^\+[1-9][0-9]{6,14}$",
        description="The WhatsApp-enabled sender number (E.164); default: from_number, or the "
        "Messaging Service's WhatsApp sender",
    )
