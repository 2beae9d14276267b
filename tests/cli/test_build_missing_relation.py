"""A selection that reads a relation never built ends in a flowhouse error that names the model, the
relation and the fix, not in dbt's catalog error."""

from __future__ import annotations

from pathlib import Path

import pytest
from click.testing import CliRunner

from flowhouse.cli import cli
from flowhouse.core.dbt import NodeResult, failure, missing_relation
from flowhouse.core.warehouse import Warehouse

DUCKDB = """Runtime Error in model customer_attributes (models/customers/customer_attributes.sql)
  Catalog Error: Table with name int_customer_attributes does not exist!
  Did you mean "information_schema.constraint_table_usage"?"""
POSTGRES = """Database Error in model customer_attributes (models/customers/customer_attributes.sql)
  relation "core.int_customer_attributes" does not exist
  LINE 17: from "flowhouse"."core"."int_customer_attributes" ..."""


@pytest.mark.parametrize(
    ("message", "relation"),
    [
        (DUCKDB, "int_customer_attributes"),
        (POSTGRES, "core.int_customer_attributes"),
        ("Catalog Error: Table or view with name stg_events does not exist!", "stg_events"),
        ("Runtime Error: Binder Error: column x does not exist", None),
        (None, None),
    ],
)
def test_missing_relation_recognised(message: str | None, relation: str | None) -> None:
    assert missing_relation(message) == relation


@pytest.mark.parametrize("message", [DUCKDB, POSTGRES])
def test_failure_names_the_model_the_relation_and_the_fix(message: str) -> None:
    node = NodeResult(
        "model.flowhouse.customer_attributes", "error", message, 0.1,
        reads=("model.flowhouse.int_customer_attributes",),
    )  # fmt: skip
    said = failure(node)
    assert said.startswith("the model customer_attributes reads ")
    assert "int_customer_attributes, which was never built" in said
    assert "`flowhouse build -s +customer_attributes`" in said and "`flowhouse build`" in said


def test_a_missing_source_is_not_a_build_to_run() -> None:
    node = NodeResult(
        "model.store.store_events", "error", 'relation "shop.orders" does not exist', 0.1,
        reads=("source.store.shop.orders",),
    )  # fmt: skip
    said = failure(node)
    assert "the source shop.orders, a table dbt does not build" in said
    assert "flowhouse build -s" not in said


def test_other_failures_keep_dbts_message() -> None:
    node = NodeResult("model.flowhouse.stg_events", "error", "Binder Error: nope", 0.1)
    assert failure(node) == "model.flowhouse.stg_events: error: Binder Error: nope"


def test_build_of_a_view_over_a_table_never_built(tmp_path: Path) -> None:
    warehouse = str(tmp_path / "warehouse.duckdb")
    with Warehouse.open(warehouse) as wh:
        wh.ensure_raw_tables()
    result = CliRunner().invoke(
        cli, ["build", "-s", "customer_attributes", "--skip-tests", "--warehouse", warehouse]
    )
    assert result.exit_code != 0
    assert result.exception is None or isinstance(result.exception, SystemExit)
    assert "Traceback" not in result.output
    # dbt prints its own lines first; flowhouse's error is the last thing said
    error = result.output[result.output.index("Error: dbt run failed") :]
    assert "the model customer_attributes reads int_customer_attributes" in error
    assert "never built in this warehouse" in error
    assert "`flowhouse build -s +customer_attributes`" in error
    assert "Catalog Error" not in error
