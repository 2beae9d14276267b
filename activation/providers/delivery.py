"""The provider sections of ``delivery`` in ``_settings.yml``, validated with each provider's own
model: :func:`delivery_problems` lists what is wrong, located at ``file:line`` with the dotted
field (``flowhouse validate`` reports them); :func:`provider_configs` gives the typed
configurations sending uses, or raises the first problem as a :class:`ConfigError`.

A provider's default from address (``from_email``, written or not) must be on one of the
store's validated sending domains (``delivery.sending_domains``), as a flow's own sender must
(:mod:`flowhouse.flows.load`)."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

from pydantic import ValidationError

from flowhouse.activation.providers import PROVIDERS
from flowhouse.activation.providers.audience.config import Audience
from flowhouse.activation.providers.config import ProviderConfig
from flowhouse.activation.providers.fcm.config import Fcm
from flowhouse.activation.providers.klaviyo.config import Klaviyo
from flowhouse.activation.providers.onsite.config import Onsite
from flowhouse.activation.providers.sendgrid.config import SendGrid
from flowhouse.activation.providers.spree.config import Spree
from flowhouse.activation.providers.twilio.config import Twilio
from flowhouse.activation.providers.vonage.config import Vonage
from flowhouse.activation.providers.webhook.config import Webhook
from flowhouse.core.errors import ConfigError, FileLocation
from flowhouse.flows.files import Problem
from flowhouse.flows.settings import Settings, Source, off_domains

SECTION = "delivery"


@dataclass(frozen=True)
class ProviderConfigs:
    """Every provider's configuration (defaults for a section not written)."""

    sendgrid: SendGrid = field(default_factory=SendGrid)
    twilio: Twilio = field(default_factory=Twilio)
    klaviyo: Klaviyo = field(default_factory=Klaviyo)
    webhook: Webhook = field(default_factory=Webhook)
    audience: Audience = field(default_factory=Audience)
    vonage: Vonage = field(default_factory=Vonage)
    fcm: Fcm = field(default_factory=Fcm)
    onsite: Onsite = field(default_factory=Onsite)
    spree: Spree = field(default_factory=Spree)

    def __getitem__(self, name: str) -> ProviderConfig:
        config: ProviderConfig = getattr(self, name)
        return config


def delivery_problems(settings: Settings) -> list[Problem]:
    """Every problem in the provider sections of ``settings``, located."""
    found: list[Problem] = []
    for checked in _validated(settings).values():
        found += [] if isinstance(checked, ProviderConfig) else checked
    return found + _off_domains(settings)


def provider_configs(settings: Settings) -> ProviderConfigs:
    """The typed provider configurations of ``settings``; the first problem is raised."""
    found: dict[str, Any] = {}
    for name, checked in _validated(settings).items():
        if not isinstance(checked, ProviderConfig):
            raise _error(checked[0])
        found[name] = checked
    off = _off_domains(settings)
    if off:
        raise _error(off[0])
    return ProviderConfigs(**found)


def _validated(settings: Settings) -> dict[str, ProviderConfig | list[Problem]]:
    """Each written section as its config, or its problems (an unknown name is one)."""
    return {
        name: _section(settings.source, name, raw)
        for name, raw in settings.delivery.sections.items()
    }


def _off_domains(settings: Settings) -> list[Problem]:
    """Providers whose default from address is off the store's sending domains."""
    found = []
    for name in PROVIDERS:
        raw = settings.delivery.sections.get(name) or {}
        checked = _section(settings.source, name, raw)
        address = getattr(checked, "from_email", None)
        problem = off_domains(address, settings) if isinstance(address, str) else None
        if problem:
            loc = (SECTION, name, "from_email")
            line = settings.source.line(loc) or settings.source.line((SECTION, "sending_domains"))
            found.append(Problem(settings.source.file, line, _dotted(loc), problem, address))
    return found


def _section(source: Source, name: str, raw: Any) -> ProviderConfig | list[Problem]:
    if name not in PROVIDERS:
        return [_unknown(source, name)]
    try:
        return PROVIDERS[name].config.model_validate(raw)
    except ValidationError as err:
        return list(_problems(source, name, err))


def _unknown(source: Source, name: str) -> Problem:
    known = ", ".join(sorted(PROVIDERS))
    loc = (SECTION, name)
    return Problem(source.file, source.line(loc), _dotted(loc), f"unknown provider ({known})")


def _problems(source: Source, name: str, err: ValidationError) -> Iterator[Problem]:
    for e in err.errors(include_url=False):
        loc = (SECTION, name, *e["loc"])
        value = e.get("input")
        value = None if isinstance(value, dict) else value
        yield Problem(source.file, source.line(loc), _dotted(loc), e["msg"], value)


def _dotted(loc: tuple[str | int, ...]) -> str:
    return ".".join(map(str, loc))


def _error(problem: Problem) -> ConfigError:
    where = FileLocation(problem.file, problem.line, problem.field)
    return ConfigError(problem.message, where, problem.value)
