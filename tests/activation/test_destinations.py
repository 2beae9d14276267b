"""The provider destinations: every request they build is checked against the provider's
published OpenAPI document (``flowhouse.activation.openapi``), and every response is read into outcomes.

Responses come from ``httpx.MockTransport`` handlers; nothing leaves the machine.
"""

from __future__ import annotations

import asyncio
import base64
import calendar
import dataclasses
import hashlib
import hmac
import json
from collections import Counter
from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any

import httpx
import pytest

from flowhouse.activation import openapi as specs
from flowhouse.activation.message import Outcome, Outgoing
from flowhouse.activation.providers import DESTINATIONS
from flowhouse.activation.providers.audience.config import Audience
from flowhouse.activation.providers.audience.destination import AudienceDestination
from flowhouse.activation.providers.base import (
    Call,
    Destination,
    Listing,
    Secrets,
    basic_auth,
    json_object,
    match,
)
from flowhouse.activation.providers.fcm.destination import FcmDestination
from flowhouse.activation.providers.identity import hashed_row, normalize_email, normalize_phone
from flowhouse.activation.providers.klaviyo.config import Klaviyo
from flowhouse.activation.providers.klaviyo.destination import KlaviyoDestination
from flowhouse.activation.providers.sendgrid.config import SendGrid
from flowhouse.activation.providers.sendgrid.destination import (
    HTML_TAG,
    SUBSTITUTIONS_LIMIT,
    TEXT_TAG,
    SendGridDestination,
)
from flowhouse.activation.providers.twilio.config import Twilio
from flowhouse.activation.providers.twilio.destination import TwilioDestination
from flowhouse.activation.providers.webhook.config import Webhook
from flowhouse.activation.providers.webhook.destination import WebhookDestination, sign, verify
from flowhouse.core.errors import ConfigError

ACCOUNT = "AC" + "0123456789abcdef" * 2
SERVICE = "MG" + "fedcba9876543210" * 2
ENV = {
    "SENDGRID_API_KEY": "SG.test-sendgrid-key",
    "TWILIO_ACCOUNT_SID": ACCOUNT,
    "TWILIO_AUTH_TOKEN": "twilio-test-token",
    "KLAVIYO_API_KEY": "pk_test_klaviyo_key",
    "FLOWHOUSE_WEBHOOK_SECRET": "whsec-test-secret",
    "FLOWHOUSE_AUDIENCE_TOKEN": "audience-test-token",
}
FAKE = "http://127.0.0.1:8765/"
SEND_AT = datetime(2026, 5, 1, 10, 0)
UNSUBSCRIBE = {
    "List-Unsubscribe": "<https://shop.example/u/eyJtIjoiMSJ9.abc>",
    "List-Unsubscribe-Post": "List-Unsubscribe=One-Click",
}


def secrets() -> Secrets:
    return Secrets(dict(ENV))


def email(i: int = 1, **changes: Any) -> Outgoing:
    """A rendered welcome e-mail, as the engine queues it."""
    fields: dict[str, Any] = {
        "message_id": hashlib.md5(f"enrollment-{i}:email_1".encode()).hexdigest(),
        "channel": "email",
        "customer_id": f"cust-{i:05d}",
        "flow_id": "welcome",
        "step_id": "email_1",
        "address": f"ada.{i}@example.com",
        "subject": f"Welcome to Our store, Ada {i}",
        "html": f"<html><body><p>Hi Ada {i},</p><p>Here is 10% off: WELCOME10</p></body></html>",
        "text": f"Hi Ada {i},\n\nHere is 10% off: WELCOME10",
        "data": {"first_name": f"Ada {i}", "coupon": "WELCOME10"},
        "customer": {"email": f"ada.{i}@example.com", "first_name": f"Ada {i}"},
        "headers": dict(UNSUBSCRIBE),
    }
    return Outgoing(**(fields | changes))


def sms(i: int = 1, **changes: Any) -> Outgoing:
    fields: dict[str, Any] = {
        "message_id": f"sms-{i:04d}",
        "channel": "sms",
        "customer_id": f"cust-{i:05d}",
        "flow_id": "abandoned_cart",
        "step_id": "sms_1",
        "address": "+14155550100",
        "text": "Ada, your cart is waiting: https://shop.example/c/abc Reply STOP to opt out",
        "customer": {"phone": "+14155550100", "first_name": "Ada"},
    }
    return Outgoing(**(fields | changes))


def action(channel: str, i: int = 1, **payload: Any) -> Outgoing:
    return Outgoing(
        message_id=f"{channel}-{i:04d}",
        channel=channel,
        customer_id=f"cust-{i:05d}",
        flow_id="vip",
        step_id="notify",
        subject="VIP welcome",
        text="Ada joined VIP",
        payload=payload,
        customer={
            "email": f"Ada.{i}@Example.com ",
            "phone": "+1 (415) 555-0100",
            "first_name": "Ada",
        },
    )


def sendgrid(base_url: str | None = None, **config: Any) -> SendGridDestination:
    return SendGridDestination(SendGrid.model_validate(config), secrets(), base_url)


def twilio(base_url: str | None = None, **config: Any) -> TwilioDestination:
    config.setdefault("from_number", "+14155550199")
    return TwilioDestination(Twilio.model_validate(config), secrets(), base_url)


def klaviyo(base_url: str | None = None) -> KlaviyoDestination:
    return KlaviyoDestination(Klaviyo.model_validate({}), secrets(), base_url)


def body(request: httpx.Request) -> Any:
    return json.loads(request.read())


def rebuilt(request: httpx.Request, change: Callable[[dict[str, Any]], None]) -> httpx.Request:
    """``request`` with its JSON body changed by ``change``."""
    data = body(request)
    change(data)
    return httpx.Request(
        request.method, request.url, headers=request.headers, content=json.dumps(data).encode()
    )


def respond(call: Call, response: httpx.Response) -> httpx.Response:
    """``response`` as a client receives it for ``call``'s request (through a mock transport)."""
    with httpx.Client(transport=httpx.MockTransport(lambda _: response)) as client:
        return client.send(call.request)


def lookup(destination: Destination, message: Outgoing, handler: Any, since: datetime) -> str:
    """Where the lookup of ``message`` alone settles it."""

    async def run() -> Listing | None:
        async with httpx.AsyncClient(transport=httpx.MockTransport(handler)) as client:
            return await destination.lookup(client, message, since)

    return match([message.message_id], [asyncio.run(run())], set())[0].found


# -- the registry --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "cls", "max_batch", "reconcile"),
    [
        ("sendgrid", SendGridDestination, 1000, "lookup"),
        ("twilio", TwilioDestination, 1, "lookup"),
        ("klaviyo", KlaviyoDestination, 1, "idempotent"),
        ("webhook", WebhookDestination, 1, "idempotent"),
        ("audience", AudienceDestination, 10_000, "idempotent"),
        ("fcm", FcmDestination, 1, "none"),
    ],
)
def test_registry(name: str, cls: type[Destination], max_batch: int, reconcile: str) -> None:
    assert DESTINATIONS[name] is cls
    assert (cls.name, cls.max_batch, cls.reconcile) == (name, max_batch, reconcile)


def test_registry_names_every_route() -> None:
    assert set(DESTINATIONS) == {
        "sendgrid", "twilio", "klaviyo", "webhook", "audience", "vonage", "fcm", "spree",
    }  # fmt: skip


# -- SendGrid: requests valid against the document ---------------------------------------------

MAPPED = {"welcome.html": "d-0123456789abcdef0123456789abcdef"}

SENDGRID_CASES: list[tuple[str, dict[str, Any], list[Outgoing]]] = [
    ("rendered", {}, [email(i) for i in range(3)]),
    ("rendered, text only", {}, [email(i, html=None) for i in range(2)]),
    ("rendered, scheduled", {}, [email(1, send_at=SEND_AT), email(2)]),
    (
        "rendered, sender name and reply-to",
        {"from_name": "Our store", "reply_to": "help@shop.example"},
        [email(1)],
    ),
    ("too big for substitutions", {}, [email(1, html="<p>" + "x" * 12_000 + "</p>")]),
    (
        "dynamic template",
        {"templates": MAPPED},
        [email(i, template="welcome.html", html=None, text=None) for i in range(3)],
    ),
    (
        "template and rendered",
        {"templates": MAPPED},
        [email(1, template="welcome.html"), email(2, template="other.html")],
    ),
]


@pytest.mark.parametrize("base_url", [None, FAKE])
@pytest.mark.parametrize(
    ("case", "config", "batch"), SENDGRID_CASES, ids=[c[0] for c in SENDGRID_CASES]
)
def test_sendgrid_requests_are_valid(
    case: str, config: dict[str, Any], batch: list[Outgoing], base_url: str | None
) -> None:
    calls = sendgrid(base_url, **config).calls(batch)
    assert calls
    for call in calls:
        assert specs.problems(call.request) == [], case
        assert call.request.url.path == "/v3/mail/send"
        assert call.request.headers["authorization"] == "Bearer SG.test-sendgrid-key"
    assert Counter(m for c in calls for m in c.message_ids) == Counter(m.message_id for m in batch)


def test_sendgrid_sends_to_the_given_base_url() -> None:
    [call] = sendgrid(FAKE).calls([email()])
    assert str(call.request.url) == "http://127.0.0.1:8765/v3/mail/send"
    [call] = sendgrid().calls([email()])
    assert str(call.request.url) == "https://api.sendgrid.com/v3/mail/send"


def test_sendgrid_personalization_names_the_message() -> None:
    message = email(7, send_at=SEND_AT)
    [call] = sendgrid(from_name="Our store", reply_to="help@shop.example").calls([message])
    sent = body(call.request)
    [person] = sent["personalizations"]
    assert person["to"] == [{"email": "ada.7@example.com"}]
    assert person["custom_args"] == {
        "message_id": message.message_id,
        "customer_id": "cust-00007",
        "flow_id": "welcome",
        "step_id": "email_1",
    }
    assert all(isinstance(v, str) for v in person["custom_args"].values())
    assert "custom_args" not in sent  # never top level (the document types it as a string)
    assert person["headers"] == UNSUBSCRIBE
    assert person["subject"] == "Welcome to Our store, Ada 7"
    assert person["send_at"] == calendar.timegm(SEND_AT.timetuple()) == 1777629600
    assert sent["from"] == {"email": "hello@shop.example", "name": "Our store"}
    assert sent["reply_to"] == {"email": "help@shop.example"}
    assert sent["categories"] == ["flowhouse"]


def test_sendgrid_rendered_content_goes_through_substitutions() -> None:
    batch = [email(1), email(2)]
    [call] = sendgrid().calls(batch)
    sent = body(call.request)
    assert sent["content"] == [
        {"type": "text/plain", "value": TEXT_TAG},
        {"type": "text/html", "value": HTML_TAG},
    ]
    for person, message in zip(sent["personalizations"], batch, strict=True):
        assert person["substitutions"] == {HTML_TAG: message.html, TEXT_TAG: message.text}
        assert "dynamic_template_data" not in person
    assert "template_id" not in sent


def test_sendgrid_dynamic_template_carries_the_render_context() -> None:
    message = email(3, template="welcome.html")
    [call] = sendgrid(templates=MAPPED).calls([message])
    sent = body(call.request)
    assert sent["template_id"] == MAPPED["welcome.html"]
    assert "content" not in sent
    [person] = sent["personalizations"]
    assert person["dynamic_template_data"] == {
        "first_name": "Ada 3",
        "coupon": "WELCOME10",
        "subject": "Welcome to Our store, Ada 3",
    }


def test_sendgrid_never_mixes_substitutions_and_templates() -> None:
    """The document: substitutions "should not be used in combination with a Dynamic Template"."""
    other = {"welcome.html": "d-" + "a" * 32, "cart.html": "d-" + "b" * 32}
    batch = [
        email(i, template=["welcome.html", "cart.html", "unmapped.html", None][i % 4])
        for i in range(40)
    ]
    calls = sendgrid(templates=other).calls(batch)
    templates = [body(c.request).get("template_id") for c in calls]
    assert sorted(t for t in templates if t) == sorted(other.values())  # one call per template
    for call in calls:
        sent = body(call.request)
        uses_subs = any("substitutions" in p for p in sent["personalizations"])
        uses_data = any("dynamic_template_data" in p for p in sent["personalizations"])
        assert not (sent.get("template_id") and uses_subs)
        assert uses_data == bool(sent.get("template_id"))


@pytest.mark.parametrize(
    ("mutation", "expected"),
    [
        (lambda b: b.pop("from"), "'from' is a required property"),
        (lambda b: b.update(custom_args={"flow_id": "welcome"}), "custom_args"),
        (lambda b: b["personalizations"][0].pop("to"), "'to' is a required property"),
        (lambda b: b["personalizations"][0].update(send_at="tomorrow"), "send_at"),
        (lambda b: b["personalizations"][0]["substitutions"].update(n=1), "substitutions"),
        (lambda b: b["personalizations"][0]["to"][0].update(email="nobody"), "email"),
        (lambda b: b.update(personalizations=b["personalizations"] * 1001), "personalizations"),
    ],
    ids=[
        "no from",
        "top-level custom args",
        "no to",
        "send_at text",
        "number",
        "bad email",
        "1001",
    ],
)
def test_sendgrid_validator_catches_broken_requests(
    mutation: Callable[[dict[str, Any]], Any], expected: str
) -> None:
    [call] = sendgrid().calls([email()])
    found = specs.problems(rebuilt(call.request, mutation))
    assert found
    assert expected in " ".join(found)


def test_sendgrid_validator_wants_the_key() -> None:
    [call] = sendgrid().calls([email()])
    call.request.headers.pop("authorization")
    assert any("Security" in p for p in specs.problems(call.request))


# -- SendGrid: batching and the substitutions limit --------------------------------------------


def test_sendgrid_batches_2500_into_1000_1000_500() -> None:
    batch = [email(i) for i in range(2500)]
    calls = sendgrid().calls(batch)
    assert [len(c.message_ids) for c in calls] == [1000, 1000, 500]
    assert [len(body(c.request)["personalizations"]) for c in calls] == [1000, 1000, 500]
    ids = [m for c in calls for m in c.message_ids]
    assert sorted(ids) == sorted(m.message_id for m in batch)
    assert len(set(ids)) == 2500
    assert specs.problems(calls[0].request) == []


def test_sendgrid_personalizations_follow_their_message_ids() -> None:
    batch = [email(i) for i in range(1500)]
    by_id = {m.message_id: m for m in batch}
    for call in sendgrid().calls(batch):
        people = body(call.request)["personalizations"]
        assert [p["custom_args"]["message_id"] for p in people] == list(call.message_ids)
        assert [p["to"][0]["email"] for p in people] == [by_id[m].address for m in call.message_ids]


def test_sendgrid_12kb_body_goes_alone() -> None:
    big = email(99, html="<p>" + "Lorem ipsum dolor sit amet. " * 440 + "</p>")
    assert len(big.html.encode()) > 12_000  # type: ignore[union-attr]
    batch = [email(1), big, email(2), email(3)]
    calls = sendgrid().calls(batch)
    assert sorted(len(c.message_ids) for c in calls) == [1, 3]
    [alone] = [c for c in calls if c.message_ids == (big.message_id,)]
    sent = body(alone.request)
    assert sent["content"] == [
        {"type": "text/plain", "value": big.text},
        {"type": "text/html", "value": big.html},
    ]
    assert "substitutions" not in sent["personalizations"][0]
    assert sent["personalizations"][0]["subject"] == big.subject
    assert all(specs.problems(c.request) == [] for c in calls)


@pytest.mark.parametrize(
    ("html", "alone"),
    [
        ("a" * 5_000, False),
        ("a" * 9_000, False),
        ("a" * 10_001, True),  # the values alone exceed the limit
        ("é" * 5_001, True),  # 5,001 characters but 10,002 bytes: the limit is in bytes
    ],
)
def test_sendgrid_substitutions_limit(html: str, alone: bool) -> None:
    message = email(5, html=html, text="short")
    calls = sendgrid().calls([email(1), message])
    assert (len(calls) == 2) is alone
    for call in calls:
        for person in body(call.request)["personalizations"]:
            subs = person.get("substitutions", {})
            raw = sum(len(k.encode()) + len(v.encode()) for k, v in subs.items())
            assert raw <= SUBSTITUTIONS_LIMIT


def test_sendgrid_unsendable_message_cannot_take_the_batch_down() -> None:
    """SendGrid refuses a whole request for one bad address; such a message goes alone."""
    batch = [
        email(1),
        email(2, address="not an address"),
        email(3, html=None, text=None),
        email(4),
        email(5, template="welcome.html"),
        email(6, template="welcome.html", address="ada@"),
        email(7, template="welcome.html"),
    ]
    ids = [m.message_id for m in batch]
    calls = {c.message_ids: c for c in sendgrid(templates=MAPPED).calls(batch)}
    assert sorted(calls) == sorted(
        [(ids[0], ids[3]), (ids[1],), (ids[2],), (ids[4], ids[6]), (ids[5],)]
    )
    for shared in [(ids[0], ids[3]), (ids[4], ids[6])]:
        assert specs.problems(calls[shared].request) == []
    assert specs.problems(calls[(ids[1],)].request)  # refused alone, as SendGrid would
    assert "content" not in body(calls[(ids[2],)].request)
    assert body(calls[(ids[5],)].request)["template_id"] == MAPPED["welcome.html"]


# -- Twilio --------------------------------------------------------------------------------------

TWILIO_CASES: list[tuple[str, dict[str, Any], Outgoing, dict[str, str]]] = [
    (
        "from number",
        {},
        sms(),
        {"From": "+14155550199"},
    ),
    (
        "messaging service, scheduled",
        {"messaging_service_sid": SERVICE},
        sms(send_at=SEND_AT),
        {"MessagingServiceSid": SERVICE, "SendAt": "2026-05-01T10:00:00Z", "ScheduleType": "fixed"},
    ),
    (
        "from number cannot schedule",
        {},
        sms(send_at=SEND_AT),
        {"From": "+14155550199"},
    ),
    (
        "status callback",
        {"status_callback": "https://shop.example/hooks/twilio?store=1"},
        sms(),
        {
            "From": "+14155550199",
            "StatusCallback": "https://shop.example/hooks/twilio?store=1&message_id=sms-0001"
            "&customer_id=cust-00001",
        },
    ),
]


@pytest.mark.parametrize("base_url", [None, FAKE])
@pytest.mark.parametrize(
    ("case", "config", "message", "expected"), TWILIO_CASES, ids=[c[0] for c in TWILIO_CASES]
)
def test_twilio_requests_are_valid(
    case: str,
    config: dict[str, Any],
    message: Outgoing,
    expected: dict[str, str],
    base_url: str | None,
) -> None:
    [call] = twilio(base_url, **config).calls([message])
    request = call.request
    assert specs.problems(request) == [], case
    assert request.url.path == f"/2010-04-01/Accounts/{ACCOUNT}/Messages.json"
    assert request.headers["content-type"] == "application/x-www-form-urlencoded"
    form = dict(httpx.QueryParams(request.read().decode()))
    assert form == {"To": "+14155550100", "Body": message.text, **expected}
    scheme, _, credentials = request.headers["authorization"].partition(" ")
    assert scheme == "Basic"
    assert base64.b64decode(credentials).decode() == f"{ACCOUNT}:twilio-test-token"


def test_twilio_one_request_per_message() -> None:
    calls = twilio().calls([sms(1), sms(2), sms(3)])
    assert [c.message_ids for c in calls] == [("sms-0001",), ("sms-0002",), ("sms-0003",)]


def test_twilio_messaging_service_wins_over_number() -> None:
    form = twilio(messaging_service_sid=SERVICE).form(sms())
    assert "From" not in form
    assert form["MessagingServiceSid"] == SERVICE


def test_twilio_needs_a_sender() -> None:
    with pytest.raises(ConfigError, match="sender"):
        TwilioDestination(Twilio.model_validate({}), secrets())


@pytest.mark.parametrize(
    ("form", "account", "expected"),
    [
        ({"Body": "hi", "From": "+14155550199"}, ACCOUNT, "'To' is a required property"),
        (
            {"To": "+1", "Body": "hi", "MessagingServiceSid": "MG123"},
            ACCOUNT,
            "MessagingServiceSid",
        ),
        ({"To": "+1", "Body": "hi", "SendAt": "soon", "ScheduleType": "fixed"}, ACCOUNT, "SendAt"),
        ({"To": "+1", "Body": "hi", "ScheduleType": "later"}, ACCOUNT, "ScheduleType"),
        ({"To": "+14155550100", "Body": "hi"}, "AC123", "AccountSid"),
    ],
)
def test_twilio_validator_catches_broken_requests(
    form: dict[str, str], account: str, expected: str
) -> None:
    request = httpx.Request(
        "POST",
        f"https://api.twilio.com/2010-04-01/Accounts/{account}/Messages.json",
        data=form,
        headers={"authorization": "Basic " + base64.b64encode(b"AC:token").decode()},
    )
    found = specs.problems(request)
    assert found
    assert expected in " ".join(found)


def test_twilio_validator_wants_credentials() -> None:
    [call] = twilio().calls([sms()])
    call.request.headers.pop("authorization")
    assert any("Security" in p for p in specs.problems(call.request))


# -- Klaviyo -------------------------------------------------------------------------------------


@pytest.mark.parametrize("base_url", [None, FAKE])
def test_klaviyo_event_is_valid(base_url: str | None) -> None:
    message = email(
        4,
        send_at=SEND_AT,
        customer={"email": "ada.4@example.com", "first_name": "Ada", "phone": "+44 20 7946 0958"},
    )
    [call] = klaviyo(base_url).calls([message])
    request = call.request
    assert specs.problems(request) == []
    assert request.url.path == "/api/events"
    # openapi-core fills a missing revision header with its default, so check it is really sent.
    assert request.headers["revision"] == "2026-07-15"
    assert request.headers["authorization"] == "Klaviyo-API-Key pk_test_klaviyo_key"
    assert request.headers["accept"] == "application/vnd.api+json"
    assert request.headers["content-type"] == "application/vnd.api+json"
    attributes = body(request)["data"]["attributes"]
    assert attributes["metric"]["data"]["attributes"]["name"] == "flowhouse welcome email_1"
    assert attributes["unique_id"] == message.message_id
    assert attributes["time"] == "2026-05-01T10:00:00+00:00"
    assert attributes["properties"] == {
        "first_name": "Ada 4",
        "coupon": "WELCOME10",
        "subject": "Welcome to Our store, Ada 4",
        "message_id": message.message_id,
        "flow": "welcome",
        "step": "email_1",
    }
    assert attributes["profile"]["data"]["attributes"] == {
        "email": "ada.4@example.com",
        "phone_number": "+442079460958",
        "first_name": "Ada",
        "external_id": "cust-00004",
    }


def test_klaviyo_event_without_schedule_is_timed_now() -> None:
    before = datetime.now().astimezone()
    [call] = klaviyo().calls([sms()])
    sent = datetime.fromisoformat(body(call.request)["data"]["attributes"]["time"])
    assert before - timedelta(seconds=1) <= sent <= datetime.now().astimezone()
    assert specs.problems(call.request) == []


def test_klaviyo_audience_sync_imports_the_profile() -> None:
    [call] = klaviyo().calls([action("audience_sync", audience="vip_lookalike")])
    request = call.request
    assert specs.problems(request) == []
    assert request.url.path == "/api/profile-import"
    assert request.headers["revision"] == "2026-07-15"
    data = body(request)["data"]
    assert data["type"] == "profile"
    assert data["attributes"]["properties"] == {"flowhouse audience vip_lookalike": True}
    assert data["attributes"]["external_id"] == "cust-00001"
    assert data["attributes"]["phone_number"] == "+14155550100"


def test_klaviyo_profile_import_request_is_public() -> None:
    request = klaviyo().profile_import_request({"email": "ada@example.com", "first_name": "Ada"})
    assert specs.problems(request) == []
    assert body(request) == {
        "data": {"type": "profile", "attributes": {"email": "ada@example.com", "first_name": "Ada"}}
    }


@pytest.mark.parametrize(
    ("mutation", "expected"),
    [
        (lambda b: b["data"]["attributes"].pop("metric"), "'metric' is a required property"),
        (lambda b: b["data"]["attributes"].update(time="yesterday"), "date-time"),
        (lambda b: b["data"].update(type="events"), "type"),
        (lambda b: b["data"]["attributes"]["profile"]["data"].update(type="person"), "type"),
    ],
)
def test_klaviyo_validator_catches_broken_requests(
    mutation: Callable[[dict[str, Any]], Any], expected: str
) -> None:
    [call] = klaviyo().calls([email()])
    found = specs.problems(rebuilt(call.request, mutation))
    assert found
    assert expected in " ".join(found)


def test_klaviyo_validator_wants_json_api() -> None:
    [call] = klaviyo().calls([email()])
    call.request.headers["content-type"] = "application/json"
    assert specs.problems(call.request)


# -- outcomes ------------------------------------------------------------------------------------


def destinations() -> dict[str, tuple[Destination, list[Outgoing]]]:
    return {
        "sendgrid": (sendgrid(), [email(1), email(2)]),
        "twilio": (twilio(), [sms()]),
        "klaviyo": (klaviyo(), [email()]),
        "klaviyo import": (klaviyo(), [action("audience_sync", audience="vip")]),
        "webhook": (WebhookDestination(Webhook.model_validate({}), secrets()), [action("webhook")]),
        "audience": (
            AudienceDestination(Audience.model_validate({}), secrets()),
            [
                action("audience_sync", 1, audience="vip"),
                action("audience_sync", 2, audience="vip"),
            ],
        ),
    }


def sendgrid_error(*errors: tuple[str | None, str], status: int = 400, **kw: Any) -> httpx.Response:
    """SendGrid's error body: ``{"errors": [{"field", "message"}]}``."""
    body = {"errors": [{"field": f, "message": m, "help": None} for f, m in errors]}
    return httpx.Response(status, json=body, **kw)


def twilio_error(status: int, code: int, message: str) -> httpx.Response:
    """Twilio's error body: ``{"code", "message", "more_info", "status"}``."""
    info = f"https://www.twilio.com/docs/errors/{code}"
    body = {"code": code, "message": message, "more_info": info, "status": status}
    return httpx.Response(status, json=body)


def klaviyo_error(status: int, code: str, detail: str, **kw: Any) -> httpx.Response:
    """Klaviyo's JSON:API error body: ``{"errors": [{"id", "code", "title", "detail", ...}]}``."""
    error = {"id": "9b1c", "status": status, "code": code, "title": "Error.", "detail": detail}
    return httpx.Response(status, json={"errors": [error]}, **kw)


SG_ID = "14c5d75ce93.dfd.64b469"
SMS_SID = "SM" + "a" * 32
PROFILE_ID = "01GDDKASAP8TKDDA2GRZDSVP4H"
IMPORTED = {"data": {"type": "profile", "id": PROFILE_ID}}
OWN = "=message"  # the provider id is the message id
BAD_TO = ("personalizations.0.to", "Does not contain a valid address.")
UNVERIFIED = (None, "The from address does not match a verified Sender Identity.")
TOO_LONG = "The metric name must be less than 128 characters"
THROTTLED = "Request was throttled. Expected available in 30 seconds."
REVOKED = "The provided authorization grant is invalid, expired, or revoked"

#: destination, response, status, provider id, reason, retry_after
OUTCOMES: list[tuple[str, httpx.Response, str, str | None, str | None, float | None]] = [
    ("sendgrid", httpx.Response(202, headers={"X-Message-Id": SG_ID}), "sent", SG_ID, None, None),
    ("twilio", httpx.Response(201, json={"sid": SMS_SID, "status": "queued"}), "sent", SMS_SID, None, None),
    ("klaviyo", httpx.Response(202), "sent", OWN, None, None),
    ("klaviyo import", httpx.Response(201, json=IMPORTED), "sent", PROFILE_ID, None, None),
    ("webhook", httpx.Response(204), "sent", OWN, None, None),
    ("audience", httpx.Response(200, json={"received": 2}), "sent", None, None, None),
    ("sendgrid", sendgrid_error(BAD_TO, UNVERIFIED), "failed", None,
     f"400 {BAD_TO[0]}: {BAD_TO[1]}; {UNVERIFIED[1]}", None),
    ("twilio", twilio_error(400, 21211, "Invalid 'To' Phone Number: +1415555"), "failed", None,
     "400 21211: Invalid 'To' Phone Number: +1415555", None),
    ("klaviyo", klaviyo_error(400, "invalid", TOO_LONG), "failed", None, f"400 invalid: {TOO_LONG}", None),
    ("webhook", httpx.Response(410, text="gone"), "failed", None, "410 gone", None),
    ("sendgrid", sendgrid_error((None, "too many requests"), status=429, headers={"Retry-After": "7"}),
     "retry", None, "429 too many requests", 7.0),
    ("klaviyo", klaviyo_error(429, "throttled", THROTTLED, headers={"Retry-After": "30"}),
     "retry", None, f"429 throttled: {THROTTLED}", 30.0),
    ("twilio", twilio_error(500, 20500, "Internal Server Error"), "retry", None,
     "500 20500: Internal Server Error", None),
    ("audience", httpx.Response(503, text=""), "retry", None, "503", None),
    ("sendgrid", sendgrid_error((None, REVOKED), status=401), "failed", None, f"401 {REVOKED}", None),
    ("twilio", twilio_error(401, 20003, "Authenticate"), "failed", None, "401 20003: Authenticate", None),
]  # fmt: skip


@pytest.mark.parametrize(
    ("name", "response", "status", "provider_id", "reason", "retry_after"),
    OUTCOMES,
    ids=[f"{row[0]}-{row[1].status_code}" for row in OUTCOMES],
)
def test_outcomes(
    name: str,
    response: httpx.Response,
    status: str,
    provider_id: str | None,
    reason: str | None,
    retry_after: float | None,
) -> None:
    destination, batch = destinations()[name]
    [call] = destination.calls(batch)
    outcomes = destination.outcomes(call, respond(call, response))
    expected = [
        Outcome(
            m.message_id,
            status,  # type: ignore[arg-type]
            m.message_id if provider_id == OWN else provider_id,
            reason,
            retry_after,
            response.status_code,
        )
        for m in batch
    ]
    assert outcomes == expected


def test_outcomes_retry_after_an_http_date() -> None:
    destination, batch = destinations()["twilio"]
    [call] = destination.calls(batch)
    later = datetime.now().astimezone() + timedelta(seconds=120)
    header = later.strftime("%a, %d %b %Y %H:%M:%S %z")
    [outcome] = destination.outcomes(
        call, respond(call, httpx.Response(503, headers={"Retry-After": header}))
    )
    assert outcome.status == "retry"
    assert outcome.retry_after is not None
    assert 100 < outcome.retry_after <= 120


#: A provider that echoes the credential in its refusal.
ECHOES: list[tuple[str, httpx.Response, str]] = [
    ("sendgrid", sendgrid_error(("authorization", "Bad key SG.test-sendgrid-key"), status=401),
     "SG.test-sendgrid-key"),
    ("twilio", twilio_error(401, 20003, "Bad token twilio-test-token"), "twilio-test-token"),
    ("klaviyo", klaviyo_error(403, "permission_denied", "Key pk_test_klaviyo_key lacks events:write"),
     "pk_test_klaviyo_key"),
    ("webhook", httpx.Response(400, text="signed with whsec-test-secret? no"), "whsec-test-secret"),
    ("audience", httpx.Response(500, text="token audience-test-token expired"), "audience-test-token"),
]  # fmt: skip


@pytest.mark.parametrize(("name", "response", "secret"), ECHOES, ids=[e[0] for e in ECHOES])
def test_secrets_never_in_reasons(name: str, response: httpx.Response, secret: str) -> None:
    destination, batch = destinations()[name]
    [call] = destination.calls(batch)
    outcomes = destination.outcomes(call, respond(call, response))
    for outcome in outcomes:
        assert outcome.reason is not None
        assert secret not in outcome.reason
        assert "[redacted]" in outcome.reason
    assert secret not in repr(destination.secrets)


# -- lookups -------------------------------------------------------------------------------------

SINCE = datetime(2026, 5, 1, 9, 55)


def sendgrid_activity(messages: list[dict[str, Any]] | None, status: int = 200) -> Any:
    def handler(request: httpx.Request) -> httpx.Response:
        assert request.method == "GET"
        assert request.url.path == "/v3/messages"
        assert (
            request.url.params["query"] == "unique_args['message_id']=\"" + email().message_id + '"'
        )
        assert request.url.params["limit"] == "10"
        assert request.headers["authorization"] == "Bearer SG.test-sendgrid-key"
        if messages is None:
            return httpx.Response(status, text="<html>error</html>")
        return httpx.Response(status, json={"messages": messages})

    return handler


FOUND_MAIL = {
    "msg_id": "14c5d75ce93.dfd.64b469.filter0001",
    "to_email": "ada.1@example.com",
    "status": "delivered",
}


@pytest.mark.parametrize(
    ("handler", "expected"),
    [
        (sendgrid_activity([FOUND_MAIL]), "sent"),
        (sendgrid_activity([]), "absent"),
        (sendgrid_activity(None, 500), "unknown"),
        (sendgrid_activity([], 429), "unknown"),
        (sendgrid_activity(None, 200), "unknown"),
    ],
    ids=["found", "absent", "500", "429", "not json"],
)
def test_sendgrid_lookup(handler: Any, expected: str) -> None:
    assert lookup(sendgrid(), email(), handler, SINCE) == expected


def test_sendgrid_lookup_off() -> None:
    destination = sendgrid(lookup=False)
    assert destination.reconcile == "none"

    def handler(request: httpx.Request) -> httpx.Response:
        raise AssertionError("no lookup when it is off")

    assert lookup(destination, email(), handler, SINCE) == "unknown"


def test_lookup_unreachable_is_unknown() -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError("connection refused", request=request)

    assert lookup(sendgrid(), email(), handler, SINCE) == "unknown"
    assert lookup(twilio(), sms(), handler, SINCE) == "unknown"


def twilio_list(
    messages: list[dict[str, Any]], status: int = 200, next_page: str | None = None
) -> Any:
    def handler(request: httpx.Request) -> httpx.Response:
        assert specs.problems(request) == []
        assert request.method == "GET"
        assert request.url.path == f"/2010-04-01/Accounts/{ACCOUNT}/Messages.json"
        assert dict(request.url.params) == {
            "To": "+14155550100",
            "DateSent>": "2026-05-01T09:55:00Z",
            "PageSize": "1000",
        }
        listed = {"messages": messages, "next_page_uri": next_page, "page": 0, "page_size": 1000}
        return httpx.Response(status, json=listed)

    return handler


def listed(
    body: str, to: str = "+14155550100", created: str = "Fri, 01 May 2026 09:56:10 +0000"
) -> dict[str, Any]:
    return {
        "sid": "SM" + "b" * 32,
        "to": to,
        "body": body,
        "status": "delivered",
        "date_created": created,
    }


TEXT = sms().text or ""


@pytest.mark.parametrize(
    ("handler", "expected"),
    [
        (twilio_list([listed("Something else"), listed(TEXT)]), "sent"),
        (twilio_list([listed("Something else")]), "absent"),
        (twilio_list([]), "absent"),
        (twilio_list([listed(TEXT, to="+14155550111")]), "absent"),
        (twilio_list([listed(TEXT, created="Thu, 30 Apr 2026 18:00:00 +0000")]), "absent"),
        (
            twilio_list(
                [listed("Something else")], next_page="/2010-04-01/Accounts/x/Messages.json?Page=1"
            ),
            "unknown",
        ),
        (twilio_list([], status=401), "unknown"),
        (twilio_list([], status=503), "unknown"),
    ],
    ids=["found", "other body", "none", "other number", "earlier send", "more pages", "401", "503"],
)
def test_twilio_lookup(handler: Any, expected: str) -> None:
    assert lookup(twilio(), sms(), handler, SINCE) == expected


def test_twilio_lookup_request_is_valid() -> None:
    request = twilio().lookup_request(sms(), SINCE)
    assert specs.problems(request) == []
    assert "DateSent%3E=2026-05-01T09%3A55%3A00Z" in str(request.url)
    # The document types DateSent> as date-time: a bare date, as Twilio's prose allows, fails it.
    bare = httpx.Request(
        "GET", request.url.copy_set_param("DateSent>", "2026-05-01"), headers=request.headers
    )
    assert any("DateSent>" in p for p in specs.problems(bare))


def test_twilio_lookup_of_a_message_still_scheduled_is_unknown() -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        raise AssertionError("a scheduled message is not listed before its time")

    later = datetime.now() + timedelta(days=2)
    message = sms(send_at=later)
    assert lookup(twilio(messaging_service_sid=SERVICE), message, handler, SINCE) == "unknown"


def test_default_lookup_is_unknown() -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        raise AssertionError("idempotent destinations do not look up")

    assert lookup(klaviyo(), email(), handler, SINCE) == "unknown"


# -- webhook -------------------------------------------------------------------------------------


def webhook(pinned: str | None = None, **config: Any) -> WebhookDestination:
    """``pinned``: the explicit base URL every destination is pointed at (the fake provider)."""
    return WebhookDestination(Webhook.model_validate(config), secrets(), pinned)


def test_webhook_request() -> None:
    message = action("webhook", url="https://erp.shop.example/hooks/vip", task="welcome")
    [call] = webhook().calls([message])
    request = call.request
    assert str(request.url) == "https://erp.shop.example/hooks/vip"
    raw = request.read()
    compact = json.dumps(json.loads(raw), separators=(",", ":"), ensure_ascii=False)
    assert raw == compact.encode()
    assert json.loads(raw) == {
        "message_id": "webhook-0001",
        "channel": "webhook",
        "flow_id": "vip",
        "step_id": "notify",
        "customer_id": "cust-00001",
        "customer": message.customer,
        "subject": "VIP welcome",
        "text": "Ada joined VIP",
        "payload": {"url": "https://erp.shop.example/hooks/vip", "task": "welcome"},
    }
    assert request.headers["content-type"] == "application/json"
    assert request.headers["idempotency-key"] == "webhook-0001"
    timestamp = request.headers["x-flowhouse-timestamp"]
    expected = hmac.new(
        b"whsec-test-secret", f"{timestamp}.".encode() + raw, hashlib.sha256
    ).hexdigest()
    assert request.headers["x-flowhouse-signature"] == f"v1={expected}"


def test_webhook_body_takes_dates_as_text() -> None:
    message = action("push", url="https://push.shop.example/send")
    joined = dataclasses.replace(message, customer={"vip_since": datetime(2026, 4, 30, 8)})
    [call] = webhook().calls([joined])
    assert json.loads(call.request.read())["customer"] == {"vip_since": "2026-04-30 08:00:00"}


@pytest.mark.parametrize(
    ("base_url", "config", "payload", "target"),
    [
        (None, {}, {"url": "https://erp.shop.example/a"}, "https://erp.shop.example/a"),
        (None, {}, {}, "https://hooks.shop.example/flowhouse"),
        (
            None,
            {"base_url": "https://push.shop.example/send/"},
            {},
            "https://push.shop.example/send",
        ),
        (
            None,
            {"base_url": "https://push.shop.example/send"},
            {"url": "https://erp.shop.example/a"},
            "https://erp.shop.example/a",
        ),
        (FAKE, {}, {"url": "https://erp.shop.example/a"}, "http://127.0.0.1:8765"),
        (FAKE, {}, {}, "http://127.0.0.1:8765"),
    ],
    ids=[
        "action url",
        "default",
        "configured",
        "action url over configured",
        "pinned",
        "pinned, no url",
    ],
)
def test_webhook_target(
    base_url: str | None, config: dict[str, Any], payload: dict[str, Any], target: str
) -> None:
    [call] = webhook(base_url, **config).calls([action("push", **payload)])
    assert str(call.request.url).rstrip("/") == target


def test_webhook_signature_round_trip() -> None:
    [call] = webhook().calls([action("admin_task", task="call the customer")])
    request = call.request
    timestamp = request.headers["x-flowhouse-timestamp"]
    signature = request.headers["x-flowhouse-signature"]
    assert verify("whsec-test-secret", timestamp, request.read(), signature)
    # Key rotation: a receiver may be sent several signatures.
    assert verify("whsec-test-secret", timestamp, request.read(), f"v1=deadbeef, {signature}")


BODY = b'{"message_id":"m1","payload":{"task":"refund"}}'
SIGNED_AT = 1_777_629_600
GOOD = sign("whsec-test-secret", SIGNED_AT, BODY)


@pytest.mark.parametrize(
    ("secret", "timestamp", "raw", "signature", "now", "valid"),
    [
        ("whsec-test-secret", SIGNED_AT, BODY, GOOD, SIGNED_AT + 10, True),
        ("whsec-test-secret", str(SIGNED_AT), BODY.decode(), GOOD, SIGNED_AT - 10, True),
        (
            "whsec-test-secret",
            SIGNED_AT,
            BODY.replace(b"refund", b"refunc"),
            GOOD,
            SIGNED_AT,
            False,
        ),
        ("whsec-test-secret", SIGNED_AT + 1, BODY, GOOD, SIGNED_AT, False),
        ("another-secret", SIGNED_AT, BODY, GOOD, SIGNED_AT, False),
        ("whsec-test-secret", SIGNED_AT, BODY, GOOD, SIGNED_AT + 301, False),
        ("whsec-test-secret", SIGNED_AT, BODY, GOOD, SIGNED_AT - 301, False),
        ("whsec-test-secret", SIGNED_AT, BODY, GOOD.replace("v1=", "v0="), SIGNED_AT, False),
        ("whsec-test-secret", SIGNED_AT, BODY, GOOD[:-1], SIGNED_AT, False),
        ("whsec-test-secret", "yesterday", BODY, GOOD, SIGNED_AT, False),
        ("whsec-test-secret", SIGNED_AT, BODY, "", SIGNED_AT, False),
    ],
    ids=[
        "good",
        "as text",
        "body altered",
        "timestamp altered",
        "wrong secret",
        "too old",
        "from the future",
        "version",
        "truncated",
        "bad timestamp",
        "empty",
    ],
)
def test_webhook_verify(
    secret: str, timestamp: int | str, raw: bytes | str, signature: str, now: float, valid: bool
) -> None:
    assert verify(secret, timestamp, raw, signature, now=now) is valid


def test_webhook_sign_is_hmac_sha256_of_timestamp_and_body() -> None:
    mac = hmac.new(b"whsec-test-secret", b"1777629600." + BODY, hashlib.sha256).hexdigest()
    assert f"v1={mac}" == GOOD
    assert len(mac) == 64


# -- audience ------------------------------------------------------------------------------------


def sha256(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


@pytest.mark.parametrize(
    ("raw", "normal"),
    [
        ("  Ada.Lovelace@Example.COM ", "ada.lovelace@example.com"),
        ("ada@example.com", "ada@example.com"),
        ("", None),
        (None, None),
        ("not an address", None),
    ],
)
def test_normalize_email(raw: str | None, normal: str | None) -> None:
    assert normalize_email(raw) == normal


@pytest.mark.parametrize(
    ("raw", "normal"),
    [
        ("+14155550100", "14155550100"),
        ("+1 (415) 555-0100", "14155550100"),
        ("+44 20 7946 0958", "442079460958"),
        ("0044 20 7946 0958", "442079460958"),
        ("+49.30.1234567", "49301234567"),
        ("12345", None),  # too few digits
        ("+1 415 555 0100 ext 7", None),
        ("+0123456789", None),  # no country code starts with 0
        ("020 7946 0958", None),  # national formats: no country code
        ("07700 900123", None),
        ("+1234567890123456", None),  # more than E.164's 15 digits
        ("", None),
        (None, None),
    ],
)
def test_normalize_phone(raw: str | None, normal: str | None) -> None:
    assert normalize_phone(raw) == normal


def test_hashed_row_of_a_known_example() -> None:
    # SHA-256 of "test@example.com", as ad platforms' documentation gives it.
    known = "973dfe463ec85785f5f95af5ba3906eedb2d931c24e69824a89ea65dba4e813b"
    assert sha256("test@example.com") == known
    assert hashed_row("  TEST@example.com", "+1 (415) 555-0100") == [known, sha256("14155550100")]
    assert hashed_row(None, "555") == ["", ""]


def test_audience_groups_per_audience() -> None:
    batch = [
        action("audience_sync", 1, audience="vip"),
        action("audience_sync", 2, audience="lapsed buyers/eu"),
        action("audience_sync", 3, audience="vip"),
    ]
    calls = AudienceDestination(Audience.model_validate({}), secrets()).calls(batch)
    assert [c.message_ids for c in calls] == [
        ("audience_sync-0001", "audience_sync-0003"),
        ("audience_sync-0002",),
    ]
    vip, lapsed = (c.request for c in calls)
    assert str(vip.url) == "https://ads.shop.example/audiences/vip/users"
    assert vip.url.raw_path == b"/audiences/vip/users"
    assert lapsed.url.raw_path == b"/audiences/lapsed%20buyers%2Feu/users"
    assert vip.headers["authorization"] == "Bearer audience-test-token"
    assert body(vip) == {
        "schema": ["EMAIL_SHA256", "PHONE_SHA256"],
        "data": [
            [sha256("ada.1@example.com"), sha256("14155550100")],
            [sha256("ada.3@example.com"), sha256("14155550100")],
        ],
    }
    raw = vip.read().decode()
    assert "example.com" not in raw
    assert "4155550100" not in raw


def test_audience_up_to_10000_members_a_call() -> None:
    batch = [action("audience_sync", i, audience="vip") for i in range(10_000)]
    [call] = AudienceDestination(Audience.model_validate({}), secrets()).calls(batch)
    assert len(body(call.request)["data"]) == 10_000


def test_audience_has_no_document() -> None:
    [call] = AudienceDestination(Audience.model_validate({}), secrets()).calls(
        [action("audience_sync", audience="vip")]
    )
    assert specs.problems(call.request) == [
        "no provider document describes POST /audiences/vip/users"
    ]


def test_missing_secret_is_a_config_error() -> None:
    with pytest.raises(ConfigError, match="SENDGRID_API_KEY"):
        SendGridDestination(SendGrid.model_validate({}), Secrets({}))


def test_test_sends_are_marked_and_kept_apart() -> None:
    """A test send (flowhouse test-send) has the category and custom argument flowhouse_test,
    never shares a SendGrid request with real messages, and is flagged in Klaviyo's event."""
    real, test = email(1), dataclasses.replace(email(2), is_test=True)
    calls = sendgrid().calls([real, test])
    assert len(calls) == 2
    assert all(specs.problems(c.request) == [] for c in calls)
    sent = {c.message_ids[0]: body(c.request) for c in calls}
    assert sent[real.message_id]["categories"] == ["flowhouse"]
    assert sent[test.message_id]["categories"] == ["flowhouse", "flowhouse_test"]
    args = sent[test.message_id]["personalizations"][0]["custom_args"]
    assert args["flowhouse_test"] == "true"
    assert "flowhouse_test" not in sent[real.message_id]["personalizations"][0]["custom_args"]
    event = body(klaviyo().calls([test])[0].request)["data"]["attributes"]["properties"]
    assert event["flowhouse_test"] is True
    assert (
        "flowhouse_test"
        not in body(klaviyo().calls([real])[0].request)["data"]["attributes"]["properties"]
    )


def test_lookups_give_the_provider_message_id() -> None:
    """A row confirmed by a lookup records the provider's id: SendGrid's message id (its
    ``msg_id`` up to the first dot, as ``X-Message-Id`` gives it), Twilio's ``sid``."""

    async def run(destination: Destination, message: Outgoing, handler: Any) -> Listing | None:
        async with httpx.AsyncClient(transport=httpx.MockTransport(handler)) as client:
            return await destination.lookup(client, message, SINCE)

    mail = asyncio.run(run(sendgrid(), email(), sendgrid_activity([FOUND_MAIL])))
    text = asyncio.run(run(twilio(), sms(), twilio_list([listed(TEXT)])))
    assert mail is not None and text is not None
    assert [i.provider_message_id for i in mail.items] == ["14c5d75ce93"]
    assert [i.key for i in mail.items] == [f"{email().message_id}/{FOUND_MAIL['msg_id']}"]
    assert [i.provider_message_id for i in text.items] == ["SM" + "b" * 32]


def test_per_message_destinations_make_one_call_per_message_in_order() -> None:
    batch = [sms(i) for i in (1, 2, 3)]
    calls = twilio().calls(batch)
    assert [call.message_ids for call in calls] == [(m.message_id,) for m in batch]
    sent_to = [dict(httpx.QueryParams(c.request.read().decode()))["To"] for c in calls]
    assert sent_to == [m.address for m in batch]


def test_basic_auth_and_json_object_are_shared_by_the_destinations() -> None:
    assert basic_auth("AC1", "tok:en") == "Basic " + base64.b64encode(b"AC1:tok:en").decode()
    assert json_object(httpx.Response(200, json={"sid": "SM1"})) == {"sid": "SM1"}
    assert json_object(httpx.Response(200, json=["not", "an", "object"])) == {}
    assert json_object(httpx.Response(502, text="<html>Bad gateway</html>")) == {}
