"""``flowhouse validate`` knows the store's names, so what would fail silently is an error.

Each case is a flows folder with one mistake a new user makes: a misspelt event type, segment,
list or event property, a literal of the wrong type, an undefined name in a subject or preheader,
a YAML error. ``validate`` must report exactly the expected lines, and the tick must refuse the
same folder with the same problems before it touches the warehouse.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from click.testing import CliRunner, Result

from flowhouse.cli import cli
from flowhouse.core.paths import FLOWS
from flowhouse.flows.load import read_flows

FLOW = """\
flow: f
name: F
trigger:
  event: first_purchase
  where: "event.value >= 10"
audience:
  where: "customer.order_count >= 1"
exit:
  events: [repeat_purchase]
steps:
  - id: hi
    send:
      channel: email
      template: t.html.j2
      subject: "Thanks, {{ customer.first_name }}"
      preheader: "Order {{ event.order_id }}"
"""
SETTINGS = "store: {postal_address: 1 Main St}\n"
TEMPLATE = '{% extends "_layout.html.j2" %}{% block body %}Hi{% endblock %}'

EVENTS = "(a store's own types are declared in events.custom in _settings.yml)"
SEGMENTS = (
    "(segments are the dbt models with meta: {segment: <name>}: engaged_non_buyers, "
    "high_discount_sensitivity, lapsed_customers, vip, wholesale)"
)

# (case, replace this in FLOW, with that, settings, the problems validate prints after "f.yml:")
CASES = [
    ("trigger type typo", "event: first_purchase", "event: first_purchse", SETTINGS,
     ["4: trigger.event: unknown event type: nothing produces it, so the flow would never enroll; "
      f"did you mean first_purchase, repeat_purchase? {EVENTS} (got 'first_purchse')"]),
    ("trigger nothing produces", "event: first_purchase", "event: order_shiped", SETTINGS,
     ["4: trigger.event: unknown event type: nothing produces it, so the flow would never enroll; "
      f"did you mean order_shipped, order_placed, order_delivered? {EVENTS} (got 'order_shiped')"]),
    ("exit event typo", "[repeat_purchase]", "[repeat_purchace]", SETTINGS,
     [f"9: exit.events.0: unknown event type; did you mean repeat_purchase, first_purchase? "
      f"{EVENTS} (got 'repeat_purchace')"]),
    ("goal event typo", "exit:", "goal: {event: order_placd}\nexit:", SETTINGS,
     [f"8: goal.event: unknown event type; did you mean order_placed, order_shipped? "
      f"{EVENTS} (got 'order_placd')"]),
    ("segment typo", "audience:\n", "audience:\n  segment: viip\n", SETTINGS,
     [f"7: audience.segment: no such segment; did you mean vip? {SEGMENTS} (got 'viip')"]),
    ("list typo", "audience:\n", "audience:\n  list: newslettr\n", SETTINGS + "lists: [newsletter]\n",
     ["7: audience.list: no such list; did you mean newsletter? (lists: newsletter; declare the "
      "lists customers join in lists: in _settings.yml) (got 'newslettr')"]),
    ("unknown property", "event.value >= 10", "event.valeu >= 10", SETTINGS,
     ["5: trigger.where: first_purchase events have no property valeu; did you mean value? "
      "(got 'valeu')"]),
    ("number compared with text", "event.value >= 10", "event.value >= 'ten'", SETTINGS,
     ["5: trigger.where: event.value is a number, compared with the text 'ten' (got 'ten')"]),
    ("customer boolean compared with text", "customer.order_count >= 1",
     "customer.is_wholesale = 'yes'", SETTINGS,
     ["7: audience.where: customer.is_wholesale is a boolean, compared with the text 'yes' "
      "(got 'yes')"]),
    ("customer text compared with a number", "customer.order_count >= 1", "customer.tier in ('vip', 3)",
     SETTINGS, ["7: audience.where: customer.tier is a text, compared with the number 3 (got 3)"]),
    ("entry key not a property", "audience:", "entry: {key: order}\naudience:", SETTINGS,
     ["6: entry.key: first_purchase events have no property order; did you mean order_id? "
      "(got 'order')"]),
    ("subject undefined attribute", "Thanks, {{ customer.first_name }}",
     "Hi {{ customer.firstname }}", SETTINGS,
     ["15: steps.0.send.subject: unknown attribute customer.firstname; did you mean first_name? "
      "(got 'Hi {{ customer.firstname }}')"]),
    ("preheader: every problem", "Order {{ event.order_id }}",
     "{{ custmer.first_name }} {{ event.ordr_id }}", SETTINGS,
     ["16: steps.0.send.preheader: undefined variable 'custmer'; did you mean customer? "
      "(got '{{ custmer.first_name }} {{ event.ordr_id }}')",
      "16: steps.0.send.preheader: unknown attribute event.ordr_id; did you mean order_id? "
      "(got '{{ custmer.first_name }} {{ event.ordr_id }}')"]),
    ("subject syntax error", "Thanks, {{ customer.first_name }}", "Thanks, {{ customer.first_name }",
     SETTINGS, ["15: steps.0.send.subject: syntax error: unexpected '}' "
                "(got 'Thanks, {{ customer.first_name }')"]),
    ("coupon in a subject without a pool", "Thanks, {{ customer.first_name }}", "{{ coupon.code }}",
     SETTINGS, ["15: steps.0.send.subject: coupon is only defined when the send step names a "
                "coupon_pool (got '{{ coupon.code }}')"]),
    ("flow file YAML error", "  events: [repeat_purchase]", "  events: [repeat_purchase", SETTINGS,
     ["10:6: not valid YAML: expected ',' or ']', but got ':' "
      "(while parsing a flow sequence)"]),
]  # fmt: skip


def _folder(tmp_path: Path, flow: str, settings: str) -> Path:
    folder = tmp_path / "flows"
    (folder / "templates").mkdir(parents=True)
    for name in ("_layout.html.j2", "_macros.html.j2"):
        shutil.copy(FLOWS / "templates" / name, folder / "templates")
    (folder / "templates" / "t.html.j2").write_text(TEMPLATE)
    (folder / "_settings.yml").write_text(settings)
    (folder / "f.yml").write_text(flow)
    return folder


def run(*args: str) -> Result:
    return CliRunner().invoke(cli, list(args))


def test_the_base_flow_is_valid(tmp_path: Path) -> None:
    result = run("validate", str(_folder(tmp_path, FLOW, SETTINGS)))
    assert result.exit_code == 0, result.output


@pytest.mark.parametrize(
    ("case", "old", "new", "settings", "expected"), CASES, ids=[c[0] for c in CASES]
)
def test_validate_reports_it_and_the_tick_refuses_it(
    tmp_path: Path, case: str, old: str, new: str, settings: str, expected: list[str]
) -> None:
    assert old in FLOW
    folder = _folder(tmp_path, FLOW.replace(old, new, 1), settings)
    file = folder / "f.yml"
    wanted = [f"{file}:{line}" for line in expected]

    validated = run("validate", str(folder))
    assert validated.exit_code == 1
    printed = [line for line in validated.output.splitlines() if line.startswith(str(folder))]
    assert printed == wanted

    ticked = run("tick", "--warehouse", str(tmp_path / "w.duckdb"), "--flows", str(folder),
                 "--no-build", "--no-send")  # fmt: skip
    assert ticked.exit_code != 0
    assert all(line in ticked.output for line in wanted), ticked.output
    assert not (tmp_path / "w.duckdb").exists()  # stopped before the warehouse


# (case, settings, the problem validate prints after "_settings.yml:")
SETTINGS_CASES = [
    ("YAML error", SETTINGS + "events: {custom: [a, b}\n",
     "2:23: not valid YAML: expected ',' or ']', but got '}' (while parsing a flow sequence)"),
    ("custom type that is flowhouse's", SETTINGS + "events: {custom: [order_placed]}\n",
     "2: events.custom.0: order_placed is a flowhouse event type already (docs/events.md) "
     "(got 'order_placed')"),
    ("extra properties of an unknown type", SETTINGS + "events: {properties: {ordr_placed: {x: text}}}\n",
     "2: events.properties: ordr_placed: not a flowhouse event type (did you mean order_placed?); "
     "a store's own types (events.custom) take any property"),
    ("extra property of an unknown kind", SETTINGS + "events: {properties: {order_placed: {x: money}}}\n",
     "2: events.properties.order_placed.x: Input should be 'text', 'number', 'boolean', 'timestamp', "
     "'list' or 'object' (got 'money')"),
]  # fmt: skip


@pytest.mark.parametrize(
    ("case", "settings", "expected"), SETTINGS_CASES, ids=[c[0] for c in SETTINGS_CASES]
)
def test_settings_problems_are_located(
    tmp_path: Path, case: str, settings: str, expected: str
) -> None:
    folder = _folder(tmp_path, FLOW, settings)
    validated = run("validate", str(folder))
    assert validated.exit_code == 1
    assert f"{folder / '_settings.yml'}:{expected}" in validated.output.splitlines()
    ticked = run("tick", "--warehouse", str(tmp_path / "w.duckdb"), "--flows", str(folder),
                 "--no-build", "--no-send")  # fmt: skip
    assert ticked.exit_code != 0
    assert f"{folder / '_settings.yml'}:{expected}" in ticked.output


# What a store declares is accepted: its own event types (any property), the properties it sends
# beyond the contract, its lists and the lists its flows add customers to.
VALID = [
    ("a custom trigger type, any property", "event: first_purchase\n  where: \"event.value >= 10\"",
     "event: loyalty_signup\n  where: \"event.anything = 'x'\"",
     SETTINGS + "events: {custom: [loyalty_signup]}\n"),
    ("an extra property", "event.value >= 10", "event.gift_wrap = true and event.value >= 10",
     SETTINGS + "events: {properties: {first_purchase: {gift_wrap: boolean}}}\n"),
    ("a declared list", "audience:\n", "audience:\n  list: newsletter\n",
     SETTINGS + "lists: [newsletter]\n"),
    ("a timestamp compared with ISO text", "event.value >= 10", "event.occurred_at >= '2026-01-01'",
     SETTINGS),
    ("a wait_for predicate on the awaited type", "steps:\n",
     "steps:\n  - id: w\n    wait_for: {event: order_shipped, timeout: 1d, where: \"event.carrier = 'ups'\"}\n",
     SETTINGS),
]  # fmt: skip


@pytest.mark.parametrize(("case", "old", "new", "settings"), VALID, ids=[c[0] for c in VALID])
def test_what_the_store_declares_is_valid(
    tmp_path: Path, case: str, old: str, new: str, settings: str
) -> None:
    assert old in FLOW
    folder = _folder(tmp_path, FLOW.replace(old, new, 1), settings)
    result = run("validate", str(folder))
    assert result.exit_code == 0, result.output


def test_a_list_another_flow_adds_to_is_known(tmp_path: Path) -> None:
    audience = FLOW.replace("audience:\n", "audience:\n  list: vip_club\n")
    folder = _folder(tmp_path, audience, SETTINGS)
    adder = FLOW.replace("flow: f", "flow: g").replace(
        "steps:\n", "steps:\n  - id: join\n    action: {type: add_to_list, list: vip_club}\n"
    )
    (folder / "g.yml").write_text(adder)
    assert read_flows([folder]).problems == []


def test_a_sync_file_yaml_error_has_line_and_column(tmp_path: Path) -> None:
    folder = _folder(tmp_path, FLOW, SETTINGS)
    (folder / "syncs").mkdir()
    (folder / "syncs" / "s.yml").write_text("sync: s\nname: [a\n")
    result = run("validate", str(folder))
    assert result.exit_code == 1
    assert f"{folder / 'syncs' / 's.yml'}:3:1: not valid YAML: " in result.output
