"""`flowhouse preview` and `flowhouse test-send` through the CLI on a scenario store: the path a
customer takes through waits and a branch, the rendered files, the copy the fake provider
received against the preview, the test_sends log, the live state left untouched, and the errors.

Expected values come from the scenario (its times, its addresses, the engine's id contract),
never from the command's own output."""

from __future__ import annotations

import hashlib
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest
from click.testing import CliRunner, Result

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "engine"))
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "activation"))

from harness import EMAIL, SMS, flow
from sending import SEND_SETTINGS, deploy, sending_store

from flowhouse.activation.fake.common import EXCERPT
from flowhouse.activation.fake.server import running
from flowhouse.activation.fake.settings import FakeSettings
from flowhouse.cli import cli
from flowhouse.core.warehouse import Location, Warehouse
from flowhouse.preview import sms_segments

CART = flow(
    "cart",
    steps=[
        {"id": "reminder", "send": {**EMAIL, "subject": "Your cart"}},
        {"id": "wait_1d", "wait": "1d"},
        {
            "id": "nudge",
            "branch": [
                {"when": "customer.has_sms_consent", "steps": [{"id": "nudge_sms", "send": SMS}]},
                {"else": True, "steps": [
                    {"id": "nudge_email", "send": {**EMAIL, "subject": "Still there?"}}]},
            ],
        },
    ],
    entry={"reentry": "always", "key": "cart_id"},
    exit={"events": ["order_placed"]},
)  # fmt: skip

ABANDONED = "2026-03-01 10:00"


def md5(text: str) -> str:
    return hashlib.md5(text.encode()).hexdigest()


@dataclass
class Scenario:
    warehouse: str
    flows: Path
    events: dict[str, str]


def build(location: Location, folder: Path) -> Scenario:
    """bob (SMS consent) and cat (e-mail only) abandon a cart; cat orders the next morning, which
    ends her enrollment; eve never abandons one."""
    store = sending_store(location, folder)
    try:
        flows = deploy(store, CART, settings=SEND_SETTINGS)
        store.customer("bob", first_name="Bob", phone="+15550001111", sms_consent=True)
        store.customer("cat", first_name="Cat")
        store.customer("eve", first_name="Eve")
        events = {
            name: store.event(name, "cart_abandoned", at=ABANDONED, cart_id=f"k-{name}")
            for name in ("bob", "cat")
        }
        events["cat_order"] = store.event("cat", "order_placed", at="2026-03-02 08:00")
    finally:
        store.close()
    return Scenario(str(location.path or location.url), flows, events)


@pytest.fixture(scope="module")
def scenario(tmp_path_factory: pytest.TempPathFactory) -> Scenario:
    folder = tmp_path_factory.mktemp("preview")
    return build(Location.parse(str(folder / "store.duckdb")), folder)


def invoke(scenario: Scenario, *args: str) -> Result:
    common = ["--warehouse", scenario.warehouse, "--flows", str(scenario.flows)]
    return CliRunner().invoke(cli, [*args, *common])


def preview(scenario: Scenario, customer: str, out: Path, *more: str) -> str:
    result = invoke(scenario, "preview", "cart", "--customer", customer, "--out", str(out), *more)
    assert result.exit_code == 0, result.output
    return result.output


def live_state(scenario: Scenario) -> tuple[int, int, int]:
    with Warehouse.open(scenario.warehouse) as wh:
        return (wh.count("flowhouse.enrollments"), wh.count("flowhouse.decisions"),
                wh.count("flowhouse.messages"))  # fmt: skip


def test_path_through_waits_and_a_branch(scenario: Scenario, tmp_path: Path) -> None:
    out = preview(scenario, "bob", tmp_path)
    lines = [line.strip() for line in out.splitlines()]
    trigger = scenario.events["bob"]
    assert f"trigger: cart_abandoned event {trigger} at {ABANDONED}" in out
    path = [line for line in lines if " | " in line]
    assert [line.split(" | ")[0].strip() for line in path] == [ABANDONED] * 2 + [
        "2026-03-02 10:00"
    ] * 4
    assert [line.split(" | ")[1].strip() for line in path] == [
        "_entry (entry)", "reminder (send)", "wait_1d (wait)", "nudge (branch)",
        "nudge_sms (send)", "_end (end)",
    ]  # fmt: skip
    assert "enrolled in the treatment group" in path[0]
    assert "took path 1: its condition was the first to match" in path[3]
    assert "queued in the outbox" in path[4]
    assert "end: completed 2026-03-02 10:00: reached the end of the flow" in lines
    # the engine's message id contract: md5(md5(flow:event):step)
    assert md5(f"{md5(f'cart:{trigger}')}:reminder") in out
    assert live_state(scenario) == (0, 0, 0), "nothing is written to the live state"


def test_path_explains_an_exit(scenario: Scenario, tmp_path: Path) -> None:
    out = preview(scenario, "cat", tmp_path)
    assert "exited: a order_placed event after entry ended the enrollment" in out
    assert "nudge_email" not in out.split("messages and actions")[0]


def test_files_a_browser_opens(scenario: Scenario, tmp_path: Path) -> None:
    out = preview(scenario, "bob", tmp_path)
    assert sorted(p.name for p in tmp_path.iterdir()) == [
        "index.html", "nudge_email.html", "nudge_sms.txt", "reminder.html",
    ]  # fmt: skip
    reminder = (tmp_path / "reminder.html").read_text()
    assert "<p>Hi Bob</p>" in reminder and "1 Main St" in reminder
    assert "utm_campaign=cart" in reminder and "utm_content=reminder" in reminder
    assert "https://hooks.shop.example/unsubscribe?token=" in reminder
    sms = (tmp_path / "nudge_sms.txt").read_text().strip()
    assert sms == "Hi Bob, your cart misses you. Reply STOP to opt out."
    index = (tmp_path / "index.html").read_text()
    for name in ("reminder.html", "nudge_sms.txt", "nudge_email.html", "Your cart",
                 "List-Unsubscribe", f"{len(sms)} GSM-7 characters, 1 segment(s)"):  # fmt: skip
        assert name in index
    assert f"wrote {tmp_path / 'index.html'}" in out


def test_one_step(scenario: Scenario, tmp_path: Path) -> None:
    preview(scenario, "bob", tmp_path, "--step", "nudge_email")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["index.html", "nudge_email.html"]


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["preview", "nope", "--customer", "bob"], "Error: unknown flow; got 'nope'; expected one "
         "of: cart"),
        (["preview", "cart", "--customer", "zed"], "Error: unknown customer; got 'zed'"),
        (["preview", "cart", "--customer", "eve"], "Error: customer eve has no cart_abandoned "
         "event, the trigger of flow cart"),
        (["preview", "cart", "--customer", "bob", "--step", "nope"], "Error: --step: flow cart "
         "has no send or action step of that id; got 'nope'; expected one of: reminder, "
         "nudge_sms, nudge_email"),
        (["preview", "cart", "--customer", "bob", "--trigger", "nope"], "Error: --trigger: no "
         "such event in core.events; got 'nope'"),
        (["test-send", "cart", "--to", "not an address"], "Error: --to: not an e-mail address "
         "or a phone number; got 'not an address'"),
        (["test-send", "nope", "--to", "me@example.org"], "Error: unknown flow; got 'nope'"),
        (["test-send", "cart", "--to", "me@example.org", "--step", "nudge_sms",
          "--customer", "bob"], "Error: nothing to test-send in cart (nudge_sms: no --to "
         "address for sms (give a phone number))"),
    ],
)  # fmt: skip
def test_errors(scenario: Scenario, tmp_path: Path, args: list[str], message: str) -> None:
    result = invoke(scenario, *args, *(["--out", str(tmp_path)] if args[0] == "preview" else []))
    assert result.exit_code == 1
    assert message in result.output
    assert "Traceback" not in result.output


def check_test_send(scenario: Scenario, tmp_path: Path) -> None:
    """What the fake provider received is the preview, marked as a test; only test_sends logs it."""
    preview(scenario, "bob", tmp_path)
    with running(FakeSettings()) as fake:
        args = ["test-send", "cart", "--to", "seed@example.org", "--to", "+15559990000",
                "--customer", "bob", "--provider-url", fake.url]  # fmt: skip
        result = invoke(scenario, *args)
        received = {(r.address, r.subject): r for r in fake.state.messages()}
    assert result.exit_code == 0, result.output
    assert set(received) == {
        ("seed@example.org", "[TEST] Your cart"),
        ("seed@example.org", "[TEST] Still there?"),
        ("+15559990000", None),
    }
    for subject, step in (("[TEST] Your cart", "reminder"), ("[TEST] Still there?", "nudge_email")):
        mail = received["seed@example.org", subject]
        assert mail.body == (tmp_path / f"{step}.html").read_text()[:EXCERPT]
    text = received["+15559990000", None]
    assert text.body == "[TEST] " + (tmp_path / "nudge_sms.txt").read_text().strip()
    assert text.customer_id is None or text.customer_id.startswith("test:")
    assert "nudge_email: not sent" not in result.output  # same enrollment: the sms branch
    with Warehouse.open(scenario.warehouse) as wh:
        logged = wh.query(
            "select step_id, customer_id, address, subject, provider, status, status_code "
            "from flowhouse.test_sends order by step_id"
        )
        assert wh.count("flowhouse.messages") == 0, "tests never enter the outbox"
    assert logged == [
        ("nudge_email", "bob", "seed@example.org", "[TEST] Still there?", "sendgrid", "sent", 202),
        ("nudge_sms", "bob", "+15559990000", None, "twilio", "sent", 201),
        ("reminder", "bob", "seed@example.org", "[TEST] Your cart", "sendgrid", "sent", 202),
    ]


def test_test_send_matches_the_preview(scenario: Scenario, tmp_path: Path) -> None:
    check_test_send(scenario, tmp_path)


def test_sms_segments() -> None:
    assert (sms_segments("a" * 160).segments, sms_segments("a" * 161).segments) == (1, 2)
    assert sms_segments("a" * 306).segments == 2 and sms_segments("a" * 307).segments == 3
    assert sms_segments("€" * 80).units == 160  # the extension table counts twice
    assert sms_segments("ü" * 160).encoding == "GSM-7"
    assert (sms_segments("é" * 70).encoding, sms_segments("ç" * 70).encoding) == ("GSM-7", "UCS-2")
    assert (sms_segments("ç" * 70).segments, sms_segments("ç" * 71).segments) == (1, 2)
    assert sms_segments("😀" * 35).units == 70  # UTF-16 surrogate pairs
    assert sms_segments("").segments == 0


@pytest.fixture
def pg_scenario(pg_url: str, tmp_path: Path) -> Scenario:
    return build(Location.parse(pg_url), tmp_path)


@pytest.mark.postgres
def test_preview_on_postgres(pg_scenario: Scenario, tmp_path: Path) -> None:
    test_path_through_waits_and_a_branch(pg_scenario, tmp_path / "path")
    test_path_explains_an_exit(pg_scenario, tmp_path / "exit")


@pytest.mark.postgres
def test_test_send_on_postgres(pg_scenario: Scenario, tmp_path: Path) -> None:
    check_test_send(pg_scenario, tmp_path)
