"""`flowhouse status FLOW --customer ID` through the CLI, on a scenario store run by the real engine
and sent to the fake provider: skips, holdout, exits, refused triggers, delivery and engagement.

Expected values come from the scenario itself (the times it sets, message ids computed the way the
engine's contract defines them), never from the command's own output."""

from __future__ import annotations

import hashlib
import json
import sys
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner, Result
from sqlglot import exp

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "engine"))
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "activation"))

from harness import EMAIL, Store, flow
from sending import SEND_SETTINGS, deploy, sending_store

from flowhouse.activation.deliver import Options, send_open
from flowhouse.activation.fake.server import running
from flowhouse.activation.fake.settings import FakeSettings
from flowhouse.activation.sender import Policy
from flowhouse.cli import cli
from flowhouse.core.sql import literal
from flowhouse.core.warehouse import Location, column_type
from flowhouse.status import Message, explain_message, mask_address

CART = flow(
    "cart",
    steps=[
        {"id": "reminder", "send": {**EMAIL, "subject": "Your cart"}},
        {"id": "wait_1d", "wait": "1d"},
        {"id": "followup", "send": {**EMAIL, "subject": "Still there?"}},
    ],
    entry={"reentry": "once", "key": "cart_id"},
    exit={"events": ["order_placed"]},
)
HELD = flow(
    "browse",
    trigger="browse_abandoned",
    holdout=1,
    steps=[{"id": "nudge", "send": {**EMAIL, "subject": "Seen something?"}}],
)

#: E-mail quiet hours (customers are in UTC): a cart abandoned at 23:00 is mailed at 08:00.
QUIET = 'quiet_hours:\n  email: {start: "21:00", end: "08:00"}\n'

DAY1 = "2026-03-01 10:00"
DAY2 = "2026-03-02 10:00"
OPENED = "2026-03-01 12:30"
CLICKED = "2026-03-01 12:31"


def md5(text: str) -> str:
    return hashlib.md5(text.encode()).hexdigest()


def message_id(flow_id: str, event_id: str, step_id: str) -> str:
    """The engine's contract: enrollment id = md5(flow:event), message id = md5(enrollment:step)."""
    return md5(f"{md5(f'{flow_id}:{event_id}')}:{step_id}")


@dataclass
class Scenario:
    warehouse: str
    events: dict[str, str]  # name -> event id


def build(location: Location, folder: Path) -> Scenario:
    """ann has no e-mail consent; bob gets mail and opens it; cat orders, which ends her
    enrollment; dan abandons a second cart (refused: re-entry once); hal is held out; eve never
    abandons a cart; quinn abandons hers at night, in the quiet hours."""
    store = sending_store(location, folder)
    try:
        return _run(store, location)
    finally:
        store.close()


def _run(store: Store, location: Location) -> Scenario:
    flows = deploy(store, CART, HELD, settings=SEND_SETTINGS + QUIET)
    store.tick("2026-03-01 00:00")
    store.customer("ann", email="ann.smith@example.com", email_consent=False)
    for name in ("bob", "cat", "dan", "hal", "eve", "quinn"):
        store.customer(name, email=f"{name}.jones@example.com", first_name=name.title())
    events = {
        name: store.event(name, "cart_abandoned", at=DAY1, cart_id=f"k-{name}")
        for name in ("ann", "bob", "cat", "dan")
    }
    events["hal"] = store.event("hal", "browse_abandoned", at=DAY1)
    store.tick(DAY1)
    policy = Policy(base_backoff=0.01, max_wait=2.0, seed=1)
    with running(FakeSettings()) as fake:
        send_open(store.wh, store.schema, datetime(2026, 3, 1, 10, 1), store.compiled,
                  store.settings, flows, Options(provider_url=fake.url, policy=policy))  # fmt: skip
    bob = message_id("cart", events["bob"], "reminder")
    engage(store, "o1", "bob", "message_opened", OPENED, bob)
    engage(store, "o2", "bob", "message_clicked", CLICKED, bob)
    engage(store, "o3", "bob", "message_opened", "2026-03-01 13:00", bob)  # not the first
    events["cat_order"] = store.event("cat", "order_placed", at="2026-03-01 20:00")
    events["dan_2"] = store.event("dan", "cart_abandoned", at="2026-03-01 15:00", cart_id="k-2")
    events["quinn"] = store.event("quinn", "cart_abandoned", at="2026-03-01 23:00", cart_id="k-q")
    store.tick(DAY2)
    return Scenario(str(location.path or location.url), events)


def engage(store: Store, event_id: str, customer: str, kind: str, at: str, message: str) -> None:
    """An engagement event written back to raw.events, as ingestion does."""
    when = literal(datetime.fromisoformat(at))
    properties = json.dumps({"message_id": message, "channel": "email"})
    row = (literal(event_id), literal(customer), literal(kind), when, when.copy(),
           exp.cast(exp.Literal.string(properties), column_type("json", store.dialect)))  # fmt: skip
    columns = ["event_id", "customer_id", "event_type", "occurred_at", "loaded_at", "properties"]
    store.wh.execute(exp.insert(exp.values([row]), "raw.events", columns=columns))
    store.wh.commit()


@pytest.fixture(scope="module")
def scenario(tmp_path_factory: pytest.TempPathFactory) -> Scenario:
    folder = tmp_path_factory.mktemp("status")
    return build(Location.parse(str(folder / "store.duckdb")), folder)


def status(scenario: Scenario, flow_id: str, customer: str, *more: str) -> Result:
    args = ["status", flow_id, "--customer", customer, "--warehouse", scenario.warehouse, *more]
    return CliRunner().invoke(cli, args)


def ok(scenario: Scenario, flow_id: str, customer: str) -> str:
    result = status(scenario, flow_id, customer)
    assert result.exit_code == 0, result.output
    return result.output


def line_of(output: str, *words: str) -> str:
    """The one line holding all `words`."""
    found = [line for line in output.splitlines() if all(w in line for w in words)]
    assert len(found) == 1, (words, output)
    return found[0]


def test_a_message_skipped_for_consent_names_the_step_and_says_why(scenario: Scenario) -> None:
    out = ok(scenario, "cart", "ann")
    reminder = line_of(out, "reminder (send)")
    assert DAY1 in reminder and "skipped" in reminder
    assert "consent" in reminder and "not opted in" in reminder and "e-mail" in reminder
    # the later step is judged on its own: skipped for the same reason the next day
    followup = line_of(out, "followup (send)")
    assert "2026-03-02 10:00" in followup and "not opted in" in followup
    assert message_id("cart", scenario.events["ann"], "reminder") in out
    assert "a***@example.com" in out and "ann.smith" not in out
    assert "treatment" in line_of(out, "  group: ")
    assert "completed 2026-03-02 10:00" in line_of(out, "  now: ")


def test_a_holdout_customer_is_held_out_and_sent_nothing(scenario: Scenario) -> None:
    out = ok(scenario, "browse", "hal")
    assert "holdout" in line_of(out, "  group: ")
    nudge = line_of(out, "nudge (send)")
    assert "held out" in nudge and "no message was sent" in nudge
    assert "status held_out" in out
    assert "send attempt" not in out and "sent 2026" not in out


def test_an_exit_names_the_event_that_ended_it(scenario: Scenario) -> None:
    out = ok(scenario, "cart", "cat")
    now = line_of(out, "  now: ")
    assert "exited" in now and "order_placed" in now and "wait_1d" in now
    assert DAY2 in now  # the wait was due, and decided, at the next day's tick
    wait = line_of(out, "wait_1d (wait)")
    assert "exited" in wait and "order_placed event after entry ended" in wait
    assert "followup" not in out


def test_a_refused_trigger_says_reentry_in_words(scenario: Scenario) -> None:
    out = ok(scenario, "cart", "dan")
    refused = line_of(out, "refused trigger:")
    assert scenario.events["dan_2"] in refused and "2026-03-01 15:00" in refused
    assert f"decided {DAY2}" in refused
    reason = line_of(out, "refused (reentry)")
    assert "once" in reason and "one enrollment per customer, ever" in reason
    assert "1 enrollment(s), 1 refused trigger(s)" in out
    # the enrollment came first, so it is printed before the refusal
    assert out.index("enrollment 1 of 1") < out.index("refused trigger:")
    assert "entry key k-dan" in out


def test_a_sent_message_shows_delivery_attempts_and_first_engagement(scenario: Scenario) -> None:
    out = ok(scenario, "cart", "bob")
    reminder = message_id("cart", scenario.events["bob"], "reminder")
    assert f"message {reminder} to b***@example.com" in out
    assert '"Your cart" (t.html.j2)' in out
    assert "bob.jones" not in out
    delivery = line_of(out, "sent 2026-03-01 10:01", "provider sendgrid")
    assert "1 send attempt(s)" in delivery and f"due {DAY1}" in delivery
    assert f"opened {OPENED}, clicked {CLICKED}" in line_of(out, "engagement")
    assert out.count("engagement") == 1  # the follow-up was queued, not sent: no engagement


def test_a_send_moved_out_of_quiet_hours_says_so(scenario: Scenario) -> None:
    out = ok(scenario, "cart", "quinn")
    reminder = line_of(out, "reminder (send)")
    assert reminder.lstrip().startswith("2026-03-02 08:00")  # the end of the quiet hours
    assert "reached 2026-03-01 23:00, moved out of quiet hours" in reminder
    assert "queued" in reminder
    assert "quiet hours" not in line_of(out, "_entry (entry)")


def test_json_carries_the_same_facts(scenario: Scenario) -> None:
    result = status(scenario, "cart", "bob", "--json")
    assert result.exit_code == 0, result.output
    data = json.loads(result.output)
    assert data["flow"]["trigger_event"] == "cart_abandoned"
    [enrollment] = data["enrollments"]
    assert enrollment["trigger"] == {
        "event_type": "cart_abandoned",
        "event_id": scenario.events["bob"],
        "occurred_at": "2026-03-01T10:00:00",
        "entry_key": "k-bob",
    }
    assert enrollment["group"] == "treatment" and enrollment["status"] == "completed"
    steps = [(d["step_id"], d["outcome"]) for d in enrollment["decisions"]]
    assert steps == [
        ("_entry", "enrolled"), ("reminder", "queued"), ("wait_1d", "waited"),
        ("followup", "queued"), ("_end", "completed"),
    ]  # fmt: skip
    message = enrollment["decisions"][1]["message"]
    assert message["message_id"] == message_id("cart", scenario.events["bob"], "reminder")
    assert (message["status"], message["provider"], message["attempts"]) == ("sent", "sendgrid", 1)
    assert message["address"] == "b***@example.com"
    assert message["engagement"] == {
        "message_opened": "2026-03-01T12:30:00",
        "message_clicked": "2026-03-01T12:31:00",
    }
    assert data["refused_triggers"] == [] and data["never_triggered"] is None


def test_json_of_a_refusal_and_a_skip(scenario: Scenario) -> None:
    dan = json.loads(status(scenario, "cart", "dan", "--json").output)
    [refused] = dan["refused_triggers"]
    assert refused["reason"] == "reentry"
    assert refused["trigger"]["event_id"] == scenario.events["dan_2"]
    ann = json.loads(status(scenario, "cart", "ann", "--json").output)
    skips = [d["message"]["skip_reason"] for d in ann["enrollments"][0]["decisions"]
             if d["message"]]  # fmt: skip
    assert skips == ["consent", "consent"]


def test_a_customer_who_never_triggered_the_flow(scenario: Scenario) -> None:
    out = ok(scenario, "cart", "eve")
    assert "eve has never triggered cart" in out and "cart_abandoned" in out
    assert "0 cart_abandoned event(s)" in out
    data = json.loads(status(scenario, "cart", "eve", "--json").output)
    assert data["enrollments"] == [] and "cart_abandoned" in data["never_triggered"]


def test_a_customer_of_one_flow_has_not_triggered_the_other(scenario: Scenario) -> None:
    out = ok(scenario, "browse", "bob")
    assert "bob has never triggered browse" in out and "browse_abandoned" in out


@pytest.mark.parametrize(
    ("flow_id", "customer", "message"),
    [
        ("nope", "bob", "unknown flow; got 'nope'; expected one of: browse, cart"),
        ("cart", "zed", "unknown customer; got 'zed'"),
    ],
)
def test_unknown_flow_or_customer_is_an_error(
    scenario: Scenario, flow_id: str, customer: str, message: str
) -> None:
    result = status(scenario, flow_id, customer)
    assert result.exit_code == 1
    assert f"Error: {message}" in result.output
    assert "Traceback" not in result.output


def test_a_missing_warehouse_is_an_error(tmp_path: Path) -> None:
    args = ["status", "cart", "--customer", "bob", "--warehouse", str(tmp_path / "none.duckdb")]
    result = CliRunner().invoke(cli, args)
    assert result.exit_code == 1 and "Error: no warehouse" in result.output


def test_the_customer_option_is_required(scenario: Scenario) -> None:
    result = CliRunner().invoke(cli, ["status", "cart", "--warehouse", scenario.warehouse])
    assert result.exit_code == 2 and "--customer" in result.output


@pytest.mark.parametrize(
    ("address", "masked"),
    [
        ("jane.doe@example.com", "j***@example.com"),
        ("+15550001234", "+1******1234"),
        ("c1", "c1"),
        ("https://hooks.example/x", "https://hooks.example/x"),
        (None, None),
    ],
)
def test_mask_address(address: str | None, masked: str | None) -> None:
    assert mask_address(address) == masked


def test_a_bounce_reason_is_shown_with_its_address_masked() -> None:
    reason = "550 5.1.1 <jane.doe@mail.example.com>: user unknown"
    bounced = Message(
        "m1", "email", "message", "j***@mail.example.com", "Hi", "t.html.j2", None, "bounced",
        None, reason, datetime(2026, 3, 1), datetime(2026, 3, 1), None, "sendgrid", 1,
    )  # fmt: skip
    words = explain_message(bounced, {})
    assert words == "bounced: 550 5.1.1 <j***@mail.example.com>: user unknown"


@pytest.fixture
def pg_scenario(pg_url: str, tmp_path: Path) -> Scenario:
    return build(Location.parse(pg_url), tmp_path)


@pytest.mark.postgres
def test_status_on_postgres(pg_scenario: Scenario) -> None:
    bob = json.loads(status(pg_scenario, "cart", "bob", "--json").output)
    message: dict[str, Any] = bob["enrollments"][0]["decisions"][1]["message"]
    assert message["status"] == "sent" and message["attempts"] == 1
    assert message["engagement"]["message_opened"] == "2026-03-01T12:30:00"
    ann = ok(pg_scenario, "cart", "ann")
    assert "not opted in" in line_of(ann, "reminder (send)")
    cat = ok(pg_scenario, "cart", "cat")
    assert "order_placed" in line_of(cat, "  now: ")
    dan = ok(pg_scenario, "cart", "dan")
    assert "one enrollment per customer, ever" in line_of(dan, "refused (reentry)")
    hal = ok(pg_scenario, "browse", "hal")
    assert "no message was sent" in line_of(hal, "nudge (send)")
    assert "eve has never triggered cart" in ok(pg_scenario, "cart", "eve")
