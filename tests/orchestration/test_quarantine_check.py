"""A bad row in raw.events does not stop the Dagster cycle: the event is quarantined and the asset
check ``no_quarantined_events`` on ``staging.quarantined_events`` warns, while the run succeeds."""

from __future__ import annotations

import json
from datetime import timedelta

import pytest
from dagster import AssetCheckSeverity, AssetKey, instance_for_test
from sqlglot import exp

from flowhouse.core.paths import FLOWS
from flowhouse.core.warehouse import Location, Warehouse
from flowhouse.demo import DEMO_START
from flowhouse.generate import generate_store
from flowhouse.orchestration.dagster.resources import NOW_TAG, FlowhouseResource

EVENT_COLUMNS = ["event_id", "customer_id", "event_type", "occurred_at", "loaded_at", "properties"]


@pytest.mark.slow
@pytest.mark.filterwarnings("ignore:AssetExecutionContext.op is deprecated:DeprecationWarning")
def test_a_bad_row_warns_and_the_cycle_goes_on(tmp_warehouse: Location) -> None:
    from flowhouse.orchestration.dagster.location import build_definitions

    generate_store(tmp_warehouse, customers=150, days=3, seed=5, start=DEMO_START)
    launch = DEMO_START + timedelta(days=3)
    with Warehouse.open(tmp_warehouse) as wh:
        customer = wh.scalar(
            "select min(customer_id) from raw.events where customer_id is not null"
        )
        bad = ("bad-value", customer, "order_placed", str(launch - timedelta(hours=2)),
               str(launch - timedelta(hours=1)), json.dumps({"order_id": "o-bad", "value": "12,50"}))  # fmt: skip
        wh.execute(exp.insert(exp.values([bad]), "raw.events", columns=EVENT_COLUMNS))
    resource = FlowhouseResource(
        warehouse=str(tmp_warehouse.path), flows_dir=str(FLOWS), provider_url="http://127.0.0.1:9"
    )
    # the definitions are loaded under the instance that runs them (Dagster keeps the current
    # instance's state storage globally: one left by an earlier test may be gone)
    with instance_for_test() as instance:
        job = build_definitions(resource).resolve_job_def("flowhouse_cycle")
        result = job.execute_in_process(
            instance=instance, tags={NOW_TAG: launch.isoformat()}, raise_on_error=False
        )
    checks = {e.check_name: e for e in result.get_asset_check_evaluations()}
    quarantine = checks["no_quarantined_events"]
    assert result.success
    assert quarantine.asset_key == AssetKey(["staging", "quarantined_events"])
    assert not quarantine.passed and quarantine.severity == AssetCheckSeverity.WARN
    with Warehouse.open(tmp_warehouse, read_only=True) as wh:
        assert wh.query("select event_id, field from staging.quarantined_events") == [
            ("bad-value", "value")
        ]
