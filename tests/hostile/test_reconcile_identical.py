"""Identical messages left in flight by a dead sender: one provider message confirms one row.

Two SMS with the same text go to one customer (the same template for two steps), and the sender
dies while both are in flight. The provider holds none, one or both of them, or one was sent and
recorded before the crash. On the next run the Twilio lookup lists what the provider holds; each
listed message may confirm at most one row, never one a row already recorded as its own, and
rows that cannot be told apart end ``unconfirmed`` with a reason, never ``sent``. A confirmed
row records the provider's message id.
"""

from __future__ import annotations

import sys
from dataclasses import dataclass
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "engine"))
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "activation"))

from harness import SMS, flow, ts
from sending import deploy, sending_store

from flowhouse.activation.deliver import Options, send
from flowhouse.activation.fake.server import running
from flowhouse.activation.fake.settings import FakeSettings
from flowhouse.activation.providers.base import Listed, Listing, match
from flowhouse.core.sql import render, statement
from flowhouse.core.warehouse import Location, Warehouse

NOW = "2026-03-01 10:01"


@dataclass(frozen=True)
class Case:
    """``delivered`` rows reach the provider before the crash; ``recorded`` of them were recorded
    as sent (the others, and the rows never sent, are left in flight)."""

    delivered: int
    recorded: int
    #: Statuses after the next run, in order of creation of the two rows.
    statuses: tuple[str, str]
    #: Messages the provider holds at the end (never a duplicate).
    received: int
    reason: str | None = None


CASES = {
    "one of two delivered": Case(1, 0, ("sent", "unconfirmed"), 1, "the provider holds 1 of the 2"),
    "none delivered": Case(0, 0, ("sent", "sent"), 2),
    "both delivered": Case(2, 0, ("sent", "sent"), 2),
    "one recorded, the other never sent": Case(1, 1, ("sent", "sent"), 2),
}


def _rows(wh: Warehouse) -> list[tuple[str, str, str | None, str | None]]:
    return [
        (str(r[0]), str(r[1]), r[2], r[3])
        for r in wh.query(
            "select message_id, status, provider_message_id, failure_reason "
            "from flowhouse.messages order by queued_at, due_at, message_id"
        )
    ]


def _crash(location: Location, case: Case) -> None:
    """Leave the rows as a sender killed mid-wave does: in flight, unrecorded."""
    with Warehouse.open(location) as wh:
        rows = _rows(wh)
        sent = [r[0] for r in rows if r[1] == "sent"]
        assert len(sent) == case.delivered
        for message_id in [r[0] for r in rows if r[0] not in sent[: case.recorded]]:
            update = statement(
                "update flowhouse.messages set status = 'sending', provider_message_id = null, "
                "sent_at = null, claim_id = 'dead', in_flight_at = :now, failure_reason = null "
                "where message_id = :id",
                now=ts(NOW),
                id=message_id,
            )
            wh.execute(render(update, wh.dialect))
        wh.commit()


@pytest.mark.parametrize("case", CASES.values(), ids=CASES.keys())
def test_identical_messages_in_flight(tmp_path: Path, case: Case) -> None:
    location = Location.parse(str(tmp_path / "store.duckdb"))
    store = sending_store(location, tmp_path)
    try:
        flows = deploy(
            store, flow("pair", steps=[{"id": "a", "send": SMS}, {"id": "b", "send": SMS}])
        )
        store.tick("2026-03-01 00:00")
        store.customer("c1", first_name="Ann", phone="+15551000001", sms_consent=True)
        store.event("c1", "cart_abandoned", at="2026-03-01 10:00", cart_id="k1")
        store.tick("2026-03-01 10:00")
    finally:
        store.close()
    with running(FakeSettings()) as fake:
        options = Options(provider_url=fake.url)
        if case.delivered:
            send(location, flows, ts(NOW), Options(provider_url=fake.url, limit=case.delivered))
        _crash(location, case)
        report = send(location, flows, ts(NOW), options)
        received = fake.state.messages()
        duplicates = fake.state.duplicates()
    with Warehouse.open(location) as wh:
        rows = _rows(wh)
    assert tuple(r[1] for r in rows) == case.statuses, (rows, report.describe())
    assert len(received) == case.received
    assert duplicates == {}
    sent_ids = [r[2] for r in rows if r[1] == "sent"]
    assert all(sent_ids), "every sent row records the provider's message id"
    assert len(set(sent_ids)) == len(sent_ids), "one provider message confirms one row"
    assert {r.provider_message_id for r in received} >= set(sent_ids)
    for _, status, _, reason in rows:
        if status == "unconfirmed":
            assert case.reason and reason and case.reason in reason, reason


# -- the pairing itself ----------------------------------------------------------------------------

A, B = (
    Listed("SMa", "SMa", ts("2026-03-01 10:01:01")),
    Listed("SMb", "SMb", ts("2026-03-01 10:01:02")),
)
SAME = ["+15551000001\nHi", "+15551000001\nHi"]
MATCHES = {
    # listings, taken, identities (None: each its own) -> (found, provider id) per row
    "one listed, two identical rows": (
        [Listing((A,)), Listing((A,))],
        set(),
        SAME,
        [("sent", "SMa"), ("unconfirmed", None)],
    ),
    "two listed, two identical rows, paired in order": (
        [Listing((B, A)), Listing((A, B))],
        set(),
        SAME,
        [("sent", "SMa"), ("sent", "SMb")],
    ),
    "one identical row's lookup failed": (
        [Listing((A,)), None],
        set(),
        SAME,
        [("unknown", None), ("unknown", None)],
    ),
    "listed one held by another row": ([Listing((A,))], {"SMa"}, None, [("absent", None)]),
    "one listed, more pages": (
        [Listing((A,), complete=False), Listing((A,), complete=False)],
        set(),
        SAME,
        [("sent", "SMa"), ("unknown", None)],
    ),
    "nothing listed, more pages": ([Listing((), complete=False)], set(), None, [("unknown", None)]),
    "lookup failed": ([None], set(), None, [("unknown", None)]),
    "one message listed for two different rows": (
        [Listing((A,)), Listing((A, B))],
        set(),
        None,
        [("unconfirmed", None), ("unconfirmed", None)],
    ),
    "the same message listed twice": (
        [Listing((A, A)), Listing((A,))],
        set(),
        SAME,
        [("sent", "SMa"), ("unconfirmed", None)],
    ),
}


@pytest.mark.parametrize(
    ("listings", "taken", "same", "expected"), MATCHES.values(), ids=MATCHES.keys()
)
def test_match(
    listings: list[Listing | None],
    taken: set[str],
    same: list[str] | None,
    expected: list[tuple[str, str | None]],
) -> None:
    ids = [f"m{i}" for i in range(len(listings))]
    found = match(ids, listings, taken, same)
    assert [(m.found, m.provider_message_id) for m in found] == expected
    assert all(m.reason for m in found if m.found == "unconfirmed")
