"""The report's diagram names WhatsApp and Viber steps and draws each with its own icon."""

from __future__ import annotations

import xml.etree.ElementTree as ET

from flowhouse.flows.flowfile import Flow
from flowhouse.report.diagram import _ICONS, FlowNumbers, layout, svg

SID = "HX" + "0" * 32


def test_whatsapp_and_viber_steps_are_named_and_drawn() -> None:
    flow = Flow.model_validate({
        "flow": "chat", "name": "Chat", "trigger": {"event": "cart_abandoned"},
        "steps": [
            {"id": "wa", "send": {"channel": "whatsapp", "template": "t.txt.j2", "content_sid": SID}},
            {"id": "vb", "send": {"channel": "viber", "template": "t.txt.j2"}},
        ],
    })  # fmt: skip
    diagram = layout(flow, FlowNumbers())
    titles = {b.card.step_id: b.card.title for b in diagram.nodes if b.card.step_id}
    assert "WhatsApp" in " ".join(titles["wa"]) and "Viber" in " ".join(titles["vb"])
    drawn = svg(diagram, "Diagram of chat")
    root = ET.fromstring(drawn)
    paths = {p.get("d") for p in root.iter("path")}
    assert _ICONS["whatsapp"] in paths and _ICONS["viber"] in paths
