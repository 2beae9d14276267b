"""Store-wide settings: ``flows/_settings.yml`` beside the flow files.

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

from flowhouse.errors import ConfigError, Location
from flows.spec import Cap, Duration, LocalTime, Model, Share

SETTINGS_FILE = "_settings.yml"


class QuietHours(Model):
    """``[start, end)`` in the customer's local time; may wrap midnight (21:00 to 08:00)."""

    start: LocalTime
    end: LocalTime


class CouponPool(Model):
    discount: Share | None = Field(None, description="e.g. 10%")
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


class Settings(Model):
    store: Store = Store()
    quiet_hours: dict[Literal["email", "sms", "push"], QuietHours] = Field(default_factory=dict)
    smart_sending: dict[Channel, Duration] = Field(default_factory=_default_smart_sending)
    caps: list[Cap] = Field(default_factory=list)
    coupon_pools: dict[str, CouponPool] = Field(default_factory=dict)


def load_settings(flows_dir: Path) -> Settings:
    """The settings in ``flows_dir/_settings.yml``, or the defaults when there is none."""
    from flows.files import read_yaml

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
            Location(str(path), line, ".".join(map(str, loc))),
            first.get("input") if not isinstance(first.get("input"), dict) else None,
        ) from err
