"""Rendering beside sending (:mod:`flowhouse.activation.pipeline`): chunks rendered in worker
processes while the previous ones are sent, with every guarantee of the outbox kept.

The chunk size is shrunk so that a handful of messages make several chunks; the fake provider
validates every request and counts duplicates.
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
import time
from collections import Counter
from datetime import datetime
from pathlib import Path
from typing import Any

import harness
import pytest
from click.testing import CliRunner
from harness import EMAIL, SMS, Store, flow, write_templates
from hypothesis import given
from hypothesis import strategies as st
from sending import deploy

from flowhouse.activation import deliver, pipeline
from flowhouse.activation.deliver import Options, SendReport, send_open
from flowhouse.activation.fake.server import FakeProvider
from flowhouse.activation.pipeline import RenderPool, RenderWorkerDied, auto_workers
from flowhouse.activation.providers.sendgrid.destination import substitutions_size
from flowhouse.activation.render import Batch, Rendered, Renderer
from flowhouse.activation.sender import Policy
from flowhouse.cli import cli
from flowhouse.core.paths import FLOWS
from flowhouse.core.warehouse import Warehouse
from flowhouse.flows.load import load_flows

FAST = Policy(base_backoff=0.01, max_wait=2.0, seed=1)
KEYS = {"FLOWHOUSE_SIGNING_KEY": "test-signing-key"}
ROOT = Path(__file__).resolve().parents[2]
#: Divides by zero for one customer only.
PICKY = (
    "<p>Hi {{ customer.first_name }} {{ 1 // (0 if customer.first_name == 'Ann3' else 1) }}</p>"
    '<a href="{{ store.url | with_utm }}">shop</a>'
    '<a href="{{ links.unsubscribe }}">unsubscribe</a> {{ sender.postal_address }}'
)
#: Takes a few milliseconds a message.
SLOW = "{% for i in range(5000) %}{% endfor %}" + PICKY.replace("Ann3", "nobody")


@pytest.fixture(autouse=True)
def templates(monkeypatch: pytest.MonkeyPatch) -> None:
    def write(folder: Path) -> None:
        write_templates(folder)
        (folder / "templates" / "picky.html.j2").write_text(PICKY)
        (folder / "templates" / "slow.html.j2").write_text(SLOW)

    monkeypatch.setattr(harness, "write_templates", write)


@pytest.fixture
def small_chunks(monkeypatch: pytest.MonkeyPatch) -> int:
    monkeypatch.setattr(deliver, "CHUNK", 2)
    return 2


def queue(store: Store, n: int, *sends: dict[str, Any]) -> Path:
    """`n` customers with an abandoned cart at 10:00 and their messages queued; the flows
    folder."""
    steps = [{"id": f"s{i}", "send": s} for i, s in enumerate(sends)]
    folder = deploy(store, flow("cart", steps=steps))
    store.tick("2026-03-01 00:00")
    for i in range(n):
        store.customer(f"c{i}", first_name=f"Ann{i}", phone=f"+1555000{i:04d}", sms_consent=True)
        store.event(f"c{i}", "cart_abandoned", at="2026-03-01 10:00", cart_id=f"k{i}")
    store.tick("2026-03-01 10:00")
    return folder


def send(store: Store, fake: FakeProvider, folder: Path, workers: int, now: str) -> SendReport:
    return send_open(
        store.wh, store.schema, datetime.fromisoformat(now), store.compiled, store.settings,
        folder, Options(provider_url=fake.url, policy=FAST, workers=workers),
    )  # fmt: skip


def claim_order(store: Store) -> list[str]:
    rows = store.wh.query("select message_id from flowhouse.messages order by due_at, message_id")
    return [str(r[0]) for r in rows]


@pytest.mark.parametrize("workers", [0, 1])
def test_a_render_failure_mid_pipeline_fails_its_message_only(
    store: Store, fake: FakeProvider, small_chunks: int, workers: int
) -> None:
    email = {"channel": "email", "template": "picky.html.j2", "subject": "Hi"}
    folder = queue(store, 7, email)
    report = send(store, fake, folder, workers, "2026-03-01 10:01")
    assert (report.outcomes["sent"], report.outcomes["failed"]) == (6, 1), report.describe()
    failed = [m for m in store.rows("messages") if m["status"] == "failed"]
    assert [m["customer_id"] for m in failed] == ["c3"]
    assert failed[0]["failure_reason"] == (
        "render failed: flow cart, step s0, template templates/picky.html.j2 line 1: "
        "integer division or modulo by zero (ZeroDivisionError)"
    )
    assert len(fake.state.messages()) == 6
    assert fake.state.duplicates() == {}


def test_chunks_go_out_in_the_claims_order_each_message_once(
    store: Store, fake: FakeProvider, small_chunks: int
) -> None:
    folder = queue(store, 7, EMAIL, SMS)
    report = send(store, fake, folder, 1, "2026-03-01 10:01")
    assert report.outcomes["sent"] == 14, report.describe()
    order = claim_order(store)
    # each SendGrid request carries one chunk: consecutive messages of the claim's order
    requests: dict[str, list[str]] = {}
    for m in store.rows("messages"):
        if m["provider"] == "sendgrid":
            requests.setdefault(m["provider_message_id"], []).append(m["message_id"])
    emails = [i for i in order if i in {x for ids in requests.values() for x in ids}]
    for ids in requests.values():
        positions = sorted(emails.index(i) for i in ids)
        assert positions == list(range(positions[0], positions[0] + len(ids))), positions
    attempts = Counter(a["message_id"] for a in store.rows("send_attempts"))
    assert set(attempts.values()) == {1} and len(attempts) == 14
    assert fake.state.duplicates() == {}
    again = send(store, fake, folder, 1, "2026-03-01 10:05")
    assert again.claimed == 0
    assert len(fake.state.messages()) == 14


def test_a_worker_that_dies_stops_the_run_and_the_rest_goes_out_once(
    store: Store, fake: FakeProvider, small_chunks: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The first chunk is sent; then the worker is killed: the run stops with a clear error
    after settling what is in flight, its workers gone; the next run sends the rest, once."""
    folder = queue(store, 20, {"channel": "email", "template": "slow.html.j2", "subject": "Hi"})
    real = deliver.rendered
    pools: list[RenderPool] = []
    real_init = RenderPool.__init__

    def keep(self: RenderPool, renderer: Renderer, workers: int) -> None:
        real_init(self, renderer, workers)
        pools.append(self)

    async def then_kill(future: Any) -> Rendered:
        done = await real(future)
        for pid in _worker_pids(pools[0]):
            os.kill(pid, signal.SIGKILL)
        return done

    monkeypatch.setattr(RenderPool, "__init__", keep)
    monkeypatch.setattr(deliver, "rendered", then_kill)
    with pytest.raises(RenderWorkerDied, match="render worker stopped before it answered"):
        send(store, fake, folder, 1, "2026-03-01 10:01")
    statuses = Counter(m["status"] for m in store.rows("messages"))
    assert set(statuses) == {"sent", "claimed"}, statuses
    assert small_chunks <= statuses["sent"] < 20, statuses
    assert not _worker_pids(pools[0])
    monkeypatch.setattr(deliver, "rendered", real)
    again = send(store, fake, folder, 1, "2026-03-01 10:05")
    assert again.outcomes["sent"] == statuses["claimed"], again.describe()
    assert len(fake.state.messages()) == 20
    assert fake.state.duplicates() == {}


def test_a_send_gives_back_the_sigterm_handler_it_found(store: Store, fake: FakeProvider) -> None:
    folder = queue(store, 2, EMAIL)

    def mine(signum: int, frame: Any) -> None:
        raise AssertionError("not called")

    before = signal.signal(signal.SIGTERM, mine)
    try:
        report = send(store, fake, folder, 0, "2026-03-01 10:01")
        assert signal.getsignal(signal.SIGTERM) is mine
    finally:
        signal.signal(signal.SIGTERM, before)
    assert report.outcomes["sent"] == 2, report.describe()


def _worker_pids(pool: RenderPool) -> list[int]:
    executor: Any = pool._executor
    return [p.pid for p in (executor._processes or {}).values() if p.is_alive()]


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT, signal.SIGKILL])
def test_a_stopped_send_ends_its_workers_and_the_next_run_sends_the_rest_once(
    store: Store, fake: FakeProvider, tmp_path: Path, sig: signal.Signals
) -> None:
    """``flowhouse send --workers 1`` stopped mid-run by SIGTERM or Ctrl-C (it says so) or
    killed: its render workers end with it, nothing is lost and nothing goes out twice."""
    if store.wh.dialect != "duckdb":
        pytest.skip("one DuckDB file shared by the test and the sender it stops")
    folder = queue(store, 40, SMS)
    store.close()
    # slow enough that the stop lands mid-run on a busy machine (at 150 ms all 40 could go out
    # before it did)
    fake.set_failures(latency_ms=500)
    proc = _cli_send(store, folder, fake, "--workers", "1")
    children = _wait_for_children(proc.pid)
    _wait_until_sent(fake, 1)
    proc.send_signal(sig)
    out, err = proc.communicate(timeout=60)
    assert proc.returncode != 0, out + err
    assert "Traceback" not in err, err
    if sig == signal.SIGTERM:
        assert "Error: stopped by SIGTERM" in err, err
    _wait_gone(children)
    fake.set_failures(latency_ms=0)
    rerun = _cli_send(store, folder, fake, "--workers", "0")
    out, err = rerun.communicate(timeout=120)
    assert rerun.returncode == 0, out + err
    with Warehouse.open(store.location) as wh:
        found = Counter(str(r[0]) for r in wh.query("select status from flowhouse.messages"))
    assert found == {"sent": 40}, found
    assert len(fake.state.messages()) == 40
    assert fake.state.duplicates() == {}


def _cli_send(store: Store, folder: Path, fake: FakeProvider, *extra: str) -> subprocess.Popen[str]:
    argv = [
        sys.executable, "-m", "flowhouse.cli", "send", "--warehouse", str(store.location.path),
        "--flows", str(folder), "--provider-url", fake.url, "--now", "2026-03-01T10:01:00",
        *extra,
    ]  # fmt: skip
    env = {**os.environ, **KEYS, "PYTHONPATH": str(ROOT)}
    return subprocess.Popen(
        argv, cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )


def _wait_for_children(pid: int) -> list[int]:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        found = Path(f"/proc/{pid}/task/{pid}/children").read_text().split()
        if found:
            return [int(p) for p in found]
        time.sleep(0.05)
    raise AssertionError("the sender started no render worker")


def _wait_until_sent(fake: FakeProvider, n: int) -> None:
    deadline = time.monotonic() + 60
    while len(fake.state.messages()) < n:
        assert time.monotonic() < deadline, "nothing reached the fake provider"
        time.sleep(0.02)


def _wait_gone(pids: list[int]) -> None:
    """The processes end within seconds (they may still be exiting when their parent is)."""
    deadline = time.monotonic() + 10
    while not all(_gone(pid) for pid in pids):
        assert time.monotonic() < deadline, [p for p in pids if not _gone(p)]
        time.sleep(0.05)


def _gone(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except FileNotFoundError:
        return True
    return state == "Z"


# -- the pieces ---------------------------------------------------------------------------------


def test_a_pool_renders_in_its_workers_and_stops_them(tmp_path: Path) -> None:
    flows, settings = load_flows(FLOWS)
    renderer = Renderer({f.id: f for f in flows}, settings, FLOWS, "key", _once={"catalog": {}})
    pool = RenderPool(renderer, 1)
    try:
        done = _run(pool, Batch([], {}, {}))
        assert done == Rendered()
        assert len(_worker_pids(pool)) == 1
    finally:
        pool.close(stop=True)
    assert not _worker_pids(pool)


def test_a_dead_worker_is_a_clear_error() -> None:
    flows, settings = load_flows(FLOWS)
    renderer = Renderer({f.id: f for f in flows}, settings, FLOWS, "key", _once={"catalog": {}})
    pool = RenderPool(renderer, 1)
    try:
        _run(pool, Batch([], {}, {}))
        for pid in _worker_pids(pool):
            os.kill(pid, signal.SIGKILL)
        time.sleep(0.5)
        with pytest.raises(RenderWorkerDied, match="go back to the queue at the next run"):
            _run(pool, Batch([], {}, {}))
    finally:
        pool.close(stop=True)


def _run(pool: RenderPool, batch: Batch) -> Rendered:
    async def go() -> Rendered:
        return await pipeline.rendered(pool.submit(batch))

    return asyncio.run(go())


@pytest.mark.parametrize(
    ("due", "cpus", "workers"),
    [
        (0, 8, 0),
        (1999, 8, 0),
        (2000, 1, 0),
        (2000, 2, 0),
        (2000, 3, 1),
        (5000, 4, 2),
        (10**6, 64, 4),
    ],
)
def test_auto_workers_follow_the_volume_and_the_cores(due: int, cpus: int, workers: int) -> None:
    assert auto_workers(due, cpus) == workers


def test_a_split_batch_keeps_only_its_rows_data() -> None:
    rows = [{"message_id": f"m{i}", "customer_id": f"c{i % 2}"} for i in range(5)]
    people = {"c0": {"first_name": "A"}, "c1": {"first_name": "B"}}
    recs: Any = {"m4": {"popular": []}}
    parts = Batch(rows, people, recs).split(2)
    assert [[r["message_id"] for r in p.rows] for p in parts] == [
        ["m0", "m1"],
        ["m2", "m3"],
        ["m4"],
    ]
    assert [sorted(p.people) for p in parts] == [["c0", "c1"], ["c0", "c1"], ["c0"]]
    assert [list(p.recs) for p in parts] == [[], [], ["m4"]]


def test_recommendations_are_read_only_for_templates_that_name_them(tmp_path: Path) -> None:
    """``products`` in a template it extends counts; a template that names neither skips the
    recommendation queries."""
    templates = tmp_path / "templates"
    templates.mkdir()
    (templates / "base.html.j2").write_text("{% for p in products %}{{ p.name }}{% endfor %}")
    (templates / "child.html.j2").write_text('{% extends "base.html.j2" %}')
    (templates / "plain.html.j2").write_text("Hi {{ customer.first_name }}")
    flows, settings = load_flows(FLOWS)
    renderer = Renderer({f.id: f for f in flows}, settings, tmp_path, "key")

    def row(template: str, subject: str = "Hi", step: str = "vip_greeting") -> dict[str, Any]:
        return {"kind": "message", "flow_id": "birthday", "step_id": step,
                "template": template, "subject": subject, "preheader": None}  # fmt: skip

    assert renderer.uses_recommendations(row("child.html.j2"))
    assert not renderer.uses_recommendations(row("plain.html.j2"))
    assert renderer.uses_recommendations(row("plain.html.j2", "{{ products[0].name }}"))
    assert renderer.uses_recommendations(row("missing.html.j2"))
    assert renderer.uses_recommendations(row("plain.html.j2", step="no_such_step"))
    # a push title, a deep link or a WhatsApp variable rendered like a subject counts too
    spec = renderer.step("birthday", "vip_greeting").message
    for named in (
        {"title": "{{ products[0].name }}"},
        {"deep_link": "app://p/{{ recommendations.trending[0].sku }}"},
        {"content_variables": {"1": "{{ products | length }}"}},
    ):
        other = Renderer({f.id: f for f in flows}, settings, tmp_path, "key")
        other.messages[("birthday", "vip_greeting")] = spec.model_copy(update=named)
        assert other.uses_recommendations(row("plain.html.j2")), named


@given(st.dictionaries(st.text(max_size=8), st.text(max_size=80), max_size=4))
def test_substitutions_are_measured_as_their_json(subs: dict[str, str]) -> None:
    text = json.dumps(subs, ensure_ascii=False, separators=(",", ":"))
    try:
        expected = len(text.encode())
    except UnicodeEncodeError:  # a lone surrogate: neither can measure it
        return
    assert substitutions_size(subs) == expected


def test_the_send_command_takes_workers(tmp_path: Path) -> None:
    result = CliRunner().invoke(cli, ["send", "--help"])
    assert "--workers N" in result.output
    bad = CliRunner().invoke(cli, ["send", "--warehouse", "x", "--workers", "-1"])
    assert bad.exit_code == 2 and "--workers" in bad.output
