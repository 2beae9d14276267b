"""Flow actions and coupon codes pushed to a Spree store (issue 18), end to end through
`flowhouse send` against the fake provider's Spree, whose every request is checked against
Spree's published Platform API document: the customer's whole action state in the user's
metadata, the coupon's promotion created before the e-mail that carries it, a refused push failing
the e-mail with the reason, and no promotion made twice when a push is cut between its requests."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import httpx
import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))

from harness import EMAIL
from sending import SEND_SETTINGS, queue_for_ann, send

from flowhouse.activation.providers.spree.destination import PERCENT_ACTION
from flowhouse.core.warehouse import Location, Warehouse

SPREE_SETTINGS = (
    SEND_SETTINGS
    + """  routes: {email: sendgrid, add_tag: spree, remove_tag: spree, loyalty_points: spree,
           change_tier: spree, coupon: spree}
coupon_pools:
  vip20: {discount: 20%, expires_in: 30d}
"""
)
STEPS = [
    {"id": "tag", "action": {"type": "add_tag", "tag": "vip"}},
    {"id": "old", "action": {"type": "add_tag", "tag": "new"}},
    {"id": "untag", "action": {"type": "remove_tag", "tag": "new"}},
    {"id": "points", "action": {"type": "loyalty_points", "points": 50}},
    {"id": "bonus", "action": {"type": "loyalty_points", "points": 25}},
    {"id": "tier", "action": {"type": "change_tier", "tier": "gold"}},
    {"id": "discount", "action": {"type": "coupon", "pool": "vip20"}},
    {"id": "mail", "send": EMAIL},
]
BAD_TOKEN = "wrong-spree-token-Q7v2"


def _queue(location: Location, tmp_path: Path) -> Path:
    flows, outbox = queue_for_ann(location, tmp_path, STEPS, SPREE_SETTINGS)
    assert [r["channel"] for r in outbox] == ["add_tag", "add_tag", "change_tier", "coupon",
                                              "email", "loyalty_points", "loyalty_points",
                                              "remove_tag"]  # fmt: skip
    return flows


def _spree(url: str) -> dict[str, Any]:
    found: dict[str, Any] = httpx.get(f"{url}/_fake/spree").json()
    return found


def _rows(location: Location) -> list[tuple[str, str, str]]:
    with Warehouse.open(location) as wh:
        return [
            (str(c), str(s), str(r or ""))
            for c, s, r in wh.query(
                "select channel, status, failure_reason from flowhouse.messages order by channel"
            )
        ]


@pytest.mark.parametrize("workers", ["0", "1"])
def test_actions_and_the_coupon_reach_spree_before_the_mail(
    location: Location, tmp_path: Path, shop: str, workers: str
) -> None:
    """Rendered in the sending process or in a worker process (the shop state read with the
    claim and handed over with it)."""
    flows = _queue(location, tmp_path)
    output = send(location, flows, shop, "--workers", workers)
    assert "8 sent" in output, output
    stats = httpx.get(f"{shop}/_fake/stats").json()
    assert stats["rejected"] == {}, stats
    # 6 state pushes, 1 promotion, 1 discount action; then the e-mail
    assert stats["accepted"] == {"spree": 8, "sendgrid": 1}
    received = httpx.get(f"{shop}/_fake/messages").json()["messages"]
    order = [m["provider"] for m in sorted(received, key=lambda m: m["received_at"])]
    assert order[-1] == "sendgrid"
    store = _spree(shop)
    # whatever order the pushes went in, each carried the whole state as of the claim
    assert store["users"]["c1"]["private_metadata"] == {
        "flowhouse": {"tags": ["vip"], "loyalty_points": 75, "tier": "gold"}
    }
    [promotion] = store["promotions"]
    assert promotion["attributes"]["code"] == "vip-aaa"
    assert promotion["attributes"]["usage_limit"] == 1
    [action] = store["promotion_actions"]
    assert action["attributes"]["type"] == PERCENT_ACTION
    assert action["attributes"]["calculator_attributes"]["preferred_flat_percent"] == 20.0
    assert {s for _, s, _ in _rows(location)} == {"sent"}
    assert "0 claimed" in send(location, flows, shop)


def test_a_refused_push_fails_the_mail_with_the_reason_and_never_shows_the_token(
    location: Location, tmp_path: Path, shop: str
) -> None:
    flows = _queue(location, tmp_path)
    output = send(location, flows, shop, code=3, FLOWHOUSE_SPREE_TOKEN=BAD_TOKEN)
    assert "spree: failed 7" in output, output
    assert BAD_TOKEN not in output
    rows = _rows(location)
    assert all(BAD_TOKEN not in reason for _, _, reason in rows)
    reasons = {c: (s, r) for c, s, r in rows}
    assert reasons["coupon"] == (
        "failed", '401 GET /api/v2/platform/promotions: {"error":"The access token is invalid"}'
    )  # fmt: skip
    assert reasons["email"] == ("failed", "coupon_not_created: " + reasons["coupon"][1])
    with Warehouse.open(location) as wh:
        attempts = wh.query("select coalesce(reason, '') from flowhouse.send_attempts")
    assert attempts and all(BAD_TOKEN not in r for (r,) in attempts)
    assert _spree(shop)["promotions"] == []
    assert httpx.get(f"{shop}/_fake/stats").json()["accepted"] == {}


def test_a_push_cut_between_the_promotion_and_its_discount_makes_one_promotion(
    location: Location, tmp_path: Path, shop: str
) -> None:
    flows = _queue(location, tmp_path)
    # every attempt at the discount fails after the promotion was made: the row is retried
    # until its attempts run out, and stays queued; the e-mail waits for it
    httpx.post(f"{shop}/_fake/spree/faults", json={"promotion_actions": 100})
    send(location, flows, shop)
    reasons = {c: s for c, s, _ in _rows(location)}
    assert (reasons["coupon"], reasons["email"]) == ("queued", "queued")
    store = _spree(shop)
    assert len(store["promotions"]) == 1 and store["promotion_actions"] == []
    httpx.post(f"{shop}/_fake/spree/faults", json={"promotion_actions": 0})
    send(location, flows, shop, now="2026-03-01T10:30:00")
    assert {s for _, s, _ in _rows(location)} == {"sent"}
    store = _spree(shop)
    assert len(store["promotions"]) == 1 and len(store["promotion_actions"]) == 1


def test_a_run_killed_between_the_promotion_and_its_discount_is_reconciled_without_a_duplicate(
    location: Location, tmp_path: Path, shop: str
) -> None:
    flows = _queue(location, tmp_path)
    httpx.post(f"{shop}/_fake/spree/faults", json={"promotion_actions": 100})
    send(location, flows, shop)
    httpx.post(f"{shop}/_fake/spree/faults", json={"promotion_actions": 0})
    # the state a SIGKILL after the promotion was made leaves: the coupon row in flight
    with Warehouse.open(location) as wh:
        wh.execute(
            "update flowhouse.messages set status = 'sending', provider = 'spree', "
            "in_flight_at = timestamp '2026-03-01 10:01:00' where channel = 'coupon'"
        )
        wh.commit()
    output = send(location, flows, shop, now="2026-03-01T10:30:00")
    assert "resent" in output, output
    assert {s for _, s, _ in _rows(location)} == {"sent"}
    store = _spree(shop)
    assert len(store["promotions"]) == 1 and len(store["promotion_actions"]) == 1


def test_missing_or_broken_spree_credentials_stop_the_send_before_anything_is_claimed(
    location: Location, tmp_path: Path
) -> None:
    flows = _queue(location, tmp_path)
    base = {"SENDGRID_API_KEY": "SG.test", "FLOWHOUSE_SIGNING_KEY": "k" * 32}
    base |= {"FLOWHOUSE_SPREE_TOKEN": "", "FLOWHOUSE_SPREE_URL": ""}
    output = send(location, flows, None, code=1, **base)
    assert "Error: cannot send, nothing was claimed" in output
    assert "route to spree: The Spree store URL is not set" in output, output
    bad = base | {
        "FLOWHOUSE_SPREE_URL": "https://shop.example",
        "FLOWHOUSE_SPREE_TOKEN": "tok-9x\r",
    }
    output = send(location, flows, None, code=1, **bad)
    assert "FLOWHOUSE_SPREE_TOKEN holds a control character" in output
    assert "tok-9x" not in output
    assert {s for _, s, _ in _rows(location)} == {"queued"}


def test_the_fake_store_refuses_what_the_document_does_not_allow(shop: str) -> None:
    token = {"authorization": "Bearer fake-flowhouse_spree_token"}
    url = f"{shop}/api/v2/platform"
    bad = httpx.patch(f"{url}/users/c1", json={"private_metadata": {}}, headers=token)
    assert bad.status_code == 400 and "user" in bad.text, bad.text
    nameless = httpx.post(f"{url}/promotions", json={"promotion": {"code": "X"}}, headers=token)
    assert nameless.status_code == 400 and "name" in nameless.text, nameless.text
    anonymous = httpx.patch(f"{url}/users/c1", json={"user": {"private_metadata": {}}})
    assert anonymous.status_code == 401
    made = httpx.post(f"{url}/promotions", json={"promotion": {"name": "A", "code": "X"}},
                      headers=token)  # fmt: skip
    taken = httpx.post(f"{url}/promotions", json={"promotion": {"name": "B", "code": "x"}},
                       headers=token)  # fmt: skip
    assert (made.status_code, taken.status_code) == (201, 422)
    assert taken.json()["error"] == "Code has already been taken"
