"""SMS short links do not live forever, and an erased customer's go: ``<inbox>/links/`` files past
``delivery.sms_link_days`` are pruned by the next send, a click on an expired (or erased) link is
sent to the store and counted rather than answered 404, and ``flowhouse erase --inbox`` removes
the customer's links (and says so)."""

from __future__ import annotations

import json
import os
import warnings
from datetime import UTC, datetime, timedelta
from pathlib import Path

import harness
import pytest
from click.testing import CliRunner
from harness import Store, flow, write_templates
from sending import deploy
from starlette.exceptions import StarletteDeprecationWarning

from flowhouse.activation import links
from flowhouse.activation.deliver import Options, send_open
from flowhouse.activation.engagement import ingest
from flowhouse.activation.fake.server import FakeProvider
from flowhouse.activation.receiver import ShortLinkAnswers, Verification, create_app
from flowhouse.activation.sender import Policy
from flowhouse.cli import cli
from flowhouse.core.state import ensure_state
from flowhouse.core.warehouse import Location, Warehouse

with warnings.catch_warnings():
    warnings.simplefilter("ignore", StarletteDeprecationWarning)
    from starlette.testclient import TestClient

KEY = "test-signing-key"
HOME = "https://shop.example"


def registered(folder: Path, *customers: str) -> dict[str, str]:
    """One short link per customer, flushed to ``folder`` (one file): customer -> token."""
    shortener = links.ShortLinks("https://hooks.shop.example", KEY, folder)
    for customer in customers:
        shortener.shorten(f"Hi https://shop.example/{customer}", f"m-{customer}", customer, "sms")
    tokens = {link.customer_id: link.token for link in shortener.pending}
    shortener.flush()
    return tokens


def age(folder: Path, days: int) -> Path:
    """Rename the (one) links file of ``folder`` as if it was written ``days`` ago."""
    [path] = folder.glob("*.jsonl")
    then = datetime.now(UTC) - timedelta(days=days)
    old = folder / f"{then:%Y%m%dT%H%M%S%fZ}-aged.jsonl"
    os.replace(path, old)
    return old


def app(inbox: Path, now: datetime | None = None, home: str | None = HOME) -> TestClient:
    moment = (now or datetime.now(UTC)).timestamp()
    return TestClient(
        create_app(
            inbox,
            KEY,
            Verification(unverified=frozenset({"sendgrid", "twilio"})),
            clock=lambda: moment,
            short_links=ShortLinkAnswers(days=30, home=home),
        )
    )


def test_links_past_their_days_are_pruned_and_no_longer_found(tmp_path: Path) -> None:
    folder = tmp_path / "links"
    old_token = registered(folder, "c1")["c1"]
    old = age(folder, 31)
    new_token = registered(folder, "c2")["c2"]
    registry = links.LinkRegistry(folder, days=30)
    assert registry.find(old_token) is None  # on file, but expired
    assert registry.find(new_token) is not None
    later = links.LinkRegistry(folder, days=30, clock=lambda: datetime.now(UTC) + timedelta(30))
    assert later.find(new_token) is None
    assert links.prune(folder, datetime.now(UTC), 30) == 1
    assert not old.exists() and len(list(folder.glob("*.jsonl"))) == 1
    assert links.prune(folder, datetime.now(UTC), 30) == 0


def test_a_click_on_an_expired_link_goes_to_the_store_and_is_counted(tmp_path: Path) -> None:
    inbox = tmp_path / "hooks"
    token = registered(inbox / links.LINKS_FOLDER, "c1")["c1"]
    client = app(inbox, now=datetime.now(UTC) + timedelta(days=31))
    answer = client.get(f"/c/{token}", follow_redirects=False)
    assert (answer.status_code, answer.headers["location"]) == (302, HOME)
    [stored] = (inbox / "flowhouse").glob("*.json")
    record = json.loads(stored.read_text())
    assert (record["kind"], record["token"], record["channel"]) == ("expired_click", token, "sms")
    assert "customer_id" not in record and "url" not in record
    # without a store url to go to, a page says the link expired
    page = app(inbox, now=datetime.now(UTC) + timedelta(days=31), home=None).get(f"/c/{token}")
    assert page.status_code == 410 and "expired" in page.text
    # a live link still redirects to where it leads; a forged token is still 404
    assert app(inbox).get(f"/c/{token}", follow_redirects=False).status_code == 302
    assert app(inbox).get(f"/c/{token[:-1]}x").status_code == 404

    location = Location.parse(str(tmp_path / "w.duckdb"))
    report = ingest(location, inbox, datetime(2026, 3, 1, 11, 0))
    assert report.files_rejected == [], report.describe()
    assert (report.expired_clicks, report.events, report.ignored) == (2, {"message_clicked": 1}, 0)
    assert "2 click(s) on expired SMS links" in report.describe()
    assert not list((inbox / "flowhouse").glob("*.json"))  # filed under done/


def test_a_send_prunes_the_links_past_their_days(
    store: Store, fake: FakeProvider, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    inbox = tmp_path / "hooks"
    folder = inbox / links.LINKS_FOLDER
    registered(folder, "old")
    old = age(folder, 8)

    def templates(where: Path) -> None:
        write_templates(where)
        (where / "templates" / "l.txt.j2").write_text("Cart: https://shop.example/cart")

    monkeypatch.setattr(harness, "write_templates", templates)
    step = {"id": "s", "send": {"channel": "sms", "template": "l.txt.j2"}}
    flows_dir = deploy(store, flow("cart", steps=[step]))
    store.tick("2026-03-01 00:00")
    store.customer("c1", first_name="Ann", phone="+15550000001", sms_consent=True)
    store.event("c1", "cart_abandoned", at="2026-03-01 10:00", cart_id="k1")
    store.tick("2026-03-01 10:00")
    delivery = store.settings.delivery.model_copy(update={"sms_link_days": 7})
    settings = store.settings.model_copy(update={"delivery": delivery})
    options = Options(provider_url=fake.url, inbox=inbox, environ={"FLOWHOUSE_SIGNING_KEY": KEY},
                      policy=Policy(base_backoff=0.01, max_wait=2.0, seed=1))  # fmt: skip
    report = send_open(store.wh, store.schema, datetime(2026, 3, 1, 10, 1), store.compiled,
                       settings, flows_dir, options)  # fmt: skip
    assert report.outcomes["sent"] == 1, report.describe()
    assert report.links_pruned == 1 and "pruned: 1" in report.describe()
    assert not old.exists()
    [kept] = folder.glob("*.jsonl")  # the link this send registered
    assert json.loads(kept.read_text())["customer_id"] == "c1"


def erasable(tmp_path: Path) -> tuple[Location, Path, Path]:
    """A warehouse flowhouse erase can run on, the receiver's inbox and its links folder."""
    location = Location.parse(str(tmp_path / "w.duckdb"))
    with Warehouse.open(location) as wh:
        wh.ensure_raw_tables()
        ensure_state(wh, "flowhouse")
        wh.commit()
    inbox = tmp_path / "hooks"
    return location, inbox, inbox / links.LINKS_FOLDER


def test_erase_with_the_inbox_removes_the_customers_links(tmp_path: Path) -> None:
    location, inbox, folder = erasable(tmp_path)
    tokens = registered(folder, "c1", "c2")
    only_c1 = registered(folder, "c1")["c1"]
    client = app(inbox)
    assert client.get(f"/c/{tokens['c1']}", follow_redirects=False).headers["location"] == (
        "https://shop.example/c1"
    )
    erase = ["erase", "--customer", "c1", "--warehouse", str(location.path)]
    without = CliRunner().invoke(cli, erase, env={"FLOWHOUSE_INBOX": None})
    assert without.exit_code == 0, without.output
    assert "SMS short links (<inbox>/links/) not checked: give --inbox" in without.output
    result = CliRunner().invoke(cli, [*erase, "--inbox", str(inbox)])
    assert result.exit_code == 0, result.output
    assert "2 SMS short link(s) removed from <inbox>/links/" in result.output
    remaining = [json.loads(line) for p in folder.glob("*.jsonl") for line in p.open()]
    assert [r["customer_id"] for r in remaining] == ["c2"]
    assert only_c1 not in {r["token"] for r in remaining}
    # the running receiver notices: the erased link now goes to the store, the other still works
    answer = client.get(f"/c/{tokens['c1']}", follow_redirects=False)
    assert answer.headers["location"] == HOME
    answer = client.get(f"/c/{tokens['c2']}", follow_redirects=False)
    assert answer.headers["location"] == "https://shop.example/c2"


#: lines a links file can hold that are not short links: not JSON, not an object, a field missing,
#: a field of the wrong type
BAD_LINES = [
    '{"token": "t1", "message_id"',
    '["not", "an", "object"]',
    '{"token": "t2", "message_id": "m", "channel": "sms", "position": 1, "url": "https://x"}',
    '{"token": "t3", "message_id": "m", "customer_id": "c9", "channel": "sms", "position": "1", '
    '"url": "https://x"}',
]


def spoil(folder: Path) -> Path:
    """The (one) links file of ``folder``, with the bad lines between its good ones and, last, a
    line cut short inside a character (bytes that are not UTF-8)."""
    [path] = folder.glob("*.jsonl")
    good = path.read_text().splitlines()
    text = "\n".join([good[0], *BAD_LINES, *good[1:]]) + "\n"
    path.write_bytes(text.encode() + '{"token": "t4", "url": "https://x/caf\u00e9'.encode()[:-1])
    return path


def test_a_line_that_is_not_a_link_stops_no_other_click(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    inbox = tmp_path / "hooks"
    folder = inbox / links.LINKS_FOLDER
    spoilt = registered(folder, "c1", "c2")
    path = spoil(folder)
    later = registered(folder, "c3")  # a second file, read after the spoilt one
    client = app(inbox)
    with caplog.at_level("WARNING", logger=links.__name__):
        for customer, token in [*spoilt.items(), *later.items()]:
            answer = client.get(f"/c/{token}", follow_redirects=False)
            assert answer.headers["location"] == f"https://shop.example/{customer}", customer
    warned = [r.getMessage() for r in caplog.records]
    assert len(warned) == len(BAD_LINES) + 1, warned  # each once, located, with what was expected
    assert (
        f"{path}:2: not JSON" in warned[0] and "expected a short link: a JSON object" in warned[0]
    )
    assert f"{path}:3: not a JSON object" in warned[1]
    assert f"{path}:4: customer_id: customer_id is missing" in warned[2]
    assert f"{path}:5: position: position is not a whole number; got '1'" in warned[3]
    assert f"{path}:{len(BAD_LINES) + 3}: not JSON" in warned[4]


def test_erase_reads_past_a_line_that_is_not_a_link_and_names_it(tmp_path: Path) -> None:
    location, inbox, folder = erasable(tmp_path)
    registered(folder, "c1", "c2")
    path = spoil(folder)
    erase = ["erase", "--customer", "c1", "--warehouse", str(location.path), "--inbox", str(inbox)]
    result = CliRunner().invoke(cli, erase)
    assert result.exit_code == 1, result.output  # done for the rest, and said loudly
    assert "1 SMS short link(s) removed from <inbox>/links/" in result.output
    assert "5 line(s) of <inbox>/links/ are not short links" in result.output
    assert f"    {path}:2: not JSON" in result.output
    assert f"{path}:4: customer_id: customer_id is missing" in result.output
    assert "Error: 5 line(s) of" in result.output and "the rest is erased" in result.output
    left = path.read_text().splitlines()
    assert left[: len(BAD_LINES)] == BAD_LINES  # kept as they were: whose they are is unknown
    assert json.loads(left[len(BAD_LINES)])["customer_id"] == "c2"
    assert left[len(BAD_LINES) + 1 :] == ['{"token": "t4", "url": "https://x/caf\ufffd']
