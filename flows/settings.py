"""Store-wide settings: ``flows/library/_settings.yml`` beside the flow files.

Smart sending and frequency caps apply to every marketing message of every flow (a flow may override
them; transactional flows are exempt); quiet hours move every send, transactional ones included,
unless the flow sets ``quiet_hours: false``. Coupon pools are the codes ``coupon`` actions and sends
hand out.
"""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path
from typing import Annotated, Literal

from pydantic import Field, ValidationError

from flowhouse.core.errors import ConfigError, FileLocation
from flows.files import read_yaml
from flows.flowfile import Cap, Duration, LocalTime, Model, Route, Share

SETTINGS_FILE = "_settings.yml"


class QuietHours(Model):
    """``[start, end)`` in the customer's local time; may wrap midnight (21:00 to 08:00)."""

    start: LocalTime
    end: LocalTime


class CouponPool(Model):
    discount: Share | None = Field(default=None, description="e.g. 10%")
    free_shipping: bool = False
    expires_in: Duration = timedelta(days=14)
    prefix: Annotated[str, Field(pattern=r"^[A-Z0-9-]*$")] = ""


class Store(Model):
    name: str = "Our store"
    url: str = "https://shop.example"
    timezone: str = Field(default="UTC", description="For customers without a valid time zone")
    postal_address: str | None = None


Channel = Literal["email", "sms", "push"]


def _default_smart_sending() -> dict[Channel, timedelta]:
    return {"email": timedelta(hours=16), "sms": timedelta(hours=16)}


class Provider(Model):
    """What every destination takes: where to send, how hard, for how long."""

    base_url: str | None = Field(
        default=None, description="The API's root; default: the provider's"
    )
    concurrency: Annotated[int, Field(ge=1, le=64)] = 4
    rate_per_second: Annotated[float, Field(gt=0)] | None = Field(
        default=None, description="Requests a second at most; default: unbounded"
    )
    timeout: Duration = timedelta(seconds=15)
    max_attempts: Annotated[int, Field(ge=1, le=20)] = 5


class SendGrid(Provider):
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


class Twilio(Provider):
    account_sid_env: str = "TWILIO_ACCOUNT_SID"
    auth_token_env: str = "TWILIO_AUTH_TOKEN"
    messaging_service_sid: str | None = None
    from_number: str | None = None
    status_callback: str | None = None


class Klaviyo(Provider):
    api_key_env: str = "KLAVIYO_API_KEY"
    revision: str = "2026-07-15"
    metric_prefix: str = "flowhouse"


class Webhook(Provider):
    """``base_url`` is the endpoint every webhook, push and admin task is posted to (an action's
    own ``url`` wins, except when every destination is pointed at one place, the fake provider)."""

    secret_env: str = "FLOWHOUSE_WEBHOOK_SECRET"


class Audience(Provider):
    """``base_url`` is the audience API root; members go to ``{base_url}/{audience}/users``."""

    api_key_env: str = "FLOWHOUSE_AUDIENCE_TOKEN"


def _default_routes() -> dict[str, Route]:
    return {
        "email": "sendgrid",
        "sms": "twilio",
        "push": "webhook",
        "webhook": "webhook",
        "admin_task": "webhook",
        "audience_sync": "audience",
    }


class Delivery(Model):
    """Where each outbox channel goes and how each provider is reached (API keys come from the
    environment variables named here, never from this file)."""

    routes: dict[str, Route] = Field(default_factory=_default_routes)
    sendgrid: SendGrid = SendGrid()
    twilio: Twilio = Twilio()
    klaviyo: Klaviyo = Klaviyo()
    webhook: Webhook = Webhook()
    audience: Audience = Audience()
    links_url: str | None = Field(
        default=None, description="Where unsubscribe and preference links point; default: store url"
    )
    signing_key_env: str = "FLOWHOUSE_SIGNING_KEY"


class Settings(Model):
    store: Store = Store()
    delivery: Delivery = Delivery()
    quiet_hours: dict[Literal["email", "sms", "push"], QuietHours] = Field(default_factory=dict)
    smart_sending: dict[Channel, Duration] = Field(default_factory=_default_smart_sending)
    caps: list[Cap] = Field(default_factory=list)
    coupon_pools: dict[str, CouponPool] = Field(default_factory=dict)


def load_settings(flows_dir: Path) -> Settings:
    """The settings in ``flows_dir/_settings.yml``, or the defaults when there is none."""

    path = flows_dir / SETTINGS_FILE
    if not path.exists():
        return Settings()
    data, lines = read_yaml(path)
    try:
        return Settings.model_validate(data or {})
    except ValidationError as err:
        first = err.errors(include_url=False)[0]
        loc = tuple(first["loc"])
        line = next((lines[loc[:n]] for n in range(len(loc), 0, -1) if loc[:n] in lines), None)
        raise ConfigError(
            first["msg"],
            FileLocation(str(path), line, ".".join(map(str, loc))),
            first.get("input") if not isinstance(first.get("input"), dict) else None,
        ) from err
