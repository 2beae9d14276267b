"""``validate`` on the filters of issue 18: an audience or filter outside a segment or a list, and
a filter or suppression on the customer's recent events; each mistake at file:line with the
field, the value and a suggestion."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from click.testing import CliRunner

from flowhouse.cli import cli
from flowhouse.core.paths import FLOWS
from flowhouse.flows.flowfile import Audience, Filter, Flow
from flowhouse.report.labels import trigger_label
from flowhouse.status import explain_exit

FLOW = """\
flow: f
name: F
trigger:
  event: first_purchase
audience:
  not_segment: vip
  not_list: newsletter
filter:
  where: "customer.order_count >= 1"
  not_segment: wholesale
  no_recent_event: [order_refunded, support_ticket_opened]
  within: 14d
suppress:
  recent_event: order_refunded
  within: 7d
steps:
  - id: hi
    send: {channel: email, template: t.html.j2, subject: Hi}
"""
SETTINGS = "store: {postal_address: 1 Main St}\nlists: [newsletter]\n"
SEGMENTS = (
    "(segments are the dbt models with meta: {segment: <name>}: engaged_non_buyers, "
    "high_discount_sensitivity, lapsed_customers, vip, wholesale)"
)
LISTS = "(lists: newsletter; declare the lists customers join in lists: in _settings.yml)"
EVENTS = "(a store's own types are declared in events.custom in _settings.yml)"

# (case, replace this in FLOW, with that, the problems validate prints after "f.yml:")
CASES = [
    ("audience not_segment typo", "not_segment: vip", "not_segment: viip",
     [f"6: audience.not_segment: no such segment; did you mean vip? {SEGMENTS} (got 'viip')"]),
    ("audience not_list typo", "not_list: newsletter", "not_list: newslettr",
     [f"7: audience.not_list: no such list; did you mean newsletter? {LISTS} (got 'newslettr')"]),
    ("filter not_segment typo", "not_segment: wholesale", "not_segment: wholesal",
     [f"10: filter.not_segment: no such segment; did you mean wholesale? {SEGMENTS} "
      "(got 'wholesal')"]),
    ("filter recent event typo", "[order_refunded, support", "[order_refundd, support",
     ["11: filter.no_recent_event.0: unknown event type; did you mean order_refunded, "
      f"order_delivered, order_placed? {EVENTS} (got 'order_refundd')"]),
    ("filter where unknown column", "customer.order_count >= 1", "customer.order_cnt >= 1",
     ["9: filter.where: unknown column customer.order_cnt; did you mean order_count, "
      "last_order_at, first_order_at? (got 'order_cnt')"]),
    ("suppress without within", "  within: 7d\n", "",
     ["13: suppress: recent_event and within go together: e.g. recent_event: order_refunded, "
      "within: 14d"]),
    ("suppress bad window", "within: 7d", "within: 7 days",
     ["15: suppress.within: '7 days' is not a duration; expected e.g. 30m, 1h, 2d, "
      "1w or 1d12h (got '7 days')"]),
    ("suppress unknown field", "  within: 7d\n", "  within: 7d\n  recent: x\n",
     ["16: suppress.recent: unknown field; check the spelling (docs/flows.md lists every field) "
      "(got 'x')"]),
]  # fmt: skip


def _folder(tmp_path: Path, flow: str) -> Path:
    folder = tmp_path / "flows"
    (folder / "templates").mkdir(parents=True)
    for name in ("_layout.html.j2", "_macros.html.j2"):
        shutil.copy(FLOWS / "templates" / name, folder / "templates")
    (folder / "templates" / "t.html.j2").write_text(
        '{% extends "_layout.html.j2" %}{% block body %}Hi{% endblock %}'
    )
    (folder / "_settings.yml").write_text(SETTINGS)
    (folder / "f.yml").write_text(flow)
    return folder


def test_the_base_flow_is_valid(tmp_path: Path) -> None:
    result = CliRunner().invoke(cli, ["validate", str(_folder(tmp_path, FLOW))])
    assert result.exit_code == 0, result.output


@pytest.mark.parametrize(("case", "old", "new", "expected"), CASES, ids=[c[0] for c in CASES])
def test_validate_locates_it(
    tmp_path: Path, case: str, old: str, new: str, expected: list[str]
) -> None:
    assert old in FLOW
    folder = _folder(tmp_path, FLOW.replace(old, new, 1))
    result = CliRunner().invoke(cli, ["validate", str(folder)])
    assert result.exit_code == 1
    printed = [line for line in result.output.splitlines() if line.startswith(str(folder))]
    assert printed == [f"{folder / 'f.yml'}:{line}" for line in expected]


def test_unset_new_fields_leave_a_flows_version_alone() -> None:
    """A flow that does not use them dumps as before, so its version does not change."""
    base = {"flow": "f", "name": "F", "trigger": {"event": "first_purchase"},
            "filter": "customer.order_count > 0",
            "steps": [{"id": "w", "wait": "1h"}]}  # fmt: skip
    dumped = Flow.model_validate(base).model_dump(mode="json", by_alias=True)
    assert dumped["audience"] == {"where": None, "segment": None, "list": None}
    assert dumped["filter"] == "customer.order_count > 0"
    assert Audience(not_segment="vip").model_dump()["not_segment"] == "vip"
    assert "no_recent_event" not in Filter().model_dump()


def test_status_and_report_name_the_object_forms() -> None:
    spec = {"filter": {"where": None, "not_segment": "vip", "no_recent_event": ["order_refunded"],
                       "within": "14d"}}  # fmt: skip
    assert explain_exit("filter", spec) == (
        "the flow filter (not_segment: vip, no_recent_event: ['order_refunded'], within: 14d) "
        "no longer held before a send"
    )
    flow = Flow.model_validate(
        {
            "flow": "f",
            "name": "F",
            "trigger": {"event": "first_purchase"},
            "audience": {"not_segment": "vip", "not_list": "newsletter"},
            "steps": [{"id": "w", "wait": "1h"}],
        }
    )
    assert trigger_label(flow).detail == ("audience: not segment vip and not list newsletter",)
