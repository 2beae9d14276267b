"""Push and onsite steps in the flow language: `title`, `deep_link` and `expires_after` belong to
their channels (elsewhere a located error), are templates checked like a subject, and
`flowhouse validate` accepts a flow that sends on both."""

from __future__ import annotations

from pathlib import Path

import pytest
from click.testing import CliRunner

from flowhouse.cli import cli
from flowhouse.flows.files import parse_flow

FLOW = """\
flow: cart_nudges
name: Cart nudges
trigger: {event: cart_abandoned}
steps:
  - id: nudge
    send: {channel: push, template: nudge.txt.j2, title: "Hi {{ customer.first_name }}", deep_link: "acme://cart/{{ event.cart_id }}"}
  - id: banner
    send: {channel: onsite, template: banner.html.j2, title: Saved, deep_link: /cart, expires_after: 2d}
"""

# (case, replace this, with that, field, message fragment)
BAD = [
    ("title on e-mail", "channel: push", "channel: email", "steps.0.send", "title is for push and onsite messages, not email"),
    ("expiry on push", "title: \"Hi", "expires_after: 1d, title: \"Hi", "steps.0.send", "expires_after is for onsite messages, not push"),
    ("bad expiry", "expires_after: 2d", "expires_after: soon", "steps.1.send.expires_after", "not a duration"),
]  # fmt: skip


@pytest.mark.parametrize(("case", "old", "new", "field", "message"), BAD, ids=[b[0] for b in BAD])
def test_channel_fields_are_checked(
    tmp_path: Path, case: str, old: str, new: str, field: str, message: str
) -> None:
    path = tmp_path / "flow.yml"
    path.write_text(FLOW.replace(old, new, 1))
    flow, problems = parse_flow(path)
    assert flow is None
    assert [(p.line, p.field) for p in problems] == [(6 if "steps.0" in field else 8, field)]
    assert message in problems[0].message


def folder(tmp_path: Path, text: str) -> Path:
    (tmp_path / "templates").mkdir()
    (tmp_path / "templates" / "nudge.txt.j2").write_text("Your cart misses you")
    (tmp_path / "templates" / "banner.html.j2").write_text("<p>Saved for you</p>")
    (tmp_path / "_settings.yml").write_text("store: {postal_address: 1 Main St}\n")
    (tmp_path / "flow.yml").write_text(text)
    return tmp_path


def test_validate_accepts_push_and_onsite(tmp_path: Path) -> None:
    result = CliRunner().invoke(cli, ["validate", str(folder(tmp_path, FLOW))])
    assert result.exit_code == 0, result.output


def test_validate_checks_title_and_deep_link_as_templates(tmp_path: Path) -> None:
    bad = FLOW.replace("{{ event.cart_id }}", "{{ event.cart_idd }}").replace(
        "customer.first_name", "customer.first_nam"
    )
    result = CliRunner().invoke(cli, ["validate", str(folder(tmp_path, bad))])
    assert result.exit_code == 1
    assert "steps.0.send.title" in result.output and "first_nam" in result.output
    assert "steps.0.send.deep_link" in result.output and "cart_idd" in result.output


def test_quiet_hours_for_onsite_are_refused(tmp_path: Path) -> None:
    flows = folder(tmp_path, FLOW)
    (flows / "_settings.yml").write_text(
        "store: {postal_address: 1 Main St}\nquiet_hours: {onsite: {start: '21:00', end: '08:00'}}\n"
    )
    result = CliRunner().invoke(cli, ["validate", str(flows)])
    assert result.exit_code == 1
    assert "quiet_hours.onsite" in result.output
