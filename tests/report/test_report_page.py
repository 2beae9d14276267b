"""The written report, read back as HTML: one section per live flow with the marts' numbers, the
results in words, the reasons, one diagram per flow, and nothing loaded from outside the file."""

from __future__ import annotations

import re
from collections import defaultdict
from html.parser import HTMLParser
from pathlib import Path

import pytest
from click.testing import CliRunner
from report_fixture import (
    DEPLOYED_AT,
    GENERATED_AT,
    LIVE,
    compiled_flows,
    deploy_flows,
    expected_total,
)

from flowhouse.cli import cli
from flowhouse.core.state import ensure_state
from flowhouse.core.warehouse import Location, Warehouse
from flowhouse.report import read_report_data, write_report
from flowhouse.report.page import render_page

M = "\u2212"


class Page(HTMLParser):
    """What the tests look at: text per flow section, diagrams and nodes per section, and every
    attribute or style that could load something."""

    def __init__(self, html: str) -> None:
        super().__init__()
        self.sections: list[str] = []
        self.text: dict[str, list[str]] = defaultdict(list)
        self.diagrams: dict[str, int] = defaultdict(int)
        self.nodes: dict[str, int] = defaultdict(int)
        self.links: list[tuple[str, str, str]] = []
        self.tags: list[str] = []
        self.styles: list[str] = []
        self._in_style = False
        self._section = "top"
        self.feed(html)

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        a = dict(attrs)
        classes = (a.get("class") or "").split()
        self.tags.append(tag)
        if tag == "section" and "flow" in classes:
            self._section = str(a["id"])
            self.sections.append(self._section)
        if tag == "svg" and "diagram" in classes:
            self.diagrams[self._section] += 1
        if tag == "g" and "node" in classes:
            self.nodes[self._section] += 1
        for name, value in attrs:
            if name in ("src", "href", "xlink:href", "srcset", "action", "poster", "data",
                        "formaction", "background") and value is not None:  # fmt: skip
                self.links.append((tag, name, value))
            if name == "style" and value:
                self.styles.append(value)
        self._in_style = tag == "style"

    def handle_endtag(self, tag: str) -> None:
        self._in_style = False

    def handle_data(self, data: str) -> None:
        if self._in_style:
            self.styles.append(data)
        self.text[self._section].append(data)

    def section(self, flow_id: str) -> str:
        return " ".join(" ".join(self.text[f"flow-{flow_id}"]).split())

    @property
    def overview(self) -> str:
        return " ".join(" ".join(self.text["top"]).split())


@pytest.fixture(scope="module")
def page(report_page: Path) -> Page:
    return Page(report_page.read_text(encoding="utf-8"))


def test_one_section_per_live_flow_ordered_by_revenue(page: Page) -> None:
    # attributed revenue: cart 5,400.50 > welcome 760 > post-purchase 240 > wholesale 0
    assert page.sections == [
        "flow-cart_abandonment", "flow-welcome", "flow-post_purchase", "flow-wholesale_approval",
    ]  # fmt: skip
    assert "Birthday" not in page.overview  # removed: not in the report, nor in the totals
    assert "99,999" not in page.overview


def test_one_diagram_per_flow_with_a_node_per_step(page: Page) -> None:
    for flow in compiled_flows(LIVE):
        anchor = f"flow-{flow.id}"
        assert page.diagrams[anchor] == 1
        assert page.nodes[anchor] == len(flow.steps)


def test_overview_numbers_come_from_the_marts(page: Page) -> None:
    text = page.overview
    assert "Data Sep 24–30, 2026" in text
    assert "Generated Oct 1, 2026 06:00 UTC" in text
    # all live flows: 390 + 240 + 161 + 5 enrolled (the removed flow's 999 left out)
    assert "Enrolled 796" in text
    row = re.search(r"Abandoned cart cart_abandonment (.*?) Welcome series", text)
    assert row is not None
    assert row.group(1) == (
        "Lifting 390 700 107 $5,400 +1.5 points 95% CI 0.4–2.6 $1,840 95% CI $310 to $3,370"
    )
    assert "Post-purchase post_purchase Too early 161" in text
    assert "Wholesale approval wholesale_approval No holdout 5" in text
    assert f"{expected_total('cart_abandonment', 'enrolled'):,.0f}" == "390"


def test_flow_header_numbers(page: Page) -> None:
    cart = page.section("cart_abandonment")
    assert cart.startswith("Abandoned cart Lifting A cart left without an order.")
    assert "Trigger cart_abandoned where event.value >= 10" in cart
    assert "Goal order_placed within 5 days" in cart
    assert "Holdout 10%" in cart
    assert "Enrolled 390 40 held out" in cart
    assert "Messages sent 700 693 delivered" in cart
    # revenue per recipient: 5,400.50 over 300 distinct recipients in marts.message_facts
    assert "Revenue per recipient $18.00 300 recipients" in cart
    assert "Revenue per recipient $5.07 150 recipients" in page.section("welcome")


def test_results_in_words(page: Page) -> None:
    cart = page.section("cart_abandonment")
    assert (
        "Treatment converted 8.0% against 6.5% for the 10% holdout: +1.5 points, ~23 incremental "
        "orders and $1,840 incremental revenue" in cart
    )
    assert "question beat plain by 2.1 points (12.3% vs 10.2%), 95% CI 0.8–3.4, p = 0.003." in cart
    assert "Last-touch revenue $5,400" in cart and "Incremental revenue $1,840" in cart
    assert "the honest measure" in cart
    welcome = page.section("welcome")
    assert "No clear difference yet: grid converted 11.0% and featured 10.2%" in welcome
    assert "No clear lift yet" in welcome
    assert "Too few holdout enrollees to tell: 12 so far" in page.section("post_purchase")
    assert "This flow has no holdout" in page.section("wholesale_approval")


def test_reasons_with_their_meaning(page: Page) -> None:
    cart = page.section("cart_abandonment")
    # consent skips are summed over days: 70 + 50
    assert "consent no marketing consent for the channel 120" in cart
    assert "order_placed placed an order (an exit event of the flow) 45" in cart
    assert "concurrency already walking this flow" in cart
    assert "Nobody was refused, skipped or left early." in page.section("post_purchase")


def test_the_page_loads_nothing_from_outside(page: Page, report_page: Path) -> None:
    html = report_page.read_text(encoding="utf-8")
    assert page.links, "the overview links to each flow's section"
    assert all(value.startswith("#") for _, _, value in page.links), page.links
    assert not {"link", "img", "iframe", "object", "embed", "video", "audio"} & set(page.tags)
    css = " ".join(page.styles)
    assert "url(" not in css.replace("url(#", "") and "@import" not in css
    assert not re.search(r"<script[^>]*\bsrc=", html)
    assert "fetch(" not in html and "XMLHttpRequest" not in html
    # a webhook URL in a flow's action is shown as text, never as a link
    assert "https://erp.example/hooks/wholesale-approved" in html.replace("&#34;", '"')


def test_the_page_reads_without_its_script(report_page: Path) -> None:
    html = report_page.read_text(encoding="utf-8")
    scripts = re.findall(r"<script>(.*?)</script>", html, re.S)
    assert len(scripts) == 1
    # the script only measures: it writes data attributes, never content
    assert "innerHTML" not in scripts[0] and "appendChild" not in scripts[0]
    assert 'setAttribute("data-' in scripts[0]


def test_a_warehouse_without_marts_still_gets_a_report(tmp_path: Path) -> None:
    location = Location.parse(str(tmp_path / "bare.duckdb"))
    with Warehouse.open(location) as wh:
        ensure_state(wh, "flowhouse")
        deploy_flows(wh, compiled_flows(["cart_abandonment"]), DEPLOYED_AT)
    page = Page(write_report(location, tmp_path / "out", now=GENERATED_AT).read_text())
    assert "Not built yet: marts.flow_daily, marts.flow_steps" in page.overview
    assert page.sections == ["flow-cart_abandonment"]
    assert page.nodes["flow-cart_abandonment"] == 16
    assert "no data" in page.section("cart_abandonment")
    assert "No holdout enrollees yet" in page.section("cart_abandonment")


def test_the_report_command(marts_warehouse: Location, tmp_path: Path) -> None:
    out = tmp_path / "report"
    result = CliRunner().invoke(
        cli, ["report", "--warehouse", str(marts_warehouse), "--out", str(out), "--no-build"]
    )
    assert result.exit_code == 0, result.output
    assert result.output.strip() == f"wrote {out / 'index.html'}"
    assert "Abandoned cart" in (out / "index.html").read_text()


def test_the_report_command_without_a_warehouse(tmp_path: Path) -> None:
    missing = tmp_path / "nowhere.duckdb"
    result = CliRunner().invoke(
        cli, ["report", "--warehouse", str(missing), "--out", str(tmp_path)]
    )
    assert result.exit_code == 1
    assert "Error: no warehouse there" in result.output
    assert not missing.exists()


@pytest.mark.postgres
def test_postgres_reads_what_duckdb_reads(pg_url: str, marts_warehouse: Location) -> None:
    from report_fixture import build

    build(Location.parse(pg_url))
    on_postgres = render_page(read_report_data(pg_url, now=GENERATED_AT))
    on_duckdb = render_page(read_report_data(marts_warehouse, now=GENERATED_AT))
    assert on_postgres == on_duckdb
    assert "question beat plain" in on_postgres
