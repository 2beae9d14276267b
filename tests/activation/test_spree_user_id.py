"""Spree's user id from a customer property (``delivery.spree.user_id_property``), end to end
through `flowhouse send` against the fake provider's Spree (DuckDB and PostgreSQL): a customer's
action state goes to the Spree user the property names, and a customer without that property
fails with a reason saying so, with no request to the store (never a call with the wrong id)."""

from __future__ import annotations

from pathlib import Path

import httpx
from harness import flow
from sending import deploy, send, sending_store
from test_spree_push import SPREE_SETTINGS, _rows, _spree

from flowhouse.core.sql import render, statement
from flowhouse.core.warehouse import Location, column_type

STEPS = [{"id": "tag", "action": {"type": "add_tag", "tag": "vip"}}]


def settings() -> str:
    """The Spree settings, with the user id read from the property ``spree_user_id``."""
    return SPREE_SETTINGS.replace(
        "  routes: {", "  spree: {user_id_property: spree_user_id}\n  routes: {", 1
    )


def queue(location: Location, tmp_path: Path) -> Path:
    store = sending_store(location, tmp_path)
    flows = deploy(store, flow("vip", STEPS), settings=settings())
    store.tick("2026-03-01 00:00")
    for customer in ("c1", "c2"):
        store.customer(customer, first_name="Ann")
        store.event(customer, "cart_abandoned", at="2026-03-01 10:00")
    # customer_attributes.properties, as the model has it: only c1 has a Spree user id
    json_type = column_type("json", store.dialect).sql(store.dialect)
    store.wh.execute(f"alter table core.customer_attributes add column properties {json_type}")
    store.wh.execute(
        render(
            statement(
                "update core.customer_attributes set properties = cast(:p as json) "
                "where customer_id = 'c1'",
                p='{"spree_user_id": 42, "size": "M"}',
            ),
            store.dialect,
        )
    )
    store.wh.commit()
    store.tick("2026-03-01 10:00")
    store.close()
    return flows


def test_the_spree_user_id_comes_from_the_named_property(
    location: Location, tmp_path: Path, shop: str
) -> None:
    flows = queue(location, tmp_path)
    output = send(location, flows, shop, code=3)
    assert "1 sent, 1 failed" in output, output
    users = _spree(shop)["users"]
    assert set(users) == {"42"}, users  # never c1 or c2 by customer id
    assert users["42"]["private_metadata"] == {
        "flowhouse": {"tags": ["vip"], "loyalty_points": 0, "tier": None}
    }
    stats = httpx.get(f"{shop}/_fake/stats").json()
    assert (stats["accepted"], stats["rejected"]) == ({"spree": 1}, {}), stats
    failed = [r for r in _rows(location) if r[1] == "failed"]
    assert len(failed) == 1 and failed[0][0] == "add_tag"
    assert "no Spree user id: customer c2 has no property 'spree_user_id'" in failed[0][2]
    assert "(delivery.spree.user_id_property); nothing was sent to the store" in failed[0][2]
