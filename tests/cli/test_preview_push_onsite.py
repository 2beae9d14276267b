"""`flowhouse preview` of a flow that sends a native push and an onsite message: the path shows
each send on its channel and route, with the customer's device token as the push's address, the
rendered title, and the files a browser opens."""

from __future__ import annotations

import sys
from pathlib import Path

from click.testing import CliRunner

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "engine"))
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "activation"))

from harness import flow
from sending import SEND_SETTINGS, deploy, sending_store

from flowhouse.cli import cli
from flowhouse.core.warehouse import Location

SETTINGS = SEND_SETTINGS.replace("delivery:\n", "delivery:\n  routes: {push: fcm}\n")
NUDGES = flow(
    "nudges",
    steps=[
        {"id": "nudge", "send": {"channel": "push", "template": "t.txt.j2",
                                 "title": "Hi {{ customer.first_name }}", "deep_link": "acme://cart"}},
        {"id": "banner", "send": {"channel": "onsite", "template": "t.html.j2", "title": "Saved"}},
    ],
)  # fmt: skip


def test_preview_shows_push_and_onsite(tmp_path: Path) -> None:
    location = Location.parse(str(tmp_path / "store.duckdb"))
    store = sending_store(location, tmp_path)
    try:
        flows = deploy(store, NUDGES, settings=SETTINGS)
        store.customer("ann", first_name="Ann", push_token="tok-ann", has_push_consent=True)
        store.event("ann", "cart_abandoned", at="2026-03-01 10:00", cart_id="k1")
    finally:
        store.close()
    out = tmp_path / "out"
    result = CliRunner().invoke(cli, [
        "preview", "nudges", "--customer", "ann", "--out", str(out),
        "--warehouse", str(location.path), "--flows", str(flows),
    ])  # fmt: skip
    assert result.exit_code == 0, result.output
    assert "push via fcm" in result.output and "tok-ann" in result.output
    assert "onsite via onsite" in result.output
    assert sorted(p.name for p in out.iterdir()) == ["banner.html", "index.html", "nudge.txt"]
    assert (out / "nudge.txt").read_text().startswith("Hi Ann, your cart misses you")
    assert "Hi Ann" in (out / "index.html").read_text()
