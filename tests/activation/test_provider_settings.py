"""The provider sections of ``delivery`` in ``_settings.yml``: held as written by the flow
language, validated by activation with each provider's model, every problem located."""

from __future__ import annotations

from pathlib import Path

import pytest
from click.testing import CliRunner

from flowhouse.activation.providers import PROVIDERS
from flowhouse.activation.providers.delivery import delivery_problems, provider_configs
from flowhouse.activation.providers.sendgrid.config import SendGrid
from flowhouse.cli import cli
from flowhouse.core.errors import ConfigError
from flowhouse.flows.settings import load_settings
from flowhouse.flows.validate import validate_paths

SETTINGS = """\
store: {postal_address: 1 Main St}
delivery:
  routes: {email: sendgrid}
  sendgrid:
    from_email: shop@example.com
    concurrency: 0
  twilio: {from_number: "+15550100"}
"""
FLOW = "flow: f\nname: F\ntrigger: {event: order_placed}\nsteps:\n  - {id: a, wait: 1h}\n"


def folder(tmp_path: Path, settings: str) -> Path:
    (tmp_path / "_settings.yml").write_text(settings)
    (tmp_path / "f.yml").write_text(FLOW)
    return tmp_path


def test_sections_are_typed_by_their_provider(tmp_path: Path) -> None:
    text = SETTINGS.replace("concurrency: 0", "concurrency: 2")
    configs = provider_configs(load_settings(folder(tmp_path, text)))
    assert configs.sendgrid == SendGrid(from_email="shop@example.com", concurrency=2)
    assert configs.twilio.from_number == "+15550100"
    assert configs["klaviyo"] == PROVIDERS["klaviyo"].config()


def test_a_bad_field_is_located_at_its_line(tmp_path: Path) -> None:
    settings = load_settings(folder(tmp_path, SETTINGS))
    [problem] = delivery_problems(settings)
    assert str(problem).startswith(
        f"{tmp_path / '_settings.yml'}:6: delivery.sendgrid.concurrency: Input should be"
    )
    with pytest.raises(ConfigError, match=r"_settings.yml:6: delivery.sendgrid.concurrency"):
        provider_configs(settings)


def test_an_unknown_provider_is_located_and_the_known_ones_listed(tmp_path: Path) -> None:
    text = SETTINGS.replace("concurrency: 0", "concurrency: 1") + "  sendgird: {}\n"
    [problem] = delivery_problems(load_settings(folder(tmp_path, text)))
    assert (problem.line, problem.field) == (8, "delivery.sendgird")
    assert problem.message == (
        "unknown provider (audience, fcm, klaviyo, onsite, sendgrid, spree, twilio, vonage, webhook)"
    )


def test_validate_reports_provider_sections_when_given_the_check(tmp_path: Path) -> None:
    flows = folder(tmp_path, SETTINGS)
    assert validate_paths([flows])[0] == []  # the flow language alone knows no provider
    problems, _ = validate_paths([flows], checks=[delivery_problems])
    assert [(p.line, p.field) for p in problems] == [(6, "delivery.sendgrid.concurrency")]
    result = CliRunner().invoke(cli, ["validate", str(flows)])
    assert result.exit_code == 1
    assert "_settings.yml:6: delivery.sendgrid.concurrency:" in result.output


DOMAINS = """\
store: {postal_address: 1 Main St}
delivery:
  sending_domains: [shop.example]
  sendgrid: {from_email: hello@other.example}
"""
SENDER_FLOW = (
    "flow: f\nname: F\ntrigger: {event: cart_abandoned}\nsender:\n  name: Shop\n  email: news@%s\n"
    "steps:\n  - {id: a, wait: 1h}\n"
)


@pytest.mark.parametrize(
    ("flow_domain", "from_email", "expected"),
    [
        ("shop.example", "hello@shop.example", []),
        (
            "shop.example",
            "hello@other.example",
            ["_settings.yml:4: delivery.sendgrid.from_email: not on a validated sending domain: "
             "other.example is not in delivery.sending_domains (shop.example) of _settings.yml "
             "(got 'hello@other.example')"],
        ),
        (
            "Other.example",
            "hello@shop.example",
            ["f.yml:6: sender.email: not on a validated sending domain: other.example is not in "
             "delivery.sending_domains (shop.example) of _settings.yml "
             "(got 'news@Other.example')"],
        ),
    ],
)  # fmt: skip
def test_from_addresses_must_be_on_a_sending_domain(
    tmp_path: Path, flow_domain: str, from_email: str, expected: list[str]
) -> None:
    (tmp_path / "_settings.yml").write_text(DOMAINS.replace("hello@other.example", from_email))
    (tmp_path / "f.yml").write_text(SENDER_FLOW % flow_domain)
    result = CliRunner().invoke(cli, ["validate", str(tmp_path)])
    found = [line.replace(f"{tmp_path}/", "") for line in result.output.splitlines()[:-1]]
    assert found == expected
    assert result.exit_code == (1 if expected else 0)


def test_no_sending_domains_listed_checks_nothing(tmp_path: Path) -> None:
    text = "store: {postal_address: 1 Main St}\ndelivery: {sendgrid: {from_email: a@b.example}}\n"
    (tmp_path / "_settings.yml").write_text(text)
    assert delivery_problems(load_settings(tmp_path)) == []


def test_a_sending_domain_must_be_a_domain(tmp_path: Path) -> None:
    text = "delivery:\n  sending_domains: [hello@shop.example]\n"
    (tmp_path / "_settings.yml").write_text(text)
    with pytest.raises(ConfigError, match=r"_settings.yml:2: delivery.sending_domains.0: not a"):
        load_settings(tmp_path)
