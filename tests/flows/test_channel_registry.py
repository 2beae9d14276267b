"""The channel registry (flows/channels.py) is the one list of channels: the literals the flow
language and the settings keep for their JSON schema and for mypy name exactly its channels, and
the dbt models compute exactly the consent, unsubscribe and suppression columns it names."""

from __future__ import annotations

import re
from typing import get_args

import pytest

from flowhouse.core.paths import MODELS
from flowhouse.flows.channels import (
    CHANNELS,
    Channel,
    ChannelSpec,
    PacedChannel,
    QuietChannel,
    channels,
    names,
)
from flowhouse.flows.dbtmodels import Model, models
from flowhouse.flows.flowfile import Cap, Route
from flowhouse.flows.settings import Settings

#: The customer columns that speak of a channel's consent, unsubscribes or suppression.
CONSENT_LIKE = re.compile(r"^has_\w+_(consent|opt_in)$|^\w+_(unsubscribed|suppressed)_at$")


def _model(name: str) -> Model:
    return next(m for m in models([MODELS]) if m.name == name)


def _documented(name: str) -> set[str]:
    return {str(c["name"]) for c in _model(name).columns}


def test_the_literals_name_the_registrys_channels() -> None:
    where = "flows/channels.py: the literal {} must list the registry's {}"
    assert get_args(Channel) == tuple(CHANNELS), where.format("Channel", "channels")
    assert get_args(PacedChannel) == names(paced=True), where.format("PacedChannel", "paced ones")
    assert get_args(QuietChannel) == names(quiet_hours=True), where.format(
        "QuietChannel", "channels with quiet hours"
    )
    assert get_args(Cap.model_fields["channel"].annotation) == (*names(paced=True), "any")


def test_the_settings_take_the_paced_and_quiet_channels_only() -> None:
    smart = dict.fromkeys(names(paced=True), "1h")
    quiet = {name: {"start": "21:00", "end": "08:00"} for name in names(quiet_hours=True)}
    settings = Settings.model_validate({"smart_sending": smart, "quiet_hours": quiet})
    assert set(settings.quiet_hours) == set(names(quiet_hours=True))
    for name in names(quiet_hours=False):
        with pytest.raises(ValueError, match="quiet_hours"):
            Settings.model_validate({"quiet_hours": {name: {"start": "21:00", "end": "08:00"}}})


def test_the_shipped_defaults_come_from_the_registry() -> None:
    settings = Settings()
    for spec in CHANNELS.values():
        assert settings.delivery.routes[spec.name] == spec.route
        assert settings.smart_sending.get(spec.name) == spec.smart_sending  # type: ignore[call-overload]


@pytest.mark.parametrize("spec", CHANNELS.values(), ids=list(CHANNELS))
def test_each_channel_is_described_whole(spec: ChannelSpec) -> None:
    assert spec.route in get_args(Route), f"{spec.name}: route {spec.route!r} is no provider"
    assert spec.label and spec.noun and spec.icon and spec.endings, spec.name
    assert all(e.endswith(".j2") for e in spec.endings), spec.name
    assert spec.output_chars > 0
    if spec.quiet_hours or spec.flow_smart_sending or spec.smart_sending:
        assert spec.paced, f"{spec.name}: quiet hours and smart sending are for paced channels"
    assert not (spec.consent and spec.opt_out), f"{spec.name}: an opt-in or an opt-out, not both"


def test_customer_attributes_expose_exactly_the_registrys_consent_columns() -> None:
    """A new channel without its consent SQL (or a model column no channel names) fails here."""
    documented = {c for c in _documented("customer_attributes") if CONSENT_LIKE.match(c)}
    named = {column for spec in CHANNELS.values() for column in spec.customer_columns()}
    assert not named - documented, (
        f"core.customer_attributes documents no {sorted(named - documented)}: the channel "
        "registry (flows/channels.py) names them; add their SQL to models/customers/ and document "
        "them in customer_attributes.yml"
    )
    assert not documented - named, (
        f"core.customer_attributes has {sorted(documented - named)}, which no channel of "
        "flows/channels.py names (consent, opt_out, suppression)"
    )


def test_the_address_columns_are_customer_attributes() -> None:
    documented = _documented("customer_attributes")
    for spec in CHANNELS.values():
        for column in (spec.address, spec.device_address):
            assert column is None or column in documented, f"{spec.name}: {column}"


def test_consent_and_suppression_models_carry_every_channel() -> None:
    """The consent events' channels (int_customer_consent, incremental: its columns are carried
    by name from one build to the next) and the suppressions (int_customer_suppression)."""
    from_events = [c.name for c in channels(consent=True) if c.device_address is None]
    columns = [
        f"last_{name}_{kind}_at" for name in from_events for kind in ("opted_in", "unsubscribed")
    ]
    consent = _documented("int_customer_consent")
    assert not set(columns) - consent, f"int_customer_consent.yml lacks {set(columns) - consent}"
    sql = (_model("int_customer_consent").yml.with_suffix(".sql")).read_text()
    carried = [c for c in columns if f"'{c}'" not in sql]
    assert not carried, (
        f"int_customer_consent.sql does not carry {carried} from build to build (its list of "
        "columns kept by an incremental build)"
    )
    suppressed = {c.suppressed_column for c in channels(suppression=True)}
    documented = {
        c for c in _documented("int_customer_suppression") if c.endswith("_suppressed_at")
    }
    assert documented == suppressed
