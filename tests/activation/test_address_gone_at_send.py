"""An address gone between queueing and sending is a skip, not a failure (DuckDB and
PostgreSQL): a push whose device tokens FCM has all answered dead since it was queued, and an
e-mail or SMS whose address a profile update removed, end ``skipped`` with reason ``no_address``
(journaled as a send check, counted in the send's skips), and nothing reaches the provider."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path
from typing import Any

import pytest
from harness import Store, flow
from sending import deploy
from test_push_onsite_send import SETTINGS, tokens

from flowhouse.activation.deliver import Options, SendReport, send_open
from flowhouse.activation.fake.server import FakeProvider
from flowhouse.activation.sender import Policy
from flowhouse.core.sql import render, statement

FAST = Policy(base_backoff=0.01, max_wait=2.0, seed=1)
STEPS = {
    "push": {"channel": "push", "template": "t.txt.j2", "title": "Hi"},
    "email": {"channel": "email", "template": "t.html.j2", "subject": "Hi"},
    "sms": {"channel": "sms", "template": "t.txt.j2"},
}
SMS_SETTINGS = SETTINGS.replace(
    "  routes: {push: fcm}\n",
    "  routes: {push: fcm}\n  twilio: {messaging_service_sid: MG00000000000000000000000000000000}\n",
)


def send(store: Store, fake: FakeProvider, folder: Path, now: str) -> SendReport:
    return send_open(
        store.wh, store.schema, datetime.fromisoformat(now), store.compiled, store.settings,
        folder, Options(provider_url=fake.url, policy=FAST),
    )  # fmt: skip


def queue(store: Store, channel: str) -> Path:
    cart = flow("cart", [{"id": "s", "send": STEPS[channel]}], entry={"reentry": "always"})
    folder = deploy(store, cart, settings=SMS_SETTINGS)
    store.tick("2026-03-01 00:00")
    store.customer("c1", first_name="Ann", phone="+15550000001", sms_consent=True,
                   push_token="c1-ios", has_push_consent=True)  # fmt: skip
    store.event("c1", "cart_abandoned", at="2026-03-01 10:00", cart_id="k1")
    store.tick("2026-03-01 10:00")
    [message] = store.messages()
    assert message["status"] == "queued"
    return folder


def retire(store: Store, token: str) -> None:
    """``token`` answered dead by FCM to an earlier send (after this message was queued)."""
    store.wh.execute(
        render(
            statement(
                "insert into flowhouse.invalid_device_tokens values "
                "(:token, 'c1', 'fcm', '404 UNREGISTERED', 'm0', :at)",
                token=token,
                at=datetime(2026, 3, 1, 10, 0, 30),
            ),
            store.dialect,
        )
    )
    store.wh.commit()


def assert_skipped(store: Store, fake: FakeProvider, report: SendReport, provider: str) -> None:
    [message] = store.messages()
    assert (message["status"], message["skip_reason"]) == ("skipped", "no_address"), message
    assert message["failure_reason"] is None
    assert report.skipped == {"no_address": 1} and report.failed == 0, report.describe()
    checks = [d for d in store.rows("decisions") if d["step_kind"] == "send_check"]
    assert [(d["outcome"], d["reason"]) for d in checks] == [("skipped", "no_address")]
    assert fake.state.messages(provider) == []


def test_a_push_whose_tokens_all_died_since_queueing_is_skipped(
    store: Store, fake: FakeProvider
) -> None:
    folder = queue(store, "push")
    tokens(store, ("c1", "c1-ios", "ios", None), ("c1", "c1-web", "web", None))
    retire(store, "c1-ios")
    retire(store, "c1-web")
    report = send(store, fake, folder, "2026-03-01 10:01")
    assert_skipped(store, fake, report, "fcm")


def test_a_push_whose_tokens_were_revoked_since_queueing_is_skipped(
    store: Store, fake: FakeProvider
) -> None:
    folder = queue(store, "push")
    tokens(store, ("c1", "c1-ios", "ios", "2026-03-01 10:00:30"))
    report = send(store, fake, folder, "2026-03-01 10:01")
    assert_skipped(store, fake, report, "fcm")


@pytest.mark.parametrize(("channel", "column", "provider"),
                         [("email", "email", "sendgrid"), ("sms", "phone", "twilio")])  # fmt: skip
def test_an_address_removed_since_queueing_is_skipped(
    store: Store, fake: FakeProvider, channel: str, column: str, provider: str
) -> None:
    folder = queue(store, channel)
    changes: dict[str, Any] = {column: None}
    store.attributes("c1", **changes)  # a profile update, seen by the next model refresh
    report = send(store, fake, folder, "2026-03-01 10:01")
    assert_skipped(store, fake, report, provider)


def test_a_push_with_one_live_token_left_is_sent(store: Store, fake: FakeProvider) -> None:
    folder = queue(store, "push")
    tokens(store, ("c1", "c1-ios", "ios", None), ("c1", "c1-web", "web", None))
    retire(store, "c1-ios")
    report = send(store, fake, folder, "2026-03-01 10:01")
    assert report.outcomes["sent"] == 1, report.describe()
    assert [r.address for r in fake.state.messages("fcm")] == ["c1-web"]
