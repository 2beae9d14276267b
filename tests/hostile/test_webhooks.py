"""Forged webhooks: every request the receiver must refuse, for SendGrid's Signed Event Webhook
(ECDSA P-256 over timestamp + raw body) and Twilio's ``X-Twilio-Signature``, each with its exact
status and nothing stored (so nothing is ingested: no suppression, no unsubscribe); and
``flowhouse receive`` refusing to start without the keys that check them."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import os
import signal
import socket
import subprocess
import sys
import time
import warnings
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from click.testing import CliRunner
from cryptography.hazmat.primitives.asymmetric import ec
from starlette.exceptions import StarletteDeprecationWarning

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "engine"))
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "activation"))

from harness import EMAIL, SMS, flow
from sending import deploy, sending_store

from flowhouse.activation.deliver import Options, send_open
from flowhouse.activation.engagement import ingest
from flowhouse.activation.fake.server import running
from flowhouse.activation.fake.settings import FakeSettings
from flowhouse.activation.fake.webhooks import SENDGRID_PUBLIC_KEY, TWILIO_AUTH_TOKEN, Poster
from flowhouse.activation.providers import sendgrid_signature
from flowhouse.activation.receiver import MAX_BODY, MAX_DEPTH, Verification, create_app
from flowhouse.cli import cli
from flowhouse.core.warehouse import Location

with warnings.catch_warnings():  # Starlette's notice about which httpx the test client uses
    warnings.simplefilter("ignore", StarletteDeprecationWarning)
    from starlette.testclient import TestClient

NOW = 1788256800  # the receiver's clock (Unix seconds)
TOLERANCE = timedelta(minutes=10)
SIGNING_KEY = "link-signing-key"
TOKEN = "twilio-auth-token-for-tests"
SENDGRID = ec.derive_private_key(0x5EED_5E9D_9121D, ec.SECP256R1())
OTHER = ec.derive_private_key(0xBAD_C0FFEE, ec.SECP256R1())
PUBLIC = sendgrid_signature.public_text(SENDGRID)
CHECKS = Verification(PUBLIC, TOKEN, tolerance=TOLERANCE)

UNSUBSCRIBE = [
    {"event": "unsubscribe", "timestamp": NOW, "sg_event_id": "e1", "customer_id": "victim",
     "message_id": "m1", "email": "victim@example.com"},
    {"event": "bounce", "type": "bounce", "timestamp": NOW, "sg_event_id": "e2",
     "customer_id": "victim", "message_id": "m1"},
]  # fmt: skip
BODY = json.dumps(UNSUBSCRIBE).encode()


def nested(depth: int) -> bytes:
    return b"[" * depth + b"]" * depth


def event_nested(depth: int) -> bytes:
    """One event whose ``data`` nests ``depth`` lists deep."""
    return (
        b'[{"event": "open", "sg_event_id": "x", "timestamp": 1, "data": ' + nested(depth) + b"}]"
    )


def signed(
    body: bytes, key: ec.EllipticCurvePrivateKey = SENDGRID, at: int = NOW
) -> dict[str, str]:
    return sendgrid_signature.sign(key, body, at)


SIG = sendgrid_signature.SIGNATURE_HEADER
TS = sendgrid_signature.TIMESTAMP_HEADER


@dataclass(frozen=True)
class Case:
    body: bytes
    headers: dict[str, str] = field(default_factory=dict)
    status: int = 200
    checks: Verification = CHECKS


SENDGRID_CASES = {
    "signed": Case(BODY, signed(BODY), 200),
    "unsigned": Case(BODY, {}, 401),
    "timestamp only": Case(BODY, {TS: str(NOW)}, 401),
    "signature only": Case(BODY, {SIG: signed(BODY)[SIG]}, 401),
    "wrong key": Case(BODY, signed(BODY, OTHER), 403),
    "forged signature": Case(
        BODY, {**signed(BODY), SIG: base64.b64encode(b"x" * 70).decode()}, 403
    ),
    "signature not base64": Case(BODY, {**signed(BODY), SIG: "not base64!"}, 403),
    "body changed after signing": Case(BODY.replace(b"victim", b"victim2"), signed(BODY), 403),
    "timestamp changed after signing": Case(BODY, {**signed(BODY), TS: str(NOW + 1)}, 403),
    "timestamp not a number": Case(BODY, {**signed(BODY), TS: "yesterday"}, 403),
    "stale timestamp (a replay)": Case(BODY, signed(BODY, at=NOW - 601), 403),
    "timestamp at the tolerance": Case(BODY, signed(BODY, at=NOW - 600), 200),
    "timestamp from the future": Case(BODY, signed(BODY, at=NOW + 601), 403),
    "no verification key": Case(BODY, signed(BODY), 403, Verification(None, TOKEN)),
    "opted out, unsigned": Case(
        BODY, {}, 200, Verification(None, TOKEN, unverified=frozenset({"sendgrid"}))
    ),
    "deeply nested JSON, signed": Case(nested(100_000), signed(nested(100_000)), 400),
    "deeply nested JSON, unsigned": Case(nested(100_000), {}, 401),
    "nested past the depth in an event": Case(
        event_nested(MAX_DEPTH), signed(event_nested(MAX_DEPTH)), 400
    ),
    "nested within the depth": Case(
        event_nested(MAX_DEPTH - 2), signed(event_nested(MAX_DEPTH - 2)), 200
    ),
    "not an array": Case(b'{"event": "open"}', signed(b'{"event": "open"}'), 400),
    "an array of non-objects": Case(b"[1, 2]", signed(b"[1, 2]"), 400),
    "not JSON": Case(b"[{", signed(b"[{"), 400),
    "oversized body": Case(b"[" + b" " * MAX_BODY + b"]", {}, 413),
}


def twilio_signature(url: str, params: dict[str, str], token: str = TOKEN) -> str:
    """Twilio's algorithm, written out independently of the receiver's."""
    data = url + "".join(k + params[k] for k in sorted(params))
    return base64.b64encode(hmac.new(token.encode(), data.encode(), hashlib.sha1).digest()).decode()


STOP = {"MessageSid": "SM1", "MessageStatus": "failed", "ErrorCode": "21610",
        "To": "+14155550100", "AccountSid": "AC1"}  # fmt: skip
QUERY = "?message_id=m1&customer_id=victim"
URL = "http://testserver/webhooks/twilio" + QUERY
FORM = "&".join(f"{k}={v}" for k, v in STOP.items()).replace("+", "%2B").encode()
TWILIO_HEADER = "X-Twilio-Signature"


def twilio(**headers: str) -> dict[str, str]:
    return {"Content-Type": "application/x-www-form-urlencoded", **headers}


TWILIO_CASES = {
    "signed": Case(FORM, twilio(**{TWILIO_HEADER: twilio_signature(URL, STOP)}), 200),
    "unsigned": Case(FORM, twilio(), 401),
    "wrong token": Case(FORM, twilio(**{TWILIO_HEADER: twilio_signature(URL, STOP, "x")}), 403),
    "forged signature": Case(FORM, twilio(**{TWILIO_HEADER: "bm90IGEgc2lnbmF0dXJl"}), 403),
    "fields changed after signing": Case(
        FORM.replace(b"21610", b"30003"),
        twilio(**{TWILIO_HEADER: twilio_signature(URL, STOP)}),
        403,
    ),
    "signed for another customer": Case(
        FORM,
        twilio(**{TWILIO_HEADER: twilio_signature(URL.replace("victim", "other"), STOP)}),
        403,
    ),
    "no auth token": Case(
        FORM, twilio(**{TWILIO_HEADER: twilio_signature(URL, STOP)}), 403, Verification(PUBLIC)
    ),
    "opted out, unsigned": Case(
        FORM, twilio(), 200, Verification(PUBLIC, unverified=frozenset({"twilio"}))
    ),
    "deeply nested JSON, unsigned": Case(
        nested(100_000), {"Content-Type": "application/json"}, 401
    ),
    "oversized body": Case(b"a=" + b"x" * MAX_BODY, twilio(), 413),
}


@pytest.fixture
def inbox(tmp_path: Path) -> Path:
    return tmp_path / "inbox"


def client(inbox: Path, checks: Verification) -> TestClient:
    return TestClient(create_app(inbox, SIGNING_KEY, checks, clock=lambda: float(NOW)))


def stored(inbox: Path) -> list[Path]:
    return sorted(inbox.rglob("*")) if inbox.exists() else []


@pytest.mark.parametrize("name", sorted(SENDGRID_CASES))
def test_sendgrid_event_webhook(inbox: Path, name: str) -> None:
    case = SENDGRID_CASES[name]
    with client(inbox, case.checks) as c:
        answer = c.post("/webhooks/sendgrid", content=case.body, headers=case.headers)
    assert answer.status_code == case.status, answer.text
    if case.status == 200:
        [path] = stored(inbox / "sendgrid")
        assert path.read_bytes() == case.body
    else:
        assert stored(inbox) == []  # nothing changed: nothing to ingest, no one suppressed


@pytest.mark.parametrize("name", sorted(TWILIO_CASES))
def test_twilio_status_callback(inbox: Path, name: str) -> None:
    case = TWILIO_CASES[name]
    with client(inbox, case.checks) as c:
        answer = c.post("/webhooks/twilio" + QUERY, content=case.body, headers=case.headers)
    assert answer.status_code == case.status, answer.text
    if case.status == 200:
        [path] = stored(inbox / "twilio")
        record = json.loads(path.read_text())
        assert record["customer_id"] == "victim" and record["ErrorCode"] == "21610"
    else:
        assert stored(inbox) == []


def test_the_refusals_say_why_and_never_what_the_key_is(inbox: Path) -> None:
    with client(inbox, CHECKS) as c:
        unsigned = c.post("/webhooks/sendgrid", content=BODY)
        stale = c.post("/webhooks/sendgrid", content=BODY, headers=signed(BODY, at=NOW - 3600))
        wrong = c.post("/webhooks/twilio" + QUERY, content=FORM, headers=twilio(**{
            TWILIO_HEADER: "AAAA"}))  # fmt: skip
    assert unsigned.text == f"{SIG} and {TS} are required"
    assert stale.text == f"{TS} is outside the tolerance (a replay?)"
    assert wrong.text == "the signature does not match"
    assert TOKEN not in wrong.text


def test_sendgrids_own_published_example_verifies() -> None:
    """The example of SendGrid's libraries: their key, signature, timestamp and payload."""
    key = sendgrid_signature.public_key(
        "MFkwEwYHKoZIzj0CAQYIKoZIzj0DAQcDQgAEEDr2LjtURuePQzplybdC+u4CwrqDqBaWjcMMsTbhdbcwHBcepxo7"
        "yAQGhHPTnlvFYPAZFceEu/1FwCM/QmGUhA==",
        "SENDGRID_WEBHOOK_PUBLIC_KEY",
    )
    signature = (
        "MEUCIQCtIHJeH93Y+qpYeWrySphQgpNGNr/U+UyUlBkU6n7RAwIgJTz2C+8a8xonZGi6BpSzoQsbVRamr2nlxFDW"
        "YNH2j/0="
    )
    payload = b'{"category":"example_payload","event":"test_event","message_id":"message_id"}'
    at = 1588788367
    assert sendgrid_signature.check(key, payload, signature, str(at), at) is None
    refused = sendgrid_signature.check(key, payload + b" ", signature, str(at), at)
    assert refused is not None and refused.status_code == 403


# -- flowhouse receive refuses to start without the keys -------------------------------------------


def receive(tmp_path: Path, env: dict[str, str], *flags: str) -> Any:
    args = ["receive", "--inbox", str(tmp_path / "inbox"), "--port", "1", *flags]
    return CliRunner().invoke(cli, args, env={"FLOWHOUSE_SIGNING_KEY": SIGNING_KEY, **env})


NO_KEYS = {"SENDGRID_WEBHOOK_PUBLIC_KEY": "", "TWILIO_AUTH_TOKEN": ""}
START_CASES: dict[str, tuple[dict[str, str], tuple[str, ...], list[str]]] = {
    "no keys": (NO_KEYS, (), [
        "Error: webhooks cannot be verified; set SENDGRID_WEBHOOK_PUBLIC_KEY (the SendGrid event "
        "webhook verification key) or pass --unverified sendgrid; set TWILIO_AUTH_TOKEN (the "
        "Twilio auth token) or pass --unverified twilio",
    ]),
    "no SendGrid key": ({**NO_KEYS, "TWILIO_AUTH_TOKEN": TOKEN}, (), [
        "set SENDGRID_WEBHOOK_PUBLIC_KEY", "--unverified sendgrid"]),
    "no Twilio token": ({**NO_KEYS, "SENDGRID_WEBHOOK_PUBLIC_KEY": PUBLIC}, (), [
        "set TWILIO_AUTH_TOKEN", "--unverified twilio"]),
    "Twilio opted out, no SendGrid key": (NO_KEYS, ("--unverified", "twilio"), [
        "set SENDGRID_WEBHOOK_PUBLIC_KEY"]),
    "an unreadable SendGrid key": ({**NO_KEYS, "TWILIO_AUTH_TOKEN": TOKEN,
                                    "SENDGRID_WEBHOOK_PUBLIC_KEY": "bm90IGEga2V5"}, (), [
        "the SendGrid event webhook verification key in SENDGRID_WEBHOOK_PUBLIC_KEY cannot be "
        "read"]),
    "a Twilio token from a CRLF file": ({**NO_KEYS, "SENDGRID_WEBHOOK_PUBLIC_KEY": PUBLIC,
                                        "TWILIO_AUTH_TOKEN": TOKEN + "\r"}, (), [
        "TWILIO_AUTH_TOKEN holds a control character ('\\r')"]),
}  # fmt: skip


@pytest.mark.parametrize("name", sorted(START_CASES))
def test_receive_does_not_start_without_its_keys(tmp_path: Path, name: str) -> None:
    env, flags, expected = START_CASES[name]
    result = receive(tmp_path, env, *flags)
    assert result.exit_code == 1, result.output
    assert "receiving webhooks" not in result.output and "Traceback" not in result.output
    for text in expected:
        assert text in result.output
    assert TOKEN not in result.output
    assert not (tmp_path / "inbox").exists()


@pytest.fixture
def no_server(monkeypatch: pytest.MonkeyPatch) -> list[Verification]:
    """``flowhouse receive`` up to the point it would serve (what it would serve with)."""
    served: list[Verification] = []

    def serve(
        host: str, port: int, inbox: Path, key: str, checks: Verification, *rest: object
    ) -> None:
        served.append(checks)

    monkeypatch.setattr("flowhouse.cli.serve_receiver", serve)
    return served


def test_receive_starts_with_both_keys_or_the_opt_out(
    tmp_path: Path, no_server: list[Verification]
) -> None:
    both = receive(tmp_path, {"SENDGRID_WEBHOOK_PUBLIC_KEY": PUBLIC, "TWILIO_AUTH_TOKEN": TOKEN})
    assert both.exit_code == 0, both.output
    assert "warning" not in both.output
    opted = receive(tmp_path, NO_KEYS, "--unverified", "sendgrid", "--unverified", "twilio")
    assert opted.exit_code == 0, opted.output
    assert "warning: sendgrid webhooks are accepted without checking their signature" in (
        opted.output
    )
    first, second = no_server
    assert (first.sendgrid_public_key, first.twilio_auth_token, first.unverified) == (
        PUBLIC, TOKEN, frozenset()
    )  # fmt: skip
    assert second.unverified == {"sendgrid", "twilio"}


# -- the fake provider signs what it posts ---------------------------------------------------------


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture
def receiver(tmp_path: Path) -> Iterator[str]:
    """``flowhouse receive`` checking with the fake provider's keys."""
    port = free_port()
    env = {**os.environ, "FLOWHOUSE_SIGNING_KEY": SIGNING_KEY,
           "SENDGRID_WEBHOOK_PUBLIC_KEY": SENDGRID_PUBLIC_KEY,
           "TWILIO_AUTH_TOKEN": TWILIO_AUTH_TOKEN}  # fmt: skip
    command = [sys.executable, "-m", "flowhouse.cli", "receive", "--port", str(port),
               "--inbox", str(tmp_path / "inbox")]  # fmt: skip
    proc = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, env=env)
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 30
        while True:
            assert proc.poll() is None, (proc.stdout.read() if proc.stdout else b"").decode()
            try:
                httpx.get(f"{url}/unsubscribe", timeout=1)
                break
            except httpx.TransportError:
                assert time.monotonic() < deadline, "the receiver did not start"
                time.sleep(0.1)
        yield url
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(timeout=15)


def test_the_fake_providers_signed_posts_are_received_and_ingested(
    tmp_path: Path, receiver: str
) -> None:
    store = sending_store(Location.parse(str(tmp_path / "store.duckdb")), tmp_path)
    folder = deploy(
        store, flow("cart", steps=[{"id": "m", "send": EMAIL}, {"id": "s", "send": SMS}])
    )
    store.tick("2026-03-01 00:00")
    for i in range(4):
        store.customer(f"c{i}", first_name="Ann", phone=f"+1555000{i:04d}", sms_consent=True)
        store.event(f"c{i}", "cart_abandoned", at="2026-03-01 10:00", cart_id=f"k{i}")
    store.tick("2026-03-01 10:00")
    with running(FakeSettings(webhook_url=receiver)) as fake:
        fake.set_now(datetime(2026, 3, 1, 10, 1))
        report = send_open(
            store.wh, store.schema, datetime(2026, 3, 1, 10, 1), store.compiled,
            store.settings, folder, Options(provider_url=fake.url, environ={}),
        )  # fmt: skip
        assert report.outcomes["sent"] == 8, report.describe()
        fake.set_now(datetime(2026, 3, 9))  # every event is due: posted to the receiver
        poster = fake.fake.engagement.inbox
        assert isinstance(poster, Poster) and poster.refused == []
    store.close()
    inbox = tmp_path / "inbox"
    assert len(list((inbox / "sendgrid").glob("*.json"))) >= 1
    assert len(list((inbox / "twilio").glob("*.json"))) == 4
    found = ingest(Location.parse(str(tmp_path / "store.duckdb")), inbox, datetime(2026, 3, 9))
    assert found.files_rejected == []
    assert found.events["message_delivered"] >= 4, found.events


def test_a_receiver_with_another_key_refuses_the_fakes_posts(tmp_path: Path) -> None:
    checks = Verification(PUBLIC, "another token")
    with TestClient(create_app(tmp_path / "inbox", SIGNING_KEY, checks)) as c:
        poster = Poster("http://testserver", client=c)
        poster.write("sendgrid", "b1", UNSUBSCRIBE)
        poster.write("twilio", "SM1", {**STOP, "message_id": "m1", "customer_id": "victim"})
    assert [r.split(" ")[:2] for r in poster.refused] == [["b1:", "403"], ["SM1:", "403"]]
    assert stored(tmp_path / "inbox") == []
