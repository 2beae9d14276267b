"""The flow canvas: every step a box, paths side by side re-joining at the next step, no overlaps,
the library's large flows fit, and the marts' counts on nodes and edges."""

from __future__ import annotations

import itertools
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

from flowhouse.core.paths import FLOWS
from flowhouse.flows.compile import compile_flow
from flowhouse.flows.files import flow_files, parse_flow
from flowhouse.flows.flowfile import Flow
from flowhouse.report.diagram import (
    NODE_W,
    Box,
    Diagram,
    FlowNumbers,
    layout,
    step_stats,
    svg,
    wrap,
)

LIBRARY = flow_files([FLOWS])


def _flow(path: Path) -> Flow:
    flow, problems = parse_flow(path)
    assert flow is not None, problems
    return flow


def _by_step(d: Diagram) -> dict[str, Box]:
    return {b.card.step_id: b for b in d.nodes if b.card.step_id}


def _overlap(a: Box, b: Box) -> bool:
    return a.x < b.x + b.w and b.x < a.x + a.w and a.y < b.y + b.h and b.y < a.y + a.h


def _text(box: Box) -> str:
    return " ".join(
        [
            *box.card.title,
            *box.card.lines,
            *(v + " " + w for line in box.card.stats for v, w in line),
        ]
    )


@pytest.mark.parametrize("path", LIBRARY, ids=lambda p: p.stem)
def test_every_step_is_one_box_and_no_boxes_overlap(path: Path) -> None:
    flow = _flow(path)
    d = layout(flow, FlowNumbers())
    steps = [s.step_id for s in compile_flow(flow).steps]
    assert sorted(str(b.card.step_id) for b in d.nodes) == sorted(steps)
    for a, b in itertools.combinations(d.boxes, 2):
        assert not _overlap(a, b), (a.card.title, b.card.title)
    for b in d.boxes:
        assert b.x >= 0 and b.x + b.w <= d.width
        assert b.y >= 0 and b.y + b.h <= d.height
    roles = [b.card.role for b in d.boxes]
    assert roles.count("terminal") == 2  # the trigger and the end
    assert roles.count("path") == sum(len(p) for p in compile_flow(flow).paths.values())


@pytest.mark.parametrize("name", ["cart_abandonment", "welcome", "post_purchase"])
def test_the_large_library_flows_fit_a_canvas(name: str) -> None:
    d = layout(_flow(FLOWS / f"{name}.yml"), FlowNumbers())
    # three columns of boxes at most: it fits the report's canvas (about 800 px) unscaled or nearly
    assert d.width <= 3 * NODE_W + 2 * 26 + 2 * 18
    assert len(d.nodes) >= 10


def test_paths_stand_side_by_side_in_file_order() -> None:
    d = layout(_flow(FLOWS / "cart_abandonment.yml"), FlowNumbers())
    paths = [b for b in d.boxes if b.card.role == "path"]
    offer = [b for b in paths if b.card.title[0].startswith("If customer.tier")] + [
        b for b in paths if b.card.title == ("Everyone else",) and b.y == paths[-1].y
    ]
    assert len(offer) == 3
    assert len({b.y for b in offer}) == 1
    assert [b.x for b in offer] == sorted(b.x for b in offer)
    assert offer[0].card.lines == () and "0.4" in " ".join(offer[0].card.title)


def test_nested_steps_rejoin_at_the_step_after_the_branch() -> None:
    d = layout(_flow(FLOWS / "cart_abandonment.yml"), FlowNumbers())
    at = _by_step(d)
    split, after = at["reminder"], at["wait_for_push"]
    arms = [at["reminder_plain"], at["reminder_question"]]
    # the arms sit side by side below the split, the next step below both, centred on the split
    assert arms[0].y == arms[1].y > split.y + split.h
    assert arms[0].x + arms[0].w < arms[1].x
    assert after.y > max(a.y + a.h for a in arms)
    assert after.x + after.w / 2 == pytest.approx(split.x + split.w / 2)
    # an edge from each arm runs down to one join point, and one edge goes on into the next step
    join_y = max(p[1] for e in d.edges for p in e.points if e.points[0][1] == arms[0].y + arms[0].h)
    assert split.y + split.h < join_y < after.y
    into = [e for e in d.edges if e.points[-1] == (after.x + after.w / 2, after.y)]
    assert len(into) == 1
    assert into[0].points[0][1] == pytest.approx(join_y)


def test_a_wait_for_whose_paths_end_the_flow_joins_before_the_end() -> None:
    d = layout(_flow(FLOWS / "post_purchase.yml"), FlowNumbers())
    at = _by_step(d)
    end = next(b for b in d.boxes if b.card.kind == "end")
    assert at["settle_in"].x < at["delivery_overdue"].x
    assert at["settle_in"].y == at["delivery_overdue"].y
    assert all(b.y + b.h < end.y for b in d.nodes)
    # the branch nested in the event path: its own two columns, inside that path's column
    assert at["support_check_in"].x < at["cross_sell"].x < at["delivery_overdue"].x


NUMBERS = FlowNumbers(
    steps={
        "reminder_plain": {"reached": 178, "messages_sent": 140, "open_rate": 0.413,
                           "click_rate": 0.065, "messages_skipped": 20, "messages_held_out": 18,
                           "attributed_orders": 12, "attributed_revenue": 1234.5},
        "wait_to_24h": {"reached": 350, "waiting_now": 40, "exited_here": 5},
    },
    paths={("reminder", "plain"): {"enrollments": 178, "share": 0.501},
           ("urgency", "else"): {"enrollments": 204, "share": 0.68}},
    totals={"enrolled": 390, "refused": 21, "completed": 174, "exited": 7},
)  # fmt: skip


def test_counts_and_rates_on_nodes_and_edges() -> None:
    d = layout(_flow(FLOWS / "cart_abandonment.yml"), NUMBERS)
    at = _by_step(d)
    plain = _text(at["reminder_plain"])
    for shown in ("178 reached", "140 sent", "41.3% open", "6.5% click", "20 skipped",
                  "18 held out", "$1,234 from", "12 orders"):  # fmt: skip
        assert shown in plain
    wait = _text(at["wait_to_24h"])
    assert "350 reached" in wait and "40 waiting now" in wait and "5 exited here" in wait
    assert "Wait 20 hours" in wait
    paths = [(" ".join(b.card.title), _text(b)) for b in d.boxes if b.card.role == "path"]
    assert any(
        t == "plain (control)" and "178 took this path" in x and "50.1%" in x for t, x in paths
    )
    # the else path of the first branch (urgency), not the one of the second
    assert next(x for t, x in paths if t == "Everyone else").endswith("204 took this path 68.0% ")
    # the edge into a step carries how many reached it; the one into the end, how many completed
    labels = {e.points[-1]: e.label for e in d.edges}
    box = at["wait_to_24h"]
    assert labels[(box.x + box.w / 2, box.y)] == "350"
    end = next(b for b in d.boxes if b.card.kind == "end")
    assert labels[(end.x + end.w / 2, end.y)] == "174"
    trigger = _text(next(b for b in d.boxes if b.card.kind == "trigger"))
    assert "390 enrolled" in trigger and "10% held out" in trigger and "21 not enrolled" in trigger
    # steps without a row in the marts say so instead of showing zeros
    assert _text(at["last_call"]).endswith("no data ")


def test_step_stats_of_a_send_without_engagement_yet() -> None:
    lines = step_stats("send email", {"reached": 5, "messages_sent": 0})
    assert lines == ((("5", "reached"),), (("0", "sent"),))


def test_step_stats_show_failed_messages() -> None:
    row = {"reached": 379, "messages_sent": 0, "messages_failed": 43, "messages_skipped": 3}
    lines = step_stats("send email", row)
    assert lines == (
        (("379", "reached"),),
        (("0", "sent"),),
        (("43", "failed"),),
        (("3", "skipped"),),
    )


def test_the_svg_is_well_formed_and_escapes_text() -> None:
    flow = Flow.model_validate({
        "flow": "escapes", "name": "Esc", "trigger": {"event": "order_placed"},
        "steps": [{"id": "hello", "send": {"channel": "email", "template": "t.html.j2",
                                           "subject": "<b>Tom & Jerry</b>"}}],
    })  # fmt: skip
    drawn = svg(layout(flow, FlowNumbers()), "Diagram of <Esc>")
    root = ET.fromstring(drawn)
    assert root.tag == "svg"
    nodes = [g for g in root.iter("g") if "node" in g.get("class", "").split()]
    assert [g.get("data-step") for g in nodes] == ["hello"]
    texts = " ".join(t.text or "" for t in root.iter("text"))
    assert "<b>Tom & Jerry</b>" in texts
    assert "<b>" not in drawn and "&lt;b&gt;Tom &amp; Jerry&lt;/b&gt;" in drawn


def test_wrap_keeps_lines_inside_the_width_and_marks_cuts() -> None:
    lines = wrap("customer.tier is distinct from 'vip' and event.margin_pct >= 0.4", 130, 2)
    assert len(lines) == 2
    assert all(len(line) <= 130 / 6.5 for line in lines)
    assert lines[-1].endswith("…")
    assert wrap("short", 130, 2) == ("short",)
