"""A backtest routes a split as production does (DuckDB and PostgreSQL): the winner production's
``auto_winner`` rule decided takes the split's new entrants from the first tick, and the report
says so; ``--ignore-winners`` runs the split on its weights and says that instead."""

from __future__ import annotations

from collections import Counter
from datetime import datetime

from click.testing import CliRunner
from harness import Store
from test_auto_winner import RULE, enroll, split_flow

from flowhouse.cli import cli
from flowhouse.core.sql import render, statement
from flowhouse.core.warehouse import Warehouse
from flowhouse.orchestration.engine.backtest import BACKTEST_SCHEMA, backtest

START, END = datetime(2026, 3, 1), datetime(2026, 3, 2)


def decided_in_production(store: Store, winner: str) -> None:
    store.wh.execute(
        render(
            statement(
                "insert into flowhouse.split_winners values (:flow, 'subject', :version, :winner, "
                "'click_rate', 15, 0.95, 40, 30, 0.75, 0.001, '[]', :at)",
                store.schema,
                flow="cart",
                version=store.compiled[0].version,
                winner=winner,
                at=datetime(2026, 2, 20, 12, 0),
            ),
            store.dialect,
        )
    )
    store.wh.commit()


def arms(store: Store) -> Counter[str]:
    rows = store.wh.query(f"select variant from {BACKTEST_SCHEMA}.enrollments where not is_holdout")
    return Counter(str(r[0]) for r in rows)


def test_a_backtest_routes_new_entrants_to_productions_winner(store: Store) -> None:
    store.flows(split_flow(RULE, holdout=0.0))
    decided_in_production(store, "b")
    enroll(store, "c", 90, "2026-03-01 10:00")
    report = backtest(store.wh, store.compiled[0], store.settings, START, END)
    routed = arms(store)
    assert set(routed) == {"b", "h"} and sum(routed.values()) == 90, routed
    lines = "\n".join(report.lines())
    assert (
        "split subject: production's winner b (decided 2026-02-20 12:00) new entrants routed "
        "to it, as in production"
    ) in lines, lines
    assert [w["winner"] for w in store.rows("split_winners")] == ["b"]  # live state untouched

    ignored = backtest(
        store.wh, store.compiled[0], store.settings, START, END, production_winners=False
    )
    routed = arms(store)
    assert set(routed) == {"a", "b", "h"}, routed
    assert "production's winner b (decided 2026-02-20 12:00) ignored (--ignore-winners)" in (
        "\n".join(ignored.lines())
    )


def test_the_cli_names_the_winner_it_routed_by(store: Store) -> None:
    if store.dialect != "duckdb":
        return
    store.flows(split_flow(RULE, holdout=0.0))
    decided_in_production(store, "a")
    enroll(store, "c", 30, "2026-03-01 10:00")
    folder = max(store.folder.glob("flows*"), key=lambda p: int(p.name[5:]))
    store.wh.close()
    args = ["backtest", "cart", "--warehouse", str(store.location.path), "--flows", str(folder),
            "--from", "2026-03-01 00:00", "--to", "2026-03-02 00:00", "--every", "6h"]  # fmt: skip
    result = CliRunner().invoke(cli, args)
    assert result.exit_code == 0, result.output
    assert "production's winner a (decided 2026-02-20 12:00) new entrants routed" in result.output
    result = CliRunner().invoke(cli, [*args, "--ignore-winners"])
    assert result.exit_code == 0, result.output
    assert "ignored (--ignore-winners): the split ran on its weights" in result.output
    store.wh = Warehouse.open(store.location)  # for the fixture to close
