"""The Spree destination (issue 18): each request it builds is valid under Spree's published
Platform API document; a coupon's promotion and its discount are created once however often the
push is repeated or cut short; the token never reaches a reason."""

from __future__ import annotations

import asyncio
import json
from datetime import datetime
from pathlib import Path
from typing import Any

import httpx
import pytest

from flowhouse.activation import openapi as specs
from flowhouse.activation.message import Outcome, Outgoing
from flowhouse.activation.providers.base import BadSecret, MissingSecret, Secrets
from flowhouse.activation.providers.spree.config import Spree
from flowhouse.activation.providers.spree.destination import (
    PERCENT_ACTION,
    SHIPPING_ACTION,
    SpreeDestination,
)
from flowhouse.activation.render import shop_states
from flowhouse.core.sql import render, statement
from flowhouse.core.state import ensure_state
from flowhouse.core.warehouse import Warehouse
from flowhouse.flows.settings import Settings
from flowhouse.rules.context import Context

TOKEN = "spree-token-Zq81xW"
SETTINGS = Settings.model_validate(
    {"store": {"name": "T", "url": "https://shop.example", "timezone": "UTC"}}
)
STORE = "https://shop.example"


def spree(**config: Any) -> SpreeDestination:
    secrets = Secrets({"FLOWHOUSE_SPREE_TOKEN": TOKEN})
    return SpreeDestination(Spree.model_validate({"base_url": STORE, **config}), secrets)


def tag_push(state: dict[str, Any] | None = None) -> Outgoing:
    shop = state or {"tags": ["vip"], "loyalty_points": 75, "tier": "gold"}
    return Outgoing(
        message_id="m-tag", channel="add_tag", customer_id="c 1", flow_id="vip", step_id="tag",
        payload={"tag": "vip"}, data={"event": {}, "shop": shop},
    )  # fmt: skip


def coupon_push(free_shipping: bool = True, code: str = "VIP-AAA") -> Outgoing:
    coupon = {"code": code, "discount": 0.2, "free_shipping": free_shipping,
              "expires_at": "2026-03-31T10:00:00"}  # fmt: skip
    return Outgoing(
        message_id="m-coupon", channel="coupon", customer_id="c1", flow_id="vip",
        step_id="discount", payload={"pool": "vip20", "coupon": coupon},
    )  # fmt: skip


class Store:
    """A Spree store answering as the document describes; it fails the test on any request the
    document does not allow, and can refuse or break chosen requests."""

    def __init__(self) -> None:
        self.promotions: dict[str, dict[str, Any]] = {}
        self.actions: dict[str, dict[str, Any]] = {}
        self.users: dict[str, dict[str, Any]] = {}
        self.seen: list[str] = []
        self.break_actions = 0
        self.refuse: tuple[int, str] | None = None

    def __call__(self, request: httpx.Request) -> httpx.Response:
        assert specs.problems(request) == [], request
        self.seen.append(f"{request.method} {request.url.path}")
        if self.refuse:
            return httpx.Response(self.refuse[0], json={"error": self.refuse[1]})
        path = request.url.path.removeprefix("/api/v2/platform/")
        body = json.loads(request.content) if request.content else {}
        if request.method == "PATCH" and path.startswith("users/"):
            self.users[path.split("/")[1]] = body["user"]
            return httpx.Response(200, json={"data": {"id": path.split("/")[1], "type": "user"}})
        if request.method == "GET" and path == "promotions":
            code = request.url.params["filter[code_eq]"]
            found = [p for p, v in self.promotions.items() if v["code"] == code]
            return httpx.Response(200, json={
                "data": [self.promotion(p) for p in found],
                "included": [{"id": a, "type": "promotion_action", "attributes": {"type": v["type"]}}
                             for a, v in self.actions.items() if v["promotion_id"] in found],
            })  # fmt: skip
        if request.method == "POST" and path == "promotions":
            pid = str(len(self.promotions) + 100)
            self.promotions[pid] = body["promotion"] | {"code": body["promotion"]["code"].lower()}
            return httpx.Response(201, json={"data": self.promotion(pid)})
        if request.method == "POST" and path == "promotion_actions":
            if self.break_actions:
                self.break_actions -= 1
                raise httpx.ReadTimeout("the run died here", request=request)
            aid = str(len(self.actions) + 500)
            self.actions[aid] = body["promotion_action"]
            return httpx.Response(201, json={"data": {"id": aid, "type": "promotion_action"}})
        raise AssertionError(f"unexpected {request.method} {request.url.path}")

    def promotion(self, pid: str) -> dict[str, Any]:
        actions = [{"id": a, "type": "promotion_action"}
                   for a, v in self.actions.items() if v["promotion_id"] == pid]  # fmt: skip
        return {"id": pid, "type": "promotion", "attributes": self.promotions[pid],
                "relationships": {"promotion_actions": {"data": actions}}}  # fmt: skip


def push(dest: SpreeDestination, store: Store, message: Outgoing) -> list[Outcome]:
    async def go() -> list[Outcome]:
        async with httpx.AsyncClient(transport=httpx.MockTransport(store)) as client:
            [call] = dest.calls([message])
            response = await dest.exchange(client, call)
            return dest.outcomes(call, response)

    return asyncio.run(go())


def test_a_state_push_is_the_whole_state_under_one_key_and_valid() -> None:
    [call] = spree().calls([tag_push()])
    assert specs.problems(call.request) == []
    assert call.request.method == "PATCH"
    assert call.request.url.raw_path == b"/api/v2/platform/users/c%201"
    assert call.request.headers["authorization"] == f"Bearer {TOKEN}"
    assert json.loads(call.request.content) == {
        "user": {"private_metadata": {"flowhouse": {"tags": ["vip"], "loyalty_points": 75,
                                                    "tier": "gold"}}}
    }  # fmt: skip
    [renamed] = spree(metadata_key="crm").calls([tag_push()])
    assert "crm" in json.loads(renamed.request.content)["user"]["private_metadata"]


def test_a_coupon_is_a_promotion_with_its_discounts_created_in_order() -> None:
    store, dest = Store(), spree()
    [outcome] = push(dest, store, coupon_push())
    assert outcome.status == "sent" and outcome.provider_message_id == "100"
    assert store.seen == [
        "GET /api/v2/platform/promotions",
        "POST /api/v2/platform/promotions",
        "POST /api/v2/platform/promotion_actions",
        "POST /api/v2/platform/promotion_actions",
    ]
    [promotion] = store.promotions.values()
    assert (promotion["code"], promotion["usage_limit"]) == ("vip-aaa", 1)
    assert promotion["ends_at"] == "2026-03-31T10:00:00"
    kinds = {a["type"]: a for a in store.actions.values()}
    assert set(kinds) == {PERCENT_ACTION, SHIPPING_ACTION}
    assert kinds[PERCENT_ACTION]["calculator_attributes"]["preferred_flat_percent"] == 20.0
    # pushed again (a retry, or reconciliation after a crash): found, nothing created
    store.seen.clear()
    [again] = push(spree(), store, coupon_push())
    assert again.status == "sent" and again.provider_message_id == "100"
    assert store.seen == ["GET /api/v2/platform/promotions"]
    assert len(store.promotions) == 1 and len(store.actions) == 2


def test_a_push_cut_between_the_promotion_and_its_discount_creates_neither_twice() -> None:
    store = Store()
    store.break_actions = 1  # the answer to the first discount never arrives
    with pytest.raises(httpx.ReadTimeout):
        push(spree(), store, coupon_push(free_shipping=False))
    store.seen.clear()
    store.actions.clear()  # the discount did not reach the store either
    [outcome] = push(spree(), store, coupon_push(free_shipping=False))
    assert outcome.status == "sent"
    assert store.seen == [
        "GET /api/v2/platform/promotions",
        "POST /api/v2/platform/promotion_actions",
    ]
    assert len(store.promotions) == 1 and len(store.actions) == 1


def test_a_refusal_is_the_reason_with_the_request_and_never_the_token() -> None:
    store = Store()
    store.refuse = (422, f"Code has already been taken (token {TOKEN})")
    [outcome] = push(spree(), store, coupon_push())
    assert outcome.status == "failed"
    assert outcome.reason is not None and TOKEN not in outcome.reason
    assert outcome.reason.startswith("422 GET /api/v2/platform/promotions: ")
    assert "[redacted]" in outcome.reason
    store.refuse = (503, "down")
    [later] = push(spree(), store, tag_push())
    assert later.status == "retry"


def test_a_channel_spree_cannot_take_fails_with_the_reason_and_sends_nothing() -> None:
    store = Store()
    message = Outgoing(message_id="m", channel="email", customer_id="c1", flow_id="f", step_id="s")
    [outcome] = push(spree(), store, message)
    assert outcome.status == "failed" and "spree cannot push email" in (outcome.reason or "")
    assert store.seen == []


def test_the_token_and_the_store_url_are_checked_when_the_destination_is_built(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    with pytest.raises(BadSecret) as bad:
        SpreeDestination(Spree(base_url=STORE), Secrets({"FLOWHOUSE_SPREE_TOKEN": "abc\r"}))
    assert "FLOWHOUSE_SPREE_TOKEN" in str(bad.value) and "abc" not in str(bad.value)
    with pytest.raises(MissingSecret, match="FLOWHOUSE_SPREE_TOKEN"):
        SpreeDestination(Spree(base_url=STORE), Secrets({}))
    monkeypatch.delenv("FLOWHOUSE_SPREE_URL", raising=False)
    with pytest.raises(MissingSecret, match="store URL is not set"):
        SpreeDestination(Spree(), Secrets({"FLOWHOUSE_SPREE_TOKEN": TOKEN}))
    monkeypatch.setenv("FLOWHOUSE_SPREE_URL", "https://shop.example/\r")
    with pytest.raises(MissingSecret, match="control character"):
        SpreeDestination(Spree(), Secrets({"FLOWHOUSE_SPREE_TOKEN": TOKEN}))
    monkeypatch.setenv("FLOWHOUSE_SPREE_URL", "https://env-shop.example/")
    built = SpreeDestination(Spree(), Secrets({"FLOWHOUSE_SPREE_TOKEN": TOKEN}))
    assert built.base_url == "https://env-shop.example"
    with pytest.raises(ValueError, match="not a store URL"):
        Spree(base_url="shop.example")


def test_the_shop_state_is_what_the_actions_left_as_of_now(tmp_path: Path) -> None:
    """The latest add or remove of each tag wins (ties: the later update), points add up, the
    latest tier wins and `auto` clears it; updates due after now are not yet in it."""
    updates = [
        ("u1", "c1", "add_tag", "vip", None, "2026-03-01 09:00"),
        ("u2", "c1", "add_tag", "new", None, "2026-03-01 09:00"),
        ("u3", "c1", "remove_tag", "new", None, "2026-03-01 09:30"),
        ("u4", "c1", "loyalty_points", None, "50", "2026-03-01 09:00"),
        ("u5", "c1", "loyalty_points", None, "-20", "2026-03-01 09:10"),
        ("u6", "c1", "change_tier", None, "gold", "2026-03-01 09:00"),
        ("u7", "c2", "change_tier", None, "gold", "2026-03-01 09:00"),
        ("u8", "c2", "change_tier", None, "auto", "2026-03-01 09:05"),
        ("u9", "c1", "add_tag", "later", None, "2026-03-01 11:00"),
        ("u0", "c3", "add_tag", "elsewhere", None, "2026-03-01 09:00"),
    ]
    with Warehouse.open(str(tmp_path / "w.duckdb")) as wh:
        ensure_state(wh, "flowhouse")
        for uid, customer, action, name, value, at in updates:
            values = {"uid": uid, "customer": customer, "action": action, "name": name,
                      "value": value, "at": datetime.fromisoformat(at)}  # fmt: skip
            wh.execute(render(statement(
                "insert into flowhouse.profile_updates (update_id, enrollment_id, flow_id, "
                "step_id, customer_id, action, name, value, updated_at) values (:uid, 'e', 'f', "
                "'s', :customer, :action, :name, :value, :at)", **values), wh.dialect))  # fmt: skip
        wh.execute("create temp table _claimed as select 'c1' as customer_id union all "
                   "select 'c2' union all select 'c4'")  # fmt: skip
        ctx = Context(wh, "flowhouse", datetime(2026, 3, 1, 10), None, [], SETTINGS)
        states = shop_states(ctx, "_claimed")
    assert states == {
        "c1": {"tags": ["vip"], "loyalty_points": 30, "tier": "gold"},
        "c2": {"tags": [], "loyalty_points": 0, "tier": None},
    }


def test_an_answer_the_document_does_not_describe_is_retried_not_a_crash() -> None:
    def odd(request: httpx.Request) -> httpx.Response:
        return httpx.Response(200, json={"data": {"id": "1"}} if "promotions" in request.url.path
                              else {"data": []})  # fmt: skip

    async def go() -> list[Outcome]:
        dest = spree()
        async with httpx.AsyncClient(transport=httpx.MockTransport(odd)) as client:
            [call] = dest.calls([coupon_push()])
            return dest.outcomes(call, await dest.exchange(client, call))

    [outcome] = asyncio.run(go())
    assert outcome.status == "retry"
    assert "not a list of promotions" in (outcome.reason or "")
