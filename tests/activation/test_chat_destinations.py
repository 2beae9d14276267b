"""WhatsApp through Twilio and Viber through Vonage: every request is checked against the
provider's published document; Vonage's signed status webhooks are verified; both providers'
statuses come back as engagement on their own channel."""

from __future__ import annotations

import base64
import hashlib
import json
import warnings
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl

import httpx
import pytest
from starlette.exceptions import StarletteDeprecationWarning

from flowhouse.activation import openapi as specs
from flowhouse.activation.engagement import ingest
from flowhouse.activation.message import Outgoing
from flowhouse.activation.providers import DESTINATIONS, INBOUND, vonage_signature
from flowhouse.activation.providers.base import Secrets
from flowhouse.activation.providers.twilio.config import Twilio
from flowhouse.activation.providers.twilio.destination import TwilioDestination
from flowhouse.activation.providers.vonage.config import Vonage
from flowhouse.activation.providers.vonage.destination import VonageDestination, number
from flowhouse.activation.receiver import Verification, create_app
from flowhouse.core.errors import ConfigError
from flowhouse.core.warehouse import Location, Warehouse

with warnings.catch_warnings():
    warnings.simplefilter("ignore", StarletteDeprecationWarning)
    from starlette.testclient import TestClient

ACCOUNT = "AC" + "0123456789abcdef" * 2
SID = "HX" + "0123456789abcdef" * 2
ENV = {
    "TWILIO_ACCOUNT_SID": ACCOUNT,
    "TWILIO_AUTH_TOKEN": "twilio-test-token",
    "VONAGE_API_KEY": "vonage-key",
    "VONAGE_API_SECRET": "vonage-secret",
}
SECRET = "vonage-signature-secret"
NOW = 1788256800.0


def chat(channel: str, **changes: Any) -> Outgoing:
    fields: dict[str, Any] = {
        "message_id": "0123456789abcdef0123456789abcdef",
        "channel": channel,
        "customer_id": "c1",
        "flow_id": "cart",
        "step_id": channel,
        "address": "+14155550100",
        "text": "Ada, your cart is waiting",
    }
    return Outgoing(**(fields | changes))


def twilio(**config: Any) -> TwilioDestination:
    return TwilioDestination(Twilio.model_validate(config), Secrets(dict(ENV)))


def vonage(**config: Any) -> VonageDestination:
    config.setdefault("viber_service_id", "16273")
    return VonageDestination(Vonage.model_validate(config), Secrets(dict(ENV)))


def form(request: httpx.Request) -> dict[str, str]:
    return dict(parse_qsl(request.read().decode()))


# -- WhatsApp through Twilio -----------------------------------------------------------------


TEMPLATE = {"content_sid": SID, "content_variables": {"1": "Ada", "2": "shop.example/c/1"}}


@pytest.mark.parametrize(
    ("config", "payload", "expected"),
    [
        ({"whatsapp_from": "+14155550199", "status_callback": "https://h.example/t"}, TEMPLATE,
         {"To": "whatsapp:+14155550100", "From": "whatsapp:+14155550199", "ContentSid": SID,
          "ContentVariables": '{"1": "Ada", "2": "shop.example/c/1"}',
          "StatusCallback": "https://h.example/t?message_id=0123456789abcdef0123456789abcdef"
                            "&customer_id=c1&channel=whatsapp"}),
        ({"from_number": "+14155550198"}, {},  # free text (a transactional flow)
         {"To": "whatsapp:+14155550100", "From": "whatsapp:+14155550198",
          "Body": "Ada, your cart is waiting"}),
        ({"messaging_service_sid": "MG" + "0" * 32}, {"content_sid": SID},
         {"To": "whatsapp:+14155550100", "MessagingServiceSid": "MG" + "0" * 32,
          "ContentSid": SID}),
    ],
)  # fmt: skip
def test_whatsapp_requests_are_valid(
    config: dict[str, Any], payload: dict[str, Any], expected: dict[str, str]
) -> None:
    [call] = twilio(**config).calls([chat("whatsapp", payload=payload)])
    assert specs.problems(call.request) == []
    assert form(call.request) == expected


def test_whatsapp_alone_is_a_twilio_sender() -> None:
    destination = twilio(whatsapp_from="+14155550199")  # a store sending WhatsApp, no SMS
    assert destination.form(chat("whatsapp"))["From"] == "whatsapp:+14155550199"
    with pytest.raises(ConfigError, match="whatsapp_from"):
        twilio()


def test_a_whatsapp_lookup_asks_for_the_whatsapp_address() -> None:
    destination = twilio(whatsapp_from="+14155550199")
    request = destination.lookup_request(chat("whatsapp"), datetime(2026, 3, 1))
    assert request.url.params["To"] == "whatsapp:+14155550100"
    assert specs.problems(request) == []


# -- Viber through Vonage ----------------------------------------------------------------------


def test_the_registry_knows_vonage() -> None:
    assert DESTINATIONS["vonage"] is VonageDestination
    assert "vonage" in {i.source for i in INBOUND}


@pytest.mark.parametrize("marketing", [True, False])
def test_viber_requests_are_valid(marketing: bool) -> None:
    [call] = vonage().calls([chat("viber", is_marketing=marketing)])
    assert specs.problems(call.request) == []
    assert str(call.request.url) == "https://api.nexmo.com/v0.1/messages/"
    user = base64.b64decode(call.request.headers["authorization"].split()[1]).decode()
    assert user == "vonage-key:vonage-secret"
    assert json.loads(call.request.read()) == {
        "to": {"type": "viber_service_msg", "number": "14155550100"},
        "from": {"type": "viber_service_msg", "id": "16273"},
        "message": {
            "content": {"type": "text", "text": "Ada, your cart is waiting"},
            "viber_service_msg": {
                "category": "promotion" if marketing else "transaction",
                "ttl": 86400,
            },
        },
        "client_ref": "0123456789abcdef0123456789abcdef",
    }


@pytest.mark.parametrize(
    "change",
    [
        lambda b: b["message"]["content"].update(text="x" * 1001),  # Viber takes 1,000
        lambda b: b.pop("from"),
        lambda b: b["message"]["viber_service_msg"].update(ttl=5),
    ],
)
def test_the_vonage_document_catches_broken_requests(change: Any) -> None:
    [call] = vonage().calls([chat("viber")])
    body = json.loads(call.request.read())
    change(body)
    broken = httpx.Request("POST", call.request.url, headers=call.request.headers, json=body)
    assert specs.problems(broken)


def test_the_vonage_document_wants_credentials() -> None:
    [call] = vonage().calls([chat("viber")])
    bare = httpx.Request("POST", call.request.url, content=call.request.read(),
                         headers={"content-type": "application/json"})  # fmt: skip
    assert any("Security" in p for p in specs.problems(bare))


def test_vonage_needs_its_viber_sender_and_keys() -> None:
    with pytest.raises(ConfigError, match="viber_service_id"):
        VonageDestination(Vonage(), Secrets(dict(ENV)))
    with pytest.raises(ConfigError, match="VONAGE_API_SECRET"):
        VonageDestination(Vonage(viber_service_id="1"), Secrets({"VONAGE_API_KEY": "k"}))


def test_vonage_outcomes() -> None:
    destination = vonage()
    [call] = destination.calls([chat("viber")])
    sent = destination.outcomes(call, httpx.Response(202, json={"message_uuid": "u-1"}))
    assert [(o.status, o.provider_message_id) for o in sent] == [("sent", "u-1")]
    error = {"type": "x", "title": "Invalid params", "detail": "bad number", "instance": "i"}
    [failed] = destination.outcomes(call, httpx.Response(422, json=error))
    assert (failed.status, failed.reason) == ("failed", "422 Invalid params: bad number")
    [retry] = destination.outcomes(call, httpx.Response(429, headers={"retry-after": "3"}))
    assert (retry.status, retry.retry_after) == ("retry", 3.0)


@pytest.mark.parametrize(
    ("given", "expected"),
    [("+44 7700 900000", "447700900000"), ("0044 7700-900000", "447700900000")],
)
def test_numbers_as_vonage_takes_them(given: str, expected: str) -> None:
    assert number(given) == expected


# -- Vonage's signed webhooks ------------------------------------------------------------------


STATUS = {
    "message_uuid": "aaaaaaaa-bbbb-cccc-dddd-0123456789ab",
    "to": {"type": "viber_service_msg", "number": "14155550100"},
    "from": {"type": "viber_service_msg", "id": "16273"},
    "timestamp": "2026-03-01T10:02:00.000Z",
    "status": "delivered",
    "client_ref": "m1",
}


def _receiver(inbox: Path, **checks: Any) -> TestClient:
    verification = Verification(**({"vonage_signature_secret": SECRET} | checks))
    return TestClient(create_app(inbox, "link-key", verification, clock=lambda: NOW))


def _post(client: TestClient, body: bytes, token: str | None) -> httpx.Response:
    headers = {"content-type": "application/json"}
    if token is not None:
        headers["authorization"] = f"Bearer {token}"
    return client.post("/webhooks/vonage", content=body, headers=headers)


def test_a_signed_vonage_status_is_stored(tmp_path: Path) -> None:
    body = json.dumps(STATUS).encode()
    with _receiver(tmp_path) as client:
        answer = _post(client, body, vonage_signature.sign(SECRET, body, NOW))
    assert answer.status_code == 200, answer.text
    [stored] = (tmp_path / "vonage").glob("*.json")
    assert json.loads(stored.read_text()) == STATUS | {"received_at": json.loads(
        stored.read_text())["received_at"]}  # fmt: skip


def _token(body: bytes, secret: str = SECRET, at: float = NOW, **claims: Any) -> str:
    return vonage_signature.sign(secret, body, at, **claims)


BODY = json.dumps(STATUS).encode()


@pytest.mark.parametrize(
    ("token", "status", "reason"),
    [
        (None, 401, "Bearer"),
        ("not-a-jwt", 403, "not a JWT"),
        (_token(BODY, secret="another secret"), 403, "signature does not match"),
        (_token(b"another body"), 403, "payload_hash"),
        (_token(BODY, at=NOW - 3600), 403, "tolerance"),
        (_token(BODY, payload_hash=hashlib.sha256(b"x").hexdigest()), 403, "payload_hash"),
    ],
)
def test_unsigned_or_badly_signed_vonage_posts_are_refused(
    tmp_path: Path, token: str | None, status: int, reason: str
) -> None:
    with _receiver(tmp_path) as client:
        answer = _post(client, BODY, token)
    assert (answer.status_code, reason in answer.text) == (status, True), answer.text
    assert not (tmp_path / "vonage").exists()


def test_without_the_secret_vonage_is_refused_unless_opted_out(tmp_path: Path) -> None:
    with _receiver(tmp_path, vonage_signature_secret=None) as client:
        assert _post(client, BODY, _token(BODY)).status_code == 403
    unverified = frozenset({"vonage"})
    with _receiver(tmp_path, vonage_signature_secret=None, unverified=unverified) as client:
        assert _post(client, BODY, None).status_code == 200
    with _receiver(tmp_path) as client:
        assert _post(client, b"[1, 2]", _token(b"[1, 2]")).status_code == 400


# -- statuses back as engagement ---------------------------------------------------------------


def _outbox(loc: Location) -> None:
    with Warehouse.open(loc) as wh:
        wh.ensure_raw_tables()
        wh.ensure_schema("flowhouse")
        wh.execute(
            "create table flowhouse.messages (message_id text, customer_id text, status text, "
            "updated_at timestamp, delivered_at timestamp, failure_reason text)"
        )
        wh.execute(
            "insert into raw.customers (customer_id, created_at, updated_at) values "
            "('c1', now(), now()), ('c2', now(), now()), ('c3', now(), now())"
        )
        wh.execute(
            "insert into flowhouse.messages values ('m1', 'c1', 'sent', null, null, null), "
            "('m2', 'c2', 'sent', null, null, null), ('w1', 'c3', 'sent', null, null, null)"
        )


def _write(inbox: Path, source: str, name: str, body: dict[str, Any]) -> None:
    (inbox / source).mkdir(parents=True, exist_ok=True)
    (inbox / source / f"{name}.json").write_text(json.dumps(body))


def test_viber_and_whatsapp_statuses_become_events_on_their_channel(tmp_path: Path) -> None:
    loc = Location.parse(str(tmp_path / "w.duckdb"))
    _outbox(loc)
    inbox = tmp_path / "inbox"
    _write(inbox, "vonage", "1", STATUS)
    _write(inbox, "vonage", "2", STATUS | {"status": "read", "timestamp": "2026-03-01T11:00:00Z"})
    undeliverable = {
        "status": "undeliverable",
        "client_ref": "m2",
        "message_uuid": "u2",
        "error": {"code": 1300, "reason": "Not part of the provider network"},
    }
    _write(inbox, "vonage", "3", STATUS | undeliverable)  # fmt: skip
    _write(inbox, "vonage", "4", STATUS | {"client_ref": "elsewhere", "message_uuid": "u4"})
    _write(inbox, "vonage", "5", STATUS | {"status": "submitted", "message_uuid": "u5"})
    callback = {
        "MessageSid": "SM1",
        "MessageStatus": "read",
        "To": "whatsapp:+14155550100",
        "message_id": "w1",
        "customer_id": "c3",
        "channel": "whatsapp",
    }
    _write(inbox, "twilio", "6", callback)  # fmt: skip
    report = ingest(loc, inbox, datetime(2026, 3, 1, 12))
    assert report.files_rejected == []
    assert report.ignored == 2  # a message flowhouse did not send, and `submitted`
    with Warehouse.open(loc) as wh:
        rows = wh.query(
            "select customer_id, event_type, properties->>'channel', occurred_at, "
            "properties->>'bounce_type' from raw.events order by customer_id, event_type"
        )
        statuses = wh.query("select message_id, status, failure_reason from flowhouse.messages "
                            "order by message_id")  # fmt: skip
    assert [tuple(r) for r in rows] == [
        ("c1", "message_delivered", "viber", datetime(2026, 3, 1, 10, 2), None),
        ("c1", "message_opened", "viber", datetime(2026, 3, 1, 11), None),
        ("c2", "message_bounced", "viber", datetime(2026, 3, 1, 10, 2), "hard"),
        ("c3", "message_opened", "whatsapp", datetime(2026, 3, 1, 12), None),
    ]
    assert [tuple(r) for r in statuses] == [
        ("m1", "delivered", None),
        ("m2", "bounced", "Not part of the provider network"),
        ("w1", "sent", None),
    ]


def test_tolerance_default() -> None:
    assert Vonage().webhook_tolerance == timedelta(minutes=10)


def test_settings_check_the_vonage_section(tmp_path: Path) -> None:
    from flowhouse.activation.providers.delivery import delivery_problems
    from flowhouse.flows.settings import load_settings

    (tmp_path / "_settings.yml").write_text(
        "delivery:\n"
        "  routes: {viber: vonage}\n"
        "  vonage:\n"
        "    viber_service_id: '16273'\n"
        "    viber_ttl: 4d\n"
    )
    [problem] = delivery_problems(load_settings(tmp_path))
    assert (problem.line, problem.field) == (5, "delivery.vonage.viber_ttl")
    assert "30s to 72h" in problem.message


def test_only_viber_goes_to_vonage() -> None:
    from flowhouse.activation.render import _channel_problem

    row = {"channel": "sms", "flow_id": "cart", "step_id": "text"}
    assert _channel_problem("vonage", row) == (
        "route vonage sends viber only, not sms: flow cart, step text "
        "(delivery.routes or the step's destination)"
    )
    assert _channel_problem("vonage", row | {"channel": "viber"}) is None
    assert _channel_problem("twilio", row) is None


def test_the_fake_fails_free_whatsapp_text_outside_the_window(tmp_path: Path) -> None:
    from flowhouse.activation.fake.server import running
    from flowhouse.activation.fake.settings import FakeSettings

    inbox = tmp_path / "inbox"
    with running(FakeSettings(inbox=inbox)) as fake:
        fake.set_now(datetime(2026, 3, 1, 10))
        config = {"whatsapp_from": "+14155550199", "status_callback": "https://h.example/t"}
        destination = TwilioDestination(Twilio.model_validate(config), Secrets(dict(ENV)), fake.url)
        with httpx.Client() as client:
            for message in (chat("whatsapp"), chat("whatsapp", message_id="m2", payload=TEMPLATE)):
                [call] = destination.calls([message])
                assert client.send(call.request).status_code == 201
        fake.set_now(datetime(2026, 3, 2))
    callbacks = [json.loads(p.read_text()) for p in sorted((inbox / "twilio").glob("*.json"))]
    statuses = {c["message_id"]: (c["MessageStatus"], c.get("ErrorCode")) for c in callbacks}
    assert statuses["0123456789abcdef0123456789abcdef"] == ("failed", "63016")
    assert statuses["m2"][0] in ("delivered", "undelivered", "read")
