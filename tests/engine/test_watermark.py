"""No trigger is lost, whatever the cadence of ticks and model refreshes (with the real dbt).

A derived event (``cart_abandoned``) carries its decision moment as ``loaded_at`` but appears in
``core.events`` only at the next refresh. Ticks with ``--no-build`` in between must not move the
engine's watermark past it: the engine reads ``visible_at`` (when the row became visible: a raw
event's ``loaded_at``, the ``now`` of the build that materialised a derived one), so the first
tick after the refresh enrolls it, or refuses it with a recorded reason.

The property: any interleaving of ticks with and without refresh (the last one refreshing) gives
the enrollments, decisions and messages that refreshing at every tick gives, when nothing comes
due later than the flow's ``max_lateness`` allows (DESIGN: due times do not depend on when or how
often ticks run; staleness does, by design).
"""

from __future__ import annotations

import json
import shutil
from collections.abc import Iterator, Sequence
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest
from harness import EMAIL, Store, flow
from hypothesis import HealthCheck, Phase, example, given, settings
from hypothesis import strategies as st

from flowhouse.core.clock import utc
from flowhouse.core.errors import ConfigError
from flowhouse.core.paths import FLOWS
from flowhouse.core.project import Project, using
from flowhouse.core.warehouse import Location, Warehouse
from flowhouse.load import load_file
from flowhouse.orchestration.engine.tick import tick

FLOW = """\
flow: {flow_id}
name: Cart reminder
trigger: {{event: cart_abandoned}}
holdout: 0
max_lateness: {lateness}
entry: {{reentry: always, concurrent: true}}
steps:
  - id: remind
    send: {{channel: email, template: cart/reminder.html.j2, subject: Your cart}}
"""
SETTINGS = "store: {name: Test, timezone: UTC, postal_address: 1 Main St}\nsmart_sending: {}\n"


def _flows(folder: Path, **lateness: str) -> Path:
    folder.mkdir()
    shutil.copytree(FLOWS / "templates", folder / "templates")
    (folder / "_settings.yml").write_text(SETTINGS)
    for flow_id, late in lateness.items():
        (folder / f"{flow_id}.yml").write_text(FLOW.format(flow_id=flow_id, lateness=late))
    return folder


def _load(location: Location, folder: Path, customers: int, carts: Sequence[str]) -> None:
    """`customers` customers; cart ``k<i>`` of customer ``c<i % customers>`` gets one item at
    ``carts[i]`` (loaded when it happened), so it is abandoned an hour later."""
    people = [
        {"customer_id": f"c{i}", "email": f"c{i}@example.com", "email_opt_in": True,
         "created_at": "2026-08-01 00:00:00", "updated_at": "2026-08-01 00:00:00"}
        for i in range(customers)
    ]  # fmt: skip
    events = [
        {"event_id": f"e{i}", "customer_id": f"c{i % customers}", "event_type": "added_to_cart",
         "occurred_at": at, "loaded_at": at,
         "properties": {"cart_id": f"k{i}", "sku": "s1", "quantity": 1, "price": 20}}
        for i, at in enumerate(carts)
    ]  # fmt: skip
    for name, rows in (("customers", people), ("events", events)):
        path = folder / f"{name}.jsonl"
        path.write_text("".join(json.dumps(r) + "\n" for r in rows))
        load_file(location, name, path, now=datetime(2026, 9, 2))


def _at(text: str) -> datetime:
    return utc(datetime.fromisoformat(text))


@pytest.fixture(params=["duckdb", pytest.param("postgres", marks=pytest.mark.postgres)])
def location(request: pytest.FixtureRequest, tmp_path: Path) -> Location:
    if request.param == "postgres":
        return Location.parse(str(request.getfixturevalue("pg_url")))
    return Location.parse(str(tmp_path / "store.duckdb"))


def _outcomes(location: Location) -> dict[str, list[tuple[Any, ...]]]:
    """What the engine decided, without the tick-time bookkeeping (when it was decided)."""
    queries = {
        "enrollments": "select flow_id, customer_id, trigger_event_id, entered_at, status, "
        "end_reason from flowhouse.enrollments",
        "decisions": "select flow_id, customer_id, step_id, effective_at, outcome, reason, "
        "detail from flowhouse.decisions",
        "messages": "select message_id, flow_id, customer_id, step_id, due_at, status, "
        "skip_reason from flowhouse.messages",
    }
    with Warehouse.open(location) as wh:
        return {k: sorted(wh.query(q), key=repr) for k, q in queries.items()}


def test_the_window_is_when_a_row_became_visible(store: Store) -> None:
    """The engine alone (plain tables): a derived event decided at 11:00 and materialised by the
    refresh at 13:00 is considered by the 13:00 tick, after ticks at 11:15 and 12:00 ran without
    it; one decided before the flow went live is refused ``before_live``, journaled."""
    store.customer("c1")
    store.customer("c2")
    store.flows(flow("cart", [{"id": "remind", "send": EMAIL}]))
    store.tick("2026-09-01 10:30")
    early = store.event("c2", "cart_abandoned", at="2026-09-01 10:00", visible="2026-09-01 13:00")
    late = store.event("c1", "cart_abandoned", at="2026-09-01 11:00", visible="2026-09-01 13:00")
    store.tick("2026-09-01 11:15")
    store.tick("2026-09-01 12:00")
    assert store.rows("enrollments") == [] and store.rows("decisions") == []
    store.tick("2026-09-01 13:00")
    [enrolled] = store.rows("enrollments")
    assert (enrolled["trigger_event_id"], enrolled["entered_at"]) == (
        late,
        datetime(2026, 9, 1, 11, 0),
    )
    refused = [d for d in store.rows("decisions") if d["outcome"] == "refused"]
    assert [(d["detail"], d["reason"]) for d in refused] == [(early, "before_live")]


def test_events_built_by_an_earlier_version_are_a_clear_error(store: Store) -> None:
    """A ``--no-build`` tick right after an upgrade meets ``core.events`` without ``visible_at``:
    it stops with what to do, not a SQL error, and decides nothing."""
    store.customer("c1")
    store.flows(flow("cart", [{"id": "remind", "send": EMAIL}]))
    store.wh.execute("alter table core.events drop column visible_at")
    with pytest.raises(ConfigError, match=r"core\.events was built by an earlier version"):
        store.tick("2026-09-01 10:30")
    assert store.rows("decisions") == []


@pytest.mark.slow
def test_a_derived_trigger_due_between_refreshes_is_enrolled_at_the_next_one(
    location: Location, tmp_path: Path
) -> None:
    """c0's cart is abandoned at 11:00; ticks at 11:15 and 12:00 run without a refresh; the
    refresh at 13:00 materialises the event. ``cart`` enrolls it and queues the reminder;
    ``strict`` (max_lateness 1h) enrolls it too and journals the reminder as stale."""
    flows = _flows(tmp_path / "flows", cart="24h", strict="1h")
    _load(location, tmp_path, customers=1, carts=["2026-09-01 10:00:00"])
    tick(location, flows, now=_at("2026-09-01 10:30:00"))
    tick(location, flows, now=_at("2026-09-01 11:15:00"), build=False)
    tick(location, flows, now=_at("2026-09-01 12:00:00"), build=False)
    with Warehouse.open(location) as wh:
        assert wh.scalar("select count(*) from flowhouse.enrollments") == 0
    tick(location, flows, now=_at("2026-09-01 13:00:00"))

    found = _outcomes(location)
    assert [(f, c, entered, status) for f, c, _, entered, status, _ in found["enrollments"]] == [
        ("cart", "c0", datetime(2026, 9, 1, 11, 0), "completed"),
        ("strict", "c0", datetime(2026, 9, 1, 11, 0), "completed"),
    ]
    assert [(m[1], m[5], m[6]) for m in found["messages"]] == [
        ("cart", "queued", None),
        ("strict", "skipped", "stale"),
    ]


#: Tick times of the property: carts come due between them, some exactly at a tick.
TIMES = ["2026-09-01 10:30", "2026-09-01 11:00", "2026-09-01 11:40", "2026-09-01 13:10",
         "2026-09-01 14:30"]  # fmt: skip
CARTS = ["2026-09-01 09:20:00", "2026-09-01 10:00:00", "2026-09-01 10:20:00",
         "2026-09-01 11:30:00", "2026-09-01 12:15:00"]  # fmt: skip


class Cadences:
    """Runs cadences of ticks (True: with the refresh) over one store on DuckDB, keeping the
    warehouse file after every prefix of ticks run so far: a cadence starts from a copy of the
    longest prefix it shares with one already run (the same data, flows and nows: the same
    warehouse) and runs the rest of its ticks, each with the real dbt when it refreshes. So the
    first tick, which always refreshes (the initial build), runs once per module."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self.flows = _flows(folder / "flows", cart="7d")
        loaded = folder / "loaded.duckdb"
        _load(Location.parse(str(loaded)), folder, customers=2, carts=CARTS)
        self.kept: dict[tuple[bool, ...], Path] = {(): loaded}
        self.runs = 0

    def run(self, refresh: Sequence[bool]) -> dict[str, Any]:
        cadence = tuple(refresh)
        start = max((p for p in self.kept if cadence[: len(p)] == p), key=len)
        self.runs += 1
        work = self.folder / f"run{self.runs}.duckdb"
        _copy(self.kept[start], work)
        location = Location.parse(str(work))
        for done in range(len(start), len(cadence)):
            tick(location, self.flows, now=_at(f"{TIMES[done]}:00"), build=cadence[done])
            prefix = cadence[: done + 1]
            self.kept[prefix] = self.folder / ("after-" + "".join("rn"[not b] for b in prefix))
            _copy(work, self.kept[prefix])
        return _outcomes(location)


def _copy(source: Path, target: Path) -> None:
    """A closed DuckDB warehouse file, with its write-ahead log when it has one."""
    shutil.copyfile(source, target)
    log = source.with_name(source.name + ".wal")
    if log.exists():
        shutil.copyfile(log, target.with_name(target.name + ".wal"))


@pytest.fixture(scope="module")
def cadences(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cadences]:
    with using(Project.example()):
        yield Cadences(tmp_path_factory.mktemp("cadences"))


@pytest.fixture(scope="module")
def every_tick(cadences: Cadences) -> dict[str, Any]:
    """The outcomes when every tick refreshes the models."""
    with using(Project.example()):
        return cadences.run([True] * len(TIMES))


@pytest.mark.slow
@settings(
    max_examples=5,
    deadline=None,
    phases=[Phase.explicit, Phase.generate],  # each example builds the models: no shrinking
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(middle=st.lists(st.booleans(), min_size=len(TIMES) - 2, max_size=len(TIMES) - 2))
@example(middle=[False] * (len(TIMES) - 2))  # one refresh at the end: every cart waits for it
def test_any_cadence_of_refreshes_gives_what_refreshing_every_tick_gives(
    cadences: Cadences, every_tick: dict[str, Any], middle: list[bool]
) -> None:
    found = cadences.run([True, *middle, True])
    # the first cart is abandoned before the first tick, whose refresh shows it as the flow goes
    # live (triggers from before are not a new flow's business); the other four enroll
    assert len(every_tick["enrollments"]) == len(CARTS) - 1
    assert len(every_tick["messages"]) == len(CARTS) - 1
    assert found == every_tick
