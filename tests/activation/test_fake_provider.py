"""The local fake provider, exercised over real HTTP on a free port.

Request bodies are built by hand here, from the providers' documented shapes, so these tests
check the fake against the contract rather than against the destinations that use it.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import json
import re
import socket
import time
from collections import Counter
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from pathlib import Path
from typing import Any

import httpx
import pytest

from flowhouse.activation.fake.engagement import Rates, fate
from flowhouse.activation.fake.failures import Failures, Injector
from flowhouse.activation.fake.loadgen import measure
from flowhouse.activation.fake.server import FakeProvider, running
from flowhouse.activation.fake.settings import FakeSettings
from flowhouse.activation.fake.state import read_received

ACCOUNT = "AC" + "0123456789abcdef" * 2
SERVICE = "MG" + "f" * 32
SECRET = "fake-flowhouse_webhook_secret"
SENDGRID_AUTH = {"Authorization": "Bearer SG.test-key"}
KLAVIYO_HEADERS = {
    "Authorization": "Klaviyo-API-Key pk_test",
    "revision": "2026-07-15",
    "Content-Type": "application/vnd.api+json",
}
MESSAGES = f"/2010-04-01/Accounts/{ACCOUNT}/Messages.json"
EVENT_KEYS = {"email", "timestamp", "event", "sg_event_id", "sg_message_id"}
ARGS = ("message_id", "customer_id", "flow_id", "step_id")


def unix(when: datetime) -> int:
    return int(when.replace(tzinfo=UTC).timestamp())


def personalization(message_id: str, **extra: Any) -> dict[str, Any]:
    return {
        "to": [{"email": f"{message_id}@customers.example"}],
        "custom_args": {
            "message_id": message_id,
            "customer_id": f"cust-{message_id}",
            "flow_id": "abandoned_cart",
            "step_id": "email_1",
        },
        "substitutions": {"-first_name-": "Ada"},
        **extra,
    }


def mail(*message_ids: str, **extra: Any) -> dict[str, Any]:
    return {
        "from": {"email": "hello@shop.example"},
        "subject": "Hi -first_name-",
        "content": [
            {"type": "text/plain", "value": "Hello -first_name-, your cart is waiting."},
            {
                "type": "text/html",
                "value": '<a href="https://shop.example/unsubscribe?t=x">unsubscribe</a>'
                '<a href="https://shop.example/cart">cart</a>',
            },
        ],
        "personalizations": [personalization(m) for m in message_ids],
        **extra,
    }


def sms(message_id: str, to: str = "+14155550100", **extra: str) -> dict[str, str]:
    callback = f"https://shop.example/hooks/twilio?message_id={message_id}&customer_id=cust-1"
    return {
        "To": to,
        "Body": "Your cart is waiting",
        "From": "+14155550199",
        "StatusCallback": callback,
        **extra,
    }


def event(unique_id: str) -> dict[str, Any]:
    return {
        "data": {
            "type": "event",
            "attributes": {
                "properties": {"message_id": unique_id, "flow_id": "welcome"},
                "metric": {"data": {"type": "metric", "attributes": {"name": "flowhouse sent"}}},
                "profile": {"data": {"type": "profile", "attributes": {"email": "a@b.example"}}},
                "unique_id": unique_id,
            },
        }
    }


def signed(
    body: bytes, key: str, timestamp: str = "1767225600", secret: str = SECRET
) -> dict[str, str]:
    mac = hmac.new(secret.encode(), f"{timestamp}.".encode() + body, hashlib.sha256)
    return {
        "Content-Type": "application/json",
        "Idempotency-Key": key,
        "X-Flowhouse-Timestamp": timestamp,
        "X-Flowhouse-Signature": "v1=" + mac.hexdigest(),
    }


def digest(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


@pytest.fixture
def fake(tmp_path: Path) -> Iterator[FakeProvider]:
    settings = FakeSettings(record_dir=tmp_path / "record", inbox=tmp_path / "inbox")
    with running(settings) as provider:
        yield provider


@pytest.fixture
def client(fake: FakeProvider) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=fake.url, timeout=10) as c:
        yield c


def send_mail(client: httpx.Client, body: dict[str, Any]) -> httpx.Response:
    return client.post("/v3/mail/send", json=body, headers=SENDGRID_AUTH)


def send_sms(client: httpx.Client, form: dict[str, str]) -> httpx.Response:
    return client.post(MESSAGES, data=form, auth=(ACCOUNT, "token"))


def inbox_files(fake: FakeProvider, provider: str) -> list[Path]:
    assert fake.settings.inbox is not None
    return sorted((fake.settings.inbox / provider).glob("*.json"))


FAR = datetime(2100, 1, 1)


def released(fake: FakeProvider, provider: str = "sendgrid") -> list[Any]:
    """Every webhook the fake holds, written out as if its clock had moved far ahead; the
    SendGrid events of all files as one list, or the Twilio callbacks."""
    fake.fake.engagement.release(FAR)
    found: list[Any] = []
    for f in inbox_files(fake, provider):
        body = json.loads(f.read_text())
        found += body if isinstance(body, list) else [body]
    return found


# -- accepted and recorded -------------------------------------------------------------------


def test_sendgrid_is_accepted_and_recorded(fake: FakeProvider, client: httpx.Client) -> None:
    response = send_mail(client, mail("m-1", "m-2"))
    assert response.status_code == 202
    assert response.content == b""
    message_id = response.headers["X-Message-Id"]
    assert re.fullmatch(r"[A-Za-z0-9_-]{22}", message_id)
    recorded = fake.state.messages("sendgrid")
    assert [r.message_id for r in recorded] == ["m-1", "m-2"]
    first = recorded[0]
    assert first.provider_message_id == message_id
    assert first.address == "m-1@customers.example"
    assert first.subject == "Hi Ada"
    assert first.body == "Hello Ada, your cart is waiting."
    assert first.customer_id == "cust-m-1"
    assert fake.settings.record_dir is not None
    lines = read_received(fake.settings.record_dir)
    assert [(r["provider"], r["message_id"]) for r in lines] == [
        ("sendgrid", "m-1"),
        ("sendgrid", "m-2"),
    ]
    assert lines[1]["provider_message_id"] == message_id
    assert lines[1]["received_at"] == recorded[1].received_at.isoformat()


def test_sendgrid_template_and_send_at(fake: FakeProvider, client: httpx.Client) -> None:
    later = datetime(2030, 3, 1, 8, 30)
    body = {
        "from": {"email": "hello@shop.example"},
        "template_id": "d-0123456789abcdef0123456789abcdef",
        "personalizations": [
            {
                **personalization("t-1"),
                "dynamic_template_data": {"first_name": "Ada", "subject": "Your cart"},
                "send_at": unix(later),
            }
        ],
    }
    assert send_mail(client, body).status_code == 202
    [record] = fake.state.messages()
    assert record.send_at == later
    assert record.subject == "Your cart"
    assert record.body is not None and record.body.startswith("template d-0123")


def test_twilio_is_accepted_with_a_message_resource(
    fake: FakeProvider, client: httpx.Client
) -> None:
    response = send_sms(client, sms("s-1"))
    assert response.status_code == 201
    message = response.json()
    assert re.fullmatch(r"SM[0-9a-f]{32}", message["sid"])
    assert message["status"] == "queued"
    assert (message["to"], message["from"]) == ("+14155550100", "+14155550199")
    assert message["body"] == "Your cart is waiting"
    assert message["account_sid"] == ACCOUNT
    assert message["price"] is None
    assert message["num_segments"] == "1"
    assert message["uri"] == f"/2010-04-01/Accounts/{ACCOUNT}/Messages/{message['sid']}.json"
    sent = parsedate_to_datetime(message["date_sent"])
    assert abs((sent - datetime.now(UTC)).total_seconds()) < 60
    [record] = fake.state.messages("twilio")
    assert (record.message_id, record.customer_id) == ("s-1", "cust-1")
    assert record.provider_message_id == message["sid"]
    assert fake.settings.record_dir is not None
    assert read_received(fake.settings.record_dir)[0]["message_id"] == "s-1"


def test_twilio_schedules_through_a_messaging_service(
    fake: FakeProvider, client: httpx.Client
) -> None:
    form = sms("s-2", SendAt="2030-01-05T10:00:00Z", ScheduleType="fixed")
    form.pop("From")
    form["MessagingServiceSid"] = SERVICE
    message = send_sms(client, form).json()
    assert message["status"] == "scheduled"
    assert message["messaging_service_sid"] == SERVICE
    assert fake.state.messages()[0].send_at == datetime(2030, 1, 5, 10, 0)


def test_klaviyo_event_deduplicates_on_unique_id(fake: FakeProvider, client: httpx.Client) -> None:
    for _ in range(2):
        response = client.post("/api/events", json=event("k-1"), headers=KLAVIYO_HEADERS)
        assert response.status_code == 202
    response = client.post("/api/events", json=event("k-2"), headers=KLAVIYO_HEADERS)
    assert response.status_code == 202
    recorded = fake.state.messages("klaviyo")
    assert [r.message_id for r in recorded] == ["k-1", "k-2"]
    assert recorded[0].address == "a@b.example"
    assert recorded[0].subject == "flowhouse sent"
    stats = client.get("/_fake/stats").json()
    assert stats["deduplicated"] == {"klaviyo": 1}
    assert stats["duplicates"] == 0


def test_klaviyo_profile_import(fake: FakeProvider, client: httpx.Client) -> None:
    profile = {"data": {"type": "profile", "attributes": {"email": "ada@example.com"}}}
    created = client.post("/api/profile-import", json=profile, headers=KLAVIYO_HEADERS)
    updated = client.post("/api/profile-import", json=profile, headers=KLAVIYO_HEADERS)
    assert (created.status_code, updated.status_code) == (201, 200)
    assert created.json()["data"]["type"] == "profile"
    assert re.fullmatch(r"[0-9A-Z]{26}", created.json()["data"]["id"])
    assert created.json()["data"]["id"] == updated.json()["data"]["id"]


def test_webhook_is_signed_and_deduplicated(fake: FakeProvider, client: httpx.Client) -> None:
    body = json.dumps({"message_id": "w-1", "customer_id": "c-1", "task": "vip"}).encode()
    for _ in range(2):
        response = client.post("/hooks/erp/vip", content=body, headers=signed(body, "w-1"))
        assert response.status_code == 200
    [record] = fake.state.messages("webhook")
    assert (record.message_id, record.address, record.customer_id) == ("w-1", "erp/vip", "c-1")
    assert client.get("/_fake/stats").json()["deduplicated"] == {"webhook": 1}


def test_webhook_requires_an_idempotency_key(fake: FakeProvider, client: httpx.Client) -> None:
    body = b'{"a": 1}'
    headers = signed(body, "x")
    del headers["Idempotency-Key"]
    assert client.post("/hooks/a", content=body, headers=headers).status_code == 400
    assert fake.state.messages() == []


def test_audience_members_are_a_set(fake: FakeProvider, client: httpx.Client) -> None:
    ada, bob = digest("ada@example.com"), digest("bob@example.com")
    phone = digest("14155550100")
    first = {"schema": ["EMAIL_SHA256", "PHONE_SHA256"], "data": [[ada, phone], [bob, ""]]}
    second = {"schema": ["EMAIL_SHA256", "PHONE_SHA256"], "data": [[bob, ""]]}
    url = "/audiences/vip-lookalike/users"
    assert client.post(url, json=first, headers=SENDGRID_AUTH).json()["added"] == 2
    assert client.post(url, json=second, headers=SENDGRID_AUTH).json()["added"] == 0
    users = client.get(url, headers=SENDGRID_AUTH).json()["users"]
    assert sorted(users, key=str) == sorted(
        [{"EMAIL_SHA256": ada, "PHONE_SHA256": phone}, {"EMAIL_SHA256": bob}], key=str
    )
    bad = {"schema": ["EMAIL_SHA256"], "data": [["ada@example.com"]]}
    assert client.post(url, json=bad, headers=SENDGRID_AUTH).status_code == 400
    assert client.post(url, json=first).status_code == 401
    assert len(fake.state.messages("audience")) == 2


# -- refused and not recorded ----------------------------------------------------------------


def without(data: dict[str, Any], key: str) -> dict[str, Any]:
    return {k: v for k, v in data.items() if k != key}


Send = Callable[[httpx.Client], httpx.Response]
REFUSALS: list[tuple[str, Send, int, Callable[[dict[str, Any]], bool]]] = [
    (
        "sendgrid without from",
        lambda c: send_mail(c, without(mail("r-1"), "from")),
        400,
        lambda b: b["errors"][0]["field"] == "from" and "from" in b["errors"][0]["message"],
    ),
    (
        "sendgrid without auth",
        lambda c: c.post("/v3/mail/send", json=mail("r-1")),
        401,
        lambda b: isinstance(b["errors"][0]["message"], str),
    ),
    (
        "twilio without To",
        lambda c: send_sms(c, without(sms("r-1"), "To")),
        400,
        lambda b: b["code"] == 21604 and b["status"] == 400 and "To" in b["message"],
    ),
    (
        "twilio with a bad AccountSid",
        lambda c: c.post(
            "/2010-04-01/Accounts/AC123/Messages.json", data=sms("r-1"), auth=("AC123", "t")
        ),
        400,
        lambda b: b["status"] == 400 and "AccountSid" in b["message"] and "more_info" in b,
    ),
    (
        "twilio without auth",
        lambda c: c.post(MESSAGES, data=sms("r-1")),
        401,
        lambda b: b["code"] == 20003 and b["status"] == 401,
    ),
    (
        "twilio with another account's credentials",
        lambda c: c.post(MESSAGES, data=sms("r-1"), auth=("AC" + "1" * 32, "t")),
        401,
        lambda b: b["status"] == 401,
    ),
    (
        "klaviyo without revision",
        lambda c: c.post(
            "/api/events", json=event("r-1"), headers=without(KLAVIYO_HEADERS, "revision")
        ),
        400,
        lambda b: (
            b["errors"][0]["code"] == "invalid"
            and b["errors"][0]["status"] == 400
            and {"id", "title", "detail", "source"} <= set(b["errors"][0])
        ),
    ),
    (
        "klaviyo without auth",
        lambda c: c.post(
            "/api/events", json=event("r-1"), headers=without(KLAVIYO_HEADERS, "Authorization")
        ),
        401,
        lambda b: b["errors"][0]["code"] == "not_authenticated",
    ),
    (
        "webhook with a bad signature",
        lambda c: c.post(
            "/hooks/a",
            content=b'{"a": 1}',
            headers=signed(b'{"a": 1}', "r-1", secret="another secret"),
        ),
        401,
        lambda b: b["error"]["status"] == 401,
    ),
]


@pytest.mark.parametrize(
    ("case", "send", "status", "shaped"), REFUSALS, ids=[r[0] for r in REFUSALS]
)
def test_invalid_requests_are_refused_and_not_recorded(
    fake: FakeProvider,
    client: httpx.Client,
    case: str,
    send: Send,
    status: int,
    shaped: Callable[[dict[str, Any]], bool],
) -> None:
    response = send(client)
    assert response.status_code == status, response.text
    assert shaped(response.json()), response.text
    assert fake.state.messages() == []
    assert fake.settings.record_dir is not None
    assert read_received(fake.settings.record_dir) == []
    assert sum(fake.state.stats()["rejected"].values()) == 1


# -- duplicates and lookups ------------------------------------------------------------------


def test_a_message_accepted_twice_is_a_duplicate(fake: FakeProvider, client: httpx.Client) -> None:
    send_mail(client, mail("d-1", "d-2"))
    send_mail(client, mail("d-1"))
    assert fake.state.deliveries("d-1") == 2
    assert fake.state.duplicates() == {"d-1": 2}
    stats = client.get("/_fake/stats").json()
    assert stats["duplicates"] == 1
    assert stats["accepted"] == {"sendgrid": 3}
    assert stats["requests"] == {"sendgrid": 2}


def test_sendgrid_email_activity_finds_a_message_by_id(
    fake: FakeProvider, client: httpx.Client
) -> None:
    response = send_mail(client, mail("a-1", "a-2"))
    message_id = response.headers["X-Message-Id"]

    def lookup(wanted: str) -> httpx.Response:
        query = {"query": f"unique_args['message_id']=\"{wanted}\"", "limit": "10"}
        return client.get("/v3/messages", params=query, headers=SENDGRID_AUTH)

    [found] = lookup("a-2").json()["messages"]
    assert found["to_email"] == "a-2@customers.example"
    assert found["msg_id"].startswith(message_id + ".")
    assert found["subject"] == "Hi Ada"
    assert found["status"] in {"processed", "delivered", "not_delivered"}
    assert set(found) >= {"msg_id", "to_email", "subject", "status", "last_event_time"}
    assert lookup("unknown").json() == {"messages": []}
    assert client.get("/v3/messages", params={"query": "x"}).status_code == 401


def test_twilio_list_filters_by_to_and_date_sent(fake: FakeProvider, client: httpx.Client) -> None:
    fake.set_now(datetime(2030, 1, 1, 10, 0))
    early = send_sms(client, sms("l-1")).json()
    send_sms(client, sms("l-2", to="+14155550111"))
    fake.set_now(datetime(2030, 1, 2, 10, 0))
    late = send_sms(client, sms("l-3")).json()

    def listed(**query: str) -> list[str]:
        params = {"PageSize": "50", **query}
        response = client.get(MESSAGES, params=params, auth=(ACCOUNT, "token"))
        assert response.status_code == 200, response.text
        body = response.json()
        assert (body["page"], body["page_size"], body["next_page_uri"]) == (0, 50, None)
        return [m["sid"] for m in body["messages"]]

    to = "+14155550100"
    assert listed(To=to) == [late["sid"], early["sid"]]
    assert listed(To=to, **{"DateSent>": "2030-01-02T00:00:00Z"}) == [late["sid"]]
    assert listed(To=to, **{"DateSent>": "2030-01-02T10:00:01Z"}) == []
    assert listed(To="+14155550199") == []


# -- failure injection -----------------------------------------------------------------------


async def _burst(url: str, requests: int, timeout: float) -> Counter[str]:
    seen: Counter[str] = Counter()
    gate = asyncio.Semaphore(16)
    body = json.dumps(mail("f-1")).encode()
    headers = {**SENDGRID_AUTH, "Content-Type": "application/json"}

    async def one(client: httpx.AsyncClient) -> None:
        async with gate:
            try:
                response = await client.post("/v3/mail/send", content=body, headers=headers)
            except httpx.TimeoutException:
                seen["timeout"] += 1
                return
            seen[str(response.status_code)] += 1
            if response.status_code == 429:
                seen["retry-after " + response.headers.get("Retry-After", "-")] += 1

    async with httpx.AsyncClient(base_url=url, timeout=timeout) as client:
        await asyncio.gather(*(one(client) for _ in range(requests)))
    return seen


def test_injected_failures_follow_their_shares(tmp_path: Path) -> None:
    failures = Failures(
        rate_limited=0.2, retry_after=7, server_error=0.1, timeout=0.05, timeout_seconds=2, seed=3
    )
    settings = FakeSettings(failures=failures, record_dir=tmp_path)
    with running(settings) as fake:
        seen = asyncio.run(_burst(fake.url, 400, timeout=0.5))
        stats = fake.state.stats()
        accepted = fake.state.messages()
    assert seen["retry-after 7"] == seen["429"]
    assert 50 <= seen["429"] <= 110
    assert 20 <= seen["500"] <= 60
    assert 8 <= seen["timeout"] <= 35
    assert seen["202"] == 400 - seen["429"] - seen["500"] - seen["timeout"]
    assert stats["injected"] == {
        "rate_limited": seen["429"],
        "server_error": seen["500"],
        "timeout": seen["timeout"],
    }
    assert len(accepted) == seen["202"] == stats["accepted"]["sendgrid"]
    assert len(read_received(tmp_path)) == seen["202"]


def test_the_same_seed_draws_the_same_failures() -> None:
    failures = Failures(rate_limited=0.3, server_error=0.2, timeout=0.1, seed=11)
    first, second = Injector(failures), Injector(failures)
    drawn = [first.decide() for _ in range(200)]
    assert drawn == [second.decide() for _ in range(200)]
    other = Injector(failures.model_copy(update={"seed": 12}))
    assert drawn != [other.decide() for _ in range(200)]


def test_failures_and_latency_can_be_set_while_running(
    fake: FakeProvider, client: httpx.Client
) -> None:
    response = client.post("/_fake/failures", json={"rate_limited": 1.0, "retry_after": 3})
    assert response.status_code == 200
    refused = send_mail(client, mail("x-1"))
    assert (refused.status_code, refused.headers["Retry-After"]) == (429, "3")
    assert "errors" in refused.json()
    assert client.post("/_fake/failures", json={"rate_limited": 2}).status_code == 400
    fake.set_failures(slow=1.0, latency_ms=300)
    started = time.perf_counter()
    assert send_mail(client, mail("x-2")).status_code == 202
    assert time.perf_counter() - started >= 0.3
    fake.set_failures()
    assert send_mail(client, mail("x-3")).status_code == 202
    assert [r.message_id for r in fake.state.messages()] == ["x-2", "x-3"]
    assert fake.state.stats()["injected"] == {"rate_limited": 1, "slow": 1}


# -- engagement ------------------------------------------------------------------------------


def test_sendgrid_engagement_is_posted_when_it_happens(
    fake: FakeProvider, client: httpx.Client
) -> None:
    ids = [f"e-{i}" for i in range(1000)]
    message_id = send_mail(client, mail(*ids)).headers["X-Message-Id"]
    now = unix(fake.now())
    early = [e for f in inbox_files(fake, "sendgrid") for e in json.loads(f.read_text())]
    assert early, "the processed events happen at once"
    assert all(e["timestamp"] <= now + 1 for e in early)
    assert fake.fake.engagement.pending() > 0, "opens and clicks are still ahead"
    events = [e for e in released(fake) if e["message_id"] != "e-extra"]
    assert fake.settings.inbox is not None
    assert list(fake.settings.inbox.rglob("*.tmp")) == []
    by_message: dict[str, list[dict[str, Any]]] = {}
    for e in sorted(events, key=lambda e: e["timestamp"]):
        assert set(e) >= EVENT_KEYS
        assert all(e[a] for a in ARGS)
        assert e["sg_message_id"].startswith(message_id + ".")
        by_message.setdefault(e["message_id"], []).append(e)
    assert set(by_message) == set(ids)
    kinds = {m: [e["event"] for e in found] for m, found in by_message.items()}
    assert all(k[0] == "processed" for k in kinds.values())
    assert all(not ("bounce" in k and "delivered" in k) for k in kinds.values())
    share = Counter(kind for k in kinds.values() for kind in set(k))
    assert 0.95 <= share["delivered"] / 1000 <= 0.99
    assert 0.005 <= share["bounce"] / 1000 <= 0.04
    assert 0.28 <= share["open"] / share["delivered"] <= 0.42
    assert 0.05 <= share["click"] / share["delivered"] <= 0.11
    for e in events:
        if e["event"] == "bounce":
            assert e["type"] == "bounce" and e["reason"]
        if e["event"] == "click":
            assert e["url"] == "https://shop.example/cart"
            assert "open" in kinds[e["message_id"]]


def test_engagement_outcomes_are_decided_by_the_message_id(tmp_path: Path) -> None:
    def outcomes(inbox: Path) -> dict[str, list[str]]:
        with running(FakeSettings(inbox=inbox)) as fake, httpx.Client(base_url=fake.url) as c:
            send_mail(c, mail(*[f"o-{i}" for i in range(300)]))
            events = released(fake)
        found: dict[str, list[str]] = {}
        for e in sorted(events, key=lambda e: (e["message_id"], e["event"])):
            found.setdefault(e["message_id"], []).append(e["event"])
        return found

    first, second = outcomes(tmp_path / "a"), outcomes(tmp_path / "b")
    assert first == second
    assert len({tuple(k) for k in first.values()}) > 2


def test_engagement_rates_are_settings(tmp_path: Path) -> None:
    rates = Rates(delivered=1.0, bounce=0.0, open=0.0, click=0.0, spam_report=0, unsubscribe=0)
    with running(FakeSettings(inbox=tmp_path, engagement=rates)) as fake:
        with httpx.Client(base_url=fake.url) as c:
            send_mail(c, mail(*[f"q-{i}" for i in range(50)]))
        events = released(fake)
    kinds = Counter(e["event"] for e in events)
    assert kinds == {"processed": 50, "delivered": 50}


@pytest.mark.parametrize(("delivered", "status"), [(1.0, "delivered"), (0.0, "undelivered")])
def test_twilio_status_callbacks(tmp_path: Path, delivered: float, status: str) -> None:
    rates = Rates(delivered=delivered, bounce=0.0)
    with running(FakeSettings(inbox=tmp_path, engagement=rates)) as fake:
        with httpx.Client(base_url=fake.url) as c:
            sid = send_sms(c, sms("cb-1")).json()["sid"]
            send_sms(c, without(sms("cb-2"), "StatusCallback"))
        [callback] = released(fake, "twilio")
    assert callback["MessageSid"] == sid
    assert callback["MessageStatus"] == status
    assert (callback["To"], callback["AccountSid"]) == ("+14155550100", ACCOUNT)
    assert callback["ApiVersion"] == "2010-04-01"
    assert (callback["message_id"], callback["customer_id"]) == ("cb-1", "cust-1")
    assert callback.get("ErrorCode") == (None if delivered else "30003")


def test_fate_follows_the_rates() -> None:
    rates = Rates()
    fates = [fate(f"msg-{i}", rates) for i in range(20000)]
    delivered = [f for f in fates if f.delivered]
    assert abs(len(delivered) / 20000 - 0.97) < 0.01
    assert abs(sum(f.bounced for f in fates) / 20000 - 0.02) < 0.005
    assert abs(sum(f.opened for f in delivered) / len(delivered) - 0.35) < 0.02
    assert abs(sum(f.clicked for f in delivered) / len(delivered) - 0.08) < 0.01
    assert all(f.opened for f in fates if f.clicked)
    assert fate("msg-1", rates) == fates[1]


# -- the clock -------------------------------------------------------------------------------


def test_the_clock_sets_event_times(fake: FakeProvider, client: httpx.Client) -> None:
    simulated = datetime(2030, 6, 1, 9, 0)
    fake.set_now(simulated)
    send_mail(client, mail("c-1"))
    scheduled = datetime(2030, 6, 3, 18, 0)
    later = mail("c-2")
    later["personalizations"][0]["send_at"] = unix(scheduled)
    send_mail(client, later)
    message = send_sms(client, sms("c-3")).json()
    assert parsedate_to_datetime(message["date_sent"]) == simulated.replace(tzinfo=UTC)
    written = [e for f in inbox_files(fake, "sendgrid") for e in json.loads(f.read_text())]
    assert {e["message_id"] for e in written} == {"c-1"}, "c-2 is scheduled: nothing yet"
    events = released(fake)
    first = [e for e in events if e["message_id"] == "c-1"]
    second = sorted((e for e in events if e["message_id"] == "c-2"), key=lambda e: e["timestamp"])
    assert {e["timestamp"] for e in first if e["event"] == "processed"} == {unix(simulated)}
    assert second[0]["timestamp"] == unix(scheduled)
    assert all(e["timestamp"] >= unix(simulated) for e in first)
    assert fake.state.messages()[0].received_at == simulated
    response = client.post("/_fake/clock", json={"now": "2031-02-03T04:05:06Z"})
    assert response.json()["now"] == "2031-02-03T04:05:06"
    assert client.post("/_fake/clock", json={"now": None}).status_code == 200
    assert abs((fake.now() - datetime.now(UTC).replace(tzinfo=None)).total_seconds()) < 60


# -- inspection and load ---------------------------------------------------------------------


def test_inspection_and_reset(fake: FakeProvider, client: httpx.Client) -> None:
    send_mail(client, mail("i-1"))
    send_sms(client, sms("i-2"))
    listed = client.get("/_fake/messages", params={"provider": "twilio"}).json()["messages"]
    assert [m["message_id"] for m in listed] == ["i-2"]
    assert client.post("/_fake/reset").status_code == 200
    assert client.get("/_fake/messages").json() == {"messages": []}
    assert client.get("/_fake/stats").json()["accepted"] == {}
    assert fake.settings.record_dir is not None
    assert read_received(fake.settings.record_dir) == []
    send_mail(client, mail("i-3"))
    assert [r["message_id"] for r in read_received(fake.settings.record_dir)] == ["i-3"]


def test_load_generator_sends_valid_requests(fake: FakeProvider) -> None:
    mails = asyncio.run(measure(fake.url, "sendgrid", requests=6, concurrency=2, batch=50))
    texts = asyncio.run(measure(fake.url, "twilio", requests=10, concurrency=3))
    assert mails["statuses"] == {"202": 6}
    assert texts["statuses"] == {"201": 10}
    assert mails["messages_per_second"] == pytest.approx(mails["requests_per_second"] * 50)
    assert mails["p95_ms"] >= mails["p50_ms"] > 0
    stats = fake.state.stats()
    assert stats["accepted"] == {"sendgrid": 300, "twilio": 10}
    assert stats["duplicates"] == 0


def test_a_client_that_hangs_up_mid_body_is_no_error(
    fake: FakeProvider, client: httpx.Client, caplog: pytest.LogCaptureFixture
) -> None:
    """A sender killed while its request body was on the wire (the crash harness does this)
    leaves nothing recorded and no traceback in the fake's log; the fake goes on serving."""
    host, port = fake.url.removeprefix("http://").split(":")
    with socket.create_connection((host, int(port))) as raw:
        raw.sendall(
            b"POST /v3/mail/send HTTP/1.1\r\nHost: fake\r\nAuthorization: Bearer SG.test-key\r\n"
            b'Content-Type: application/json\r\nContent-Length: 1000\r\n\r\n{"personalizations"'
        )
    time.sleep(0.5)
    assert not [r for r in caplog.records if "Exception in ASGI application" in r.getMessage()]
    assert client.get("/_fake/stats").json()["accepted"] == {}
    assert send_mail(client, mail("after")).status_code == 202
    assert fake.state.deliveries("after") == 1
