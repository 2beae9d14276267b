"""Store-wide settings: ``flows/library/_settings.yml`` beside the flow files.

Smart sending and frequency caps apply to every marketing message of every flow (a flow may override
them; transactional flows are exempt); quiet hours move every send, transactional ones included,
unless the flow sets ``quiet_hours: false``. Coupon pools are the codes ``coupon`` actions and sends
hand out.
"""

from __future__ import annotations

import difflib
import re
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path
from typing import Annotated, Any, Literal, cast, get_args
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError, available_timezones

import yaml
from pydantic import (
    AfterValidator,
    BeforeValidator,
    ConfigDict,
    Field,
    PrivateAttr,
    ValidationError,
    field_validator,
)

from flowhouse.core.contract import EVENT_TYPES, PropertyType
from flowhouse.core.errors import ConfigError, FileLocation
from flowhouse.core.lanes import DEFAULT_ENRICHMENT_EVERY
from flowhouse.flows.channels import CHANNELS, PacedChannel, QuietChannel
from flowhouse.flows.dbtmodels import project_vars
from flowhouse.flows.files import Lines, YamlSyntaxError, line_of, read_yaml, yaml_problem
from flowhouse.flows.flowfile import (
    ActionType,
    Cap,
    Duration,
    LocalTime,
    Model,
    Route,
    Share,
    parse_duration,
)
from flowhouse.flows.modelvars import check_model_var, check_raw_type, model_vars

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


def _zone(name: str) -> str:
    try:
        ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        close = difflib.get_close_matches(name, sorted(available_timezones()), n=1)
        hint = f" (did you mean {close[0]}?)" if close else ""
        raise ValueError(f"not an IANA time zone{hint}") from None
    return name


def _raw_type(event_type: str) -> str:
    problem = check_raw_type(event_type)
    if problem:
        raise ValueError(problem)
    return event_type


class Store(Model):
    name: str = "Our store"
    url: str = "https://shop.example"
    timezone: Annotated[str, AfterValidator(_zone)] = Field(
        default="UTC",
        description="For customers without a valid time zone, and the store's days in the marts",
    )
    postal_address: str | None = None


def _custom_type(event_type: str) -> str:
    if event_type in EVENT_TYPES:
        raise ValueError(f"{event_type} is a flowhouse event type already (docs/events.md)")
    if not re.fullmatch(r"[a-z][a-z0-9_]*", event_type):
        raise ValueError(f"{event_type!r} is not a snake_case event type")
    return event_type


def _every(value: Any) -> timedelta | None:
    """A lane's interval: a duration, or ``0`` / ``never`` for none."""
    if value in (0, "0", "never", None):
        return None
    try:
        return parse_duration(value)
    except ValueError as err:
        raise ValueError(f"{err}, or 0 / never (only when the lane is run on its own)") from None


class Refresh(Model):
    """How often the model refresh's lanes run (flowhouse/core/lanes.py, docs/engine.md)."""

    enrichment_every: Annotated[timedelta | None, BeforeValidator(_every)] = Field(
        default=DEFAULT_ENRICHMENT_EVERY,
        description="How stale the enrichment lane (category affinity, performance marts) may "
        "get before a tick refreshes it too, e.g. 1h; 0 or never: only when run on its own "
        "(flowhouse refresh --lane enrichment)",
        json_schema_extra={"type": "string"},
    )


class Events(Model):
    """The store's event vocabulary beyond flowhouse's."""

    raw: list[Annotated[str, AfterValidator(_raw_type)]] = Field(
        default_factory=list,
        description="Derived event types the store sends itself: flowhouse does not derive them",
    )
    custom: list[Annotated[str, AfterValidator(_custom_type)]] = Field(
        default_factory=list,
        description="The store's own event types (any properties), which flows may name",
    )
    properties: dict[str, dict[str, PropertyType]] = Field(
        default_factory=dict,
        description="Properties the store sends beyond the event contract, by event type: "
        "{order_placed: {gift_wrap: boolean}}",
    )

    @field_validator("properties")
    @classmethod
    def _known_types(
        cls, properties: dict[str, dict[str, PropertyType]]
    ) -> dict[str, dict[str, PropertyType]]:
        for name in properties:
            if name not in EVENT_TYPES:
                close = difflib.get_close_matches(name, EVENT_TYPES, n=1)
                hint = f" (did you mean {close[0]}?)" if close else ""
                raise ValueError(
                    f"{name}: not a flowhouse event type{hint}; a store's own types "
                    "(events.custom) take any property"
                )
        return properties


def _default_smart_sending() -> dict[PacedChannel, timedelta]:
    return {
        cast(PacedChannel, c.name): c.smart_sending
        for c in CHANNELS.values()
        if c.smart_sending is not None
    }


def _default_routes() -> dict[str, Route]:
    """Each channel's own route (the registry's), and the actions that go out by default."""
    routes = {c.name: cast(Route, c.route) for c in CHANNELS.values()}
    return {**routes, "admin_task": "webhook", "audience_sync": "audience"}


#: A domain name as ``sending_domains`` takes it (lowercase labels, dots between).
DOMAIN = re.compile(r"^([a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?\.)+[a-z]{2,63}$")


def _domain(name: str) -> str:
    if not DOMAIN.match(name):
        raise ValueError("not a domain name (expected lowercase, e.g. shop.example, no @)")
    return name


class Delivery(Model):
    """Where each outbox channel goes and how each provider is reached (API keys come from the
    environment variables named there, never from this file).

    Every other key is a provider's section (``sendgrid: {...}``), held here as written: the flow
    language knows no provider, activation validates each section with the provider's own
    model (``activation/providers/<name>/config.py``)."""

    model_config = ConfigDict(extra="allow", frozen=True)

    routes: dict[str, Route] = Field(default_factory=_default_routes)

    @field_validator("routes")
    @classmethod
    def _onsite_stays_onsite(cls, routes: dict[str, Route]) -> dict[str, Route]:
        """Routes written without ``onsite`` keep it in the warehouse (not the webhook every
        other unnamed channel falls back to)."""
        return routes if "onsite" in routes else {**routes, "onsite": "onsite"}

    links_url: str | None = Field(
        default=None, description="Where unsubscribe and preference links point; default: store url"
    )
    signing_key_env: str = "FLOWHOUSE_SIGNING_KEY"
    sms_click_tracking: bool = Field(
        default=True,
        description="Rewrite SMS links to short links on links_url that record clicks",
    )
    sms_link_days: int = Field(
        default=30,
        ge=1,
        description="How long an SMS short link works and stays in <inbox>/links/ (then pruned); "
        "a click on an older one goes to the store's url",
    )
    sending_domains: list[Annotated[str, AfterValidator(_domain)]] = Field(
        default_factory=list,
        description="The domains authenticated with the e-mail provider (e.g. shop.example): "
        "every from address, a flow's sender.email and the provider's default, must be on one; "
        "empty: not checked",
    )

    @field_validator("routes")
    @classmethod
    def _known_channels(cls, routes: dict[str, Route]) -> dict[str, Route]:
        """A route names an outbox channel: a message channel, or an action type (warehouse
        actions routed here are pushed to the shop)."""
        known = set(CHANNELS) | set(get_args(ActionType))
        for channel in routes:
            if channel not in known:
                close = difflib.get_close_matches(channel, sorted(known), n=1)
                hint = f"; did you mean {close[0]}?" if close else ""
                raise ValueError(
                    f"{channel}: not a channel or an action type{hint} (expected one of "
                    f"{', '.join(sorted(known))})"
                )
        return routes

    @property
    def sections(self) -> dict[str, Any]:
        """The provider sections as written, by provider name."""
        return dict(self.model_extra or {})


@dataclass(frozen=True)
class Source:
    """Where settings were read: the file, and the line of every key (so what checks them
    later, such as activation's provider sections, can point at ``file:line``)."""

    file: str
    lines: Lines = field(default_factory=dict)

    def line(self, loc: tuple[str | int, ...]) -> int | None:
        return line_of(self.lines, loc)


#: The types a declared customer property can have (``customer_properties`` in the settings).
PropertyKind = Literal["string", "number", "boolean", "date", "timestamp"]
#: A property key: it becomes a column name (``properties__<key>``) in the customer attributes.
PROPERTY_KEY = r"^[a-z][a-z0-9_]{0,62}$"


class Settings(Model):
    store: Store = Store()
    delivery: Delivery = Delivery()
    quiet_hours: dict[QuietChannel, QuietHours] = Field(default_factory=dict)
    smart_sending: dict[PacedChannel, Duration] = Field(default_factory=_default_smart_sending)
    caps: list[Cap] = Field(default_factory=list)
    coupon_pools: dict[str, CouponPool] = Field(default_factory=dict)
    events: Events = Events()
    refresh: Refresh = Refresh()
    lists: list[str] = Field(
        default_factory=list,
        description="The lists customers join (list_joined events' list) that flows may name in "
        "audience.list, beyond those flows add customers to",
    )
    models: dict[str, Any] = Field(
        default_factory=dict,
        description="Windows and thresholds of the derived events and attributes, by the name of "
        "their dbt var (dbt_project.yml), e.g. cart_abandon_after_minutes: 30",
    )
    customer_properties: dict[Annotated[str, Field(pattern=PROPERTY_KEY)], PropertyKind] = Field(
        default_factory=dict,
        description="The keys of the customers' properties (raw.customers.properties) that "
        "predicates may read as customer.properties.<key>, with their types, e.g. "
        "{shoe_size: number, vip_since: date, favourite_store: string}",
    )
    _source: Source | None = PrivateAttr(default=None)

    @field_validator("models")
    @classmethod
    def _known_vars(cls, models: dict[str, Any]) -> dict[str, Any]:
        for name, value in models.items():
            problem = check_model_var(name, value)
            if problem:
                raise ValueError(f"{name}: {problem}")
        return models

    def dbt_vars(self) -> dict[str, Any]:
        """The dbt vars these settings give the models (:mod:`flowhouse.flows.modelvars`)."""
        out = model_vars(self.store.timezone, self.events.raw, self.models)
        if self.customer_properties:
            out["customer_properties"] = dict(sorted(self.customer_properties.items()))
        return out

    @property
    def source(self) -> Source:
        """The file these settings were read from (the settings file's name when defaults)."""
        return self._source or Source(SETTINGS_FILE)


def load_settings(flows_dir: Path) -> Settings:
    """The settings in ``flows_dir/_settings.yml``, or the defaults when there is none."""

    path = flows_dir / SETTINGS_FILE
    if not path.exists():
        settings = Settings.model_validate(_with_project_zone({}))
        settings._source = Source(str(path))
        return settings
    try:
        data, lines = read_yaml(path)
    except yaml.YAMLError as err:
        raise YamlSyntaxError(yaml_problem(str(path), err)) from err
    try:
        settings = Settings.model_validate(_with_project_zone(data or {}))
    except ValidationError as err:
        first = err.errors(include_url=False)[0]
        loc = tuple(first["loc"])
        line = next((lines[loc[:n]] for n in range(len(loc), 0, -1) if loc[:n] in lines), None)
        raise ConfigError(
            first["msg"].removeprefix("Value error, "),
            FileLocation(str(path), line, ".".join(map(str, loc))),
            first.get("input") if not isinstance(first.get("input"), dict) else None,
        ) from err
    settings._source = Source(str(path), lines)
    return settings


def _with_project_zone(data: Any) -> Any:
    """The store's time zone, when the settings do not give one: the var ``store_timezone`` of a
    store's own dbt project (so the models and the engine agree)."""
    zone = project_vars().get("store_timezone")
    store = data.get("store", {}) if isinstance(data, dict) else None
    if not zone or not isinstance(store, dict) or "timezone" in store:
        return data
    return {**data, "store": {**store, "timezone": zone}}


def domain_of(address: str) -> str:
    """The domain of an e-mail address, lowercase (what ``sending_domains`` lists)."""
    return address.rpartition("@")[2].strip().lower()


def off_domains(address: str, settings: Settings) -> str | None:
    """Why ``address`` may not send for this store (its domain is not among
    ``delivery.sending_domains``), or None when it may (or no domains are listed)."""
    domains = settings.delivery.sending_domains
    if not domains or domain_of(address) in domains:
        return None
    return (
        f"not on a validated sending domain: {domain_of(address) or '(none)'} is not in "
        f"delivery.sending_domains ({', '.join(domains)}) of {SETTINGS_FILE}"
    )
