"""Actions pushed to the shop (issue 18): a flow's tag, loyalty points, tier and coupon go to the
outbox when ``delivery.routes`` routes them, and `flowhouse send` posts them to the shop's signed
webhook (the fake provider) — the coupon created before the e-mail that carries it, and the e-mail
failed with the coupon's reason, never sent, when the shop did not create it."""

from __future__ import annotations

import sys
from pathlib import Path

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parent))

from harness import EMAIL
from sending import SEND_SETTINGS, queue_for_ann, send

from flowhouse.core.warehouse import Location, Warehouse

SHOP_SETTINGS = (
    SEND_SETTINGS
    + """  routes: {email: sendgrid, add_tag: webhook, loyalty_points: webhook,
           change_tier: webhook, coupon: webhook}
coupon_pools:
  vip20: {discount: 20%, expires_in: 30d}
"""
)
STEPS = [
    {"id": "tag", "action": {"type": "add_tag", "tag": "vip"}},
    {"id": "points", "action": {"type": "loyalty_points", "points": 50}},
    {"id": "bonus", "action": {"type": "loyalty_points", "points": 25}},
    {"id": "tier", "action": {"type": "change_tier", "tier": "gold"}},
    {"id": "discount", "action": {"type": "coupon", "pool": "vip20"}},
    {"id": "mail", "send": EMAIL},
]


def _queue(location: Location, tmp_path: Path) -> Path:
    flows, outbox = queue_for_ann(location, tmp_path, STEPS, SHOP_SETTINGS)
    assert [(r["channel"], r["kind"], r["status"]) for r in outbox] == [
        ("add_tag", "action", "queued"),
        ("change_tier", "action", "queued"),
        ("coupon", "action", "queued"),
        ("email", "message", "queued"),
        ("loyalty_points", "action", "queued"),
        ("loyalty_points", "action", "queued"),
    ]
    return flows


def test_actions_reach_the_shop_and_the_coupon_comes_before_the_mail(
    location: Location, tmp_path: Path, shop: str
) -> None:
    flows = _queue(location, tmp_path)
    output = send(location, flows, shop)
    assert "6 sent" in output, output
    received = httpx.get(f"{shop}/_fake/messages").json()["messages"]
    stats = httpx.get(f"{shop}/_fake/stats").json()
    assert stats["rejected"] == {} and stats["accepted"] == {"webhook": 5, "sendgrid": 1}
    order = [m["provider"] for m in sorted(received, key=lambda m: m["received_at"])]
    assert order[-1] == "sendgrid"  # the e-mail went after every push, the coupon's included
    entries = httpx.get(f"{shop}/_fake/sync?destination=webhook").json()["entries"]
    hooks = {e["attributes"]["channel"]: e["attributes"] for e in entries}
    posted = [e["attributes"] for e in entries]
    awards = sorted(
        (a["payload"] for a in posted if a["channel"] == "loyalty_points"),
        key=lambda p: int(p["total"]),
    )
    assert hooks["add_tag"]["payload"] == {"tag": "vip"}
    # each award with the running total of the flows' awards, for a shop that sets the balance
    assert awards == [{"points": 50, "total": 50}, {"points": 25, "total": 75}]
    assert hooks["change_tier"]["payload"] == {"tier": "gold"}
    coupon = hooks["coupon"]["payload"]
    assert (coupon["pool"], coupon["coupon"]["code"], coupon["coupon"]["discount"]) == (
        "vip20", "VIP-AAA", 0.2
    )  # fmt: skip
    again = send(location, flows, shop)
    assert "0 claimed" in again  # recorded: nothing is pushed twice


def test_the_mail_fails_with_the_reason_when_the_shop_refuses_the_coupon(
    location: Location, tmp_path: Path, shop: str
) -> None:
    flows = _queue(location, tmp_path)
    # the shop refuses every push (a signature it does not accept): a terminal 401
    output = send(location, flows, shop, code=3, FLOWHOUSE_WEBHOOK_SECRET="not-the-shops-secret")
    assert "6 failed" in output and "webhook: failed 5" in output
    stats = httpx.get(f"{shop}/_fake/stats").json()
    assert stats["accepted"] == {}
    with Warehouse.open(location) as wh:
        rows = dict(
            wh.query(
                "select channel, status || ' ' || coalesce(failure_reason, '') "
                "from flowhouse.messages"
            )
        )
    assert rows["coupon"].startswith("failed ")
    assert rows["email"].startswith("failed coupon_not_created: "), rows


def _statuses(location: Location) -> dict[str, str]:
    with Warehouse.open(location) as wh:
        return dict(wh.query("select channel, status from flowhouse.messages"))


def test_the_mail_waits_while_the_shop_is_down_and_goes_once_the_coupon_is_created(
    location: Location, tmp_path: Path, shop: str
) -> None:
    flows = _queue(location, tmp_path)
    httpx.post(f"{shop}/_fake/failures", json={"server_error": 1.0})  # the shop answers 500
    send(location, flows, shop)
    statuses = _statuses(location)
    assert statuses["coupon"] == "queued"  # to retry, with its attempt recorded
    assert statuses["email"] == "queued"  # never claimed: its code does not exist yet
    assert httpx.get(f"{shop}/_fake/stats").json()["accepted"] == {}
    httpx.post(f"{shop}/_fake/failures", json={})
    output = send(location, flows, shop, now="2026-03-01T10:30:00")
    assert "6 sent" in output, output
    assert set(_statuses(location).values()) == {"sent"}
    with Warehouse.open(location) as wh:
        ((tries,),) = wh.query(
            "select count(*) from flowhouse.send_attempts as a "
            "join flowhouse.messages as m on m.message_id = a.message_id "
            "where m.channel = 'coupon'"
        )
    assert tries >= 2


def test_a_coupon_push_skipped_as_stale_takes_its_mail_with_it(
    location: Location, tmp_path: Path, shop: str
) -> None:
    """Sends resumed after the flow's maximum lateness: the code was never created in the
    shop, so the e-mail that carries it is not sent either, with the reason recorded."""
    flows = _queue(location, tmp_path)
    send(location, flows, shop, code=3, now="2026-03-03T10:00:00")
    with Warehouse.open(location) as wh:
        rows = dict(
            wh.query(
                "select channel, status || ' ' || coalesce(skip_reason, failure_reason, '') "
                "from flowhouse.messages where channel in ('coupon', 'email')"
            )
        )
    assert rows == {"coupon": "skipped stale", "email": "failed coupon_not_created: stale"}
