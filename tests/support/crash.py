"""Crash injection: ``flowhouse tick``, ``send`` and ``sync`` killed with SIGKILL at random moments
against the fake provider with injected failures, rerun, and checked for loss, duplicates and
half-done work.

    python tests/support/crash.py                                # 100 trials on DuckDB
    python tests/support/crash.py --trials 20 --seed 7
    python tests/support/crash.py --postgres postgresql://u:p@host/db   # fresh databases there
    python tests/support/crash.py --postgres URL --concurrent          # two senders, two ticks

The commands run as real processes (``python -m flowhouse.cli``); the fake provider is a real HTTP
server (in a thread of this process, so that what it received can be read). One trial, drawn from
its seed (the same seed draws the same store, failures and kill points):

1. a store of ``--customers`` customers who abandoned a cart: one flow sends an e-mail at once and,
   an hour later, two SMS with the same text (told apart by nothing but their order); a third of
   the customers are in a segment mirrored to a Klaviyo list by a sync;
2. the 10:00 tick (``--no-send``) is killed at a random moment and run again; its state tables
   must equal those of an uninterrupted tick on a twin store (all-or-nothing);
3. ``send`` is killed 1 to 3 times, each time at a random moment after the provider accepted a few
   more messages, with the provider failing some requests (429, 500, time-outs answered 504) in
   half of the trials and answering slowly;
4. the 11:01 tick (which queues the SMS and sends them) is killed likewise and run again; its
   enrollments, decisions and queued messages must equal the twin's;
5. ``sync`` is killed likewise and run again;
6. with failures off, a last ``send`` and ``sync`` finish.

Checks: the provider received no message twice (duplicates); every due message ended ``sent``
with the provider's id and was received, or ``skipped``, ``failed`` or ``unconfirmed`` with a
reason, and every message received is a row marked sent or unconfirmed (anything else is lost);
the ticks were all-or-nothing; the sync's destination equals its source (converged).

With ``--concurrent`` (meant for PostgreSQL, where writers run side by side): each send is two
senders at once (``--bucket 0/2`` and ``--bucket 1/2``), each killed at its own random moment, and
each tick is two ticks at once (the tick lock lets one run; the other stops with "another flowhouse
run holds the lock" or runs after it), one of them killed.
"""

from __future__ import annotations

import argparse
import os
import random
import shlex
import signal
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlparse, urlunparse

import psycopg2

ROOT = Path(__file__).resolve().parents[2]
# Run as a script, this folder comes first on the path; the project and the test helpers must.
for _folder in (ROOT, ROOT / "tests" / "engine", ROOT / "tests" / "activation"):
    if str(_folder) not in sys.path:
        sys.path.insert(0, str(_folder))

from harness import EMAIL, SMS, flow  # noqa: E402
from sending import Store, deploy, sending_store  # noqa: E402

from flowhouse.activation.fake.failures import Failures  # noqa: E402
from flowhouse.activation.fake.server import FakeProvider, running  # noqa: E402
from flowhouse.activation.fake.settings import FakeSettings  # noqa: E402
from flowhouse.activation.sync.compare import in_sync  # noqa: E402
from flowhouse.core.state import TABLES  # noqa: E402
from flowhouse.core.warehouse import Location, Warehouse  # noqa: E402
from flowhouse.flows.sync.files import load_syncs  # noqa: E402

DEPLOY = "2026-03-01 00:00"
EVENTS = "2026-03-01 10:00"
FIRST_TICK = "2026-03-01 10:00"
FIRST_SEND = "2026-03-01 10:01"
SECOND_TICK = "2026-03-01 11:01"
LAST_SEND = "2026-03-01 11:30"
SYNC_AT = "2026-03-01 12:00"
SYNC_NAME = "vip_to_klaviyo"

FLOW = flow(
    "cart",
    steps=[
        {"id": "mail", "send": EMAIL},
        {"id": "hour", "wait": "1h"},
        {"id": "text_a", "send": SMS},
        {"id": "text_b", "send": SMS},
    ],
)
SYNC = f"""
sync: {SYNC_NAME}
name: VIP customers in Klaviyo
source: {{segment: vip}}
fields: {{email: email, first_name: first_name}}
destination: {{klaviyo: {{list_id: L1}}}}
mode: mirror
"""

#: Columns that differ between two runs of the same tick by nature (wall-clock times, run ids).
VOLATILE = {"updated_at", "claim_id", "claimed_at", "in_flight_at", "sent_at", "tick_id"}
#: Tables an uninterrupted tick and a killed-and-rerun one must leave equal.
TICK_TABLES = ("enrollments", "decisions", "messages")
#: Where a message may end (with a reason where it did not go out).
FINAL = {"sent", "delivered", "bounced", "skipped", "failed", "unconfirmed"}
#: Where a message that went out ends.
SENT = ("sent", "delivered", "bounced")


@dataclass
class Result:
    """What one trial (or all of them, added up) found."""

    trials: int = 0
    kills: int = 0
    messages: int = 0
    received: int = 0
    duplicates: int = 0
    lost: int = 0
    unconfirmed: int = 0
    tick_mismatches: int = 0
    diverged_syncs: int = 0
    seconds: float = 0.0
    problems: list[str] = field(default_factory=list)

    def add(self, other: Result) -> None:
        for name in ("trials", "kills", "messages", "received", "duplicates", "lost"):
            setattr(self, name, getattr(self, name) + getattr(other, name))
        self.unconfirmed += other.unconfirmed
        self.tick_mismatches += other.tick_mismatches
        self.diverged_syncs += other.diverged_syncs
        self.seconds += other.seconds
        self.problems += other.problems

    @property
    def ok(self) -> bool:
        return not (self.duplicates or self.lost or self.tick_mismatches or self.problems)

    def describe(self) -> str:
        return (
            f"{self.trials} trials, {self.kills} kills, {self.messages} messages due, "
            f"{self.received} received by the provider: {self.duplicates} duplicates, "
            f"{self.lost} lost, {self.unconfirmed} unconfirmed (with a reason), "
            f"{self.tick_mismatches} ticks not all-or-nothing, {self.diverged_syncs} syncs "
            f"not converged, in {self.seconds:.1f} s"
        )


# -- warehouses ------------------------------------------------------------------------------------


class Warehouses:
    """Fresh warehouses for each trial: DuckDB files in a folder, or databases on a PostgreSQL
    server (dropped afterwards)."""

    def __init__(self, folder: Path, postgres: str | None = None) -> None:
        self.folder = folder
        self.postgres = postgres

    @contextmanager
    def fresh(self, name: str) -> Iterator[Location]:
        if self.postgres is None:
            yield Location.parse(str(self.folder / f"{name}.duckdb"))
            return
        db = f"flowhouse_crash_{uuid.uuid4().hex[:10]}"
        admin = psycopg2.connect(self.postgres)
        admin.autocommit = True
        with admin.cursor() as cur:
            cur.execute(f'create database "{db}"')
        try:
            yield Location.parse(urlunparse(urlparse(self.postgres)._replace(path=f"/{db}")))
        finally:
            with admin.cursor() as cur:
                cur.execute(f'drop database if exists "{db}" with (force)')
            admin.close()


def prepare(location: Location, folder: Path, customers: int, seed: int) -> tuple[Store, Path]:
    """A trial's store, open (its flows deployed, customers and their carts loaded), and its
    flows folder."""
    rng = random.Random(seed)
    store = sending_store(location, folder)
    flows = deploy(store, FLOW)
    (flows / "syncs").mkdir(exist_ok=True)
    (flows / "syncs" / f"{SYNC_NAME}.yml").write_text(SYNC)
    store.tick(DEPLOY)
    for i in range(customers):
        store.customer(f"c{i}", first_name=f"Ann{i}", phone=f"+1555200{i:04d}", sms_consent=True)
        store.event(f"c{i}", "cart_abandoned", at=EVENTS, cart_id=f"k{i}")
        if rng.random() < 1 / 3:
            store.segment(f"c{i}", "vip")
    return store, flows


# -- processes -------------------------------------------------------------------------------------


def command(verb: str, location: Location, flows: Path, now: str, *extra: str) -> list[str]:
    where = str(location.path) if location.dialect == "duckdb" else location.url
    return [sys.executable, "-m", "flowhouse.cli", verb, "--warehouse", str(where),
            "--flows", str(flows), "--now", now, *extra]  # fmt: skip


def start(argv: Sequence[str]) -> subprocess.Popen[bytes]:
    env = dict(
        os.environ, PYTHONPATH=os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")])
    )
    return subprocess.Popen(
        list(argv), cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT
    )


def finish(argv: Sequence[str], allowed: Sequence[int] = (0,), timeout: float = 600) -> str:
    proc = start(argv)
    output = proc.communicate(timeout=timeout)[0].decode(errors="replace")
    if proc.returncode not in allowed:
        raise RuntimeError(f"{shlex.join(argv)} exited {proc.returncode}:\n{output}")
    return output


def kill_when(
    proc: subprocess.Popen[bytes], ready: Callable[[], bool], rng: random.Random, deadline: float
) -> bool:
    """SIGKILL ``proc`` once ``ready()`` holds (plus a random few milliseconds), unless it ends
    first; whether the kill landed on a live process."""
    stop = time.monotonic() + deadline
    while proc.poll() is None and not ready() and time.monotonic() < stop:
        time.sleep(0.01)
    time.sleep(rng.uniform(0, 0.05))
    if proc.poll() is not None:
        return False
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    return True


def killed_run(
    argvs: Sequence[Sequence[str]],
    ready: Callable[[], bool],
    rng: random.Random,
    result: Result,
    deadline: float = 60,
) -> None:
    """Start the commands at once and kill each at its own random moment, counting the kills
    that landed in ``result``. A command that ends first is left alone; it must have succeeded
    (0, or 3: some messages failed) or stopped on the lock another one held."""
    procs = [start(a) for a in argvs]
    killed = [kill_when(proc, ready, rng, deadline) for proc in procs]
    result.kills += sum(killed)
    for argv, proc, kill in zip(argvs, procs, killed, strict=True):
        output = proc.communicate(timeout=600)[0].decode(errors="replace")
        if not kill and proc.returncode not in (0, 3) and "holds the lock" not in output:
            result.problems.append(f"{argv[3]} exited {proc.returncode}: {output[-500:]}")


def timer(seconds: float) -> Callable[[], bool]:
    at = time.monotonic() + seconds
    return lambda: time.monotonic() >= at


def grown(count: Callable[[], int], by: int) -> Callable[[], bool]:
    before = count()
    return lambda: count() >= before + by


# -- checks ----------------------------------------------------------------------------------------


def tick_tables(wh: Warehouse) -> dict[str, list[tuple[Any, ...]]]:
    """The tables a tick writes, without the columns that differ by nature, sorted."""
    found: dict[str, list[tuple[Any, ...]]] = {}
    for table in TICK_TABLES:
        names = [c for c, _, _ in TABLES[table] if c not in VOLATILE]
        if table == "messages":  # what the tick queued, not how it was sent since
            names = ["message_id", "enrollment_id", "flow_id", "step_id", "customer_id",
                     "channel", "kind", "due_at", "queued_at"]  # fmt: skip
        rows = wh.query(f"select {', '.join(names)} from flowhouse.{table}")
        found[table] = sorted(tuple(map(str, r)) for r in rows)
    return found


def same_tick(trial: Location, twin: Warehouse, what: str) -> list[str]:
    with Warehouse.open(trial) as wh:
        ours = tick_tables(wh)
    theirs = tick_tables(twin)
    return [
        f"{what}: {table} differs from an uninterrupted tick "
        f"({len(ours[table])} rows against {len(theirs[table])})"
        for table in TICK_TABLES
        if ours[table] != theirs[table]
    ]


def outcome(location: Location, fake: FakeProvider, result: Result) -> None:
    """Count duplicates, lost and unconfirmed messages (see the module docstring).

    Identical texts to one number cannot be told apart by the provider's records: a row may hold
    the provider id of an identical sibling's message (the sibling holding the other's, or left
    unconfirmed when only one went out). A row marked sent must therefore hold a message the
    provider received at its address, one no other row holds; a message the provider received
    must be held by a row, or belong to a row left unconfirmed."""
    received = fake.state.messages()
    by_id: dict[str, int] = {}
    for r in received:
        by_id[r.message_id or ""] = by_id.get(r.message_id or "", 0) + 1
    delivered = {(r.provider_message_id, r.address) for r in received}
    with Warehouse.open(location) as wh:
        rows = wh.query(
            "select message_id, status, provider_message_id, failure_reason, skip_reason, "
            "address from flowhouse.messages where kind in ('message', 'action')"
        )
    statuses = {str(r[0]): str(r[1]) for r in rows}
    result.messages += len(rows)
    result.received += len(received)
    result.duplicates += sum(n - 1 for n in by_id.values() if n > 1)
    result.problems += [f"message {m}: received {n} times" for m, n in by_id.items() if n > 1]
    held: dict[tuple[str, str], str] = {}  # (provider id, address): the row holding it
    for message_id, status, provider_id, failure, skip, address in rows:
        problem = None
        if status not in FINAL:
            problem = f"left {status}"
        elif status in SENT and (provider_id, address) not in delivered:
            problem = "marked sent, never received"
        elif status in SENT and (provider_id, address) in held:
            problem = f"holds the provider message {held[provider_id, address]} holds"
        elif status in ("failed", "unconfirmed") and not failure:
            problem = f"{status} without a reason"
        elif status == "skipped" and not skip:
            problem = "skipped without a reason"
        if status in SENT:
            held[provider_id, address] = message_id
        result.unconfirmed += status == "unconfirmed"
        if problem:
            result.lost += 1
            result.problems.append(
                f"message {message_id}: {problem} ({status}, {provider_id}, {failure or skip})"
            )
    for r in received:
        status = statuses.get(r.message_id or "", "no row")
        if (r.provider_message_id, r.address) not in held and status != "unconfirmed":
            result.lost += 1
            result.problems.append(f"message {r.message_id}: received, but {status}")


# -- one trial -------------------------------------------------------------------------------------


def failures(rng: random.Random, seed: int) -> Failures:
    """Half of the trials with about 30% of requests failing; all with slow answers, so that kills
    land while requests are in flight."""
    if rng.random() < 0.5:
        return Failures(
            rate_limited=0.1, retry_after=0, server_error=0.15, timeout=0.05,
            timeout_seconds=0.3, slow=0.5, latency_ms=30, seed=seed,
        )  # fmt: skip
    return Failures(slow=0.7, latency_ms=30, seed=seed)


def startup_seconds() -> float:
    """How long a command takes to start on this machine (kill points scale with it)."""
    clock = time.perf_counter()
    finish([sys.executable, "-m", "flowhouse.cli", "--help"])
    return time.perf_counter() - clock


def trial(
    seed: int, warehouses: Warehouses, customers: int, concurrent: bool, startup: float
) -> Result:
    """One seeded trial (see the module docstring); ``startup`` as :func:`startup_seconds`."""
    rng = random.Random(seed)
    result = Result(trials=1)
    started = time.perf_counter()
    folder = Path(tempfile.mkdtemp(prefix=f"crash-{seed}-", dir=warehouses.folder))
    with warehouses.fresh(f"trial{seed}") as here, warehouses.fresh(f"twin{seed}") as twin:
        store, flows = prepare(here, folder / "trial", customers, seed)
        store.close()
        # the twin: the same store, ticked in this process and never interrupted
        twin_store, _ = prepare(twin, folder / "twin", customers, seed)
        with running(FakeSettings()) as fake:
            url = ("--provider-url", fake.url)

            def accepted() -> int:
                return len(fake.state.messages())

            def synced() -> int:
                return len(fake.state.sync_log())

            # 2. the 10:00 tick, killed and rerun, against an uninterrupted twin
            twin_store.tick(FIRST_TICK)
            ticks = [command("tick", here, flows, FIRST_TICK, "--no-build", "--no-send")]
            if concurrent:
                ticks.append(ticks[0])
            killed_run(ticks, timer(rng.uniform(0.5, 1.2) * startup), rng, result)
            finish(ticks[0])
            result.problems += same_tick(here, twin_store.wh, "10:00 tick")
            # 3. sends killed while the provider (failing some requests) accepts messages
            fake.set_failures(failures(rng, seed))
            senders = [command("send", here, flows, FIRST_SEND, *url)]
            if concurrent:
                senders = [[*senders[0], "--bucket", b] for b in ("0/2", "1/2")]
            for _ in range(rng.randint(1, 3)):
                ready = grown(accepted, rng.randint(1, max(2, customers // 3)))
                killed_run(senders, ready, rng, result)
            sent_before = accepted() + rng.randint(0, customers)
            # 4. the 11:01 tick, which queues the SMS and sends them, killed and rerun
            twin_store.tick(SECOND_TICK)
            ticks = [command("tick", here, flows, SECOND_TICK, "--no-build", *url)]
            if concurrent:
                ticks.append(ticks[0])
            ready = timer(rng.uniform(0.5, 1.5) * startup)
            killed_run(ticks, lambda: ready() or accepted() > sent_before, rng, result)
            finish(ticks[0], allowed=(0, 3))
            result.problems += same_tick(here, twin_store.wh, "11:01 tick")
            twin_store.close()
            # 5. the sync, killed and rerun
            syncs = [command("sync", here, flows, SYNC_AT, *url)]
            killed_run(syncs, grown(synced, 1), rng, result, deadline=20)
            finish(syncs[0], allowed=(0, 3))
            # 6. the last send and sync, without failures
            fake.set_failures(Failures())
            for bucket in ("0/2", "1/2") if concurrent else (None,):
                extra = ("--bucket", bucket) if bucket else ()
                finish(command("send", here, flows, LAST_SEND, *url, *extra), allowed=(0, 3))
            finish(command("sync", here, flows, SYNC_AT, *url), allowed=(0, 3))
            outcome(here, fake, result)
            with Warehouse.open(here) as wh:
                sync = next(s for s in load_syncs(flows) if s.sync == SYNC_NAME)
                if not in_sync(wh, fake.state, sync)[0]:
                    result.diverged_syncs += 1
                    result.problems.append(f"sync {SYNC_NAME}: destination differs from source")
    result.tick_mismatches = sum("uninterrupted tick" in p for p in result.problems)
    result.problems = [f"trial {seed}: {p}" for p in result.problems]
    result.seconds = time.perf_counter() - started
    return result


def run(
    trials: int,
    seed: int,
    warehouses: Warehouses,
    customers: int,
    concurrent: bool,
    progress: Callable[[str], None] | None = None,
) -> Result:
    total = Result()
    startup = startup_seconds()
    for n in range(trials):
        try:
            one = trial(seed + n, warehouses, customers, concurrent, startup)
        except KeyboardInterrupt:
            if progress is not None:
                progress(f"interrupted: {n} of {trials} trials ran")
            break
        total.add(one)
        if progress is not None:
            progress(f"trial {n + 1}/{trials} (seed {seed + n}): {one.describe()}")
            for problem in one.problems:
                progress(f"  {problem}")
    return total


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--trials", type=int, default=100)
    parser.add_argument("--seed", type=int, default=1, help="the first trial's seed")
    parser.add_argument("--customers", type=int, default=30)
    parser.add_argument("--postgres", metavar="URL", help="run on this PostgreSQL server")
    parser.add_argument(
        "--concurrent", action="store_true", help="two senders and two ticks at once"
    )
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="flowhouse-crash-") as tmp:
        warehouses = Warehouses(Path(tmp), args.postgres)
        total = run(
            args.trials, args.seed, warehouses, args.customers, args.concurrent,
            progress=lambda line: print(line, flush=True),
        )  # fmt: skip
    shown = [a if a != args.postgres else "$FLOWHOUSE_TEST_POSTGRES_URL" for a in sys.argv[1:]]
    print(f"\n{'PASS' if total.ok else 'FAIL'}: {total.describe()}")
    print("reproduce: python tests/support/crash.py " + shlex.join(shown))
    return 0 if total.ok else 1


if __name__ == "__main__":
    sys.exit(main())
