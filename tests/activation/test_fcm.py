"""Native push through Firebase Cloud Messaging HTTP v1: the discovery-document checker, the
destination (every request validated against Google's document; each token's answer read) and
the fake provider's FCM endpoints.

Responses come from ``httpx.MockTransport`` handlers or the fake's ASGI app; nothing leaves the
machine.
"""

from __future__ import annotations

import asyncio
import base64
import json
from collections.abc import Callable
from datetime import timedelta
from typing import Any
from urllib.parse import parse_qsl

import httpx
import pytest
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa
from starlette.testclient import TestClient

from flowhouse.activation import discovery
from flowhouse.activation.fake.app import create_app
from flowhouse.activation.fake.settings import FakeSettings
from flowhouse.activation.message import Device, Outgoing
from flowhouse.activation.providers.base import BadSecret, MissingSecret, Secrets
from flowhouse.activation.providers.fcm.config import Fcm
from flowhouse.activation.providers.fcm.destination import FcmDestination, PushCall
from flowhouse.core.errors import ConfigError

PROJECT = "shop-app"
SEND = f"https://fcm.googleapis.com/v1/projects/{PROJECT}/messages:send"
IOS = Device("ios-token-1", "ios")
ANDROID = Device("android-token-1", "android")
WEB = Device("web-token-1", "web")
ACCESS = "ya29.test-access-token-0123456789"


def _key() -> rsa.RSAPrivateKey:
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


KEY = _key()


def service_account(**changes: Any) -> str:
    pem = KEY.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    ).decode()
    data = {
        "type": "service_account",
        "project_id": PROJECT,
        "private_key_id": "key-1",
        "private_key": pem,
        "client_email": f"sender@{PROJECT}.iam.gserviceaccount.com",
        "token_uri": "https://oauth2.googleapis.com/token",
    } | changes
    return json.dumps({k: v for k, v in data.items() if v is not None})


def push(n: int = 1, devices: tuple[Device, ...] = (IOS,), **kw: Any) -> Outgoing:
    fields: dict[str, Any] = {
        "message_id": f"m{n}",
        "channel": "push",
        "customer_id": f"c{n}",
        "flow_id": "cart",
        "step_id": "push_1",
        "subject": "Still thinking it over?",
        "text": "Your cart is waiting: 2 items.",
        "devices": devices,
        "payload": {"deep_link": "https://shop.example/cart"},
    }
    return Outgoing(**(fields | kw))


def destination(env: dict[str, str] | None = None, **config: Any) -> FcmDestination:
    secrets = Secrets(env if env is not None else {"FCM_SERVICE_ACCOUNT": service_account()})
    return FcmDestination(Fcm(**config), secrets)


def token_destination(**config: Any) -> FcmDestination:
    return destination({"FCM_ACCESS_TOKEN": ACCESS}, credentials="access_token", **config)


def run(dest: FcmDestination, message: Outgoing, handler: Callable[[httpx.Request], Any]) -> Any:
    async def go() -> Any:
        transport = httpx.MockTransport(handler)
        async with httpx.AsyncClient(transport=transport) as client:
            (call,) = dest.calls([message])
            return await dest.send(client, call)

    return asyncio.run(go())


def fcm_error(status: int, code: str, message: str, field: str | None = None) -> httpx.Response:
    details: list[dict[str, Any]] = [
        {"@type": "type.googleapis.com/google.firebase.fcm.v1.FcmError", "errorCode": code}
    ]
    if field:
        details.append(
            {
                "@type": "type.googleapis.com/google.rpc.BadRequest",
                "fieldViolations": [{"field": field, "description": message}],
            }
        )
    body = {"error": {"code": status, "message": message, "status": code, "details": details}}
    return httpx.Response(status, json=body)


# -- the discovery document checker --------------------------------------------------------------


def request(
    body: Any, path: str = f"/v1/projects/{PROJECT}/messages:send", **headers: str
) -> httpx.Request:
    headers = {"authorization": f"Bearer {ACCESS}", "content-type": "application/json"} | headers
    return httpx.Request(
        "POST", "https://fcm.googleapis.com" + path, headers=headers, content=json.dumps(body)
    )


VALID = {
    "message": {
        "token": "t",
        "notification": {"title": "Hi", "body": "There"},
        "data": {"message_id": "m1"},
        "android": {"ttl": "3600s", "notification": {"notificationPriority": "PRIORITY_HIGH"}},
        "apns": {"headers": {"apns-expiration": "0"}, "payload": {"aps": {"badge": 1}}},
        "webpush": {"headers": {"TTL": "60"}, "fcmOptions": {"link": "https://shop.example"}},
    },
    "validateOnly": False,
}

BAD_BODIES: list[tuple[str, Any, str]] = [
    ("unknown field", {"message": {"token": "t", "title": "x"}}, "message.title: unknown property"),
    ("required message", {"validateOnly": True}, "message: required property missing"),
    ("wrong type", {"message": {"token": 7}}, "message.token: 7 is not of type string"),
    ("data values are strings", {"message": {"data": {"n": 1}}}, "message.data.n: 1 is not"),
    (
        "enum, two $refs deep",
        {"message": {"android": {"notification": {"visibility": "LOUD"}}}},
        'message.android.notification.visibility: "LOUD" is not one of',
    ),
    ("duration format", {"message": {"android": {"ttl": "1h"}}}, "google-duration"),
    (
        "int32 range",
        {"message": {"android": {"notification": {"notificationCount": 2**40}}}},
        "is not of type integer (int32)",
    ),
    ("boolean", {"validateOnly": "yes"}, 'validateOnly: "yes" is not of type boolean'),
    (
        "array items",
        {"message": {"android": {"notification": {"vibrateTimings": ["1s", "soon"]}}}},
        "vibrateTimings.1",
    ),
]


def test_a_valid_request_has_no_problems() -> None:
    assert discovery.problems(request(VALID)) == []


@pytest.mark.parametrize(("case", "body", "expected"), BAD_BODIES, ids=[b[0] for b in BAD_BODIES])
def test_bad_bodies_are_named_by_path(case: str, body: Any, expected: str) -> None:
    found = discovery.problems(request(body))
    assert any(expected in p for p in found), found


@pytest.mark.parametrize(
    ("req", "expected"),
    [
        (request(VALID, path="/v1/projects/a/b/messages:send"), "parent"),
        (request(VALID, path="/v1/projects/x/messages:sendAll"), "no method"),
        (request(VALID, authorization=""), "SecurityValidationError"),
        (request(VALID, **{"content-type": "text/plain"}), "content-type"),
        (request(VALID, path=f"/v1/projects/{PROJECT}/messages:send?nope=1"), "nope"),
        (request(VALID, path=f"/v1/projects/{PROJECT}/messages:send?prettyPrint=maybe"), "true"),
    ],
)
def test_bad_requests(req: httpx.Request, expected: str) -> None:
    assert any(expected in p for p in discovery.problems(req)), discovery.problems(req)


# -- the destination: requests ------------------------------------------------------------------


@pytest.mark.parametrize("device", [IOS, ANDROID, WEB], ids=lambda d: d.platform)
def test_each_request_is_valid_against_the_document(device: Device) -> None:
    dest = token_destination(project_id=PROJECT, android_channel_id="offers")
    req = dest.request(push(devices=(device,)), device, ACCESS)
    assert discovery.problems(req) == []
    body = json.loads(req.content)["message"]
    assert body["token"] == device.token
    assert body["notification"] == {
        "title": "Still thinking it over?",
        "body": "Your cart is waiting: 2 items.",
    }
    assert body["data"]["deep_link"] == "https://shop.example/cart"
    assert body["webpush"]["fcmOptions"] == {"link": "https://shop.example/cart"}
    assert body["android"] == {"ttl": "259200s", "notification": {"channelId": "offers"}}


def test_an_app_link_is_data_only_for_web() -> None:
    dest = token_destination(project_id=PROJECT)
    message = push(payload={"deep_link": "shopapp://cart"})
    body = dest.body(message, WEB)
    assert body["data"]["deep_link"] == "shopapp://cart"
    assert "fcmOptions" not in body["webpush"]


def test_one_call_per_message_with_a_request_per_device() -> None:
    dest = token_destination(project_id=PROJECT)
    (call,) = dest.calls([push(devices=(IOS, ANDROID, WEB))])
    assert isinstance(call, PushCall)
    assert [d for d, _ in call.devices] == [IOS, ANDROID, WEB]
    assert call.message_ids == ("m1",)


# -- credentials ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("not json", "is not JSON"),
        (service_account(private_key=None), "lacks private_key"),
        (service_account(client_email="", token_uri=None), "lacks client_email, token_uri"),
        (service_account(private_key="-----BEGIN PRIVATE KEY-----\nAAAA\n"), "no readable RSA"),
    ],
)
def test_a_bad_service_account_key_is_refused_at_start_naming_the_variable(
    value: str, expected: str
) -> None:
    with pytest.raises(BadSecret) as err:
        destination({"FCM_SERVICE_ACCOUNT": value})
    assert expected in str(err.value)
    assert "FCM_SERVICE_ACCOUNT" in str(err.value)
    assert "AAAA" not in str(err.value) and "not json" not in str(err.value)


def test_missing_credentials_name_the_variable() -> None:
    with pytest.raises(MissingSecret, match="FCM_SERVICE_ACCOUNT"):
        destination({})
    with pytest.raises(MissingSecret, match="FCM_ACCESS_TOKEN"):
        destination({}, credentials="access_token")


def test_a_project_is_required() -> None:
    with pytest.raises(ConfigError, match="project_id"):
        token_destination()
    assert destination().project == PROJECT  # the service account's own
    assert destination(project_id="other").project == "other"


def test_the_service_account_is_exchanged_for_a_token_once() -> None:
    dest = destination()
    seen: list[httpx.Request] = []

    def handler(req: httpx.Request) -> httpx.Response:
        seen.append(req)
        if req.url.path == "/token":
            form = dict(parse_qsl(req.content.decode()))
            assert form["grant_type"] == "urn:ietf:params:oauth:grant-type:jwt-bearer"
            header, claims, signature = form["assertion"].split(".")
            signed = f"{header}.{claims}".encode()
            raw = base64.urlsafe_b64decode(signature + "=" * (-len(signature) % 4))
            KEY.public_key().verify(raw, signed, padding.PKCS1v15(), hashes.SHA256())
            decoded = json.loads(base64.urlsafe_b64decode(claims + "=" * (-len(claims) % 4)))
            assert decoded["scope"] == "https://www.googleapis.com/auth/firebase.messaging"
            assert decoded["aud"] == "https://oauth2.googleapis.com/token"
            return httpx.Response(200, json={"access_token": ACCESS, "expires_in": 3599})
        assert req.headers["authorization"] == f"Bearer {ACCESS}"
        assert discovery.problems(req) == []
        return httpx.Response(200, json={"name": f"projects/{PROJECT}/messages/1"})

    assert run(dest, push(1, devices=(IOS, ANDROID)), handler)[0].status == "sent"
    assert run(dest, push(2), handler)[0].status == "sent"
    assert [r.url.path for r in seen].count("/token") == 1
    assert dest.secrets.redact(f"token {ACCESS}") == "token [redacted]"


def test_a_refused_service_account_fails_the_message_with_the_reason() -> None:
    def handler(req: httpx.Request) -> httpx.Response:
        body = {"error": "invalid_grant", "error_description": "Invalid JWT Signature."}
        return httpx.Response(400, json=body)

    (outcome,) = run(destination(), push(), handler)
    assert outcome.status == "failed"
    assert "refused a token (400): Invalid JWT Signature." in (outcome.reason or "")


def test_an_expired_token_is_renewed_once_after_a_401() -> None:
    dest = destination()
    tokens = iter(["ya29.first-token-aaaaaa", "ya29.second-token-bbbbb"])

    def handler(req: httpx.Request) -> httpx.Response:
        if req.url.path == "/token":
            return httpx.Response(200, json={"access_token": next(tokens), "expires_in": 3599})
        if req.headers["authorization"].endswith("first-token-aaaaaa"):
            return fcm_error(401, "THIRD_PARTY_AUTH_ERROR", "Request had invalid credentials.")
        return httpx.Response(200, json={"name": "projects/p/messages/2"})

    assert run(dest, push(), handler)[0].status == "sent"


# -- the destination: each token's answer ------------------------------------------------------------


def answers(by_token: dict[str, httpx.Response]) -> Callable[[httpx.Request], httpx.Response]:
    def handler(req: httpx.Request) -> httpx.Response:
        assert discovery.problems(req) == []
        return by_token[json.loads(req.content)["message"]["token"]]

    return handler


OK = httpx.Response(200, json={"name": f"projects/{PROJECT}/messages/0:abc"})
GONE = fcm_error(404, "UNREGISTERED", "Requested entity was not found.")
BAD_TOKEN = fcm_error(
    400, "INVALID_ARGUMENT", "The registration token is not a valid FCM registration token",
    "message.token",
)  # fmt: skip
BAD_PAYLOAD = fcm_error(400, "INVALID_ARGUMENT", "Invalid value at 'message.data'", "message.data")
BUSY = fcm_error(503, "UNAVAILABLE", "The service is currently unavailable.")


def test_a_push_goes_to_every_device_and_is_sent_when_one_accepts() -> None:
    dest = token_destination(project_id=PROJECT)
    handler = answers({IOS.token: OK, ANDROID.token: GONE, WEB.token: BUSY})
    (outcome,) = run(dest, push(devices=(IOS, ANDROID, WEB)), handler)
    assert (outcome.status, outcome.provider_message_id) == (
        "sent", f"projects/{PROJECT}/messages/0:abc",
    )  # fmt: skip
    (dead,) = dest.dead_addresses()
    assert (dead.address, dead.customer_id, dead.message_id) == (ANDROID.token, "c1", "m1")
    assert "UNREGISTERED" in dead.reason
    assert dest.dead_addresses() == []  # each returned once


@pytest.mark.parametrize("answer", [GONE, BAD_TOKEN], ids=["unregistered", "invalid token"])
def test_a_dead_token_is_recorded_and_the_message_fails_with_the_reason(
    answer: httpx.Response,
) -> None:
    dest = token_destination(project_id=PROJECT)
    (outcome,) = run(dest, push(), answers({IOS.token: answer}))
    assert outcome.status == "failed"
    assert (outcome.reason or "").startswith("no valid device token: ")
    assert [d.address for d in dest.dead_addresses()] == [IOS.token]


def test_an_invalid_payload_fails_without_retiring_the_token() -> None:
    dest = token_destination(project_id=PROJECT)
    (outcome,) = run(dest, push(), answers({IOS.token: BAD_PAYLOAD}))
    assert outcome.status == "failed"
    assert "message.data" in (outcome.reason or "")
    assert dest.dead_addresses() == []


def test_a_transient_failure_retries_honouring_retry_after() -> None:
    dest = token_destination(project_id=PROJECT)
    limited = fcm_error(429, "QUOTA_EXCEEDED", "Quota exceeded.")
    limited.headers["Retry-After"] = "7"
    (outcome,) = run(
        dest, push(devices=(IOS, ANDROID)), answers({IOS.token: limited, ANDROID.token: GONE})
    )
    assert (outcome.status, outcome.retry_after) == ("retry", 7.0)
    assert "QUOTA_EXCEEDED" in (outcome.reason or "")
    assert [d.address for d in dest.dead_addresses()] == [ANDROID.token]


def test_a_push_without_devices_fails_as_no_address() -> None:
    (outcome,) = run(token_destination(project_id=PROJECT), push(devices=()), answers({}))
    assert (outcome.status, outcome.reason) == ("failed", "no_address: no valid device token")


def test_credentials_never_reach_a_reason() -> None:
    dest = token_destination(project_id=PROJECT)
    echo = fcm_error(400, "INVALID_ARGUMENT", f"bad header Bearer {ACCESS}")
    (outcome,) = run(dest, push(), answers({IOS.token: echo}))
    assert ACCESS not in (outcome.reason or "") and "[redacted]" in (outcome.reason or "")


def test_a_time_out_on_every_device_is_left_to_the_sender() -> None:
    def handler(req: httpx.Request) -> httpx.Response:
        raise httpx.ReadTimeout("slow", request=req)

    with pytest.raises(httpx.ReadTimeout):
        run(token_destination(project_id=PROJECT), push(), handler)


# -- the fake provider ------------------------------------------------------------------------------


@pytest.fixture
def fake() -> TestClient:
    with TestClient(create_app(FakeSettings())) as client:
        yield client


def test_the_fake_accepts_what_the_destination_builds(fake: TestClient) -> None:
    dest = token_destination(project_id=PROJECT)
    req = dest.request(push(), IOS, ACCESS)
    answer = fake.post(req.url.path, content=req.content, headers=dict(req.headers))
    assert answer.status_code == 200
    assert answer.json()["name"].startswith(f"projects/{PROJECT}/messages/")


@pytest.mark.parametrize(
    ("token", "status", "code"),
    [("unregistered-abc", 404, "UNREGISTERED"), ("has space", 400, "INVALID_ARGUMENT")],
)
def test_the_fake_answers_dead_tokens_as_fcm_does(
    fake: TestClient, token: str, status: int, code: str
) -> None:
    dest = token_destination(project_id=PROJECT)
    req = dest.request(push(), Device(token, "ios"), ACCESS)
    answer = fake.post(req.url.path, content=req.content, headers=dict(req.headers))
    assert answer.status_code == status
    assert (
        dest.answer(Device(token, "ios"), httpx.Response(status, content=answer.content)).kind
        == "dead"
    )
    assert code in answer.text


def test_the_fake_refuses_what_the_document_refuses(fake: TestClient) -> None:
    path = f"/v1/projects/{PROJECT}/messages:send"
    headers = {"authorization": f"Bearer {ACCESS}", "content-type": "application/json"}
    answer = fake.post(path, json={"message": {"token": "t", "title": "x"}}, headers=headers)
    assert answer.status_code == 400
    assert "message.title: unknown property" in answer.json()["error"]["message"]
    unsigned = fake.post(path, json=VALID, headers={"content-type": "application/json"})
    assert unsigned.status_code == 401


def test_the_fake_trades_an_assertion_for_a_token(fake: TestClient) -> None:
    grant = "urn:ietf:params:oauth:grant-type:jwt-bearer"
    answer = fake.post("/token", data={"grant_type": grant, "assertion": "a.b.c"})
    assert answer.status_code == 200 and answer.json()["access_token"]
    assert fake.post("/token", data={"grant_type": grant, "assertion": "x"}).status_code == 400


def test_config_ttl_is_a_duration() -> None:
    assert Fcm(ttl="1h").ttl == timedelta(hours=1)
