"""Every flow of the shipped library previewed for a generated customer (`flowhouse generate` +
`flowhouse build`): each send and action step renders, with its file; coupon sends show the
placeholder code; and each flow's test send reaches the fake provider as previewed (every e-mail
and SMS, to the seed addresses, marked [TEST])."""

from __future__ import annotations

import html
from collections.abc import Iterator
from pathlib import Path

import pytest
from click.testing import CliRunner

from flowhouse.activation.fake.common import EXCERPT
from flowhouse.activation.fake.server import FakeProvider, running
from flowhouse.activation.fake.settings import FakeSettings
from flowhouse.cli import cli
from flowhouse.core.paths import FLOWS
from flowhouse.core.warehouse import Warehouse
from flowhouse.flows.compile import CompiledFlow
from flowhouse.flows.load import load_flows
from flowhouse.preview import PREVIEW_COUPON
from flowhouse.testsend import TEST_PREFIX, sample_customer

FLOWS_LIST, _ = load_flows(FLOWS)
SEED_EMAIL, SEED_PHONE = "seed@example.org", "+15555550100"


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


@pytest.fixture(scope="module")
def fake() -> Iterator[FakeProvider]:
    """One fake provider for every test send of the module."""
    with running(FakeSettings()) as server:
        yield server


@pytest.mark.parametrize("flow", FLOWS_LIST, ids=lambda f: f.id)
def test_every_library_flow_renders_and_test_sends_as_previewed(
    store: tuple[str, dict[str, str]], fake: FakeProvider, flow: CompiledFlow, tmp_path: Path
) -> None:
    warehouse, customers = store
    flow_id = flow.id
    common = ["--customer", customers[flow_id], "--warehouse", warehouse]
    out = run("preview", flow_id, *common, "--out", str(tmp_path))
    assert "FAILED to render" not in out
    steps = [s for s in flow.steps if s.kind in ("send", "action")]
    files = {p.stem: p for p in tmp_path.iterdir() if p.name != "index.html"}
    assert sorted(files) == sorted(s.step_id for s in steps)
    for s in steps:
        template = str(s.params.get("template", ""))  # a message shows as its template renders
        expected = (".html" if template.endswith(".html.j2") else ".txt") if template else ".json"
        assert files[s.step_id].suffix == expected, s.step_id
        if s.params.get("coupon_pool"):
            assert PREVIEW_COUPON in files[s.step_id].read_text(), s.step_id
    assert "end: " in out or "refused" in out or "not enrolled" in out

    channels = {s.step_id: s.params.get("channel") for s in steps}
    emails = [files[i] for i, c in channels.items() if c == "email"]
    texts = [files[i] for i, c in channels.items() if c == "sms"]
    before = len(fake.state.messages())
    run("test-send", flow_id, "--to", SEED_EMAIL, "--to", SEED_PHONE, *common,
        "--provider-url", fake.url)  # fmt: skip
    received = fake.state.messages()[before:]
    mails = [r for r in received if r.provider == "sendgrid"]
    sms = [r for r in received if r.provider == "twilio"]
    assert len(mails) == len(emails) and len(sms) == len(texts), out
    index = (tmp_path / "index.html").read_text()
    for mail in mails:
        assert mail.address == SEED_EMAIL and (mail.subject or "").startswith(TEST_PREFIX)
        assert html.escape((mail.subject or "").removeprefix(TEST_PREFIX)) in index
        assert any(mail.body == p.read_text()[:EXCERPT] for p in emails)
    for text in sms:
        assert text.address == SEED_PHONE and (text.body or "").startswith(TEST_PREFIX)
        body = (text.body or "").removeprefix(TEST_PREFIX)
        assert any(p.read_text().startswith(body[: EXCERPT - len(TEST_PREFIX)]) for p in texts)
