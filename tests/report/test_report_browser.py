"""The written report in a real browser (headless Chromium): every flow's diagram is drawn with a
non-zero size, every step's node is on screen, no two boxes overlap, and the screenshot is a page,
not a blank. Skips only when Chromium is not installed (tests/support/chromium.sh installs it)."""

from __future__ import annotations

import io
import re
from pathlib import Path

import pytest
from browser import chromium, render
from report_fixture import LIVE, compiled_flows

WIDTH, HEIGHT = 1400, 2000

pytestmark = pytest.mark.skipif(
    chromium() is None,
    reason="chromium is not installed (run tests/support/chromium.sh as root to install it)",
)


@pytest.fixture(scope="module")
def rendered(report_page: Path) -> tuple[dict[str, str], bytes]:
    page = render(report_page, WIDTH, HEIGHT)
    body = re.search(r"<body([^>]*)>", page.dom)
    assert body is not None
    return dict(re.findall(r'([\w-]+)="([^"]*)"', body.group(1))), page.screenshot


def test_every_diagram_is_drawn(rendered: tuple[dict[str, str], bytes]) -> None:
    body, _ = rendered
    flows = compiled_flows(LIVE)
    # written by the page's script after load, from getBBox() and the boxes' client rectangles
    assert body["data-diagrams"] == str(len(flows))
    assert body["data-diagrams-rendered"] == str(len(flows))
    assert body["data-nodes-drawn"] == str(sum(len(f.steps) for f in flows))
    assert body["data-overlaps"] == "0"


def test_the_screenshot_is_a_page_not_a_blank(rendered: tuple[dict[str, str], bytes]) -> None:
    from PIL import Image

    _, png = rendered
    image = Image.open(io.BytesIO(png)).convert("RGB")
    assert image.size == (WIDTH, HEIGHT)
    colours = image.getcolors(maxcolors=WIDTH * HEIGHT)
    assert colours is not None
    commonest = max(n for n, _ in colours)
    assert len(colours) > 200  # text, boxes, charts: many shades, not a blank or a single fill
    assert commonest < 0.8 * WIDTH * HEIGHT
    # the dark masthead is at the top, the light page below it
    assert sum(image.getpixel((700, 20))) < 150  # type: ignore[arg-type]
    assert sum(image.getpixel((10, HEIGHT - 10))) > 600  # type: ignore[arg-type]
