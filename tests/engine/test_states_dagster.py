"""The Dagster engine asset refuses a removal of enrollments in flight as ``flowhouse tick`` does:
the run fails with the same list, and nothing changes."""

from __future__ import annotations

import pytest
from dagster import materialize
from harness import EMAIL, Store, flow

from flowhouse.core.warehouse import Warehouse
from flowhouse.orchestration.dagster.assets import build_engine_assets
from flowhouse.orchestration.dagster.resources import NOW_TAG, FlowhouseResource

STEPS = [{"id": "wait_1h", "wait": "1h"}, {"id": "first", "send": EMAIL}]


@pytest.mark.filterwarnings("ignore::DeprecationWarning")
def test_the_engine_asset_fails_on_a_removal_that_needs_intent(store: Store) -> None:
    store.flows(
        flow("cart", STEPS), flow("other", [{"id": "hi", "send": EMAIL}], trigger="opted_in")
    )
    store.tick("2026-03-01 00:00")
    store.customer("c1")
    store.event("c1", "cart_abandoned", at="2026-03-01 10:00")
    store.tick("2026-03-01 10:00")
    store.flows(flow("other", [{"id": "hi", "send": EMAIL}], trigger="opted_in"))
    before = store.snapshot()
    resource = FlowhouseResource(
        warehouse=store.location.url or str(store.location.path), flows_dir=str(store.flows_dir)
    )
    store.wh.close()
    try:
        result = materialize(
            [build_engine_assets([], store.dialect)],
            resources={"flowhouse": resource},
            tags={NOW_TAG: "2026-03-01T11:00:00"},
            raise_on_error=False,
        )
    finally:
        store.wh = Warehouse.open(store.location)
    assert not result.success
    (failure,) = [e for e in result.all_events if e.is_step_failure]
    message = failure.step_failure_data.error.message
    assert "the flow files remove flows or steps with enrollments in flight" in message
    assert "flow cart: 1 enrollment(s) in flight would exit (flow_removed)" in message
    assert store.snapshot() == before
