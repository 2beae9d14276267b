"""The one reader of a flows folder: the tick refuses exactly what ``flowhouse validate`` rejects.

Each case is a folder ``validate`` finds a problem in, beyond the flow file on its own (a missing
template, an unknown coupon pool, no postal address, a duplicate id, a bad settings file); the
tick, through the CLI, must stop on the same problems, at the same file and line, before it
touches the warehouse.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from click.testing import CliRunner, Result

from flowhouse.cli import cli
from flowhouse.core.errors import ConfigError
from flowhouse.core.paths import FLOWS
from flowhouse.flows.load import load_flows, read_flows

FLOW = """\
flow: {id}
name: A flow
trigger: {{event: cart_abandoned}}
steps:
  - id: reminder
    send: {{channel: email, template: {template}, subject: Hi{extra}}}
"""
GOOD_TEMPLATE = "cart/reminder.html.j2"
SETTINGS = "store: {postal_address: 1 Main St}\ncoupon_pools: {cart10: {discount: 10%}}\n"

CASES = {
    "missing template": ({"a": FLOW.format(id="a", template="cart/nope.html.j2", extra="")},
                         SETTINGS, "template cart/nope.html.j2: no such template"),
    "unknown coupon pool": ({"a": FLOW.format(id="a", template=GOOD_TEMPLATE,
                                              extra=", coupon_pool: cart99")},
                            SETTINGS, "no such coupon pool"),
    "no postal address": ({"a": FLOW.format(id="a", template=GOOD_TEMPLATE, extra="")},
                          "store: {name: Shop}\n", "needs a postal address"),
    "duplicate flow id": ({"a": FLOW.format(id="same", template=GOOD_TEMPLATE, extra=""),
                           "b": FLOW.format(id="same", template=GOOD_TEMPLATE, extra="")},
                          SETTINGS, "duplicate flow id"),
    "bad settings": ({"a": FLOW.format(id="a", template=GOOD_TEMPLATE, extra="")},
                     "smart_sending: {email: soon}\n", "_settings.yml"),
}  # fmt: skip


def _folder(tmp_path: Path, files: dict[str, str], settings: str) -> Path:
    folder = tmp_path / "flows"
    shutil.copytree(FLOWS / "templates", folder / "templates")
    (folder / "_settings.yml").write_text(settings)
    for name, text in files.items():
        (folder / f"{name}.yml").write_text(text)
    return folder


def run(*args: str) -> Result:
    return CliRunner().invoke(cli, list(args))


@pytest.mark.parametrize("case", CASES)
def test_the_tick_refuses_what_validate_rejects(case: str, tmp_path: Path) -> None:
    files, settings, expected = CASES[case]
    folder = _folder(tmp_path, files, settings)
    problems = [str(p) for p in read_flows([folder]).problems]
    assert problems and any(expected in p for p in problems)

    validated = run("validate", str(folder))
    assert validated.exit_code == 1
    ticked = run("tick", "--warehouse", str(tmp_path / "w.duckdb"), "--flows", str(folder),
                 "--no-build", "--no-send")  # fmt: skip
    assert ticked.exit_code != 0
    for problem in problems:  # the same problems, at the same places
        assert problem in validated.output
        assert problem in ticked.output
    assert not (tmp_path / "w.duckdb").exists()  # stopped before the warehouse


def test_the_library_loads_as_it_validates() -> None:
    found = read_flows([FLOWS])
    assert found.problems == []
    flows, settings = load_flows(FLOWS)
    assert sorted(f.id for f in flows) == sorted(flow.flow for _, flow in found.flows)
    assert settings.store.postal_address


def test_a_missing_folder_is_an_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="no such flows folder"):
        load_flows(tmp_path / "nowhere")
