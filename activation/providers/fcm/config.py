"""``delivery.fcm`` in ``_settings.yml``."""

from __future__ import annotations

from datetime import timedelta
from typing import Literal

from pydantic import Field

from flowhouse.activation.providers.config import ProviderConfig
from flowhouse.flows.flowfile import Duration


class Fcm(ProviderConfig):
    """How flowhouse reaches Firebase Cloud Messaging.

    ``credentials`` says what the environment holds: ``service_account`` (the default) is the
    JSON key file of a Google service account allowed to send (its contents, in the variable
    ``service_account_env``), exchanged for an OAuth access token at the key's ``token_uri``;
    ``access_token`` is a short-lived OAuth 2.0 token minted elsewhere (``access_token_env``).
    ``project_id`` defaults to the service account's own project."""

    credentials: Literal["service_account", "access_token"] = "service_account"
    service_account_env: str = "FCM_SERVICE_ACCOUNT"
    access_token_env: str = "FCM_ACCESS_TOKEN"
    project_id: str | None = Field(
        default=None,
        pattern=r"^[a-z0-9][a-z0-9-]*$",
        description="The Firebase project id; default: the service account's project_id",
    )
    ttl: Duration = Field(
        default=timedelta(days=3),
        description="How long FCM keeps a push for an offline device (at most 28 days)",
    )
    android_channel_id: str | None = Field(
        default=None, description="The Android notification channel pushes are posted on"
    )
