"""One event from the future must not poison derived data (issue: an event loaded in 2099 made the
next plain ``flowhouse build`` take 2099 as "now" and write derived events dated up to 2099, never
retracted, and later builds at the right time missed segment entries).

Through the CLI with the real dbt, on DuckDB and PostgreSQL: the loader rejects the row; a row that
got in before it did never becomes "now"; and retracting it removes what a build from 2099 wrote.
"""

from __future__ import annotations

import json
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner, Result

from flowhouse.cli import cli
from flowhouse.core.clock import utcnow
from flowhouse.core.sql import render, statement
from flowhouse.core.warehouse import Warehouse

pytestmark = pytest.mark.slow

FUTURE = "2099-01-01 00:00:00"


def run(*args: str, code: int = 0) -> Result:
    result = CliRunner().invoke(cli, list(args))
    assert result.exit_code == code, result.output
    return result


@pytest.fixture(params=["duckdb", pytest.param("postgres", marks=pytest.mark.postgres)])
def warehouse(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "postgres":
        return str(request.getfixturevalue("pg_url"))
    return str(tmp_path / "store.duckdb")


def write(path: Path, rows: list[dict[str, Any]]) -> str:
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return str(path)


def event(event_id: str, kind: str, at: str, **props: Any) -> dict[str, Any]:
    return {"event_id": event_id, "customer_id": "c1", "event_type": kind, "occurred_at": at,
            "loaded_at": at, "properties": props}  # fmt: skip


def derived_after(warehouse: str, moment: datetime) -> list[tuple[Any, ...]]:
    """Events of core.events (but the raw row from the future) dated after `moment`."""
    with Warehouse.open(warehouse) as wh:
        return wh.query(
            render(
                statement(
                    "select event_type, count(*) from core.events "
                    "where occurred_at > :moment and event_id <> 'e_future' group by 1 order by 1",
                    moment=moment,
                ),
                wh.dialect,
            )
        )


def open_memberships(warehouse: str) -> list[tuple[Any, ...]]:
    with Warehouse.open(warehouse) as wh:
        return wh.query(
            "select segment from core.segment_membership_history "
            "where customer_id = 'c1' and exited_at is null order by 1"
        )


def test_an_event_from_the_future_is_rejected_never_now_and_retracted_cleanly(
    warehouse: str, tmp_path: Path
) -> None:
    wall = utcnow().replace(microsecond=0)
    week_ago = (wall - timedelta(days=7)).isoformat(sep=" ")
    customers = [{"customer_id": "c1", "email": "c1@example.com", "email_opt_in": True,
                  "birthday": "1990-01-15", "created_at": "2020-01-01", "updated_at": "2020-01-01"}]  # fmt: skip
    run(
        "load",
        "customers",
        write(tmp_path / "customers.jsonl", customers),
        "--warehouse",
        warehouse,
    )
    searched = event("e1", "searched", week_ago, query="boots")
    run("load", "events", write(tmp_path / "events.jsonl", [searched]), "--warehouse", warehouse)
    # the loader refuses the row from the future, with its line, field and reason
    bad = event("e_future", "support_ticket_closed", FUTURE, ticket_id="t1")
    refused = run("load", "events", write(tmp_path / "bad.jsonl", [bad]), "--warehouse", warehouse,
                  code=2)  # fmt: skip
    assert "0 loaded" in refused.output and "1 rejected" in refused.output
    assert "row 1: occurred_at = '2099-01-01 00:00:00': in the future" in refused.output
    # a row that got in before the loader checked (written here directly) is never "now"
    with Warehouse.open(warehouse) as wh:
        columns = "event_id, customer_id, event_type, occurred_at, loaded_at, properties"
        wh.execute(
            render(
                statement(
                    f"insert into raw.events ({columns}) values ('e_future', 'c1', "
                    "'support_ticket_closed', :at, :at, '{\"ticket_id\": \"t1\"}')",
                    at=datetime.fromisoformat(FUTURE),
                ),
                wh.dialect,
            )
        )
        wh.commit()
    run("build", "--warehouse", warehouse, "--skip-tests")
    assert derived_after(warehouse, utcnow()) == []
    assert open_memberships(warehouse) == [("engaged_non_buyers",)]
    # what a build from 2099 wrote (as a plain build did before): exits, birthdays up to 2099...
    run("build", "--warehouse", warehouse, "--skip-tests", "--now", FUTURE)
    assert derived_after(warehouse, utcnow()) != []
    assert open_memberships(warehouse) == []
    # ... is removed when the row is retracted, and the next plain build sees the segment again
    retracted = run("events", "retract", "e_future", "--reason", "from the future",
                    "--warehouse", warehouse)  # fmt: skip
    run("build", "--warehouse", warehouse, "--skip-tests")
    assert derived_after(warehouse, utcnow()) == []
    assert open_memberships(warehouse) == [("engaged_non_buyers",)]
    assert "observation(s) dated after now undone" in retracted.output
