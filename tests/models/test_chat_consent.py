"""WhatsApp and Viber consent from the canonical inputs (dbt, on DuckDB and PostgreSQL): an
`opted_in` event with `properties.channel` whatsapp or viber grants that channel alone (SMS consent
and an opt-in to `all` do not), an `unsubscribed` event from that channel or from `all` withdraws
it, and a hard bounce on the channel suppresses it."""

from __future__ import annotations

import json
from datetime import datetime, timedelta
from typing import Any

import pytest
from sqlglot import exp

from flowhouse.core.build import build_models
from flowhouse.core.warehouse import Location, Warehouse

pytestmark = pytest.mark.slow

NOW = datetime(2026, 10, 1)
CUSTOMERS = ("both", "sms_only", "left_whatsapp", "left_all", "all_opt_in", "back", "bounced")
#: (customer, event_type, occurred_at, properties)
EVENTS: list[tuple[str, str, str, dict[str, Any]]] = [
    ("both", "opted_in", "2026-09-01 10:00", {"channel": "whatsapp"}),
    ("both", "opted_in", "2026-09-01 10:00", {"channel": "viber"}),
    ("left_whatsapp", "opted_in", "2026-09-01 10:00", {"channel": "WhatsApp"}),
    ("left_whatsapp", "opted_in", "2026-09-01 10:00", {"channel": "viber"}),
    ("left_whatsapp", "unsubscribed", "2026-09-02 10:00", {"channel": "whatsapp"}),
    ("left_all", "opted_in", "2026-09-01 10:00", {"channel": "whatsapp"}),
    ("left_all", "opted_in", "2026-09-01 10:00", {"channel": "viber"}),
    ("left_all", "unsubscribed", "2026-09-02 10:00", {"channel": "all"}),
    ("all_opt_in", "opted_in", "2026-09-01 10:00", {"channel": "all"}),
    ("back", "unsubscribed", "2026-09-01 10:00", {"channel": "whatsapp"}),
    ("back", "opted_in", "2026-09-02 10:00", {"channel": "whatsapp"}),
    ("bounced", "opted_in", "2026-09-01 10:00", {"channel": "viber"}),
    ("bounced", "message_bounced", "2026-09-03 10:00", {"channel": "viber", "bounce_type": "hard"}),
    ("bounced", "opted_in", "2026-10-02 10:00", {"channel": "whatsapp"}),  # after the build's now
]  # fmt: skip

COLUMNS = ("has_whatsapp_consent", "has_whatsapp_opt_in", "has_viber_consent", "has_viber_opt_in",
           "has_sms_consent", "whatsapp_unsubscribed_at", "viber_suppressed_at")  # fmt: skip
EXPECTED = {
    "both": (True, True, True, True, True, None, None),
    "sms_only": (False, False, False, False, True, None, None),
    "left_whatsapp": (False, True, True, True, True, datetime(2026, 9, 2, 10), None),
    "left_all": (False, True, False, True, False, datetime(2026, 9, 2, 10), None),
    "all_opt_in": (False, False, False, False, True, None, None),
    "back": (True, True, False, False, True, datetime(2026, 9, 1, 10), None),
    "bounced": (False, False, True, True, True, None, datetime(2026, 9, 3, 10)),
}


def load(location: Location) -> None:
    columns = ["customer_id", "email", "phone", "timezone", "email_opt_in", "sms_opt_in",
               "properties", "created_at", "updated_at"]  # fmt: skip
    customers = [(c, f"{c}@example.com", "+14155550100", "UTC", True, True, "{}",
                  "2026-08-01 00:00:00", "2026-08-01 00:00:00") for c in CUSTOMERS]  # fmt: skip
    events = []
    for i, (customer, kind, at, properties) in enumerate(EVENTS):
        occurred = datetime.fromisoformat(at)
        loaded = occurred + timedelta(minutes=5)
        events.append((f"e{i}", customer, kind, str(occurred), str(loaded), json.dumps(properties)))
    event_columns = ["event_id", "customer_id", "event_type", "occurred_at", "loaded_at",
                     "properties"]  # fmt: skip
    with Warehouse.open(location) as wh:
        wh.ensure_raw_tables()
        wh.execute(exp.insert(exp.values(customers), "raw.customers", columns=columns))
        wh.execute(exp.insert(exp.values(events), "raw.events", columns=event_columns))


def check(location: Location) -> None:
    load(location)
    build_models(location, select=["+customer_attributes"], tests=False, now=NOW)
    with Warehouse.open(location) as wh:
        rows = wh.query(exp.select("customer_id", *COLUMNS).from_("core.customer_attributes"))
    assert {r[0]: tuple(r[1:]) for r in rows} == EXPECTED


def test_whatsapp_and_viber_consent(tmp_warehouse: Location) -> None:
    check(tmp_warehouse)


@pytest.mark.postgres
def test_whatsapp_and_viber_consent_on_postgres(pg_url: str) -> None:
    check(Location.parse(pg_url))
