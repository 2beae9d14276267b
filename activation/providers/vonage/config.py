"""``delivery.vonage`` in ``_settings.yml``."""

from __future__ import annotations

from datetime import timedelta
from typing import Annotated

from pydantic import Field, field_validator

from flowhouse.activation.providers.config import ProviderConfig
from flowhouse.flows.flowfile import Duration


class Vonage(ProviderConfig):
    api_key_env: str = "VONAGE_API_KEY"
    api_secret_env: str = "VONAGE_API_SECRET"
    viber_service_id: Annotated[str, Field(min_length=1, max_length=50)] | None = Field(
        default=None,
        description="The Viber Service Message ID Vonage gave the store (the sender of every "
        "Viber message); required to send Viber",
    )
    viber_ttl: Duration = Field(
        default=timedelta(days=1),
        description="How long Viber keeps trying to deliver a message (30 s to 72 h)",
    )

    @field_validator("viber_ttl")
    @classmethod
    def _ttl_viber_takes(cls, ttl: timedelta) -> timedelta:
        if not timedelta(seconds=30) <= ttl <= timedelta(hours=72):
            raise ValueError("Viber keeps a message from 30s to 72h")
        return ttl

    signature_secret_env: str = Field(
        default="VONAGE_SIGNATURE_SECRET",
        description="The environment variable holding the account's signature secret: flowhouse "
        "receive checks the JWT (HS256) of every status webhook with it",
    )
    webhook_tolerance: Duration = Field(
        default=timedelta(minutes=10),
        description="How old a signed status webhook may be (by its JWT's iat) before it is "
        "refused as a replay",
    )
