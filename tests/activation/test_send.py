"""Sending the outbox through the fake provider: claims, send-time re-checks, retries, results.

Each scenario queues messages with the real engine (the harness store, on DuckDB and PostgreSQL),
then sends them with :func:`flowhouse.activation.deliver.send_open` to the fake provider over real HTTP. The
fake validates every request against the providers' documents, so a request that does not match
them fails its message and the test.
"""

from __future__ import annotations

from collections import Counter
from datetime import datetime
from pathlib import Path
from typing import Any

import harness
import pytest
from harness import EMAIL, SMS, Store, flow, write_templates
from sending import deploy

from flowhouse.activation.deliver import Options, SendReport, send_open
from flowhouse.activation.fake.server import FakeProvider
from flowhouse.activation.outbox import Bucket
from flowhouse.activation.sender import Policy

FAST = Policy(base_backoff=0.01, max_wait=2.0, seed=1)


def cart_flow(*sends: dict[str, Any], **fields: Any) -> str:
    steps = [{"id": f"s{i}", "send": s} for i, s in enumerate(sends)]
    return flow("cart", steps=steps, **fields)


def queue(
    store: Store, n: int, *sends: dict[str, Any], at: str = "2026-03-01 10:00", **kw: Any
) -> None:
    """`n` customers with an abandoned cart at `at`, and a tick that queues their messages."""
    folder = deploy(store, cart_flow(*sends), **kw)
    store.tick("2026-03-01 00:00")
    for i in range(n):
        store.customer(f"c{i}", first_name=f"Ann{i}", phone=f"+1555000{i:04d}", sms_consent=True)
        store.event(f"c{i}", "cart_abandoned", at=at, cart_id=f"k{i}")
    store.tick(at)
    store.sent_folder = folder  # type: ignore[attr-defined]


def send(store: Store, fake: FakeProvider, now: str, **options: Any) -> SendReport:
    return send_open(
        store.wh, store.schema, datetime.fromisoformat(now), store.compiled, store.settings,
        store.sent_folder,  # type: ignore[attr-defined]
        Options(provider_url=fake.url, policy=options.pop("policy", FAST), **options),
    )  # fmt: skip


def statuses(store: Store) -> Counter[tuple[str, str | None]]:
    return Counter((m["status"], m["skip_reason"]) for m in store.rows("messages"))


def test_sends_email_and_sms_and_records_results(store: Store, fake: FakeProvider) -> None:
    queue(store, 3, EMAIL, SMS)
    report = send(store, fake, "2026-03-01 10:01")
    assert report.outcomes["sent"] == 6, report.describe()
    rows = store.rows("messages")
    assert {(m["status"], m["provider"]) for m in rows} == {
        ("sent", "sendgrid"),
        ("sent", "twilio"),
    }
    assert all(m["provider_message_id"] and m["attempts"] == 1 for m in rows)
    assert all(m["sent_at"] == datetime(2026, 3, 1, 10, 1) for m in rows)
    received = {r.message_id for r in fake.state.messages()}
    assert received == {m["message_id"] for m in rows}
    assert fake.state.stats()["rejected"] == {}
    attempts = store.rows("send_attempts")
    assert Counter(a["status_code"] for a in attempts) == {202: 3, 201: 3}
    # the rendered content reached the provider: first names, signed unsubscribe links
    email = next(r for r in fake.state.messages("sendgrid"))
    assert "Ann" in (email.body or "")


def test_subject_and_preheader_reach_the_provider_rendered(
    store: Store, fake: FakeProvider, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A preheader is a template like the subject: rendered with the same context, never sent
    as its ``{{ }}`` source (the layout shows it as ``message.preheader``)."""
    first = '{{ message.preheader }}|{{ message.subject }}|<a href="{{ store.url | with_utm }}">'
    body = first + '</a><a href="{{ links.unsubscribe }}">u</a>{{ sender.postal_address }}'

    def templates(folder: Path) -> None:
        write_templates(folder)
        (folder / "templates" / "p.html.j2").write_text(body)

    monkeypatch.setattr(harness, "write_templates", templates)
    message = {
        "channel": "email", "template": "p.html.j2",
        "subject": "For {{ customer.first_name }}", "preheader": "Saved, {{ customer.first_name }}",
    }  # fmt: skip
    queue(store, 1, message)
    report = send(store, fake, "2026-03-01 10:01")
    assert report.outcomes["sent"] == 1, report.describe()
    email = next(r for r in fake.state.messages("sendgrid"))
    assert email.subject == "For Ann0"
    assert (email.body or "").startswith("Saved, Ann0|For Ann0|"), email.body


def test_a_second_run_sends_nothing_again(store: Store, fake: FakeProvider) -> None:
    queue(store, 2, EMAIL)
    send(store, fake, "2026-03-01 10:01")
    again = send(store, fake, "2026-03-01 10:05")
    assert again.claimed == 0
    assert fake.state.duplicates() == {}


def test_consent_withdrawn_after_queueing_skips_at_send_time(
    store: Store, fake: FakeProvider
) -> None:
    queue(store, 3, EMAIL)
    store.unsubscribe("c0", "email", at="2026-03-01 10:00:30")
    # c1 unsubscribed through a link: only the raw event has it, the attributes not yet
    store.wh.execute(
        "insert into raw.events values ('u1', 'c1', 'unsubscribed', "
        "timestamp '2026-03-01 10:00:40', timestamp '2026-03-01 10:00:41', '{\"channel\": \"email\"}')"
    )
    store.wh.commit()
    report = send(store, fake, "2026-03-01 10:01")
    assert report.skipped == {"unsubscribed": 2}
    assert statuses(store) == {("skipped", "unsubscribed"): 2, ("sent", None): 1}
    checks = [d for d in store.rows("decisions") if d["step_kind"] == "send_check"]
    assert {(d["customer_id"], d["reason"]) for d in checks} == {
        ("c0", "unsubscribed"),
        ("c1", "unsubscribed"),
    }
    assert {r.address for r in fake.state.messages()} == {"c2@example.com"}


def test_hard_bounce_after_queueing_suppresses(store: Store, fake: FakeProvider) -> None:
    queue(store, 2, EMAIL)
    store.wh.execute(
        "insert into raw.events values ('b1', 'c0', 'message_bounced', "
        "timestamp '2026-03-01 10:00:40', timestamp '2026-03-01 10:00:41', "
        '\'{"channel": "email", "bounce_type": "hard"}\')'
    )
    store.wh.commit()
    send(store, fake, "2026-03-01 10:01")
    assert statuses(store) == {("skipped", "suppressed"): 1, ("sent", None): 1}


def test_stale_messages_are_not_sent(store: Store, fake: FakeProvider) -> None:
    queue(store, 1, EMAIL)
    report = send(store, fake, "2026-03-09 10:00")
    assert report.skipped == {"stale": 1}
    assert fake.state.messages() == []


QUIET = """
store: {name: Test, url: https://shop.example, timezone: UTC, postal_address: 1 Main St}
smart_sending: {}
quiet_hours:
  email: {start: "21:00", end: "08:00"}
  sms: {start: "21:00", end: "08:00"}
delivery:
  twilio: {messaging_service_sid: MG00000000000000000000000000000000}
"""


def test_quiet_hours_at_send_time_schedule_email_and_requeue_sms(
    store: Store, fake: FakeProvider
) -> None:
    queue(store, 1, EMAIL, SMS, at="2026-03-01 20:30", settings=QUIET)
    report = send(store, fake, "2026-03-01 22:00")
    assert (report.scheduled, report.requeued_quiet_hours) == (1, 1)
    rows = {m["channel"]: m for m in store.rows("messages")}
    assert rows["email"]["status"] == "sent"
    assert rows["email"]["send_at"] == datetime(2026, 3, 2, 8, 0)
    assert fake.state.messages("sendgrid")[0].send_at is not None
    assert (rows["sms"]["status"], rows["sms"]["due_at"]) == ("queued", datetime(2026, 3, 2, 8, 0))
    later = send(store, fake, "2026-03-02 08:00")
    assert later.outcomes["sent"] == 1


def test_transient_failures_retry_without_duplicates(store: Store, fake: FakeProvider) -> None:
    fake.set_failures(rate_limited=0.3, retry_after=0, server_error=0.2, seed=3)
    queue(store, 12, SMS)
    report = send(store, fake, "2026-03-01 10:01", policy=Policy(base_backoff=0.01, seed=1))
    assert report.outcomes["sent"] == 12, report.describe()
    attempts = store.rows("send_attempts")
    assert {a["status_code"] for a in attempts} >= {201, 429, 500}
    assert all(m["attempts"] >= 1 for m in store.rows("messages"))
    assert sum(m["attempts"] for m in store.rows("messages")) == len(attempts)
    assert fake.state.duplicates() == {}


SHORT_TIMEOUT = """
store: {name: Test, url: https://shop.example, timezone: UTC, postal_address: 1 Main St}
smart_sending: {}
delivery:
  twilio:
    messaging_service_sid: MG00000000000000000000000000000000
    status_callback: https://hooks.shop.example/webhooks/twilio
    timeout: 1s
"""


def test_time_outs_are_looked_up_before_any_resend(store: Store, fake: FakeProvider) -> None:
    fake.set_failures(timeout=0.4, timeout_seconds=3.0, seed=5)
    queue(store, 8, SMS, settings=SHORT_TIMEOUT)
    send(store, fake, "2026-03-01 10:01")
    fake.set_failures()
    send(store, fake, "2026-03-01 10:30")
    final = statuses(store)
    assert final == {("sent", None): 8}, final
    assert fake.state.duplicates() == {}
    assert len({r.message_id for r in fake.state.messages()}) == 8


def test_a_time_out_is_never_confirmed_by_an_identical_texts_message(
    store: Store, fake: FakeProvider
) -> None:
    """Two SMS with the same text to each customer; some requests time out (the provider never
    accepted them) while their twin went through: the lookup lists the twin's message, which
    its own row holds, so the timed-out one is sent again, not marked sent."""
    fake.set_failures(timeout=0.4, timeout_seconds=3.0, seed=5)
    queue(store, 8, SMS, SMS, settings=SHORT_TIMEOUT)
    send(store, fake, "2026-03-01 10:01")
    fake.set_failures()
    send(store, fake, "2026-03-01 10:30")
    assert statuses(store) == {("sent", None): 16}
    assert fake.state.duplicates() == {}
    rows = {(m["message_id"], m["provider_message_id"]) for m in store.rows("messages")}
    assert rows == {(r.message_id, r.provider_message_id) for r in fake.state.messages()}


def test_permanent_failures_keep_the_providers_reason(store: Store, fake: FakeProvider) -> None:
    queue(store, 2, EMAIL)
    store.wh.execute(
        "update flowhouse.messages set address = 'not-an-address' where customer_id = 'c0'"
    )
    store.wh.commit()
    report = send(store, fake, "2026-03-01 10:01")
    assert report.outcomes == {"sent": 1, "failed": 1}
    failed = next(m for m in store.rows("messages") if m["status"] == "failed")
    assert failed["failure_reason"].startswith("400")
    assert "email" in failed["failure_reason"]


def test_buckets_split_the_outbox_without_overlap(store: Store, fake: FakeProvider) -> None:
    queue(store, 10, EMAIL)
    first = send(store, fake, "2026-03-01 10:01", bucket=Bucket(0, 2))
    second = send(store, fake, "2026-03-01 10:01", bucket=Bucket(1, 2))
    assert first.claimed + second.claimed == 10
    assert 0 < first.claimed < 10
    assert fake.state.duplicates() == {}


def test_a_customers_messages_share_one_bucket(store: Store, fake: FakeProvider) -> None:
    queue(store, 10, EMAIL, SMS)
    first = send(store, fake, "2026-03-01 10:01", bucket=Bucket(0, 2))
    sent = {m["customer_id"] for m in store.rows("messages") if m["status"] == "sent"}
    assert first.claimed == 2 * len(sent)  # both of each customer's messages, or neither


def test_api_keys_never_reach_the_tables(store: Store, fake: FakeProvider) -> None:
    queue(store, 2, EMAIL, SMS)
    keys = {"SENDGRID_API_KEY": "SG.secret-key-1", "TWILIO_AUTH_TOKEN": "tw-secret-2",
            "TWILIO_ACCOUNT_SID": "AC" + "1" * 32, "FLOWHOUSE_SIGNING_KEY": "sign-secret-3"}  # fmt: skip
    fake.set_failures(server_error=1.0, seed=1)
    send(store, fake, "2026-03-01 10:01", environ=keys, policy=Policy(base_backoff=0.0, seed=1))
    dump = repr([store.rows(t) for t in ("messages", "send_attempts", "decisions")])
    assert "500" in dump
    for value in keys.values():
        if value.startswith("AC"):
            continue  # the account id is part of Twilio's URLs, not a secret
        pieces = {value[i : i + 8] for i in range(len(value) - 7)}  # no part of 8 characters
        assert not [p for p in pieces if p in dump], value


@pytest.mark.parametrize("bad", ["1/1", "2/2", "x"])
def test_bucket_parse_rejects_nonsense(bad: str) -> None:
    with pytest.raises(ValueError):  # noqa: PT011
        Bucket.parse(bad)


def test_klaviyo_webhooks_and_audiences_end_to_end(store: Store, fake: FakeProvider) -> None:
    klaviyo = {**EMAIL, "destination": "klaviyo"}
    actions = [
        {"id": "hook", "action": {"type": "webhook", "url": "https://erp.shop.example/hook"}},
        {"id": "task", "action": {"type": "admin_task", "task": "call this customer"}},
        {"id": "ads", "action": {"type": "audience_sync", "audience": "cart_retargeting"}},
    ]
    folder = deploy(store, flow("cart", steps=[{"id": "k", "send": klaviyo}, *actions]))
    store.tick("2026-03-01 00:00")
    store.customer("c1", first_name="Ann", phone="+15550001111")
    store.event("c1", "cart_abandoned", at="2026-03-01 10:00", cart_id="k1")
    store.tick("2026-03-01 10:00")
    store.sent_folder = folder  # type: ignore[attr-defined]
    report = send(store, fake, "2026-03-01 10:01")
    assert report.outcomes == {"sent": 4}, report.describe()
    by_provider = Counter(r.provider for r in fake.state.messages())
    assert by_provider == {"klaviyo": 1, "webhook": 2, "audience": 1}
    members = fake.state.members("cart_retargeting")
    assert len(members) == 1
    assert {m["provider"] for m in store.rows("messages")} == {"klaviyo", "webhook", "audience"}


def test_the_rate_limit_spaces_requests(store: Store, fake: FakeProvider) -> None:
    limited = SEND_RATE_LIMITED
    queue(store, 6, SMS, settings=limited)
    started = datetime.now()
    send(store, fake, "2026-03-01 10:01")
    # 6 requests at 10 a second cannot take less than 0.5 s, however fast the machine
    assert (datetime.now() - started).total_seconds() >= 0.5
    times = sorted(a["started_at"] for a in store.rows("send_attempts"))
    assert (times[-1] - times[0]).total_seconds() >= 0.45


SEND_RATE_LIMITED = """
store: {name: Test, url: https://shop.example, timezone: UTC, postal_address: 1 Main St}
smart_sending: {}
delivery:
  twilio:
    messaging_service_sid: MG00000000000000000000000000000000
    status_callback: https://hooks.shop.example/webhooks/twilio
    rate_per_second: 10
"""


NO_TWILIO_SENDER = """
store: {name: Test, url: https://shop.example, timezone: UTC, postal_address: 1 Main St}
smart_sending: {}
"""


def test_a_destination_that_cannot_be_built_fails_its_rows_only(
    store: Store, fake: FakeProvider
) -> None:
    queue(store, 2, EMAIL, SMS, settings=NO_TWILIO_SENDER)  # Twilio without a sender number
    report = send(store, fake, "2026-03-01 10:01")
    assert report.outcomes == {"sent": 2, "failed": 2}, report.describe()
    failed = [m for m in store.rows("messages") if m["status"] == "failed"]
    assert {m["channel"] for m in failed} == {"sms"}
    assert all(m["failure_reason"].startswith("twilio: ") for m in failed)
    assert all(m["in_flight_at"] is None for m in failed), "nothing went in flight"


def test_the_flows_sender_reaches_the_providers(store: Store, fake: FakeProvider) -> None:
    sender = {"name": "Acme VIP", "email": "vip@shop.example", "reply_to": "desk@shop.example",
              "sms_from": "+15555550100"}  # fmt: skip
    vip = flow("vip", steps=[{"id": "m", "send": EMAIL}, {"id": "s", "send": SMS}], sender=sender)
    plain = flow("plain", steps=[{"id": "m", "send": EMAIL}], trigger="order_placed")
    store.sent_folder = deploy(store, vip, plain)  # type: ignore[attr-defined]
    store.tick("2026-03-01 00:00")
    for i in range(2):
        store.customer(f"c{i}", first_name="Ann", phone=f"+1555000{i:04d}", sms_consent=True)
        store.event(f"c{i}", "cart_abandoned", at="2026-03-01 10:00", cart_id=f"k{i}")
        store.event(f"c{i}", "order_placed", at="2026-03-01 10:00", order_id=f"o{i}")
    store.tick("2026-03-01 10:00")
    report = send(store, fake, "2026-03-01 10:01")
    assert report.outcomes == {"sent": 6}, report.describe()
    flow_of = {m["message_id"]: m["flow_id"] for m in store.rows("messages")}
    got = {(flow_of[r.message_id or ""], r.provider, r.sender, r.reply_to)
           for r in fake.state.messages()}  # fmt: skip
    assert got == {
        ("vip", "sendgrid", "Acme VIP <vip@shop.example>", "desk@shop.example"),
        ("vip", "twilio", "+15555550100 MG00000000000000000000000000000000", None),
        ("plain", "sendgrid", "hello@shop.example", None),  # the configured default
    }
    # one `from` a request: the two flows' mails never share one
    by_request: dict[str | None, set[str]] = {}
    for r in fake.state.messages("sendgrid"):
        by_request.setdefault(r.provider_message_id, set()).add(flow_of[r.message_id or ""])
    assert sorted(map(sorted, by_request.values())) == [["plain"], ["vip"]]


def test_an_sms_from_a_messaging_service_of_the_flow(store: Store, fake: FakeProvider) -> None:
    sender = {"name": "Acme", "sms_from": "MG11111111111111111111111111111111"}
    store.sent_folder = deploy(  # type: ignore[attr-defined]
        store, flow("cart", steps=[{"id": "s", "send": SMS}], sender=sender)
    )
    store.tick("2026-03-01 00:00")
    store.customer("c0", phone="+15550000000", sms_consent=True)
    store.event("c0", "cart_abandoned", at="2026-03-01 10:00", cart_id="k0")
    store.tick("2026-03-01 10:00")
    send(store, fake, "2026-03-01 10:01")
    assert [r.sender for r in fake.state.messages("twilio")] == [
        "MG11111111111111111111111111111111"
    ]
