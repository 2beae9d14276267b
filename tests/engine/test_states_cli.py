"""Flow states and removals that need intent, end to end through the CLI (``tick``, ``plan``,
``apply``) on the scenario store, DuckDB and PostgreSQL (``--no-build --no-send``: the store's
relations are the models)."""

from __future__ import annotations

import json
from pathlib import Path

from click.testing import CliRunner, Result
from harness import EMAIL, Store, flow

from flowhouse.cli import cli
from flowhouse.core.warehouse import Warehouse

STEPS = [
    {"id": "wait_1h", "wait": "1h"},
    {"id": "first", "send": EMAIL},
    {"id": "wait_1d", "wait": "1d"},
    {"id": "second", "send": EMAIL},
]
EDITED = [s for s in STEPS if s["id"] != "wait_1d"]
OTHER = flow("other", [{"id": "hi", "send": EMAIL}], trigger="opted_in")


def cart(steps: list[dict[str, object]] = STEPS, **fields: object) -> str:
    return flow("cart", steps, entry={"reentry": "always"}, **fields)


def run(store: Store, *args: str, flows: Path | None = None) -> Result:
    """``flowhouse ARGS --warehouse <store> --flows <its last flows>``, with the store's own
    connection closed meanwhile (DuckDB opens a file read-only for one process at a time)."""
    where = store.location.url or str(store.location.path)
    folder = flows or store.flows_dir
    store.wh.close()
    try:
        return CliRunner().invoke(cli, [*args, "--warehouse", where, "--flows", str(folder)])
    finally:
        store.wh = Warehouse.open(store.location)


def tick(store: Store, now: str, *extra: str, flows: Path | None = None) -> Result:
    return run(store, "tick", "--now", now, "--no-build", "--no-send", *extra, flows=flows)


def _in_flight(store: Store) -> None:
    """c1 waiting on ``wait_1d`` of cart (through the CLI), then the flow files edited to remove
    that step."""
    store.flows(cart(), OTHER)
    assert tick(store, "2026-03-01T00:00").exit_code == 0
    store.customer("c1")
    store.event("c1", "cart_abandoned", at="2026-03-01 10:00")
    assert tick(store, "2026-03-01T12:00").exit_code == 0
    assert store.enrollment("c1")["step_id"] == "wait_1d"
    store.flows(cart(EDITED), OTHER)


def test_a_tick_that_removes_a_step_in_flight_stops_until_allowed(store: Store) -> None:
    _in_flight(store)
    before = store.snapshot()
    refused = tick(store, "2026-03-01T13:00")
    assert refused.exit_code == 1
    assert refused.output.startswith("Error: the flow files remove flows or steps with enrollments")
    assert "  - step cart.wait_1d: 1 enrollment(s) in flight would exit (step_removed)" in (
        refused.output
    )
    assert "Traceback" not in refused.output
    assert store.snapshot() == before
    allowed = tick(store, "2026-03-01T13:00", "--allow-removals")
    assert allowed.exit_code == 0, allowed.output
    assert store.trail("c1")[-1] == ("wait_1d", "exited", "step_removed", "2026-03-01 13:00")


def test_plan_then_apply_makes_the_reviewed_removal(store: Store, tmp_path: Path) -> None:
    _in_flight(store)
    text = run(store, "plan")
    assert text.exit_code == 0, text.output
    assert "~ cart: changed (version " in text.output
    assert "    - step wait_1d removed: 1 enrollment(s) waiting here will exit (step_removed)" in (
        text.output
    )
    assert text.output.rstrip().endswith("2 flow(s), 1 to change at the next tick")

    md = run(store, "plan", "--format", "markdown")
    assert md.exit_code == 0, md.output
    assert md.output.startswith("### flowhouse plan\n\n**1 of 2 flow(s) change at the next tick.**")
    assert "| ~ | `cart` | changed (version " in md.output
    assert "`- step wait_1d removed: 1 enrollment(s) waiting here will exit (step_removed)`" in (
        md.output
    )
    assert "Unchanged: `other`" in md.output
    assert "> [!WARNING]" in md.output
    assert "> - step cart.wait_1d: 1 enrollment(s) in flight would exit (step_removed)" in (
        md.output
    )
    written = run(store, "plan", "--out", str(tmp_path / "plan.md"))
    assert written.output == f"wrote {tmp_path / 'plan.md'}\n"
    assert (tmp_path / "plan.md").read_text() == md.output

    plan_file = tmp_path / "plan.json"
    assert run(store, "plan", "--out", str(plan_file)).exit_code == 0
    document = json.loads(plan_file.read_text())
    assert document["removals"] == [{"flow": "cart", "step": "wait_1d", "active": 1}]

    applied = run(
        store, "apply", str(plan_file), "--now", "2026-03-01T13:00", "--no-build", "--no-send"
    )
    assert applied.exit_code == 0, applied.output
    assert applied.output.startswith(f"applied {plan_file}\ntick at 2026-03-01 13:00:00")
    assert store.trail("c1")[-1] == ("wait_1d", "exited", "step_removed", "2026-03-01 13:00")
    assert "0 to change" in run(store, "plan").output


def test_apply_refuses_flow_files_changed_since_the_plan(store: Store, tmp_path: Path) -> None:
    _in_flight(store)
    plan_file = tmp_path / "plan.json"
    assert run(store, "plan", "--out", str(plan_file)).exit_code == 0
    (store.flows_dir / "flow_0.yml").write_text(cart(EDITED, priority=5))
    before = store.snapshot()
    applied = run(
        store, "apply", str(plan_file), "--now", "2026-03-01T13:00", "--no-build", "--no-send"
    )
    assert applied.exit_code == 1
    assert "the flow files changed since the plan was made; make a new plan" in applied.output
    assert store.snapshot() == before
    markdown = tmp_path / "plan.md"
    markdown.write_text("### flowhouse plan\n")
    wrong = run(store, "apply", str(markdown), "--now", "2026-03-01T13:00", "--no-build")
    assert wrong.exit_code == 1 and "not a JSON plan" in wrong.output


def test_an_empty_or_missing_flows_folder_is_an_error(store: Store, tmp_path: Path) -> None:
    _in_flight(store)
    empty = tmp_path / "empty"
    empty.mkdir()
    before = store.snapshot()
    for command in (("tick", "--now", "2026-03-01T13:00", "--no-build", "--no-send"), ("plan",)):
        found = run(store, *command, flows=empty)
        assert found.exit_code == 1
        assert (
            f"Error: no flow files in {empty}; a tick never takes an empty folder" in found.output
        )
        missing = run(store, *command, flows=tmp_path / "nope")
        assert missing.exit_code == 1
        assert "Error: no such flows folder" in missing.output
    assert store.snapshot() == before


def test_pause_resume_and_draft_in_the_plan_and_the_tick(store: Store) -> None:
    store.flows(cart(), OTHER)
    assert tick(store, "2026-03-01T00:00").exit_code == 0
    store.customer("c1")
    store.event("c1", "cart_abandoned", at="2026-03-01 10:00")
    assert tick(store, "2026-03-01T10:00").exit_code == 0

    store.flows(cart(state="paused"), OTHER)
    paused = run(store, "plan").output
    assert "| cart: paused\n" in paused
    assert "    new triggers are refused (paused)\n" in paused
    assert "    1 active enrollment(s) hold their steps until it resumes\n" in paused
    assert "1 to change" in paused
    assert tick(store, "2026-03-01T10:30").exit_code == 0
    store.customer("c2")
    store.event("c2", "cart_abandoned", at="2026-03-01 11:00", event_id="refused")
    assert tick(store, "2026-03-01T12:00").exit_code == 0
    assert store.entries("cart")[-1] == ("c2", "refused", "refused", "paused")
    assert store.outbox() == []

    store.flows(cart(), OTHER)
    assert "> cart: resumed\n" in run(store, "plan").output
    assert tick(store, "2026-03-01T12:30").exit_code == 0
    assert store.outbox("c1") == [("first", "email", "queued", None, "2026-03-01 11:00")]

    store.flows(cart(), OTHER, flow("draft_one", [{"id": "hi", "send": EMAIL}], state="draft"))
    drafted = run(store, "plan").output
    assert ". draft_one: draft\n    not deployed (state: draft)\n" in drafted
    assert "0 to change" in drafted
    assert tick(store, "2026-03-01T13:00").exit_code == 0
    assert "draft_one" not in {f["flow_id"] for f in store.rows("flows")}
