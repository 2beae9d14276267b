"""The canonical inputs: ``raw.events``, ``raw.customers`` and ``raw.products``, and the contact
table ``raw.device_tokens`` (the customers' push registration tokens, for native push).

A deployment maps its own tables onto these (or loads files into them with ``flowhouse
load``); everything downstream — dbt models, the engine, activation — reads only these. Timestamps
are UTC without a zone; ``properties`` is JSON. The vocabulary of event types and the properties
each carries are documented in ``docs/events.md``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal, get_args

ColumnType = Literal[
    "text", "timestamp", "date", "boolean", "json", "decimal", "integer", "bigint", "double"
]

RAW_SCHEMA = "raw"


@dataclass(frozen=True)
class Column:
    name: str
    type: ColumnType
    required: bool = False
    description: str = ""


@dataclass(frozen=True)
class Input:
    """One canonical input table."""

    name: str
    key: str
    columns: tuple[Column, ...]
    #: The column whose newer (or equal) value wins when a key is loaded again.
    version: str = "updated_at"

    @property
    def column_names(self) -> list[str]:
        return [c.name for c in self.columns]

    def column(self, name: str) -> Column:
        return next(c for c in self.columns if c.name == name)


EVENTS = Input(
    name="events",
    key="event_id",
    columns=(
        Column("event_id", "text", True, "unique id of the event"),
        Column("customer_id", "text", False, "who; empty only for catalog events"),
        Column("event_type", "text", True, "one of the event vocabulary"),
        Column("occurred_at", "timestamp", True, "when it happened (UTC)"),
        Column("loaded_at", "timestamp", True, "when it reached the warehouse (UTC)"),
        Column("properties", "json", False, "event details as a JSON object"),
    ),
)

CUSTOMERS = Input(
    name="customers",
    key="customer_id",
    columns=(
        Column("customer_id", "text", True),
        Column("email", "text"),
        Column("phone", "text", description="E.164, e.g. +14155550100"),
        Column("first_name", "text"),
        Column("created_at", "timestamp", True),
        Column("timezone", "text", description="IANA zone, e.g. Europe/Berlin"),
        Column("country", "text", description="ISO 3166-1 alpha-2"),
        Column("birthday", "date"),
        Column("email_opt_in", "boolean"),
        Column("sms_opt_in", "boolean"),
        Column("properties", "json"),
        Column("updated_at", "timestamp", True),
    ),
)

PRODUCTS = Input(
    name="products",
    key="sku",
    columns=(
        Column("sku", "text", True),
        Column("name", "text"),
        Column("url", "text"),
        Column("image_url", "text"),
        Column("category", "text"),
        Column("price", "decimal"),
        Column("cost", "decimal"),
        Column("inventory_qty", "integer"),
        Column("updated_at", "timestamp", True),
    ),
)

#: The platforms a device token can belong to.
PLATFORMS = ("ios", "android", "web")

DEVICE_TOKENS = Input(
    name="device_tokens",
    key="token",
    columns=(
        Column("customer_id", "text", True, "whose device"),
        Column("token", "text", True, "the FCM registration token of one app install or browser"),
        Column("platform", "text", True, "ios, android or web"),
        Column("created_at", "timestamp", True, "when the app registered the token (UTC)"),
        Column(
            "revoked_at",
            "timestamp",
            False,
            "when the app withdrew it (logout, notifications turned off); empty: in use",
        ),
    ),
    version="created_at",
)

INPUTS: dict[str, Input] = {i.name: i for i in (EVENTS, CUSTOMERS, PRODUCTS, DEVICE_TOKENS)}

RAW_EVENT_TYPES: tuple[str, ...] = (
    "customer_created", "product_viewed", "category_viewed", "searched", "added_to_cart",
    "checkout_started", "order_placed", "payment_succeeded", "payment_failed", "order_shipped",
    "order_out_for_delivery", "order_delivered", "delivery_date_changed", "order_refunded",
    "review_submitted", "subscription_started", "subscription_renewed", "subscription_paused",
    "subscription_resumed", "subscription_cancelled", "subscription_payment_failed", "opted_in",
    "unsubscribed", "support_ticket_opened", "support_ticket_closed", "list_joined", "list_left",
    "inventory_changed", "price_changed",
    "message_delivered", "message_opened", "message_clicked", "message_bounced",
    "message_complained",
    "message_dismissed",
)  # fmt: skip

#: Derived in dbt (``models/derived``). ``customer_created`` is also a raw type: flowhouse derives
#: it for a customer first seen in ``raw.customers`` without a raw one (``docs/events.md``), and a
#: store that sends it for every customer switches the derivation off with ``events.raw``.
DERIVED_EVENT_TYPES: tuple[str, ...] = (
    "customer_created", "cart_abandoned", "browse_abandoned", "first_purchase", "repeat_purchase",
    "milestone_order", "high_value_order", "became_inactive", "purchase_anniversary", "birthday",
    "segment_entered", "segment_exited", "tier_changed", "back_in_stock", "price_dropped",
    "low_stock",
    "replenishment_due", "subscription_renewal_due", "search_without_purchase",
    "viewed_product_n_times", "coupon_issued",
)  # fmt: skip

#: Events about the catalog rather than a person: their ``customer_id`` is empty.
CATALOG_EVENT_TYPES: frozenset[str] = frozenset({"inventory_changed", "price_changed"})

#: Every type once, raw first (``customer_created`` is both).
EVENT_TYPES: tuple[str, ...] = tuple(dict.fromkeys(RAW_EVENT_TYPES + DERIVED_EVENT_TYPES))

# -- the event contract: the properties each event type carries -----------------------------------

PropertyType = Literal["text", "number", "boolean", "timestamp", "list", "object"]


@dataclass(frozen=True)
class Property:
    """One key of an event's ``properties``: its JSON type and whether every event carries it.

    ``timestamp`` is an ISO 8601 text (UTC); ``list`` a JSON array (``lines``); ``object`` a JSON
    object."""

    name: str
    type: PropertyType
    required: bool = True


def _props(spec: str) -> tuple[Property, ...]:
    """``"order_id:text, coupon_code:text?"``: name:type, ``?`` for optional."""
    found = []
    for item in spec.split(","):
        name, kind = (part.strip() for part in item.split(":"))
        optional = kind.endswith("?")
        kind = kind.removesuffix("?")
        assert kind in get_args(PropertyType), f"{name}: unknown property type {kind}"
        found.append(Property(name, kind, not optional))  # type: ignore[arg-type]
    return tuple(found)


#: Engagement: a provider's webhook for a message whose outbox row is unknown (sent by another
#: system, or erased) still loads without flow and step, so a bounce always suppresses.
_MESSAGE = (
    "message_id:text, flow_id:text?, step_id:text?, channel:text, url:text?, bounce_type:text?"
)
_CATALOG_FAN_OUT = "interest:text?"  # `cart` or `view`, on each customer's fanned-out copy

#: The properties of every event type flowhouse knows (``docs/events.md`` describes each; a test
#: keeps the two in agreement). A store's own types (``events.custom``) have no declared properties.
EVENT_PROPERTIES: dict[str, tuple[Property, ...]] = {
    name: _props(spec)
    for name, spec in {
        "customer_created": "source:text?, wholesale:boolean?",
        "product_viewed": "session_id:text?, sku:text, category:text?, price:number?",
        "category_viewed": "session_id:text?, category:text",
        "searched": "session_id:text?, query:text, results_count:number?",
        "added_to_cart": "session_id:text?, cart_id:text, sku:text, quantity:number, price:number",
        "checkout_started": "session_id:text?, cart_id:text, value:number, currency:text, "
        "lines:list",
        "order_placed": "order_id:text, cart_id:text?, subtotal:number?, discount:number?, "
        "shipping:number?, value:number, currency:text?, coupon_code:text?, lines:list?",
        "payment_succeeded": "order_id:text?, subscription_id:text?, amount:number, method:text?",
        "payment_failed": "order_id:text, amount:number, reason:text?",
        "order_shipped": "order_id:text, carrier:text?, tracking_number:text?, "
        "estimated_delivery_at:timestamp?",
        "order_out_for_delivery": "order_id:text",
        "order_delivered": "order_id:text",
        "delivery_date_changed": "order_id:text, previous_estimated_delivery_at:timestamp?, "
        "estimated_delivery_at:timestamp",
        "order_refunded": "order_id:text, amount:number, reason:text?",
        "review_submitted": "order_id:text?, sku:text, rating:number",
        "subscription_started": "subscription_id:text, sku:text, interval_days:number, "
        "price:number",
        "subscription_renewed": "subscription_id:text, sku:text, amount:number, "
        "next_renewal_at:timestamp",
        "subscription_paused": "subscription_id:text",
        "subscription_resumed": "subscription_id:text",
        "subscription_cancelled": "subscription_id:text, reason:text?",
        "subscription_payment_failed": "subscription_id:text, amount:number, attempt:number?",
        "opted_in": "channel:text",
        "unsubscribed": "channel:text",
        "support_ticket_opened": "ticket_id:text, topic:text?, order_id:text?",
        "support_ticket_closed": "ticket_id:text",
        "list_joined": "list:text",
        "list_left": "list:text",
        "inventory_changed": "sku:text, inventory_qty:number, previous_qty:number?",
        "price_changed": "sku:text, price:number, previous_price:number?",
        "message_delivered": _MESSAGE,
        "message_opened": _MESSAGE,
        "message_clicked": _MESSAGE,
        "message_bounced": _MESSAGE,
        "message_complained": _MESSAGE,
        "message_dismissed": _MESSAGE,
        "cart_abandoned": "cart_id:text, value:number, lines:list, last_activity_at:timestamp, "
        "margin_pct:number?",
        "browse_abandoned": "sku:text, category:text?, views:number",
        "first_purchase": "order_id:text, value:number, order_number:number",
        "repeat_purchase": "order_id:text, value:number, order_number:number",
        "milestone_order": "order_id:text, order_number:number",
        "high_value_order": "order_id:text, value:number",
        "became_inactive": "last_activity_at:timestamp, days_inactive:number",
        "purchase_anniversary": "first_order_at:timestamp, years:number",
        "birthday": "birthday:timestamp",
        "segment_entered": "segment:text",
        "segment_exited": "segment:text",
        "tier_changed": "from_tier:text?, to_tier:text",
        "back_in_stock": f"sku:text, inventory_qty:number, {_CATALOG_FAN_OUT}",
        "price_dropped": "sku:text, price:number, previous_price:number, drop_pct:number, "
        + _CATALOG_FAN_OUT,
        "low_stock": f"sku:text, inventory_qty:number, {_CATALOG_FAN_OUT}",
        "replenishment_due": "sku:text, order_id:text, days:number",
        "subscription_renewal_due": "subscription_id:text, next_renewal_at:timestamp",
        "search_without_purchase": "query:text",
        "viewed_product_n_times": "sku:text, views:number",
        "coupon_issued": "pool:text, code:text, message_id:text?, expires_at:timestamp?",
    }.items()
}


def contract_table() -> str:
    """The event contract as the Markdown table ``docs/events.md`` shows (a test keeps it so)."""
    rows = ["| event_type | properties (`?`: optional) |", "|---|---|"]
    for name, properties in EVENT_PROPERTIES.items():
        shown = ", ".join(f"`{p.name}{'' if p.required else '?'}` {p.type}" for p in properties)
        rows.append(f"| `{name}` | {shown} |")
    return "\n".join(rows)


#: The dbt macro file written from :data:`EVENT_PROPERTIES` (a test keeps it current).
DBT_CONTRACT_MACRO = "event_contract.sql"


def dbt_contract_macro() -> str:
    """The dbt macro ``event_property_rules()``: every typed (not ``text``) property of the
    contract as ``[event_type, property, type]``, which the quarantine checks raw events
    against (``models/staging/quarantined_events.sql``)."""
    rules = [
        f"        ['{name}', '{p.name}', '{p.type}'],"
        for name, properties in EVENT_PROPERTIES.items()
        for p in properties
        if p.type != "text"
    ]
    return "\n".join([
        "{#- Generated from flowhouse/core/contract.py (EVENT_PROPERTIES) by dbt_contract_macro();",
        "    tests/models/test_quarantine.py checks it is current. Do not edit by hand. -#}",
        "{% macro event_property_rules() -%}",
        "    {{ return([",
        *rules,
        "    ]) }}",
        "{%- endmacro %}",
        "",
    ])  # fmt: skip
