"""Flow files: every problem reported at once, each at file:line with field, value and expectation."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from click.testing import CliRunner

from flowhouse.cli import cli
from flowhouse.flows.files import parse_flow
from flowhouse.flows.flowfile import Flow, parse_duration
from flowhouse.flows.predicates import check_predicate, event_and_customer

GOOD = """\
flow: cart_abandonment
name: Abandoned cart
trigger:
  event: cart_abandoned
  where: "event.value >= 20"
audience:
  where: "customer.tier <> 'vip'"
entry:
  reentry: after 7d
  key: cart_id
exit:
  events: [order_placed]
holdout: 10%
max_lateness: 12h
steps:
  - id: wait_1h
    wait: 1h
  - id: reminder
    send:
      channel: email
      template: cart/reminder.html.j2
      subject: You left something behind
  - id: by_margin
    branch:
      - when: "event.margin_pct >= 0.4"
        steps:
          - id: offer
            send: {channel: email, template: cart/offer.html.j2}
      - else: true
        steps: []
"""


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "flow.yml"
    path.write_text(text)
    return path


def test_a_good_flow_parses(tmp_path: Path) -> None:
    flow, problems = parse_flow(write(tmp_path, GOOD))
    assert problems == []
    assert flow is not None
    assert flow.holdout == pytest.approx(0.1)
    assert flow.entry.reentry_after == parse_duration("7d")
    assert [s.id for s in flow.steps] == ["wait_1h", "reminder", "by_margin"]


# (case, replace this, with that, expected line, field, message fragment)
BAD = [
    ("unknown field", "  where: \"event.value >= 20\"", "  wher: x", 5, "trigger.wher", "unknown field"),
    ("bad duration", "    wait: 1h", "    wait: soon", 17, "steps.0.wait", "not a duration"),
    ("bad channel", "      channel: email", "      channel: fax", 20, "steps.1.send.channel", "'email'"),
    ("bad step id", "  - id: reminder", "  - id: Reminder", 18, "steps.1.id", "pattern"),
    ("no step kind", "    wait: 1h", "    wiat: 1h", 16, "steps.0", "exactly one of"),
    ("holdout over 100%", "holdout: 10%", "holdout: 150%", 13, "holdout", "less than or equal to 1"),
    ("bad reentry", "  reentry: after 7d", "  reentry: sometimes", 9, "entry.reentry", "pattern"),
    ("unknown column", "customer.tier <> 'vip'", "customer.teir <> 'vip'", 7, "audience.where", "did you mean tier"),
    ("subquery", "customer.tier <> 'vip'", "(select 1) = 1", 7, "audience.where", "only an expression"),
    ("file reading", "event.value >= 20", "read_csv('/etc/passwd') is null", 5, "trigger.where", "not allowed"),
    ("not boolean", "event.value >= 20", "event.value + 1", 5, "trigger.where", "boolean expression"),
    ("unqualified column", "event.value >= 20", "value >= 20", 5, "trigger.where", "needs its table"),
    ("duplicate step id", "          - id: offer", "          - id: reminder", 27, "steps.2.branch.0.steps.0.id", "duplicate step id"),
    ("else not last", "      - else: true\n        steps: []", "      - else: true\n        steps: []\n      - when: customer.has_ordered", 29, "steps.2.branch.1", "else: must be the last"),
]  # fmt: skip


@pytest.mark.parametrize(
    ("case", "old", "new", "line", "field", "message"), BAD, ids=[b[0] for b in BAD]
)
def test_bad_flow_files(
    tmp_path: Path, case: str, old: str, new: str, line: int, field: str, message: str
) -> None:
    assert old in GOOD
    flow, problems = parse_flow(write(tmp_path, GOOD.replace(old, new, 1)))
    assert flow is None
    assert [(p.line, p.field) for p in problems] == [(line, field)], problems
    assert message in problems[0].message


def test_every_problem_is_reported_at_once(tmp_path: Path) -> None:
    text = GOOD.replace("wait: 1h", "wait: soon").replace("channel: email", "channel: fax", 1)
    _, problems = parse_flow(write(tmp_path, text.replace("holdout: 10%", "holdout: 2")))
    assert {p.field for p in problems} == {"steps.0.wait", "steps.1.send.channel", "holdout"}


def test_yaml_syntax_error_is_located(tmp_path: Path) -> None:
    _, problems = parse_flow(write(tmp_path, "flow: x\nname: [unclosed\n"))
    assert problems and problems[0].line is not None and "not valid YAML" in problems[0].message


def write_templates(flows_dir: Path) -> None:
    """What GOOD names beside it: its templates (on the shipped layout) and a postal address."""
    from flowhouse.core.paths import FLOWS

    (flows_dir / "templates" / "cart").mkdir(parents=True)
    shutil.copy(FLOWS / "templates" / "_layout.html.j2", flows_dir / "templates")
    for name in ("reminder", "offer"):
        body = '{% extends "_layout.html.j2" %}{% block body %}Hi{% endblock %}'
        (flows_dir / "templates" / "cart" / f"{name}.html.j2").write_text(body)
    (flows_dir / "_settings.yml").write_text("store: {postal_address: 1 Main St}\n")


def test_validate_command_exit_codes(tmp_path: Path) -> None:
    good = tmp_path / "good" / "flow.yml"
    good.parent.mkdir()
    good.write_text(GOOD)
    write_templates(good.parent)
    result = CliRunner().invoke(cli, ["validate", str(good.parent)])
    assert result.exit_code == 0, result.output
    bad = write(tmp_path, GOOD.replace("wait: 1h", "wait: soon"))
    result = CliRunner().invoke(cli, ["validate", str(bad)])
    assert result.exit_code == 1
    assert f"{bad}:17: steps.0.wait:" in result.output


def test_schema_is_valid_json_schema_for_the_model() -> None:
    result = CliRunner().invoke(cli, ["schema"])
    assert result.exit_code == 0
    schema = json.loads(result.output)
    assert schema["title"] == "flowhouse flow file"
    assert {"flow", "name", "trigger", "steps"} <= set(schema["required"])
    assert schema == json.loads(json.dumps(Flow.model_json_schema(by_alias=True) | {
        "$schema": schema["$schema"], "title": schema["title"]}))  # fmt: skip


@pytest.mark.parametrize(
    "sql",
    ["customer.order_count > 0 and event.value between 1 and 5", "customer.has_ordered",
     "lower(customer.email) like '%@example.com'", "not (event.sku in ('a', 'b'))"],
)  # fmt: skip
def test_good_predicates(sql: str) -> None:
    assert check_predicate(sql, event_and_customer()) == []


@pytest.mark.parametrize(
    "sql",
    ["1; drop table raw.events", "customer.tier = 'a' or exists (select 1)", "getenv('HOME') = ''",
     "current_setting('x') = ''", "query('select 1') is null", "read_parquet('x') is null"],
)  # fmt: skip
def test_hostile_predicates_are_refused(sql: str) -> None:
    assert check_predicate(sql, event_and_customer()) != []


@pytest.mark.parametrize(
    ("text", "seconds"),
    [("30m", 1800), ("1h", 3600), ("2d", 172800), ("1w", 604800), ("1d12h", 129600)],
)
def test_durations(text: str, seconds: int) -> None:
    assert parse_duration(text).total_seconds() == seconds


def test_the_published_schema_is_current() -> None:
    from flowhouse.core.paths import CHECKOUT
    from flowhouse.flows.validate import json_schema

    published = (CHECKOUT / "docs" / "flow.schema.json").read_text()
    assert published == json_schema() + "\n", "run: flowhouse schema --out docs/flow.schema.json"


def test_validate_names_a_missing_folder_and_an_empty_one(tmp_path: Path) -> None:
    missing = tmp_path / "nope"
    result = CliRunner().invoke(cli, ["validate", "--flows", str(missing)])
    assert result.exit_code == 1
    assert f"{missing}: no such file or folder" in result.output
    empty = tmp_path / "empty"
    empty.mkdir()
    result = CliRunner().invoke(cli, ["validate", "--flows", str(empty)])
    assert result.exit_code == 0
    assert f"no flow files (*.yml, *.yaml) in {empty}" in result.output


@pytest.mark.parametrize(
    ("action", "field", "message"),
    [
        ("{type: add_tag}", "steps.1.action", "type add_tag needs tag:"),
        ("{type: webhook, url: 'https://x.example', tag: vip}", "steps.1.action.tag",
         "tag: does not apply to webhook (it takes url)"),
        ("{type: set_property, property: x}", "steps.1.action", "type set_property needs value:"),
        ("{type: coupon, pool: nope}", "steps.1.action.pool", "no such coupon pool"),
        ("{type: add_tag, tag: vip, expires_in: 30d}", "steps.1.action.expires_in",
         "expires_in: does not apply to add_tag (it takes tag)"),
        ("{type: change_tier, tier: auto, expires_in: 30d}", "steps.1.action.expires_in",
         "expires_in: tier auto clears the override; there is nothing to expire"),
        ("{type: change_tier, tier: gold, expires_in: 0s}", "steps.1.action.expires_in",
         "expires_in: must be a positive duration"),
        ("{type: change_tier, tier: gold, expires_in: soon}", "steps.1.action.expires_in",
         "'soon' is not a duration"),
    ],
)  # fmt: skip
def test_actions_need_their_own_fields(
    tmp_path: Path, action: str, field: str, message: str
) -> None:
    from flowhouse.flows.validate import validate_paths

    text = "flow: f\nname: F\ntrigger: {event: order_placed}\nsteps:\n  - {id: a, wait: 1h}\n"
    (tmp_path / "f.yml").write_text(text + f"  - id: b\n    action: {action}\n")
    problems, _ = validate_paths([tmp_path])
    assert [(p.line, p.field) for p in problems] == [(7, field)], problems
    assert problems[0].message.startswith(message)
