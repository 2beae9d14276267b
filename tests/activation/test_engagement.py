"""Engagement webhooks: the receiver stores them, ingest turns them into events and outbox statuses."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import shutil
import warnings
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from sqlglot import exp
from starlette.exceptions import StarletteDeprecationWarning

from flowhouse.activation import engagement, links
from flowhouse.activation.engagement import IngestReport, ingest
from flowhouse.activation.fake.webhooks import SENDGRID_KEY, SENDGRID_PUBLIC_KEY
from flowhouse.activation.providers import sendgrid_signature
from flowhouse.activation.receiver import Verification, create_app
from flowhouse.core.sql import literal
from flowhouse.core.state import ensure_state
from flowhouse.core.warehouse import Location, Warehouse

with warnings.catch_warnings():  # Starlette's notice about which httpx the test client uses
    warnings.simplefilter("ignore", StarletteDeprecationWarning)
    from starlette.testclient import TestClient

NOW = datetime(2026, 9, 2, 8, 0)
TS = 1788256800  # 2026-09-01 10:00:00 UTC
AT = datetime(2026, 9, 1, 10, 0)
KEY = "signing-key-for-tests"
TOKEN = "twilio-auth-token-for-tests"
CUSTOMERS = ("c1", "c2", "c3")
ADD_C1 = (
    "insert into raw.customers (customer_id, created_at, updated_at) values ('c1', now(), now())"
)


def md5(text: str) -> str:
    return hashlib.md5(text.encode()).hexdigest()


# -- a warehouse and an inbox ---------------------------------------------------------------------


def prepare(location: Location) -> Location:
    """Raw tables with known customers, and the engine's state (the outbox)."""
    with Warehouse.open(location) as wh:
        wh.ensure_raw_tables()
        ensure_state(wh, "flowhouse")
        rows = [(literal(c), literal(AT), literal(AT)) for c in CUSTOMERS]
        wh.execute(
            exp.insert(
                exp.values(rows),
                "raw.customers",
                columns=["customer_id", "created_at", "updated_at"],
            )
        )
        wh.commit()
    return location


@pytest.fixture
def wh_loc(tmp_warehouse: Location) -> Location:
    return prepare(tmp_warehouse)


@pytest.fixture
def inbox(tmp_path: Path) -> Path:
    return tmp_path / "inbox"


def put(inbox: Path, provider: str, body: Any, name: str = "001.json") -> Path:
    folder = inbox / provider
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / name
    path.write_bytes(body if isinstance(body, bytes) else json.dumps(body).encode())
    return path


def sg(
    event: str, sg_event_id: str = "sg1", message_id: str = "m1", **fields: Any
) -> dict[str, Any]:
    """One SendGrid event with our custom args."""
    return {
        "email": "c1@example.com",
        "timestamp": TS,
        "event": event,
        "sg_event_id": sg_event_id,
        "sg_message_id": "sgm.1",
        "message_id": message_id,
        "customer_id": "c1",
        "flow_id": "welcome",
        "step_id": "hello",
        **fields,
    }


def tw(status: str, sid: str = "SM1", message_id: str = "m1", **fields: Any) -> dict[str, Any]:
    """One stored Twilio status callback."""
    return {
        "MessageSid": sid,
        "MessageStatus": status,
        "To": "+14155550100",
        "AccountSid": "AC1",
        "message_id": message_id,
        "customer_id": "c1",
        "received_at": "2026-09-01T10:00:00.000000Z",
        **fields,
    }


def events(location: Location) -> list[dict[str, Any]]:
    with Warehouse.open(location) as wh:
        rows = wh.query(
            "select event_id, customer_id, event_type, occurred_at, loaded_at, "
            "cast(properties as text) from raw.events order by event_type, event_id"
        )
    names = ("event_id", "customer_id", "event_type", "occurred_at", "loaded_at", "properties")
    found = [dict(zip(names, r, strict=True)) for r in rows]
    for row in found:
        row["properties"] = json.loads(row["properties"])
    return found


def scalar(location: Location, sql: str) -> Any:
    with Warehouse.open(location) as wh:
        return wh.scalar(sql)


def message(location: Location, message_id: str, status: str, channel: str = "email") -> None:
    """An outbox row in ``status``."""
    row = {
        "message_id": message_id, "enrollment_id": "en1", "flow_id": "welcome",
        "flow_version": "v1", "step_id": "hello", "customer_id": "c1", "channel": channel,
        "kind": "message", "is_marketing": True, "due_at": AT, "queued_at": AT,
        "status": status, "updated_at": AT,
    }  # fmt: skip
    with Warehouse.open(location) as wh:
        wh.execute(
            exp.insert(
                exp.values([tuple(literal(v) for v in row.values())]),
                "flowhouse.messages",
                columns=list(row),
            )
        )
        wh.commit()


def outbox(location: Location) -> dict[str, tuple[Any, ...]]:
    with Warehouse.open(location) as wh:
        rows = wh.query(
            "select message_id, status, delivered_at, failure_reason, updated_at "
            "from flowhouse.messages"
        )
    return {r[0]: tuple(r[1:]) for r in rows}


def left(inbox: Path) -> dict[str, list[str]]:
    """File names per folder under the inbox."""
    found: dict[str, list[str]] = {}
    for path in sorted(inbox.rglob("*.json")):
        found.setdefault(str(path.parent.relative_to(inbox)), []).append(path.name)
    return found


# -- mapping --------------------------------------------------------------------------------------

SENDGRID_CASES = [
    # event, extra fields, expected event type, expected extra properties
    ("delivered", {}, "message_delivered", {}),
    ("open", {}, "message_opened", {}),
    ("click", {"url": "https://shop.example/p/1"}, "message_clicked", {"url": "https://shop.example/p/1"}),
    ("bounce", {"type": "bounce", "reason": "550 5.1.1 no such user"}, "message_bounced",
     {"bounce_type": "hard", "reason": "550 5.1.1 no such user"}),
    ("bounce", {"type": "blocked", "reason": "554 blocked by policy"}, "message_bounced",
     {"bounce_type": "soft", "reason": "554 blocked by policy"}),
    ("dropped", {"reason": "Bounced Address"}, "message_bounced",
     {"bounce_type": "soft", "reason": "Bounced Address"}),
    ("spamreport", {}, "message_complained", {}),
    ("unsubscribe", {}, "unsubscribed", {}),
    ("group_unsubscribe", {"asm_group_id": 1}, "unsubscribed", {}),
    ("processed", {}, None, {}),
    ("deferred", {"reason": "421 try later"}, None, {}),
]  # fmt: skip


@pytest.mark.parametrize(("event", "fields", "expected", "extra"), SENDGRID_CASES)
def test_sendgrid_events_map_onto_canonical_events(
    wh_loc: Location,
    inbox: Path,
    event: str,
    fields: dict[str, Any],
    expected: str | None,
    extra: dict[str, Any],
) -> None:
    put(inbox, "sendgrid", [sg(event, "sg-evt-1", **fields)])
    report = ingest(wh_loc, inbox, NOW)
    found = events(wh_loc)
    if expected is None:
        assert found == []
        assert report.ignored == 1
        return
    assert found == [
        {
            "event_id": md5("sendgrid:sg-evt-1"),
            "customer_id": "c1",
            "event_type": expected,
            "occurred_at": AT,
            "loaded_at": NOW,
            "properties": {
                "channel": "email",
                "message_id": "m1",
                "flow_id": "welcome",
                "step_id": "hello",
                "provider": "sendgrid",
                "provider_event_id": "sg-evt-1",
                **extra,
            },
        }
    ]
    assert report.events == {expected: 1}


TWILIO_CASES = [
    # status, error code, expected (event type, bounce type) in event type order
    ("queued", None, []),
    ("accepted", None, []),
    ("sent", None, []),
    ("delivered", None, [("message_delivered", None)]),
    ("undelivered", "30003", [("message_bounced", "hard")]),
    ("failed", "30005", [("message_bounced", "hard")]),
    ("undelivered", "30006", [("message_bounced", "hard")]),
    ("failed", "21211", [("message_bounced", "hard")]),
    ("undelivered", "30007", [("message_bounced", "soft")]),
    ("failed", "30008", [("message_bounced", "soft")]),
    ("failed", None, [("message_bounced", "soft")]),
    ("undelivered", "21610", [("message_bounced", "hard"), ("unsubscribed", None)]),
]


@pytest.mark.parametrize(("status", "code", "expected"), TWILIO_CASES)
def test_twilio_statuses_map_onto_canonical_events(
    wh_loc: Location,
    inbox: Path,
    status: str,
    code: str | None,
    expected: list[tuple[str, str | None]],
) -> None:
    fields = {"ErrorCode": code} if code else {}
    put(inbox, "twilio", tw(status, "SMabc", **fields))
    ingest(wh_loc, inbox, NOW)
    found = events(wh_loc)
    assert [(e["event_type"], e["properties"].get("bounce_type")) for e in found] == expected
    for e in found:
        assert e["occurred_at"] == AT  # the stored received_at
        assert e["customer_id"] == "c1"
        props = e["properties"]
        assert props["channel"] == "sms"
        assert props["provider"] == "twilio"
        assert props["message_id"] == "m1"
        assert props.get("error_code") == code
    ids = {e["event_type"]: e["event_id"] for e in found}
    if "message_bounced" in ids:
        assert ids["message_bounced"] == md5(f"twilio:SMabc:{status}")
    if "unsubscribed" in ids:  # STOP: a second event, with an id of its own
        assert ids["unsubscribed"] == md5(f"twilio:SMabc:{status}:unsubscribe")


def test_twilio_callback_without_received_at_happened_at_ingest(
    wh_loc: Location, inbox: Path
) -> None:
    body = tw("delivered")
    del body["received_at"]
    put(inbox, "twilio", body)
    ingest(wh_loc, inbox, NOW)
    assert [e["occurred_at"] for e in events(wh_loc)] == [NOW]


def test_a_link_unsubscribe_becomes_an_unsubscribed_event(wh_loc: Location, inbox: Path) -> None:
    put(inbox, "flowhouse", {"kind": "unsubscribe", "message_id": "m7", "customer_id": "c2",
                             "channel": "sms", "received_at": "2026-09-01T10:00:00Z"})  # fmt: skip
    ingest(wh_loc, inbox, NOW)
    assert events(wh_loc) == [
        {
            "event_id": md5("flowhouse:link:m7:unsubscribe"),
            "customer_id": "c2",
            "event_type": "unsubscribed",
            "occurred_at": AT,
            "loaded_at": NOW,
            "properties": {
                "channel": "sms",
                "message_id": "m7",
                "provider": "flowhouse",
                "provider_event_id": "link:m7:unsubscribe",
            },
        }
    ]


def test_an_aware_now_is_stored_as_naive_utc(wh_loc: Location, inbox: Path) -> None:
    put(inbox, "sendgrid", [sg("open")])
    ingest(wh_loc, inbox, datetime(2026, 9, 2, 8, 0, tzinfo=UTC))
    assert [e["loaded_at"] for e in events(wh_loc)] == [NOW]


def test_mail_not_sent_by_flowhouse_is_ignored(wh_loc: Location, inbox: Path) -> None:
    foreign = {"email": "x@example.com", "timestamp": TS, "event": "delivered", "sg_event_id": "f1"}
    put(inbox, "sendgrid", [foreign, sg("open", "ours")])
    report = ingest(wh_loc, inbox, NOW)
    assert [e["properties"]["provider_event_id"] for e in events(wh_loc)] == ["ours"]
    assert report.ignored == 1
    assert report.files_rejected == []


# -- idempotence ----------------------------------------------------------------------------------


def batch(inbox: Path) -> None:
    put(
        inbox,
        "sendgrid",
        [sg("delivered", "d1"), sg("open", "o1"), sg("bounce", "b1", "m2", type="bounce")],
    )
    put(inbox, "twilio", tw("delivered", "SM9", "m3"))
    put(inbox, "flowhouse", {"kind": "unsubscribe", "message_id": "m1", "customer_id": "c1",
                             "channel": "email", "received_at": "2026-09-01T11:00:00Z"})  # fmt: skip


def rejects(location: Location) -> int:
    return int(scalar(location, "select count(*) from raw.rejects"))


def test_ingesting_the_same_files_again_adds_nothing(wh_loc: Location, inbox: Path) -> None:
    batch(inbox)
    first = ingest(wh_loc, inbox, NOW)
    before = events(wh_loc)
    assert first.loaded == 5
    assert left(inbox) == {"flowhouse/done": ["001.json"], "sendgrid/done": ["001.json"],
                           "twilio/done": ["001.json"]}  # fmt: skip
    for done in list(inbox.glob("*/done/*.json")):  # a provider delivers the same bodies again
        shutil.copy(done, done.parent.parent / "again.json")
    again = ingest(wh_loc, inbox, datetime(2026, 9, 3))
    assert events(wh_loc) == before  # same ids, and loaded_at not rewritten
    assert again.events == first.events
    assert again.already_present == 5
    assert again.load is None
    assert rejects(wh_loc) == 0


def test_the_same_event_in_two_files_of_one_pass_is_one_event(
    wh_loc: Location, inbox: Path
) -> None:
    put(inbox, "sendgrid", [sg("open", "o1")], "001.json")
    put(inbox, "sendgrid", [sg("open", "o1"), sg("click", "c1")], "002.json")
    report = ingest(wh_loc, inbox, NOW)
    assert [e["event_type"] for e in events(wh_loc)] == ["message_clicked", "message_opened"]
    assert report.events == {"message_clicked": 1, "message_opened": 1}
    assert rejects(wh_loc) == 0  # the loader never saw a duplicate


def test_a_crash_after_the_load_loses_and_duplicates_nothing(
    wh_loc: Location, inbox: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    batch(inbox)
    message(wh_loc, "m1", "sent")

    def crash(*args: Any) -> None:
        raise RuntimeError("killed")

    monkeypatch.setattr(engagement, "_update_outbox", crash)
    with pytest.raises(RuntimeError):
        ingest(wh_loc, inbox, NOW)
    loaded = events(wh_loc)
    assert len(loaded) == 5
    assert outbox(wh_loc)["m1"][0] == "sent"  # the crash came first
    assert sorted(left(inbox)) == ["flowhouse", "sendgrid", "twilio"]  # nothing moved
    monkeypatch.undo()

    report = ingest(wh_loc, inbox, NOW)
    assert events(wh_loc) == loaded
    assert report.already_present == 5
    assert report.load is None
    assert outbox(wh_loc)["m1"][:2] == ("delivered", AT)  # the update the crash skipped
    assert sorted(left(inbox)) == ["flowhouse/done", "sendgrid/done", "twilio/done"]


def test_a_crash_before_the_files_move_is_repaired_by_the_next_pass(
    wh_loc: Location, inbox: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    batch(inbox)
    monkeypatch.setattr(engagement, "_move", lambda *a: (_ for _ in ()).throw(OSError("disk")))
    with pytest.raises(OSError, match="disk"):
        ingest(wh_loc, inbox, NOW)
    monkeypatch.undo()
    loaded = events(wh_loc)
    ingest(wh_loc, inbox, NOW)
    assert events(wh_loc) == loaded
    assert scalar(wh_loc, "select count(*) from raw.loads") == 1
    assert not list(inbox.glob("*/*.json"))


# -- the outbox -----------------------------------------------------------------------------------


def test_deliveries_and_bounces_move_outbox_rows_forward(wh_loc: Location, inbox: Path) -> None:
    statuses = {"m1": "sent", "m2": "sending", "m3": "unconfirmed", "m4": "queued",
                "m5": "bounced", "m6": "sent", "m7": "delivered", "m8": "sent", "m9": "sent",
                "m10": "queued", "m11": "failed"}  # fmt: skip
    for message_id, status in statuses.items():
        message(wh_loc, message_id, status)
    put(inbox, "sendgrid", [
        sg("delivered", "a", "m1"), sg("delivered", "b", "m2"), sg("delivered", "c", "m3"),
        sg("delivered", "d", "m4"), sg("delivered", "e", "m5"),
        sg("bounce", "f", "m6", type="bounce", reason="550 no such user"),
        sg("bounce", "g", "m7", type="blocked", reason="554 spam"),
        sg("open", "h", "m8"), sg("bounce", "i", "m10", type="bounce"), sg("dropped", "j", "m11"),
    ])  # fmt: skip
    put(inbox, "twilio", tw("undelivered", "SM1", "m9", ErrorCode="30007"))
    report = ingest(wh_loc, inbox, NOW)
    got = outbox(wh_loc)
    assert {m: got[m][0] for m in got} == {
        "m1": "delivered", "m2": "delivered", "m3": "delivered",
        "m4": "queued",  # not sent yet: a stray report does not skip the sender
        "m5": "bounced",  # a bounce is never undone
        "m6": "bounced", "m7": "bounced", "m8": "sent", "m9": "bounced",
        "m10": "queued", "m11": "failed",  # not (or never) sent: the sender owns these
    }  # fmt: skip
    assert got["m1"][1] == AT  # delivered_at: when the provider delivered it
    assert got["m1"][3] == NOW  # updated_at
    assert got["m4"][1:] == (None, None, AT)
    assert got["m6"][2] == "550 no such user"
    assert got["m7"][2] == "554 spam"
    assert got["m9"][2] == "error 30007"
    assert (report.messages_delivered, report.messages_bounced) == (3, 3)


def test_an_outbox_without_the_delivery_columns_still_gets_statuses(
    tmp_warehouse: Location, inbox: Path
) -> None:
    with Warehouse.open(tmp_warehouse) as wh:
        wh.ensure_raw_tables()
        wh.ensure_schema("flowhouse")
        wh.execute(
            "create table flowhouse.messages (message_id text, status text, updated_at timestamp)"
        )
        wh.execute(
            "insert into flowhouse.messages values ('m1', 'sent', null), ('m2', 'sent', null)"
        )
        wh.execute(ADD_C1)
    put(inbox, "sendgrid", [sg("delivered", "a", "m1"), sg("bounce", "b", "m2", type="bounce")])
    report = ingest(tmp_warehouse, inbox, NOW)
    with Warehouse.open(tmp_warehouse) as wh:
        rows = sorted(tuple(r) for r in wh.query("select * from flowhouse.messages"))
    assert rows == [("m1", "delivered", NOW), ("m2", "bounced", NOW)]
    assert (report.messages_delivered, report.messages_bounced) == (1, 1)


def test_no_outbox_is_no_error(tmp_warehouse: Location, inbox: Path) -> None:
    with Warehouse.open(tmp_warehouse) as wh:
        wh.ensure_raw_tables()
        wh.execute(ADD_C1)
    put(inbox, "sendgrid", [sg("delivered")])
    report = ingest(tmp_warehouse, inbox, NOW)
    assert (report.loaded, report.messages_delivered) == (1, 0)


# -- bad files ------------------------------------------------------------------------------------

BAD_FILES = [
    # provider, body, words the reason must contain
    ("sendgrid", b"[{\"event\": \"open\",", "not valid JSON"),
    ("sendgrid", b"\xff\xfe[]", "not valid JSON"),
    ("sendgrid", {"event": "open"}, "expected a JSON array"),
    ("sendgrid", [sg("open", "x1"), {k: v for k, v in sg("open").items() if k != "sg_event_id"}],
     "event 2: missing sg_event_id"),
    ("sendgrid", [sg("open", timestamp="yesterday")], "event 1: timestamp is not a number"),
    ("sendgrid", [sg("open"), 3], "event 2: not a JSON object"),
    ("twilio", b"", "not valid JSON"),
    ("twilio", [tw("delivered")], "expected a JSON object"),
    ("twilio", {k: v for k, v in tw("delivered").items() if k != "MessageStatus"}, "missing MessageStatus"),
    ("twilio", {**tw("delivered"), "customer_id": " "}, "missing customer_id"),
    ("flowhouse", {"kind": "unsubscribe", "message_id": "m1", "customer_id": "c1", "channel": "fax"},
     "channel is not email, sms, whatsapp, viber or all"),
    ("flowhouse", {"kind": "resubscribe", "message_id": "m1", "customer_id": "c1", "channel": "email"},
     "kind is not 'unsubscribe'"),
]  # fmt: skip


@pytest.mark.parametrize(("provider", "body", "reason"), BAD_FILES)
def test_a_bad_file_is_rejected_with_its_reason_and_the_good_ones_load(
    wh_loc: Location, inbox: Path, provider: str, body: Any, reason: str
) -> None:
    bad = put(inbox, provider, body, "002-bad.json")
    put(inbox, "sendgrid", [sg("open", "good-1")], "001-good.json")
    put(inbox, "twilio", tw("delivered", "SMgood"), "001-good.json")
    report = ingest(wh_loc, inbox, NOW)
    assert [r.path for r in report.files_rejected] == [str(bad)]
    assert reason in report.files_rejected[0].reason
    assert sorted(e["event_type"] for e in events(wh_loc)) == [
        "message_delivered",
        "message_opened",
    ]
    assert (bad.parent / "rejected" / bad.name).is_file()
    assert not bad.exists()
    assert (inbox / "sendgrid" / "done" / "001-good.json").is_file()
    assert report.files_read == 3


def test_several_problems_in_a_file_are_counted(wh_loc: Location, inbox: Path) -> None:
    put(inbox, "sendgrid", [{"event": "open"}])
    [rejected] = ingest(wh_loc, inbox, NOW).files_rejected
    assert rejected.reason == "event 1: missing timestamp (and 2 more problems)"


def test_hidden_and_other_files_are_left_alone(wh_loc: Location, inbox: Path) -> None:
    put(inbox, "sendgrid", [sg("open")], ".001.json.tmp")
    put(inbox, "sendgrid", [sg("open")], "notes.txt")
    report = ingest(wh_loc, inbox, NOW)
    assert report.files_read == 0
    assert sorted(p.name for p in (inbox / "sendgrid").iterdir()) == [".001.json.tmp", "notes.txt"]


def test_an_event_for_an_unknown_customer_is_a_load_reject(wh_loc: Location, inbox: Path) -> None:
    put(inbox, "sendgrid", [sg("open", "a"), {**sg("open", "b"), "customer_id": "stranger"}])
    report = ingest(wh_loc, inbox, NOW)
    assert report.load is not None
    assert (report.load.rows_loaded, report.load.rows_rejected) == (1, 1)
    assert "unknown customer" in report.load.rejects[0].reason
    assert "rejected" in report.describe()


# -- the receiver ---------------------------------------------------------------------------------


CHECKS = Verification(SENDGRID_PUBLIC_KEY, TOKEN)


@pytest.fixture
def client(inbox: Path) -> Iterator[TestClient]:
    with TestClient(create_app(inbox, KEY, CHECKS)) as c:
        yield c


def post_events(client: TestClient, body: bytes | list[dict[str, Any]]) -> int:
    """Post SendGrid events signed as SendGrid signs them (here with the fake's key pair)."""
    content = body if isinstance(body, bytes) else json.dumps(body).encode()
    headers = sendgrid_signature.sign(SENDGRID_KEY, content, int(datetime.now(UTC).timestamp()))
    return client.post("/webhooks/sendgrid", content=content, headers=headers).status_code


def signature(url: str, params: dict[str, str], token: str = TOKEN) -> str:
    """Twilio's algorithm, written out independently of the receiver's."""
    data = url
    for key in sorted(params):
        data += key + params[key]
    return base64.b64encode(hmac.new(token.encode(), data.encode(), hashlib.sha1).digest()).decode()


def stored(inbox: Path, source: str) -> list[Path]:
    return sorted((inbox / source).glob("*.json"))


def test_a_sendgrid_body_is_stored_as_is(client: TestClient, inbox: Path) -> None:
    body = json.dumps([sg("open"), sg("click", "sg2", url="https://x")]).encode()
    assert post_events(client, body) == 200
    [path] = stored(inbox, "sendgrid")
    assert path.read_bytes() == body
    assert post_events(client, b'{"event": "open"}') == 400
    assert post_events(client, b"[{") == 400
    assert len(stored(inbox, "sendgrid")) == 1


def test_stored_names_sort_by_arrival_and_no_temp_file_is_left(
    client: TestClient, inbox: Path
) -> None:
    for i in range(5):
        post_events(client, [sg("open", f"sg{i}")])
    paths = stored(inbox, "sendgrid")
    assert [json.loads(p.read_text())[0]["sg_event_id"] for p in paths] == [
        f"sg{i}" for i in range(5)
    ]
    assert sorted(p.name for p in (inbox / "sendgrid").iterdir()) == [p.name for p in paths]


TWILIO_FORM = {"MessageSid": "SM77", "MessageStatus": "undelivered", "ErrorCode": "30003",
               "To": "+14155550100", "AccountSid": "AC1"}  # fmt: skip
CALLBACK = "/webhooks/twilio?message_id=m5&customer_id=c2"


def test_a_signed_twilio_callback_is_stored_with_its_query(client: TestClient, inbox: Path) -> None:
    sig = signature("http://testserver" + CALLBACK, TWILIO_FORM)
    response = client.post(CALLBACK, data=TWILIO_FORM, headers={"X-Twilio-Signature": sig})
    assert response.status_code == 200
    [path] = stored(inbox, "twilio")
    record = json.loads(path.read_text())
    received = record.pop("received_at")
    assert record == {**TWILIO_FORM, "message_id": "m5", "customer_id": "c2"}
    stamp = datetime.fromisoformat(received.replace("Z", "+00:00"))
    assert abs((datetime.now(UTC) - stamp).total_seconds()) < 60


@pytest.mark.parametrize(
    "headers",
    [
        {"X-Twilio-Signature": "bm90IGEgc2lnbmF0dXJl"},
        {"X-Twilio-Signature": signature("http://testserver" + CALLBACK, TWILIO_FORM, "other")},
        # signed for other parameters
        {
            "X-Twilio-Signature": signature(
                "http://testserver" + CALLBACK, {**TWILIO_FORM, "ErrorCode": "1"}
            )
        },
    ],
)
def test_an_unsigned_or_forged_twilio_callback_is_refused(
    client: TestClient, inbox: Path, headers: dict[str, str]
) -> None:
    assert client.post(CALLBACK, data=TWILIO_FORM, headers=headers).status_code == 403
    assert stored(inbox, "twilio") == []


def test_the_signature_covers_the_public_url_behind_a_proxy(inbox: Path) -> None:
    checks = Verification(SENDGRID_PUBLIC_KEY, TOKEN, "https://hooks.shop.example/")
    app = create_app(inbox, KEY, checks)
    public = signature("https://hooks.shop.example" + CALLBACK, TWILIO_FORM)
    local = signature("http://testserver" + CALLBACK, TWILIO_FORM)
    with TestClient(app) as c:
        assert (
            c.post(CALLBACK, data=TWILIO_FORM, headers={"X-Twilio-Signature": local}).status_code
            == 403
        )
        assert (
            c.post(CALLBACK, data=TWILIO_FORM, headers={"X-Twilio-Signature": public}).status_code
            == 200
        )


def test_without_an_auth_token_twilio_callbacks_are_refused_unless_opted_out(inbox: Path) -> None:
    with TestClient(create_app(inbox, KEY, Verification(SENDGRID_PUBLIC_KEY))) as c:
        assert c.post(CALLBACK, data=TWILIO_FORM).status_code == 403
    assert stored(inbox, "twilio") == []
    unchecked = Verification(SENDGRID_PUBLIC_KEY, unverified=frozenset({"twilio"}))
    with TestClient(create_app(inbox, KEY, unchecked)) as c:
        assert c.post(CALLBACK, data=TWILIO_FORM).status_code == 200
    assert len(stored(inbox, "twilio")) == 1


def token(channel: str = "email", key: str = KEY) -> str:
    return links.sign(links.Claims("m1", "c1", channel), key)


def test_the_unsubscribe_link_shows_a_confirmation_and_changes_nothing(
    client: TestClient, inbox: Path
) -> None:
    response = client.get("/unsubscribe", params={"token": token()})
    assert response.status_code == 200
    assert '<form method="post">' in response.text
    assert "e-mails" in response.text
    assert not (inbox / "flowhouse").exists()
    assert client.get("/unsubscribe", params={"token": token(key="forged")}).status_code == 400


def test_one_click_unsubscribe_stores_the_signed_claims(client: TestClient, inbox: Path) -> None:
    response = client.post(
        "/unsubscribe",
        params={"token": token("sms")},
        content=b"List-Unsubscribe=One-Click",
        headers={"Content-Type": "application/x-www-form-urlencoded"},
    )
    assert response.status_code == 200
    assert "You are unsubscribed" in response.text
    [path] = stored(inbox, "flowhouse")
    record = json.loads(path.read_text())
    assert record.pop("received_at").endswith("Z")
    assert record == {
        "kind": "unsubscribe",
        "message_id": "m1",
        "customer_id": "c1",
        "channel": "sms",
    }


@pytest.mark.parametrize(
    "bad",
    [
        token(key="not-the-store-key"),
        # the claims of another customer under the original signature
        links.sign(links.Claims("m1", "c2", "email"), "x").split(".")[0]
        + "."
        + token().split(".")[1],
        "",
        "garbage",
    ],
)
def test_a_forged_unsubscribe_is_refused(client: TestClient, inbox: Path, bad: str) -> None:
    response = client.post(
        "/unsubscribe", params={"token": bad}, data={"List-Unsubscribe": "One-Click"}
    )
    assert response.status_code == 400
    assert not (inbox / "flowhouse").exists()


def test_what_the_receiver_stores_ingests(
    client: TestClient, inbox: Path, wh_loc: Location
) -> None:
    message(wh_loc, "m1", "sent")
    assert post_events(client, [sg("delivered", "sgd", "m1")]) == 200
    form = {**TWILIO_FORM, "MessageStatus": "failed", "ErrorCode": "21610"}
    url = "/webhooks/twilio?message_id=m2&customer_id=c1"
    client.post(
        url, data=form, headers={"X-Twilio-Signature": signature("http://testserver" + url, form)}
    )
    client.post("/unsubscribe", params={"token": token()}, data={"List-Unsubscribe": "One-Click"})
    report = ingest(wh_loc, inbox, NOW)
    assert report.files_rejected == []
    assert report.events == {"message_delivered": 1, "message_bounced": 1, "unsubscribed": 2}
    unsubscribes = [
        e["properties"]["channel"] for e in events(wh_loc) if e["event_type"] == "unsubscribed"
    ]
    assert sorted(unsubscribes) == ["email", "sms"]
    assert outbox(wh_loc)["m1"][0] == "delivered"


# -- PostgreSQL -----------------------------------------------------------------------------------


@pytest.mark.postgres
def test_ingest_into_postgres(pg_url: str, inbox: Path) -> None:
    location = prepare(Location.parse(pg_url))
    message(location, "m1", "sent")
    message(location, "m2", "sent")
    batch(inbox)
    first: IngestReport = ingest(location, inbox, NOW)
    assert first.loaded == 5
    loaded = events(location)
    assert {e["event_id"] for e in loaded} == {
        md5("sendgrid:d1"), md5("sendgrid:o1"), md5("sendgrid:b1"), md5("twilio:SM9:delivered"),
        md5("flowhouse:link:m1:unsubscribe"),
    }  # fmt: skip
    assert next(e for e in loaded if e["event_id"] == md5("sendgrid:b1"))["properties"] == {
        "channel": "email", "message_id": "m2", "flow_id": "welcome", "step_id": "hello",
        "provider": "sendgrid", "provider_event_id": "b1", "bounce_type": "hard",
    }  # fmt: skip
    got = outbox(location)
    assert got["m1"][:2] == ("delivered", AT)
    assert got["m2"][0] == "bounced"
    assert got["m2"][2] == "hard bounce"
    for done in list(inbox.glob("*/done/*.json")):
        shutil.copy(done, done.parent.parent / "again.json")
    again = ingest(location, inbox, NOW)
    assert (again.already_present, again.load) == (5, None)
    assert events(location) == loaded
