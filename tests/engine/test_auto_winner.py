"""Automatic winners of splits (issue 18, item 4): the rule is judged by the tick on the engine's
own state, the decision is journaled once and is final, new entrants go to the winner while the
holdout arm and the flow's holdout keep their shares, and earlier enrollments keep their arm."""

from __future__ import annotations

import json
import re
from datetime import datetime
from pathlib import Path

import pytest
from click.testing import CliRunner
from harness import NEUTRAL_SETTINGS, Store, flow, write_templates

from flowhouse.cli import cli
from flowhouse.orchestration.engine.tick import TickResult
from flowhouse.preview import simulate, trigger_event
from flowhouse.report.data import Reader
from flowhouse.report.page import render_page

SEND = "{channel: email, template: t.html.j2}"


def split_flow(rule: str, holdout: float = 0.2, b_send: str = SEND, b_weight: int = 1) -> str:
    steps = f"""
- id: subject
  split:
    - {{name: a, weight: 1, steps: [{{id: send_a, send: {SEND}}}]}}
    - {{name: b, weight: {b_weight}, steps: [{{id: send_b, send: {b_send}}}]}}
    - {{name: h, weight: 1, steps: []}}
  auto_winner: {rule}
- id: after
  wait: 1d
"""
    return flow("cart", steps, holdout=holdout)


RULE = "{metric: click_rate, min_sample: 15, confidence: 0.95}"


def enroll(store: Store, prefix: str, n: int, at: str) -> list[str]:
    customers = [f"{prefix}{i:03d}" for i in range(n)]
    for c in customers:
        store.customer(c)
        store.event(c, "cart_abandoned", at=at, event_id=f"t_{c}")
    return customers


def sent_out(store: Store) -> None:
    """Activation sent every queued message."""
    store.wh.execute(f"update {store.schema}.messages set status = 'sent' where status = 'queued'")
    store.wh.commit()


def click(store: Store, step_id: str, at: str, share: int = 1) -> None:
    """Clicks on every ``share``-th message sent by ``step_id``."""
    sent = [m for m in store.messages() if m["step_id"] == step_id and m["status"] == "sent"]
    for m in sent[::share]:
        store.event(m["customer_id"], "message_clicked", at=at, message_id=m["message_id"],
                    channel="email")  # fmt: skip


def test_new_entrants_go_to_the_winner_once_the_rule_is_met(store: Store) -> None:
    store.flows(split_flow(RULE))
    store.tick("2026-03-01 00:00")
    first = enroll(store, "c", 150, "2026-03-01 10:00")
    store.tick("2026-03-01 10:00")
    sent_out(store)
    before = {e["customer_id"]: e["variant"] for e in store.enrollments()}
    assert set(before.values()) == {"a", "b", "h"}
    # no clicks yet: every arm at 0, nothing to decide
    store.tick("2026-03-01 10:30")
    assert store.rows("split_winners") == []
    click(store, "send_b", "2026-03-01 11:00")
    click(store, "send_a", "2026-03-01 11:00", share=8)
    store.tick("2026-03-01 12:00")

    [won] = store.rows("split_winners")
    assert (won["flow_id"], won["step_id"], won["winner"], won["metric"]) == (
        "cart", "subject", "b", "click_rate")  # fmt: skip
    assert str(won["decided_at"]) == "2026-03-01 12:00:00" and won["p_value"] < 0.05
    figures = {f["arm"]: f for f in json.loads(won["figures"])}
    assert set(figures) == {"a", "b"}  # the holdout arm is no candidate
    treated = {a: sum(1 for e in store.enrollments() if e["variant"] == a and not e["is_holdout"])
               for a in ("a", "b")}  # fmt: skip
    assert {a: f["units"] for a, f in figures.items()} == treated  # held-out ones not counted
    assert figures["b"]["rate"] == 1.0 and (won["units"], won["successes"]) == (
        treated["b"], treated["b"])  # fmt: skip

    later = enroll(store, "d", 150, "2026-03-01 13:00")
    store.tick("2026-03-01 13:00")
    snapshot = store.snapshot()
    now = {e["customer_id"]: e for e in store.enrollments()}
    assert {c: now[c]["variant"] for c in first} == before  # existing enrollments keep their arm
    arms = [now[c]["variant"] for c in later]
    assert set(arms) == {"b", "h"}  # nobody new in a; the holdout arm keeps its third
    assert 30 <= arms.count("h") <= 70
    held = sum(1 for c in later if now[c]["is_holdout"])
    assert 15 <= held <= 45  # the flow's 20% holdout stays as configured
    # a rerun of the tick changes nothing, and later figures never flip the decision
    store.tick("2026-03-01 13:00")
    assert store.snapshot() == snapshot
    sent_out(store)
    click(store, "send_a", "2026-03-01 14:00")
    store.tick("2026-03-01 15:00")
    assert [w["winner"] for w in store.rows("split_winners")] == ["b"]
    # a preview routes a new trigger as the tick will: someone hashed to a now goes to b
    moved = next(c for c in first if before[c] == "a")
    event = trigger_event(store.wh, store.compiled[0], moved, f"t_{moved}")
    path = simulate(store.wh, store.compiled[0], store.settings, moved, event)
    [taken] = [d.reason for e in path.status.enrollments for d in e.decisions
               if d.step_id == "subject"]  # fmt: skip
    assert taken == "b"
    # the report's section of the split says so: the winner, when, on what figures
    text = page(store)
    a, b = figures["a"], figures["b"]
    assert (
        "Winner: b, decided automatically on 2026-03-01 12:00 UTC on click rate "
        f"(a {a['successes'] / a['units'] * 100:.1f}% of {a['units']}; b 100.0% of {b['units']}; "
        "the winner ahead of every other arm, p &lt; 0.001). Rule: click rate, at least 15 "
        "messages sent per arm, 95% confidence."
    ) in text, text


def page(store: Store) -> str:
    data = Reader(store.wh, store.schema).read(datetime(2026, 3, 2))
    return " ".join(render_page(data).split())


def test_the_rule_waits_for_the_minimum_sample(store: Store) -> None:
    store.flows(split_flow("{metric: click_rate, min_sample: 500, confidence: 0.95}", holdout=0))
    store.tick("2026-03-01 00:00")
    enroll(store, "c", 60, "2026-03-01 10:00")
    store.tick("2026-03-01 10:00")
    sent_out(store)
    click(store, "send_b", "2026-03-01 11:00")
    store.tick("2026-03-01 12:00")
    assert store.rows("split_winners") == []
    assert (
        "Automatic winner: not decided yet (rule: click rate, at least 500 messages sent per "
        "arm, 95% confidence)."
    ) in page(store)


def test_goal_metric_counts_conversions_after_the_split(store: Store) -> None:
    store.flows(split_flow("{min_sample: 15, confidence: 0.9}", holdout=0))
    store.tick("2026-03-01 00:00")
    enroll(store, "c", 120, "2026-03-01 10:00")
    store.tick("2026-03-01 10:00")
    for e in store.enrollments():
        if e["variant"] == "a":
            store.event(e["customer_id"], "order_placed", at="2026-03-02 09:00", order_id="o")
    store.tick("2026-03-02 12:00")
    [won] = store.rows("split_winners")
    assert (won["winner"], won["metric"], won["rate"]) == ("a", "goal", 1.0)


BAD = [
    ("{metric: ctr, min_sample: 10, confidence: 0.9}", "auto_winner.metric", "'goal', 'open_rate' or 'click_rate'"),
    ("{min_sample: 10, confidence: 1}", "auto_winner.confidence", "less than 1"),
    ("{min_sample: 10, confidence: 0}", "auto_winner.confidence", "greater than 0"),
    ("{min_sample: 0, confidence: 0.9}", "auto_winner.min_sample", "greater than or equal to 1"),
]  # fmt: skip


@pytest.mark.parametrize(("rule", "field", "words"), BAD)
def test_a_bad_rule_is_a_located_error(tmp_path: Path, rule: str, field: str, words: str) -> None:
    text = split_flow(rule)
    (tmp_path / "cart.yml").write_text(text)
    result = CliRunner().invoke(cli, ["validate", str(tmp_path)])
    assert result.exit_code == 1
    lines = text.splitlines()
    start = next(i for i, line in enumerate(lines) if "auto_winner" in line)
    key = field.rsplit(".", 1)[1]
    line = next(i for i, text in enumerate(lines) if i >= start and f"{key}:" in text) + 1
    assert f"cart.yml:{line}: steps.0.{field}: " in result.output, result.output
    assert words in result.output


def test_an_arm_that_cannot_be_measured_or_no_candidates_are_errors(tmp_path: Path) -> None:
    sms = "{channel: sms, template: t.txt.j2}"
    rule = "{metric: open_rate, min_sample: 10, confidence: 0.9}"
    (tmp_path / "_settings.yml").write_text(NEUTRAL_SETTINGS)
    write_templates(tmp_path)
    (tmp_path / "cart.yml").write_text(split_flow(rule, b_send=sms))
    out = CliRunner().invoke(cli, ["validate", str(tmp_path)]).output
    assert re.search(r"cart\.yml:\d+: steps\.0\.split\.1\.steps: arm b sends no email "
                     r"message: its open rate cannot be measured \(got 'b'\)", out), out  # fmt: skip
    assert "1 problem(s)" in out
    (tmp_path / "cart.yml").write_text(split_flow("{min_sample: 10, confidence: 0.9}", b_weight=0))
    out = CliRunner().invoke(cli, ["validate", str(tmp_path)]).output
    assert "steps.0.auto_winner: an automatic winner needs two arms to choose from" in out, out


def test_the_tick_says_when_it_decided_a_winner() -> None:
    result = TickResult(datetime(2026, 3, 1, 12), 0.1, {"winners": 1})
    assert "1 split winner(s) decided: see flowhouse.split_winners" in result.describe()
    assert "winner" not in TickResult(datetime(2026, 3, 1, 12), 0.1, {}).describe()


def counted(store: Store) -> dict[tuple[str, str], tuple[bool, str, str]]:
    """The kept units: (split, unit) -> (success, arm, metric)."""
    return {(u["step_id"], u["unit_id"]): (bool(u["success"]), u["arm"], u["metric"])
            for u in store.rows("split_units")}  # fmt: skip


def recounted(store: Store, at: str) -> dict[tuple[str, str], tuple[bool, str, str]]:
    """The units as a tick at ``at`` counts them with nothing kept: from every event."""
    kept = counted(store)
    for table in ("split_units", "split_unit_marks"):
        store.wh.execute(f"delete from {store.schema}.{table}")
    store.wh.commit()
    store.tick(at)
    again = counted(store)
    assert set(again) == set(kept)
    return again


@pytest.mark.parametrize("metric", ["goal", "click_rate"])
def test_the_kept_units_equal_a_count_from_every_event(store: Store, metric: str) -> None:
    """Ticks read the events visible since their last one, and a unit new to them from its own
    start: what they keep equals what a tick counts from every event, through late events,
    events outside the goal window and events that arrive between ticks."""
    store.flows(split_flow(f"{{metric: {metric}, min_sample: 5000, confidence: 0.95}}"))
    store.tick("2026-03-01 00:00")
    first = enroll(store, "c", 40, "2026-03-01 10:00")
    store.tick("2026-03-01 10:00")
    sent_out(store)
    treated = [e for e in store.enrollments() if not e["is_holdout"] and e["variant"] != "h"]
    assert len(treated) >= 20
    people = [e["customer_id"] for e in treated]

    def succeed(customer: str, at: str, loaded: str | None = None) -> None:
        if metric == "goal":
            store.event(customer, "order_placed", at=at, loaded=loaded, order_id=f"o_{customer}")
            return
        [m] = [m for m in store.messages() if m["customer_id"] == customer]
        store.event(customer, "message_clicked", at=at, loaded=loaded,
                    message_id=m["message_id"], channel="email")  # fmt: skip

    for customer in people[:5]:
        succeed(customer, "2026-03-01 11:00")
    succeed(people[5], "2026-03-01 11:30", loaded="2026-03-01 13:00")  # late: seen at 14:00
    if metric == "goal":  # before the split, and after the goal window: no conversion
        store.event(people[6], "order_placed", at="2026-03-01 09:00", order_id="early")
        store.event(people[7], "order_placed", at="2026-03-07 11:00", loaded="2026-03-01 12:30",
                    order_id="past the window")  # fmt: skip
    store.tick("2026-03-01 12:00")
    at_noon = counted(store)
    assert sum(s for s, _, _ in at_noon.values()) == 5
    store.tick("2026-03-01 14:00")
    later = enroll(store, "d", 10, "2026-03-01 15:00")  # units new to a later tick
    store.tick("2026-03-01 15:00")
    sent_out(store)
    fresh = [e["customer_id"] for e in store.enrollments()
             if e["customer_id"] in later and not e["is_holdout"] and e["variant"] != "h"]  # fmt: skip
    for customer in fresh[:2]:
        succeed(customer, "2026-03-01 15:30")
    store.tick("2026-03-01 16:00")
    kept = counted(store)
    successes = {unit for unit, (s, _, _) in kept.items() if s}
    assert len(successes) == 6 + min(2, len(fresh)), kept
    assert {m for _, _, m in kept.values()} == {metric}
    assert recounted(store, "2026-03-01 16:00") == kept
    assert len(first) == 40


def test_a_changed_goal_counts_its_units_again(store: Store) -> None:
    rule = "{metric: goal, min_sample: 5000, confidence: 0.95}"
    store.flows(split_flow(rule))
    store.tick("2026-03-01 00:00")
    enroll(store, "c", 30, "2026-03-01 10:00")
    store.tick("2026-03-01 10:00")
    treated = [(e["customer_id"], e["enrollment_id"]) for e in store.enrollments()
               if e["variant"] in ("a", "b") and not e["is_holdout"]]  # fmt: skip
    (buyer, bought), (reader, read) = treated[:2]
    store.event(buyer, "order_placed", at="2026-03-01 11:00", order_id="o")
    store.event(reader, "checkout_started", at="2026-03-01 11:00")
    store.tick("2026-03-01 12:00")
    assert {u for u, (s, _, _) in counted(store).items() if s} == {("subject", bought)}
    store.flows(
        split_flow(rule).replace("holdout: 0.2", "holdout: 0.2\ngoal: {event: checkout_started}")
    )
    store.tick("2026-03-01 13:00")
    assert {u for u, (s, _, _) in counted(store).items() if s} == {("subject", read)}
    [mark] = store.rows("split_unit_marks")
    assert mark["rule_key"] == "goal:checkout_started:432000"
