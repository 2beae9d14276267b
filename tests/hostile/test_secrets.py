"""Provider keys never stored or printed: a key holding a control character (a CRLF ``.env``
file) is refused at start, naming the variable and never the value, and an error page that
echoes the ``Authorization`` header, in every escaped form and longer than the stored reason, is
redacted before it is cut. The sentinel: no table, report or output holds any 8 characters of a
key."""

from __future__ import annotations

import base64
import json
import sys
import threading
import urllib.parse
from collections.abc import Iterator
from datetime import datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx
import pytest
from click.testing import CliRunner

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "engine"))
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "activation"))

from harness import EMAIL, SMS, Store, flow
from sending import deploy, sending_store

from flowhouse.activation.deliver import Options, send_open
from flowhouse.activation.providers.base import REASON_LIMIT, BadSecret, MissingSecret, Secrets
from flowhouse.activation.sender import Policy
from flowhouse.activation.sync.run import SyncOptions, run_sync
from flowhouse.cli import cli
from flowhouse.core.warehouse import Location, Warehouse
from flowhouse.flows.settings import Settings
from flowhouse.flows.sync.syncfile import Sync

SENDGRID_KEY = "SG.sentinelKEY-0123456789abcdef.ZYXWVUTSRQponmlk-9876543210"
TWILIO_TOKEN = "twSentinelToken0123456789abcdefABCDEF"
KLAVIYO_KEY = "pk_sentinel_klaviyo_0123456789abcdefghijkl"
SID = "AC" + "1" * 32
KEYS = {
    "SENDGRID_API_KEY": SENDGRID_KEY,
    "TWILIO_AUTH_TOKEN": TWILIO_TOKEN,
    "TWILIO_ACCOUNT_SID": SID,
    "KLAVIYO_API_KEY": KLAVIYO_KEY,
    "FLOWHOUSE_SIGNING_KEY": "sentinel-signing-key-0123456789",
}
SECRETS = [SENDGRID_KEY, TWILIO_TOKEN, KLAVIYO_KEY, KEYS["FLOWHOUSE_SIGNING_KEY"]]
POLICY = Policy(base_backoff=0.0, max_wait=1.0, seed=1)


def parts(value: str, size: int = 8) -> set[str]:
    """Every ``size``-character piece of ``value``."""
    return {value[i : i + size] for i in range(len(value) - size + 1)}


def leaks(text: str, values: list[str] = SECRETS) -> list[str]:
    """The pieces (8 characters or more) of ``values`` that ``text`` holds."""
    return sorted(p for v in values for p in parts(v) if p in text)


# -- keys read at start ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "shown"),
    [
        (SENDGRID_KEY + "\r", "'\\r'"),  # a CRLF .env file
        (SENDGRID_KEY + "\r\n", "'\\n', '\\r'"),
        (SENDGRID_KEY + "\n", "'\\n'"),
        ("SG.\x00" + SENDGRID_KEY, "'\\x00'"),
        (SENDGRID_KEY + "\t", "'\\t'"),
        (SENDGRID_KEY + "\x7f", "'\\x7f'"),
    ],
)
def test_a_key_with_a_control_character_is_refused_naming_the_variable(
    value: str, shown: str
) -> None:
    secrets = Secrets({"SENDGRID_API_KEY": value})
    with pytest.raises(BadSecret) as caught:
        secrets.get("SENDGRID_API_KEY", "The SendGrid API key")
    message = str(caught.value)
    assert "SENDGRID_API_KEY" in message
    assert f"holds a control character ({shown})" in message
    assert ("CRLF" in message) == ("\r" in value)
    assert leaks(message) == []
    assert isinstance(caught.value, MissingSecret)  # refused at start, before any claim


# -- redaction before the cut, in every form -------------------------------------------------------


def _basic(user: str, password: str) -> str:
    return base64.b64encode(f"{user}:{password}".encode()).decode()


FORMS = {
    "raw": SENDGRID_KEY,
    "bearer": f"Bearer {SENDGRID_KEY}",
    "repr": repr({"Authorization": f"Bearer {SENDGRID_KEY}\r"}),
    "json": json.dumps({"authorization": f"Bearer {SENDGRID_KEY}\r"}),
    "url-encoded": urllib.parse.quote(f"Bearer {SENDGRID_KEY}\r", safe=""),
    "form-encoded": urllib.parse.quote_plus(f"key={SENDGRID_KEY}"),
    "basic apikey": f"Basic {_basic('apikey', SENDGRID_KEY)}",
    "basic x": f"Basic {_basic('x', SENDGRID_KEY)}",
    "basic xy": f"Basic {_basic('xy', SENDGRID_KEY)}",
    "basic sid": f"Basic {_basic(SID, TWILIO_TOKEN)}",
    "urlsafe basic": base64.urlsafe_b64encode(f"u:{TWILIO_TOKEN}".encode()).decode(),
}


@pytest.mark.parametrize("form", sorted(FORMS))
@pytest.mark.parametrize("offset", [0, 470, 490, 499])
def test_every_form_of_a_key_is_redacted_before_the_cut(form: str, offset: int) -> None:
    secrets = Secrets({"SENDGRID_API_KEY": SENDGRID_KEY, "TWILIO_AUTH_TOKEN": TWILIO_TOKEN})
    secrets.get("SENDGRID_API_KEY", "The SendGrid API key")
    secrets.get("TWILIO_AUTH_TOKEN", "The Twilio auth token")
    page = "p" * offset + FORMS[form] + " and more" * 100
    redacted = secrets.redact(f"400 {page}")
    assert len(redacted) == REASON_LIMIT
    assert leaks(redacted) == []
    assert base64.b64decode(_basic("x", SENDGRID_KEY))  # the forms are what they say
    basic = {f for f in FORMS if "basic" in f}
    if form in basic and offset == 0:
        assert "[redacted]" in redacted


# -- the sentinel: a provider that echoes the Authorization header ---------------------------------


class Echo(BaseHTTPRequestHandler):
    """Answers every request 400 with a long page echoing its Authorization header in each form
    (the raw header starts just before the 500th character)."""

    def _answer(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        self.rfile.read(length)
        header = self.headers.get("Authorization") or ""
        scheme, _, credential = header.partition(" ")
        decoded = ""
        if scheme.lower() == "basic":
            decoded = base64.b64decode(credential).decode()
        page = (
            "<html><body><h1>Bad request</h1><pre>" + "." * 400
            + f"Authorization: {header}\n{dict(self.headers)!r}\n"
            + json.dumps({"authorization": header, "decoded": decoded})
            + f"\n{urllib.parse.quote(header, safe='')}\n{decoded}\n</pre>" + "padding " * 200
        )  # fmt: skip
        body = page.encode()
        self.send_response(400)
        self.send_header("Content-Type", "text/html")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    do_GET = do_POST = do_PUT = do_DELETE = do_PATCH = _answer

    def log_message(self, format: str, *args: Any) -> None:
        pass


@pytest.fixture
def echo() -> Iterator[str]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), Echo)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


@pytest.fixture(params=["duckdb", pytest.param("postgres", marks=pytest.mark.postgres)])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Store]:
    if request.param == "postgres":
        location = Location.parse(request.getfixturevalue("pg_url"))
    else:
        location = Location.parse(str(tmp_path / "store.duckdb"))
    s = sending_store(location, tmp_path)
    try:
        yield s
    finally:
        s.close()


def every_table(wh: Warehouse) -> str:
    """Every row of every table in the warehouse, as text."""
    tables = wh.query(
        "select table_schema, table_name from information_schema.tables "
        "where table_type = 'BASE TABLE' "
        "and table_schema not in ('pg_catalog', 'information_schema') order by 1, 2"
    )
    return "\n".join(repr(wh.query(f'select * from {s}."{t}"')) for s, t in tables)


def queue(store: Store) -> Path:
    folder = deploy(
        store, flow("cart", steps=[{"id": "m", "send": EMAIL}, {"id": "s", "send": SMS}])
    )
    store.tick("2026-03-01 00:00")
    for i in range(2):
        store.customer(f"c{i}", first_name=f"Ann{i}", phone=f"+1555000{i:04d}", sms_consent=True)
        store.event(f"c{i}", "cart_abandoned", at="2026-03-01 10:00", cart_id=f"k{i}")
    store.tick("2026-03-01 10:00")
    return folder


def test_the_error_httpx_raises_for_a_key_with_a_carriage_return_is_redacted(echo: str) -> None:
    secrets = Secrets({"SENDGRID_API_KEY": SENDGRID_KEY + "\r"})
    with pytest.raises(BadSecret):
        secrets.get("SENDGRID_API_KEY", "The SendGrid API key")
    with pytest.raises(httpx.LocalProtocolError) as caught, httpx.Client() as client:
        client.get(echo, headers={"Authorization": f"Bearer {SENDGRID_KEY}\r"})
    text = f"{type(caught.value).__name__}: {caught.value}"
    assert leaks(text)  # the escaped form httpx writes: b'Bearer SG...\\r'
    assert leaks(secrets.redact(text, None)) == []


def test_no_key_reaches_the_tables_from_an_echoing_error_page(store: Store, echo: str) -> None:
    folder = queue(store)
    report = send_open(
        store.wh, store.schema, datetime(2026, 3, 1, 10, 1), store.compiled, store.settings,
        folder, Options(provider_url=echo, environ=KEYS, policy=POLICY),
    )  # fmt: skip
    assert report.outcomes["failed"] == 4, report.describe()
    reasons = [m["failure_reason"] for m in store.rows("messages")]
    assert all(r and r.startswith("400 ") and len(r) <= REASON_LIMIT for r in reasons), reasons
    assert any("[redacted]" in r for r in reasons), reasons
    assert [a["reason"] for a in store.rows("send_attempts")]
    assert leaks(every_table(store.wh)) == []
    assert leaks(report.describe()) == []


SYNC = {
    "sync": "vip_list",
    "name": "VIP list",
    "source": {"segment": "vip"},
    "fields": {"email": "email"},
}


@pytest.mark.parametrize(
    "destination",
    [
        {"klaviyo": {"list_id": "L1"}},
        {"sendgrid": {"list_ids": ["0b6b5c4e-9f0a-4d3e-8a1b-2c3d4e5f6a7b"]}},
    ],
)
def test_no_key_reaches_the_sync_log_from_an_echoing_error_page(
    store: Store, echo: str, destination: dict[str, Any]
) -> None:
    store.customer("c1", email="ann@example.com")
    store.segment("c1", "vip")
    sync = Sync.model_validate({**SYNC, "destination": destination})
    options = SyncOptions(provider_url=echo, environ=KEYS)
    report = run_sync(store.wh, store.schema, sync, Settings(), datetime(2026, 3, 1), options)
    reasons = [r["reason"] for r in store.rows("sync_rows")]
    assert reasons and all(r and r.startswith("400 ") for r in reasons), reasons
    assert all(len(r) <= REASON_LIMIT for r in reasons), reasons
    assert leaks(every_table(store.wh)) == []
    assert leaks(report.describe()) == []


def test_send_refuses_a_key_from_a_crlf_env_file_and_prints_no_part_of_it(
    tmp_path: Path, echo: str
) -> None:
    store = sending_store(Location.parse(str(tmp_path / "w.duckdb")), tmp_path)
    folder = queue(store)
    store.close()
    env = {**KEYS, "SENDGRID_API_KEY": SENDGRID_KEY + "\r"}
    result = CliRunner().invoke(
        cli, ["send", "--warehouse", str(tmp_path / "w.duckdb"), "--flows", str(folder),
              "--provider-url", echo, "--now", "2026-03-01T10:01:00"], env=env,
    )  # fmt: skip
    assert result.exit_code == 1, result.output
    assert "Error:" in result.output and "Traceback" not in result.output
    assert "SENDGRID_API_KEY" in result.output and "control character" in result.output
    assert leaks(result.output) == []
    with Warehouse.open(Location.parse(str(tmp_path / "w.duckdb"))) as wh:
        assert leaks(every_table(wh)) == []
        claimed = wh.scalar("select count(*) from flowhouse.messages where status <> 'queued'")
    assert claimed == 0  # refused before anything was claimed


def test_a_sync_refuses_a_key_with_a_carriage_return_and_logs_no_part_of_it(
    store: Store, echo: str
) -> None:
    store.customer("c1", email="ann@example.com")
    store.segment("c1", "vip")
    sync = Sync.model_validate({**SYNC, "destination": {"klaviyo": {"list_id": "L1"}}})
    options = SyncOptions(provider_url=echo, environ={"KLAVIYO_API_KEY": KLAVIYO_KEY + "\r"})
    with pytest.raises(BadSecret, match="KLAVIYO_API_KEY"):
        run_sync(store.wh, store.schema, sync, Settings(), datetime(2026, 3, 1), options)
    [run] = store.rows("sync_runs")
    assert run["status"] == "failed" and "KLAVIYO_API_KEY" in run["error"]
    assert leaks(every_table(store.wh)) == []
