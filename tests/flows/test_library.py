"""The shipped flow library: it validates, covers the format, and every message renders."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from flowhouse.core.paths import FLOWS
from flowhouse.flows.checks import walk_steps
from flowhouse.flows.files import flow_files, parse_flow
from flowhouse.flows.flowfile import Action, Flow, Send, Split, WaitUntil
from flowhouse.flows.predicates import customer_columns
from flowhouse.flows.settings import load_settings
from flowhouse.flows.templating import render, render_context, template_environment
from flowhouse.flows.validate import validate_paths

SETTINGS = load_settings(FLOWS)
LINES = [
    {"sku": "tee-1", "quantity": 2, "price": 25.0},
    {"sku": "gone-9", "quantity": 1, "price": 9.5},
]
#: A trigger event of each type the library uses, with the properties docs/events.md lists.
EVENTS: dict[str, dict[str, Any]] = {
    "customer_created": {"source": "web", "wholesale": False},
    "cart_abandoned": {"cart_id": "c1", "value": 59.5, "lines": LINES,
                       "last_activity_at": "2026-03-01T10:00:00"},
    "browse_abandoned": {"sku": "tee-1", "category": "knitwear", "views": 4},
    "order_placed": {"order_id": "o1", "cart_id": "c1", "value": 59.5, "lines": LINES},
    "back_in_stock": {"sku": "tee-1", "inventory_qty": 12, "interest": "cart"},
    "price_dropped": {"sku": "tee-1", "price": 20.0, "previous_price": 25.0, "drop_pct": 20.0,
                      "interest": "view"},
    "low_stock": {"sku": "gone-9", "inventory_qty": 3, "interest": "cart"},
    "became_inactive": {"last_activity_at": "2025-12-01T10:00:00", "days_inactive": 90},
    "birthday": {"birthday": "1990-03-02"},
    "purchase_anniversary": {"first_order_at": "2024-03-02T09:00:00", "years": 2},
    "tier_changed": {"from_tier": "gold", "to_tier": "vip"},
    "subscription_renewal_due": {"subscription_id": "s1", "next_renewal_at": "2026-03-05T00:00:00"},
    "subscription_payment_failed": {"subscription_id": "s1", "amount": 29.0, "attempt": 1},
    "replenishment_due": {"sku": "tee-1", "order_id": "o1", "days": 45},
    "order_delivered": {"order_id": "o1"},
    "segment_entered": {"segment": "wholesale"},
}  # fmt: skip
PRODUCTS = [
    {"sku": f"p{i}", "name": f"Product {i}", "url": f"https://shop.example/p{i}",
     "image_url": f"https://img.example/p{i}.jpg", "price": 10.0 * i}
    for i in range(1, 5)
]  # fmt: skip
CATALOG = {"tee-1": PRODUCTS[0] | {"sku": "tee-1"}}  # gone-9 is no longer in the catalog
UNSUBSCRIBE = "https://shop.example/u/token"


def library() -> list[Flow]:
    flows = [parse_flow(path)[0] for path in flow_files([FLOWS])]
    assert all(flows)
    return [f for f in flows if f is not None]


def sends(flow: Flow) -> Iterator[Send]:
    for step, _ in walk_steps(flow.steps, ("steps",)):
        if isinstance(step, Send):
            yield step


def customer(**values: Any) -> dict[str, Any]:
    base: dict[str, Any] = dict.fromkeys(customer_columns())
    base |= {"first_name": "Ada", "order_count": 3, "tier": "gold", "next_tier": "vip",
             "revenue_to_next_tier": 120.5, "top_category": "knitwear"}  # fmt: skip
    return base | values


def test_the_library_validates() -> None:
    problems, checked = validate_paths([FLOWS])
    assert [str(p) for p in problems] == []
    assert checked == 18 + len(list((FLOWS / "syncs").glob("*.yml")))


def test_every_flow_file_names_the_schema_and_describes_itself() -> None:
    for path in flow_files([FLOWS]):
        assert path.read_text().startswith(
            "# yaml-language-server: $schema=../docs/flow.schema.json\n"
        ), path
    for flow in library():
        assert flow.description and len(flow.description) > 80, flow.flow
        assert flow.holdout == (0 if flow.transactional else flow.holdout)


def test_the_library_uses_every_step_kind_and_tests_in_two_flows() -> None:
    kinds: set[str] = set()
    split_flows = set()
    for flow in library():
        for step, _ in walk_steps(flow.steps, ("steps",)):
            kinds.add(type(step).__name__)
            if isinstance(step, WaitUntil):
                until = step.wait_until
                kinds |= {f"until_{k}" for k in ("time", "weekdays", "date") if getattr(until, k)}
            if isinstance(step, Action):
                kinds.add(step.action.type)
            if isinstance(step, Send):
                kinds.add(step.send.channel)
            if isinstance(step, Split):
                split_flows.add(flow.flow)
    assert {"Wait", "WaitUntil", "WaitFor", "Branch", "Split", "Send", "Action"} <= kinds
    assert {"until_time", "until_weekdays", "until_date", "email", "sms"} <= kinds
    assert {"push", "onsite", "whatsapp", "viber"} <= kinds, "every channel the store routes"
    assert {"webhook", "admin_task", "audience_sync", "add_tag", "coupon", "loyalty_points",
            "set_property", "add_to_list"} <= kinds  # fmt: skip
    assert len(split_flows) >= 2


def test_every_routed_channel_is_used_by_a_library_flow() -> None:
    """The shipped settings route each message channel, and some library flow sends on it, so
    the demo and the library tests exercise every destination."""
    used = {(s.send.channel, f.transactional) for f in library() for s in sends(f)}
    routes = SETTINGS.delivery.routes
    assert {c for c, _ in used} == {"email", "sms", "push", "onsite", "whatsapp", "viber"}
    assert {c: routes[c] for c, _ in used} == {
        "email": "sendgrid", "sms": "twilio", "push": "fcm", "onsite": "onsite",
        "whatsapp": "twilio", "viber": "vonage",
    }  # fmt: skip
    # a marketing step on a channel with an opt-in of its own reaches customers without it too,
    # so that its skips (consent, unsubscribed, no_address) are on record, not silently absent
    assert {("push", False), ("whatsapp", False), ("viber", False)} <= used
    assert {"push", "whatsapp", "viber"} <= set(SETTINGS.quiet_hours) & set(SETTINGS.smart_sending)
    assert {"push", "whatsapp", "viber", "onsite"} <= {cap.channel for cap in SETTINGS.caps}


def test_every_template_is_used() -> None:
    used = {s.send.template for f in library() for s in sends(f)}
    files = {
        str(p.relative_to(FLOWS / "templates"))
        for p in (FLOWS / "templates").rglob("*.j2")
        if not p.name.startswith("_")
    }
    assert files == used


def _cases() -> Iterator[Any]:
    for flow in library():
        for step in sends(flow):
            yield pytest.param(flow, step, id=f"{flow.flow}.{step.id}")


@pytest.mark.parametrize(("flow", "step"), list(_cases()))
@pytest.mark.parametrize("first_name", ["Ada", None])
def test_every_message_renders(flow: Flow, step: Send, first_name: str | None) -> None:
    """Each message renders with a realistic context, and marketing ones carry their duties."""
    message = step.send
    pool = SETTINGS.coupon_pools.get(message.coupon_pool or "")
    coupon = None
    if pool is not None:
        coupon = {"code": "CODE-123", "discount": pool.discount,
                  "free_shipping": pool.free_shipping, "expires_at": "2026-04-01T00:00:00"}  # fmt: skip
    context = render_context(
        flow=flow, step_id=step.id, message=message, settings=SETTINGS,
        customer=customer(first_name=first_name), event=EVENTS[flow.trigger.event],
        links={"unsubscribe": UNSUBSCRIBE, "preferences": "https://shop.example/prefs"},
        products=PRODUCTS, catalog=CATALOG, coupon=coupon,
    )  # fmt: skip
    text = render(FLOWS / "templates", message.template, context)
    env = template_environment(FLOWS / "templates")
    extras = {
        name: env.from_string(value).render(context)
        for name, value in [("title", message.title), ("deep_link", message.deep_link),
                            *(message.content_variables or {}).items()]
        if value is not None
    }  # fmt: skip
    assert all(v.strip() and "None" not in v for v in extras.values()), extras
    assert "None" not in text and "CODE-123" in text if coupon else "None" not in text
    if first_name:
        assert "Ada" in text
    if message.channel == "sms":
        assert len(text) <= 320, len(text)
        assert "\n" not in text.strip()
        if not flow.transactional:
            assert "Reply STOP" in text
    if message.channel == "email":
        assert SETTINGS.store.postal_address and SETTINGS.store.postal_address in text
        if not flow.transactional:
            assert UNSUBSCRIBE in text and f"utm_campaign={flow.flow}" in text
    if message.channel in ("push", "onsite"):
        assert message.title and len(extras["title"]) <= 65 and len(text) <= 240, (extras, text)
        assert message.deep_link and extras["deep_link"].startswith(("https://", "/"))
    if message.channel == "whatsapp" and not flow.transactional:
        assert message.content_sid and extras, "an approved template and its variables"
    if message.channel == "viber":
        assert len(text) <= 1000 and (flow.transactional or f"utm_campaign={flow.flow}" in text)


def test_flows_folder_holds_only_flows_settings_and_templates() -> None:
    names = {p.name for p in FLOWS.iterdir() if p.suffix in (".yml", ".yaml")}
    assert "_settings.yml" in names
    assert {Path(n).stem for n in names} - {"_settings"} == {f.flow for f in library()}
