"""WhatsApp and Viber steps in the flow language: a marketing WhatsApp step must name its approved
template (Twilio's ContentSid), template fields belong to WhatsApp only, and each problem is
located at file, line and field."""

from __future__ import annotations

from pathlib import Path

import pytest
from click.testing import CliRunner

from flowhouse.cli import cli
from flowhouse.flows.validate import validate_paths

SID = "HX" + "a" * 32


def _flow(tmp_path: Path, send: str, transactional: bool = False) -> Path:
    (tmp_path / "templates").mkdir(exist_ok=True)
    (tmp_path / "templates" / "t.txt.j2").write_text("Hi {{ customer.first_name }}\n")
    (tmp_path / "_settings.yml").write_text("store: {postal_address: 1 Main St}\n")
    head = "flow: f\nname: F\ntrigger: {event: order_placed}\n"
    head += "transactional: true\n" if transactional else ""
    (tmp_path / "f.yml").write_text(
        head + f"steps:\n  - {{id: a, wait: 1h}}\n  - id: b\n    send: {send}\n"
    )
    return tmp_path


@pytest.mark.parametrize(
    ("send", "transactional", "field", "message"),
    [
        ("{channel: whatsapp, template: t.txt.j2}", False, "steps.1.send",
         "a marketing WhatsApp message needs an approved template"),
        ("{channel: whatsapp, template: t.txt.j2, content_sid: HX1}", False,
         "steps.1.send.content_sid", "String should match pattern"),
        (f"{{channel: viber, template: t.txt.j2, content_sid: {SID}}}", False,
         "steps.1.send.content_sid", "content_sid: applies to WhatsApp steps only"),
        ("{channel: whatsapp, template: t.txt.j2, content_variables: {'1': x}}", True,
         "steps.1.send.content_variables", "content_variables needs content_sid"),
        (f"{{channel: whatsapp, template: t.txt.j2, content_sid: {SID}, "
         "content_variables: {'1': '{{ customer.nope }}'}}", False,
         "steps.1.send.content_variables.1", ""),
        ("{channel: viber, template: t.html.j2}", False, "steps.1.send.template", "template"),
    ],
)  # fmt: skip
def test_chat_steps_are_checked(
    tmp_path: Path, send: str, transactional: bool, field: str, message: str
) -> None:
    problems, _ = validate_paths([_flow(tmp_path, send, transactional)])
    line = 8 if transactional else 7  # the send step's line
    found = [(p.file.endswith("f.yml"), p.line, p.field) for p in problems]
    assert found == [(True, line, field)], problems
    assert message in problems[0].message


@pytest.mark.parametrize(
    ("send", "transactional"),
    [
        (f"{{channel: whatsapp, template: t.txt.j2, content_sid: {SID}, "
         "content_variables: {'1': '{{ customer.first_name }}'}}", False),
        ("{channel: whatsapp, template: t.txt.j2}", True),  # free text, in a transactional flow
        ("{channel: viber, template: t.txt.j2}", False),
    ],
)  # fmt: skip
def test_good_chat_steps_validate(tmp_path: Path, send: str, transactional: bool) -> None:
    result = CliRunner().invoke(cli, ["validate", str(_flow(tmp_path, send, transactional))])
    assert result.exit_code == 0, result.output


def test_validate_names_the_file_and_line(tmp_path: Path) -> None:
    folder = _flow(tmp_path, "{channel: whatsapp, template: t.txt.j2}")
    result = CliRunner().invoke(cli, ["validate", str(folder)])
    assert result.exit_code == 1
    assert f"{folder / 'f.yml'}:7: steps.1.send:" in result.output
    assert "approved template" in result.output
