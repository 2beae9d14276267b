"""``change_tier`` with ``expires_in`` (DuckDB and PostgreSQL): the override the engine writes to
``profile_updates`` carries when it ends (its due time plus ``expires_in``), what the model
``int_customer_actions`` and the shop state read; without ``expires_in`` it lasts until a later
change_tier."""

from __future__ import annotations

from harness import NEUTRAL_SETTINGS, Store, flow


def test_an_expiring_tier_override_records_when_it_ends(store: Store) -> None:
    steps = [
        {"id": "up", "action": {"type": "change_tier", "tier": "gold", "expires_in": "30d"}},
        {"id": "later", "wait": "1d"},
        {"id": "for_good", "action": {"type": "change_tier", "tier": "vip"}},
    ]
    store.customer("c1")
    store.flows(flow("main", steps), settings=NEUTRAL_SETTINGS)
    store.tick("2026-03-01 00:00")
    store.event("c1", "cart_abandoned", at="2026-03-01 10:00")
    store.tick("2026-03-02 10:00")
    found = [(u["step_id"], u["value"], str(u["updated_at"]), u["expires_at"])
             for u in store.rows("profile_updates", "updated_at")]  # fmt: skip
    assert [f[:3] for f in found] == [("up", "gold", "2026-03-01 10:00:00"),
                                      ("for_good", "vip", "2026-03-02 10:00:00")]  # fmt: skip
    assert str(found[0][3]) == "2026-03-31 10:00:00" and found[1][3] is None
