"""A flow whose predicate fails at run time is skipped for the tick, located and journaled; every
other flow proceeds (issue 15, item 3: resource bounds for the engine's SQL)."""

from __future__ import annotations

import time

import pytest
from harness import Store, flow

from flowhouse.core.bounds import Bounds, bounded
from flowhouse.core.errors import ConfigError, WarehouseError

WAIT = [{"id": "wait_1h", "wait": "1h"}]
#: Valid, yet fails on a cart id that is not a number.
FAILS_ON_DATA = "cast(event.cart_id as integer) > 0"


def _skips(store: Store) -> list[tuple[object, ...]]:
    return store.table("flow_skips")


def test_a_failing_predicate_skips_its_flow_and_every_other_flow_proceeds(store: Store) -> None:
    store.customer("c1")
    store.flows(
        flow("bad", WAIT, trigger={"event": "cart_abandoned", "where": FAILS_ON_DATA}),
        flow("good", WAIT),
    )
    store.tick("2026-03-01 00:00")
    store.event("c1", "cart_abandoned", at="2026-03-01 10:00", cart_id="k1")
    counts = store.tick("2026-03-01 10:00")
    assert counts["skipped_flows"] == 1
    assert [e["flow_id"] for e in store.enrollments()] == ["good"]
    [skip] = _skips(store)
    _, flow_id, file, line, field, error = skip
    assert (flow_id, file, line, field) == ("bad", str(store.flows_dir / "flow_0.yml"), 5,
                                            "trigger.where")  # fmt: skip
    assert "Conversion Error" in error or "invalid input syntax for type integer" in error
    assert "\n" not in error  # one line, no SQL dump
    # Its triggers wait: once the predicate can be evaluated, the flow enrolls them.
    fixed = flow(
        "bad", WAIT, trigger={"event": "cart_abandoned", "where": "event.cart_id is not null"}
    )
    store.flows(fixed, flow("good", WAIT))
    store.tick("2026-03-01 11:00")
    assert sorted(e["flow_id"] for e in store.enrollments()) == ["bad", "good"]
    assert len(_skips(store)) == 1


def test_a_skipped_flow_holds_its_enrollments(store: Store) -> None:
    store.customer("c1")
    branch = [
        {"id": "wait_1h", "wait": "1h"},
        {"id": "check", "branch": [
            {"when": FAILS_ON_DATA, "steps": []}, {"else": True, "steps": []}]},
    ]  # fmt: skip
    store.flows(flow("bad", branch), flow("good", WAIT))
    store.tick("2026-03-01 00:00")
    store.event("c1", "cart_abandoned", at="2026-03-01 10:00", cart_id="k1")
    store.tick("2026-03-01 10:00")
    store.tick("2026-03-01 12:00")
    status = {e["flow_id"]: (e["status"], e["step_id"]) for e in store.enrollments()}
    assert status["bad"] == ("active", "wait_1h")  # held where it was when the skip began
    assert status["good"][0] == "completed"
    [skip] = _skips(store)
    assert skip[1:5] == ("bad", str(store.flows_dir / "flow_0.yml"), 11, "steps.1.branch.0.when")


def test_a_failure_no_predicate_explains_still_fails_the_tick(store: Store) -> None:
    store.customer("c1")
    store.flows(flow("good", WAIT))
    store.tick("2026-03-01 00:00")
    store.wh.execute("drop table core.events")
    store.wh.commit()
    with pytest.raises(WarehouseError):
        store.tick("2026-03-01 10:00")


def test_duckdb_statements_are_interrupted_past_the_time_out(store: Store) -> None:
    with store.wh.transaction(), bounded(store.wh, Bounds(statement_timeout=0.5)):
        started = time.perf_counter()
        sql = (
            "select count(*) from range(100000000000) as a"
            if store.dialect == "duckdb"
            else "select pg_sleep(30)"
        )
        with pytest.raises(WarehouseError) as caught:
            store.wh.query(sql)
    assert time.perf_counter() - started < 10
    assert "Interrupt" in str(caught.value) or "statement timeout" in str(caught.value)


def test_bounds_come_from_the_environment() -> None:
    assert Bounds.from_env({}) == Bounds(300.0, "4GB", "256MB")
    assert Bounds.from_env(
        {"FLOWHOUSE_STATEMENT_TIMEOUT": "20", "FLOWHOUSE_MEMORY_LIMIT": "1 gb"}
    ) == Bounds(20.0, "1GB", "256MB")
    with pytest.raises(ConfigError, match="FLOWHOUSE_STATEMENT_TIMEOUT is not a number"):
        Bounds.from_env({"FLOWHOUSE_STATEMENT_TIMEOUT": "soon"})
    with pytest.raises(ConfigError, match="FLOWHOUSE_WORK_MEM is not a size"):
        Bounds.from_env({"FLOWHOUSE_WORK_MEM": "lots"})
