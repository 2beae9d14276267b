"""``validate`` on custom customer properties (issue 18): ``customer.properties.<key>`` is typed from
``customer_properties`` in ``_settings.yml``; an undeclared key, a literal of another type and a bad
declaration are located errors with a suggestion."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from click.testing import CliRunner
from sqlglot import exp

from flowhouse.cli import cli
from flowhouse.core.paths import FLOWS
from flowhouse.flows.compile import predicate

FLOW = """\
flow: f
name: F
trigger:
  event: first_purchase
audience:
  where: "customer.properties.shoe_size >= 42 and list_contains(customer.tags, 'vip')"
filter: "customer.properties.vip_since < '2026-01-01' and customer.is_eu"
steps:
  - id: hi
    send: {channel: email, template: t.html.j2, subject: Hi}
"""
SETTINGS = """\
store: {postal_address: 1 Main St}
customer_properties:
  shoe_size: number
  vip_since: date
  favourite_store: string
"""
DECLARE = "(declare it under customer_properties in _settings.yml, with its type)"

# (case, replace this, with that, in the flow or the settings, the problems after "<file>:")
CASES = [
    ("unknown key", "shoe_size >= 42", "shoe_sise >= 42", "f.yml",
     [f"6: audience.where: unknown customer property shoe_sise; did you mean shoe_size? {DECLARE} "
      "(got 'customer.properties.shoe_sise')"]),
    ("number compared with text", "shoe_size >= 42", "shoe_size >= 'large'", "f.yml",
     ["6: audience.where: customer.properties.shoe_size is a number, compared with the text "
      "'large' (got 'large')"]),
    ("date compared with a number", "'2026-01-01'", "2026", "f.yml",
     ["7: filter: customer.properties.vip_since is a timestamp, compared with the number 2026 "
      "(got 2026)"]),
    ("undeclared in settings", "  vip_since: date\n", "", "f.yml",
     [f"7: filter: unknown customer property vip_since {DECLARE} "
      "(got 'customer.properties.vip_since')"]),
]  # fmt: skip


def _folder(tmp_path: Path, flow: str = FLOW, settings: str = SETTINGS) -> Path:
    folder = tmp_path / "flows"
    (folder / "templates").mkdir(parents=True)
    for name in ("_layout.html.j2", "_macros.html.j2"):
        shutil.copy(FLOWS / "templates" / name, folder / "templates")
    (folder / "templates" / "t.html.j2").write_text(
        '{% extends "_layout.html.j2" %}{% block body %}Hi{% endblock %}'
    )
    (folder / "_settings.yml").write_text(settings)
    (folder / "f.yml").write_text(flow)
    return folder


def test_the_base_flow_is_valid(tmp_path: Path) -> None:
    result = CliRunner().invoke(cli, ["validate", str(_folder(tmp_path))])
    assert result.exit_code == 0, result.output


@pytest.mark.parametrize(
    ("case", "old", "new", "where", "expected"), CASES, ids=[c[0] for c in CASES]
)
def test_validate_locates_it(
    tmp_path: Path, case: str, old: str, new: str, where: str, expected: list[str]
) -> None:
    in_flow = old in FLOW
    assert in_flow or old in SETTINGS
    folder = _folder(
        tmp_path,
        FLOW.replace(old, new, 1) if in_flow else FLOW,
        SETTINGS if in_flow else SETTINGS.replace(old, new, 1),
    )
    result = CliRunner().invoke(cli, ["validate", str(folder)])
    assert result.exit_code == 1
    printed = [line for line in result.output.splitlines() if line.startswith(str(folder))]
    assert printed == [f"{folder / where}:{line}" for line in expected]


@pytest.mark.parametrize(
    ("declaration", "message"),
    [
        ("shoe_size: integer", "customer_properties.shoe_size"),
        ("Shoe-Size: number", "customer_properties"),
    ],
)
def test_a_bad_declaration_is_located(tmp_path: Path, declaration: str, message: str) -> None:
    settings = SETTINGS.replace("shoe_size: number", declaration)
    result = CliRunner().invoke(cli, ["validate", str(_folder(tmp_path, settings=settings))])
    assert result.exit_code == 1
    assert f"_settings.yml:3: {message}" in result.output, result.output


def test_models_cannot_set_the_declared_properties(tmp_path: Path) -> None:
    settings = SETTINGS + "models: {customer_properties: {a: number}}\n"
    result = CliRunner().invoke(cli, ["validate", str(_folder(tmp_path, settings=settings))])
    assert result.exit_code == 1
    assert "declare them under customer_properties" in result.output


def test_a_property_compiles_to_its_typed_column() -> None:
    tree = predicate("customer.properties.shoe_size >= 42")
    assert tree.sql(dialect="postgres") == "(customer.properties__shoe_size >= 42)"
    assert isinstance(tree.this, exp.GTE)


def test_a_route_for_an_unknown_channel_is_located(tmp_path: Path) -> None:
    """A typo in delivery.routes would silently push nothing to the shop: it is an error."""
    settings = SETTINGS + "delivery:\n  routes: {email: sendgrid, add_tags: webhook}\n"
    result = CliRunner().invoke(cli, ["validate", str(_folder(tmp_path, settings=settings))])
    assert result.exit_code == 1
    assert "_settings.yml:7: delivery.routes: add_tags: not a channel or an action type; " in (
        result.output
    ), result.output
    assert "did you mean add_tag?" in result.output
