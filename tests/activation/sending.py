"""Scenario stores for sending: the engine's harness plus the catalog tables recommendations read,
the store settings and templates of sending scenarios."""

from __future__ import annotations

import sys
import textwrap
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "engine"))

from harness import Store

from flowhouse.core.warehouse import Location, create_table

CATALOG_TABLES = {
    "staging.stg_products": (
        ("sku", "text", True),
        ("name", "text", False),
        ("url", "text", False),
        ("image_url", "text", False),
        ("price", "decimal", False),
        ("inventory_qty", "integer", False),
    ),
    "staging.stg_order_lines": (
        ("order_id", "text", True),
        ("line_number", "integer", True),
        ("customer_id", "text", False),
        ("sku", "text", False),
        ("quantity", "integer", True),
        ("price", "decimal", False),
        ("ordered_at", "timestamp", True),
    ),
}

#: Store settings for sending scenarios: no quiet hours, caps or smart sending unless a test
#: names them; a Twilio Messaging Service and a status callback.
SEND_SETTINGS = """
store: {name: Test, url: https://shop.example, timezone: UTC, postal_address: 1 Main St}
smart_sending: {}
delivery:
  sendgrid: {lookup_delay: 0s}   # the fake provider's records do not lag
  twilio:
    messaging_service_sid: MG00000000000000000000000000000000
    status_callback: https://hooks.shop.example/webhooks/twilio
  links_url: https://hooks.shop.example
"""

TEMPLATES = {
    "t.html.j2": "<p>Hi {{ customer.first_name }}</p>"
    '<a href="{{ store.url | with_utm }}">shop</a>'
    '<a href="{{ links.unsubscribe }}">unsubscribe</a> {{ sender.postal_address }}',
    "t.txt.j2": "Hi {{ customer.first_name }}, your cart misses you. Reply STOP to opt out.",
}


def sending_store(location: Location, folder: Path) -> Store:
    """A harness store with the raw events table and the catalog tables."""
    store = Store(location, folder)
    with store.wh.transaction():
        store.wh.ensure_schema("staging")
        for table, columns in CATALOG_TABLES.items():
            store.wh.execute(create_table(table, columns, store.dialect))  # type: ignore[arg-type]
        store.wh.ensure_raw_tables()
    return store


def deploy(store: Store, *flows: str, settings: str = SEND_SETTINGS) -> Path:
    """Deploy flows with the sending settings and the test templates; returns the flows folder."""
    store.flows(*flows, settings=settings)
    folder = max(store.folder.glob("flows*"), key=lambda p: int(p.name[5:]))
    (folder / "templates").mkdir(exist_ok=True)
    for name, text in TEMPLATES.items():
        (folder / "templates" / name).write_text(textwrap.dedent(text))
    return folder
