"""Syncs against an in-memory destination: the diff, the modes, the snapshot, the logs.

The destination here is a plain Python target that holds what it was told, rejects e-mails
without an ``@`` and records every row it receives, so the tests can compare it with the source
and prove that nothing unchanged is ever sent twice. The HTTP targets are tested on their own
(test_sync_targets.py) and end to end against the fake provider (test_sync_fake.py).
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sending import Store

from flowhouse.activation.providers.base import Secrets
from flowhouse.activation.providers.webhook.config import Webhook
from flowhouse.activation.sync.run import SyncOptions, run_sync
from flowhouse.activation.sync.target import RowResult, SyncRow, SyncTarget
from flowhouse.core.errors import ConfigError
from flowhouse.flows.settings import Settings
from flowhouse.flows.sync.syncfile import Sync

NOW = datetime(2026, 3, 1, 12, 0)


class Memory(SyncTarget):
    """A destination in memory: ``held`` is what it holds, ``received`` every row it was sent."""

    name = "memory"
    batch_size = 2

    def __init__(self, fail_after: int | None = None) -> None:
        super().__init__({}, Webhook(), Secrets({}))
        self.held: dict[str, dict[str, Any]] = {}
        self.received: list[tuple[str, str, tuple[tuple[str, Any], ...]]] = []
        self.calls = 0
        self.fail_after = fail_after

    def _call(self) -> None:
        self.calls += 1
        if self.fail_after is not None and self.calls > self.fail_after:
            raise ConfigError("the destination went away in the middle of the run")

    async def upsert(self, client: Any, rows: Sequence[SyncRow]) -> list[RowResult]:
        self._call()
        out = []
        for r in rows:
            self.received.append(("upsert", r.key, tuple(sorted(r.fields.items()))))
            if "@" not in str(r.fields.get("email") or ""):
                out.append(RowResult(r.key, "rejected", reason="email: not an e-mail address"))
                continue
            self.held[r.key] = dict(r.fields)
            out.append(RowResult(r.key, "accepted", destination_id=f"id-{r.key}"))
        return out

    async def remove(self, client: Any, rows: Sequence[SyncRow]) -> list[RowResult]:
        self._call()
        for r in rows:
            self.received.append(("remove", r.key, ()))
            self.held.pop(r.key, None)
        return [RowResult(r.key, "accepted") for r in rows]


def vip_sync(mode: str = "mirror", **source: Any) -> Sync:
    return Sync.model_validate(
        {
            "sync": "vip_list",
            "name": "VIP list",
            "source": source or {"segment": "vip"},
            "fields": {"email": "email", "first_name": "first_name", "properties.tier": "tier"},
            "destination": {"klaviyo": {"list_id": "L1"}},
            "mode": mode,
        }
    )


def run(store: Store, sync: Sync, target: Memory, dry_run: bool = False) -> Any:
    return run_sync(
        store.wh, store.schema, sync, Settings(), NOW, SyncOptions(dry_run=dry_run), target
    )


def model(store: Store, segment: str = "vip") -> dict[str, dict[str, Any]]:
    rows = store.wh.query(
        "select c.customer_id, c.email, c.first_name, c.tier from core.customer_attributes c "
        f"where exists (select 1 from core.segment_members m where m.customer_id = c.customer_id "
        f"and m.segment = '{segment}')"
    )
    return {k: {"email": e, "first_name": f, "properties.tier": t} for k, e, f, t in rows}


def member(store: Store, key: str, segment: str = "vip", **attrs: Any) -> None:
    store.customer(key, first_name=attrs.pop("first_name", key.upper()), tier="vip", **attrs)
    store.segment(key, segment)


def leave(store: Store, key: str, segment: str = "vip") -> None:
    store.wh.execute(
        f"delete from core.segment_members where customer_id = '{key}' and segment = '{segment}'"
    )
    store.wh.commit()


def logged(store: Store) -> list[tuple[str, str, str, str | None]]:
    rows = store.rows("sync_rows", order="logged_at,sync_key,operation")
    return [(r["sync_key"], r["operation"], r["status"], r["reason"]) for r in rows]


def test_mirror_adds_changes_and_removes(store: Store) -> None:
    target = Memory()
    for key in ("a", "b", "c"):
        member(store, key)
    first = run(store, vip_sync(), target)
    assert first.found == {"add": 3, "change": 0, "remove": 0}
    assert target.held == model(store)
    store.attributes("a", first_name="Anna")
    leave(store, "c")
    member(store, "d")
    second = run(store, vip_sync(), target)
    assert second.found == {"add": 1, "change": 1, "remove": 1}
    assert target.held == model(store)
    assert [r[:2] for r in target.received[3:]] == [
        ("upsert", "d"),
        ("upsert", "a"),
        ("remove", "c"),
    ]
    runs = store.rows("sync_runs", order="started_at,run_id")
    assert sorted((r["status"], r["added"], r["changed"], r["removed"]) for r in runs) == [
        ("succeeded", 1, 1, 1),
        ("succeeded", 3, 0, 0),
    ]


def test_nothing_unchanged_is_sent_again(store: Store) -> None:
    target = Memory()
    for key in ("a", "b"):
        member(store, key)
    run(store, vip_sync(), target)
    # a rebuild that rewrites every row with the same values (new computed_at, same fields)
    store.wh.execute(
        "update core.customer_attributes set computed_at = timestamp '2026-03-01 11:00'"
    )
    store.wh.commit()
    again = run(store, vip_sync(), target)
    assert again.found == {"add": 0, "change": 0, "remove": 0}
    assert len(target.received) == 2


def test_rejected_rows_are_logged_and_retried_next_run(store: Store) -> None:
    target = Memory()
    member(store, "a")
    member(store, "b", email="not-an-address")
    report = run(store, vip_sync(), target)
    assert report.status == "partial"
    assert report.rejected == {"email: not an e-mail address": 1}
    assert ("b", "add", "rejected", "email: not an e-mail address") in logged(store)
    assert {r["sync_key"] for r in store.rows("sync_state")} == {"a"}
    store.attributes("b", email="b@example.com")
    fixed = run(store, vip_sync(), target)
    assert fixed.found["add"] == 1 and fixed.status == "succeeded"
    assert target.held == model(store)


def test_upsert_never_removes_and_add_only_never_changes(store: Store) -> None:
    for key in ("a", "b"):
        member(store, key)
    upsert, add_only = Memory(), Memory()
    run(store, vip_sync("upsert"), upsert)
    store.rows("sync_state")
    leave(store, "b")
    store.attributes("a", first_name="Anna")
    report = run(store, vip_sync("upsert"), upsert)
    assert report.found == {"add": 0, "change": 1}
    assert set(upsert.held) == {"a", "b"}
    store.wh.execute("delete from flowhouse.sync_state")
    store.wh.execute("delete from flowhouse.sync_runs")
    store.wh.commit()
    run(store, vip_sync("add_only"), add_only)
    store.attributes("a", first_name="Annie")
    member(store, "e")
    report = run(store, vip_sync("add_only"), add_only)
    assert report.found == {"add": 1}
    assert add_only.held["a"]["first_name"] == "Anna"


def test_a_crash_mid_run_leaves_the_snapshot_consistent(store: Store) -> None:
    for key in "abcdef":
        member(store, key)
    crashing = Memory(fail_after=1)  # batches of two: the second batch never arrives
    with pytest.raises(ConfigError):
        run(store, vip_sync(), crashing)
    assert {r["sync_key"] for r in store.rows("sync_state")} == {"a", "b"}
    assert [r["status"] for r in store.rows("sync_runs")] == ["failed"]
    crashing.fail_after = None
    report = run(store, vip_sync(), crashing)
    assert report.found["add"] == 4
    assert crashing.held == model(store)
    sent = [key for op, key, _ in crashing.received if op == "upsert"]
    assert sorted(sent) == list("abcdef"), "the committed batch is not sent again"


def test_dry_run_writes_and_sends_nothing(store: Store) -> None:
    member(store, "a")
    target = Memory()
    report = run(store, vip_sync(), target, dry_run=True)
    assert report.found == {"add": 1, "change": 0, "remove": 0}
    assert "add: a" in report.describe()
    assert target.received == []
    assert store.rows("sync_runs") == [] and store.rows("sync_state") == []


def test_model_sources_need_a_unique_key(store: Store) -> None:
    store.interest("a", "sku1", viewed="2026-02-01 10:00")
    store.interest("a", "sku2", viewed="2026-02-02 10:00")
    sync = Sync.model_validate(
        {
            "sync": "interest_hook",
            "name": "interest",
            "source": {"model": "core.product_interest", "key": "customer_id"},
            "fields": {"sku": "sku"},
            "destination": {"webhook": {}},
        }
    )
    with pytest.raises(ConfigError, match="not unique"):
        run(store, sync, Memory())


# -- any sequence of source states ----------------------------------------------------------------

names = st.sampled_from(["ann", "bob", "cy", "dee", "eve", "fay"])
state = st.dictionaries(
    names,
    st.tuples(st.sampled_from(["A", "B", "C"]), st.sampled_from(["vip", "gold"]), st.booleans()),
    max_size=6,
)


@settings(
    max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(states=st.lists(state, min_size=1, max_size=5))
def test_mirror_ends_equal_to_the_source_and_sends_nothing_twice(
    store: Store, states: list[dict[str, tuple[str, str, bool]]]
) -> None:
    store.wh.execute("delete from core.customer_attributes")
    store.wh.execute("delete from core.segment_members")
    for table in ("sync_state", "sync_runs", "sync_rows"):
        store.wh.execute(f"delete from flowhouse.{table}")
    store.wh.commit()
    target = Memory()
    held_before: dict[str, tuple[tuple[str, Any], ...]] = {}
    for current in states:
        store.wh.execute("delete from core.customer_attributes")
        store.wh.execute("delete from core.segment_members")
        store.wh.commit()
        for key, (first_name, tier, valid) in current.items():
            email = f"{key}@example.com" if valid else f"{key}-invalid"
            store.customer(key, first_name=first_name, email=email, tier=tier)
            store.segment(key, "vip")
        before = len(target.received)
        previous = dict(target.held)
        run(store, vip_sync(), target)
        # every source row the destination accepts, as it is now; a row it refuses keeps what
        # it held before (the change was rejected); rows gone from the source are gone
        expected = {
            k: v if "@" in v["email"] else previous[k]
            for k, v in model(store).items()
            if "@" in v["email"] or k in previous
        }
        assert target.held == expected
        for op, key, fields in target.received[before:]:
            if op == "upsert" and "@" in dict(fields).get("email", ""):
                assert held_before.get(key) != fields, f"{key} sent again unchanged"
        held_before = {k: tuple(sorted(v.items())) for k, v in target.held.items()}
