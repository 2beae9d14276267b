"""The store configuration in ``_settings.yml`` that the dbt models read: every mistake is a
located error of ``flowhouse validate`` (and so of the tick, which reads flows the same way)."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from click.testing import CliRunner

from flowhouse.cli import cli
from flowhouse.core.paths import FLOWS
from flowhouse.flows.settings import Settings, load_settings

CASES = [
    ("store:\n  timezone: Asia/Tokio\n", "_settings.yml:2: store.timezone: not an IANA time zone "
     "(did you mean Asia/Tokyo?)"),
    ("events:\n  raw: [cart_abandonned]\n", "_settings.yml:2: events.raw.0: cart_abandonned is not "
     "a derived event type (did you mean cart_abandoned?)"),
    ("events:\n  raw: [order_placed]\n", "order_placed is not a derived event type"),
    ("models:\n  cart_abandon_after_minuts: 30\n", "_settings.yml:1: models: "
     "cart_abandon_after_minuts: no such model setting (a var of dbt_project.yml); did you mean "
     "cart_abandon_after_minutes?"),
    ("models:\n  cart_abandon_after_minutes: soon\n", "cart_abandon_after_minutes: takes a number "
     "(default 60)"),
    ("models:\n  order_milestones: 3\n", "order_milestones: takes a list"),
    ("models:\n  store_timezone: Asia/Tokyo\n", "store_timezone: cannot be set here: set "
     "store.timezone"),
    ("models:\n  derive_cart_abandoned: false\n", "cannot be set here: list the event type under "
     "events.raw"),
    ("models:\n  now: '2026-01-01'\n", "now: cannot be set here"),
]  # fmt: skip


@pytest.mark.parametrize(("text", "expected"), CASES)
def test_bad_store_configuration_is_located(text: str, expected: str, tmp_path: Path) -> None:
    folder = tmp_path / "flows"
    shutil.copytree(FLOWS, folder)
    (folder / "_settings.yml").write_text(text)
    result = CliRunner().invoke(cli, ["validate", str(folder)])
    assert result.exit_code == 1
    assert expected in result.output


def test_the_settings_give_the_models_their_vars(tmp_path: Path) -> None:
    (tmp_path / "_settings.yml").write_text(
        "store: {timezone: Asia/Tokyo}\n"
        "events: {raw: [tier_changed, cart_abandoned]}\n"
        "models: {high_value_order_threshold: 400, cart_abandon_after_minutes: 30}\n"
    )
    assert load_settings(tmp_path).dbt_vars() == {
        "store_timezone": "Asia/Tokyo",
        "derive_cart_abandoned": False,
        "derive_tier_changed": False,
        "cart_abandon_after_minutes": 30,
        "high_value_order_threshold": 400,
    }
    assert Settings().dbt_vars() == {"store_timezone": "UTC"}
