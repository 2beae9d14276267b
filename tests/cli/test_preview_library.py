"""Every flow of the shipped library previewed for a generated customer (`flowhouse generate` +
`flowhouse build`): each send and action step renders, with its file; coupon sends show the
placeholder code; and a test send of a library flow reaches the fake provider as previewed."""

from __future__ import annotations

import html
from pathlib import Path

import pytest
from click.testing import CliRunner

from activation.fake.common import EXCERPT
from activation.fake.server import running
from activation.fake.settings import FakeSettings
from flowhouse.cli import cli
from flowhouse.core.paths import FLOWS
from flowhouse.core.warehouse import Warehouse
from flowhouse.preview import PREVIEW_COUPON
from flowhouse.testsend import sample_customer
from flows.compile import CompiledFlow
from flows.load import load_flows

FLOWS_LIST, _ = load_flows(FLOWS)


def run(*args: str) -> str:
    result = CliRunner().invoke(cli, list(args))
    assert result.exit_code == 0, result.output
    return result.output


@pytest.fixture(scope="module")
def store(tmp_path_factory: pytest.TempPathFactory) -> tuple[str, dict[str, str]]:
    """A generated, built store, and for each library flow the customer of its latest trigger."""
    warehouse = str(tmp_path_factory.mktemp("library") / "store.duckdb")
    run("generate", "--warehouse", warehouse, "--customers", "1000", "--days", "30")
    run("build", "--warehouse", warehouse, "--skip-tests")
    with Warehouse.open(warehouse) as wh:
        customers = {f.id: sample_customer(wh, f) for f in FLOWS_LIST}
    return warehouse, customers


@pytest.mark.parametrize("flow", FLOWS_LIST, ids=lambda f: f.id)
def test_every_library_flow_renders(
    store: tuple[str, dict[str, str]], flow: CompiledFlow, tmp_path: Path
) -> None:
    warehouse, customers = store
    flow_id = flow.id
    out = run("preview", flow_id, "--customer", customers[flow_id], "--warehouse", warehouse,
              "--out", str(tmp_path))  # fmt: skip
    assert "FAILED to render" not in out
    steps = [s for s in flow.steps if s.kind in ("send", "action")]
    files = {p.stem: p for p in tmp_path.iterdir() if p.name != "index.html"}
    assert sorted(files) == sorted(s.step_id for s in steps)
    for s in steps:
        expected = {"sms": ".txt", "push": ".txt", "email": ".html"}.get(s.params.get("channel"))
        assert files[s.step_id].suffix == (expected or ".json"), s.step_id
        if s.params.get("coupon_pool"):
            assert PREVIEW_COUPON in files[s.step_id].read_text(), s.step_id
    assert "end: " in out or "refused" in out or "not enrolled" in out


def test_library_test_send_matches_preview(
    store: tuple[str, dict[str, str]], tmp_path: Path
) -> None:
    warehouse, customers = store
    common = ["--customer", customers["welcome"], "--warehouse", warehouse]
    run("preview", "welcome", *common, "--out", str(tmp_path))
    with running(FakeSettings()) as fake:
        out = run("test-send", "welcome", "--to", "seed@example.org", *common,
                  "--provider-url", fake.url)  # fmt: skip
        received = {r.subject: r for r in fake.state.messages() if r.provider == "sendgrid"}
    index = (tmp_path / "index.html").read_text()
    emails = [p for p in tmp_path.glob("*.html") if p.name != "index.html"]
    assert len(received) == len(emails) > 0, out
    for subject, mail in received.items():
        assert subject is not None and subject.startswith("[TEST] ")
        assert html.escape(subject.removeprefix("[TEST] ")) in index
        assert mail.address == "seed@example.org"
        assert any(mail.body == p.read_text()[:EXCERPT] for p in emails)
