"""The canonical inputs: ``raw.events``, ``raw.customers`` and ``raw.products``.

A deployment maps its own tables onto these three (or loads files into them with ``flowhouse
load``); everything downstream — dbt models, the engine, activation — reads only these. Timestamps
are UTC without a zone; ``properties`` is JSON. The vocabulary of event types and the properties
each carries are documented in ``docs/events.md``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

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

INPUTS: dict[str, Input] = {i.name: i for i in (EVENTS, CUSTOMERS, PRODUCTS)}

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
)  # fmt: skip

DERIVED_EVENT_TYPES: tuple[str, ...] = (
    "cart_abandoned", "browse_abandoned", "first_purchase", "repeat_purchase", "milestone_order",
    "high_value_order", "became_inactive", "purchase_anniversary", "birthday", "segment_entered",
    "segment_exited", "tier_changed", "back_in_stock", "price_dropped", "low_stock",
    "replenishment_due", "subscription_renewal_due", "search_without_purchase",
    "viewed_product_n_times",
)  # fmt: skip

#: Events about the catalog rather than a person: their ``customer_id`` is empty.
CATALOG_EVENT_TYPES: frozenset[str] = frozenset({"inventory_changed", "price_changed"})

EVENT_TYPES: tuple[str, ...] = RAW_EVENT_TYPES + DERIVED_EVENT_TYPES
