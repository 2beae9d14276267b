"""Benchmark sending: flowhouse's throughput against the fake provider, next to its raw capacity.

    python benchmarks/sending.py                          # 20,000 e-mails, 2,000 SMS
    python benchmarks/sending.py --emails 2000 --sms 300
    python benchmarks/sending.py --emails 2000 --sms 0 --profile 25
    python benchmarks/sending.py --emails 20000 --sms 0 --repeat 5 --workers 1

Steps:
1. the fake provider starts as its own process (``python -m flowhouse.activation.fake.server``) on
   a free port, so that client and server do not share an interpreter;
2. its raw capacity, measured by the plain load generator
  (:mod:`flowhouse.activation.fake.loadgen`):
   SendGrid requests of 1,000 personalizations each, then Twilio requests of one message each;
3. flowhouse's throughput, one channel at a time, each in a child process of its own (so its
   peak RSS is its own): a fresh DuckDB store (the sending scenario harness of the tests) gets its
   customers, the shipped flow library (deployed by one tick on the empty store) and the queued
   messages of one step (``welcome``/``brand_story`` e-mails or ``cart_abandonment``/``urgency_sms``
   texts, each with its enrollment), in one statement per table; then ``send_open`` sends them all
   through the real destinations at 12:00 UTC on a weekday (outside the library's quiet hours).

The fake is reset between phases; every phase checks that every message was accepted (a run that
skipped or failed anything stops the benchmark). ``--profile N`` runs the sends under cProfile and
prints the N costliest functions (by own time, then cumulative) to stderr. ``--repeat N`` measures
capacity and flowhouse N times, side by side, and prints each ratio with the median and the
spread; ``--workers`` is ``flowhouse send --workers`` (default: chosen by the volume).

Beside the wall times, each phase reports the CPU time it cost: the fake's (read from
``/proc/<pid>/stat`` before and after) and flowhouse's (the child's own and its render
workers'), per 1,000 messages. The machine has few cores, shared: when the two together need
more CPU than the cores give, that, not waiting, is what bounds the rate.
"""

from __future__ import annotations

import argparse
import asyncio
import cProfile
import io
import json
import os
import platform
import pstats
import resource
import shlex
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import httpx

ROOT = Path(__file__).resolve().parent.parent
# Run as a script, this folder comes first on the path, where this file would hide the package.
if sys.path and Path(sys.path[0]).resolve() == Path(__file__).resolve().parent:
    sys.path[0] = str(ROOT)
#: The send time: noon UTC on a Wednesday, outside every quiet hour of flows/library/_settings.yml.
NOW = datetime(2026, 3, 4, 12, 0)
SCHEMA = "flowhouse"


@dataclass(frozen=True)
class Channel:
    """One measured channel: the provider it goes to and the flow step whose messages it sends."""

    name: str
    provider: str
    flow_id: str
    step_id: str
    trigger: str
    address: str


CHANNELS = {
    "email": Channel("email", "sendgrid", "welcome", "brand_story", "customer_created", "email"),
    "sms": Channel("sms", "twilio", "cart_abandonment", "urgency_sms", "cart_abandoned", "phone"),
}


def main() -> None:
    args = parse_args()
    if args.phase:
        child(args)
        return
    workdir = Path(tempfile.mkdtemp(prefix="flowhouse-bench-activation-", dir=args.dir))
    try:
        with fake_provider() as (url, pid):
            run_all(args, url, pid, workdir)
    finally:
        if not args.keep:
            shutil.rmtree(workdir, ignore_errors=True)


# -- the fake provider ---------------------------------------------------------------------------


@contextmanager
def fake_provider() -> Iterator[tuple[str, int]]:
    """``python -m flowhouse.activation.fake.server`` on a free port (no inbox, no record),
    until SIGTERM."""
    port = _free_port()
    command = [sys.executable, "-m", "flowhouse.activation.fake.server", "--port", str(port)]
    proc = subprocess.Popen(command, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    url = f"http://127.0.0.1:{port}"
    try:
        _wait_ready(url, proc)
        yield url, proc.pid
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _wait_ready(url: str, proc: subprocess.Popen[bytes]) -> None:
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            sys.exit(f"the fake provider exited with {proc.returncode}")
        try:
            if httpx.get(f"{url}/_fake/stats", timeout=1).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.1)
    sys.exit("the fake provider did not answer /_fake/stats within 30 s")


def reset(url: str) -> None:
    httpx.post(f"{url}/_fake/reset", timeout=10).raise_for_status()


def stats(url: str) -> dict[str, Any]:
    found: dict[str, Any] = httpx.get(f"{url}/_fake/stats", timeout=10).json()
    return found


# -- the parent: capacity, then each channel in a child ------------------------------------------


def run_all(args: argparse.Namespace, url: str, pid: int, workdir: Path) -> None:
    print(f"# {platform.machine()}, {len(os.sched_getaffinity(0))} cores, "
          f"Python {platform.python_version()}, load average {os.getloadavg()[0]:.1f}")  # fmt: skip
    ratios: dict[str, list[float]] = {}
    for _ in range(args.repeat):
        raw: dict[str, dict[str, Any]] = {}
        ours: dict[str, dict[str, Any]] = {}
        for name, count in (("email", args.emails), ("sms", args.sms)):
            if not count:
                continue
            raw[name] = _cpu(pid, lambda name=name: capacity(url, name, args))  # type: ignore[misc]
            reset(url)
            ours[name] = _cpu(pid, lambda name=name, count=count: run_child(  # type: ignore[misc]
                args, url, workdir, name, count))  # fmt: skip
            check_fake(url, CHANNELS[name], count)
            reset(url)
        for name, rate in table(raw, ours).items():
            ratios.setdefault(name, []).append(rate)
    if args.repeat > 1:
        spread(ratios)
    print(f"reproduce: python benchmarks/sending.py {_flags(args)}")


def _cpu(pid: int, step: Any) -> dict[str, Any]:
    """``step()``'s result with the fake's CPU seconds during it (``fake_cpu``)."""
    before = _proc_cpu(pid)
    result: dict[str, Any] = step()
    result["fake_cpu"] = _proc_cpu(pid) - before
    return result


def _proc_cpu(pid: int) -> float:
    """User and system CPU seconds of process ``pid`` so far."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def spread(ratios: dict[str, list[float]]) -> None:
    for name, values in ratios.items():
        listed = ", ".join(f"{v:.0%}" for v in values)
        print(
            f"{name}: ratio over {len(values)} runs: median {statistics.median(values):.0%}, "
            f"min {min(values):.0%}, max {max(values):.0%} ({listed})"
        )


def capacity(url: str, channel: str, args: argparse.Namespace) -> dict[str, Any]:
    """The fake's raw capacity for ``channel`` as the plain load generator measures it."""
    from flowhouse.activation.fake.loadgen import measure

    if channel == "email":
        kind, requests, concurrency, batch = "sendgrid", args.email_requests, 4, 1000
    else:
        kind, requests, concurrency, batch = "twilio", args.sms_requests, 8, 1
    reset(url)
    result = asyncio.run(measure(url, kind, requests, concurrency, batch))  # type: ignore[arg-type]
    bad = {k: v for k, v in result["statuses"].items() if not k.startswith("2")}
    if bad:
        sys.exit(f"load generator, {kind}: not every request was accepted: {bad}")
    print(
        f"raw capacity, {kind}: {requests} requests x {result['batch']} message(s), "
        f"concurrency {concurrency}: {result['seconds']:.2f} s, "
        f"{result['requests_per_second']:,.1f} requests/s, "
        f"{result['messages_per_second']:,.0f} messages/s, "
        f"p50 {result['p50_ms']:.1f} ms, p95 {result['p95_ms']:.1f} ms"
    )
    return result


def run_child(
    args: argparse.Namespace, url: str, workdir: Path, name: str, count: int
) -> dict[str, Any]:
    """One channel's store and send in a child process; its JSON result."""
    command = [
        sys.executable, __file__, "--phase", name, "--url", url, "--dir", str(workdir),
        "--count", str(count), "--customers", str(args.customers or count),
        "--profile", str(args.profile),
    ]  # fmt: skip
    if args.workers is not None:
        command += ["--workers", str(args.workers)]
    done = subprocess.run(command, cwd=ROOT, stdout=subprocess.PIPE, text=True, check=False)
    if done.returncode != 0:
        sys.exit(f"failed ({done.returncode}): {shlex.join(command)}")
    result: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
    print(
        f"flowhouse, {name}: {count:,} messages in {result['send_seconds']:.2f} s "
        f"({count / result['send_seconds']:,.0f} messages/s), {result['requests']:,} requests, "
        f"outside HTTP {result['outside_http']:.0%} of the run; CPU {result['send_cpu']:.2f} s "
        f"(render workers {result['workers_cpu']:.2f} s); store built in "
        f"{result['build_seconds']:.1f} s; peak RSS {result['peak_mb']:,.0f} MB "
        f"({result['before_mb']:,.0f} MB before sending)"
    )
    return result


def check_fake(url: str, channel: Channel, count: int) -> None:
    """The fake accepted every message of the phase, and rejected none."""
    found = stats(url)
    accepted = found["accepted"].get(channel.provider, 0)
    if accepted != count or found["rejected"] or found["duplicates"]:
        sys.exit(f"{channel.name}: the fake accepted {accepted} of {count}: {found}")


def table(raw: dict[str, dict[str, Any]], ours: dict[str, dict[str, Any]]) -> dict[str, float]:
    """Print the run's figures; each channel's ratio of flowhouse to the fake's capacity."""
    print()
    print(
        f"{'channel':8s} {'fake raw capacity':>20s} {'flowhouse':>16s} {'ratio':>7s} "
        f"{'fake CPU/1k (loadgen)':>22s} {'fake CPU/1k (flowhouse)':>24s} "
        f"{'flowhouse CPU/1k':>17s}"
    )
    ratios = {}
    for name, result in ours.items():
        capacity = raw[name]["messages_per_second"]
        rate = result["count"] / result["send_seconds"]
        per_raw = raw[name]["fake_cpu"] / (raw[name]["requests"] * raw[name]["batch"]) * 1000
        per_ours = result["fake_cpu"] / result["count"] * 1000
        ours_cpu = result["send_cpu"] / result["count"] * 1000
        print(
            f"{name:8s} {capacity:>14,.0f} msg/s {rate:>10,.0f} msg/s {rate / capacity:>7.1%} "
            f"{per_raw:>20.3f} s {per_ours:>22.3f} s {ours_cpu:>15.3f} s"
        )
        ratios[name] = rate / capacity
    print()
    return ratios


def _flags(args: argparse.Namespace) -> str:
    flags = [
        "--emails", str(args.emails), "--sms", str(args.sms),
        "--email-requests", str(args.email_requests), "--sms-requests", str(args.sms_requests),
    ]  # fmt: skip
    if args.customers:
        flags += ["--customers", str(args.customers)]
    if args.workers is not None:
        flags += ["--workers", str(args.workers)]
    if args.repeat > 1:
        flags += ["--repeat", str(args.repeat)]
    return shlex.join(flags)


# -- the child: one channel's store and send -----------------------------------------------------


def child(args: argparse.Namespace) -> None:
    """Build the store, send its queue, print one JSON line with the figures."""
    channel = CHANNELS[args.phase]
    if args.customers < args.count:
        sys.exit("--customers must be at least the messages of each channel (one per customer)")
    folder = Path(tempfile.mkdtemp(prefix=f"{channel.name}-", dir=args.dir))
    started = time.perf_counter()
    store, flows, settings = build_store(folder, args.customers, channel, args.count)
    build_seconds = time.perf_counter() - started
    before_mb = _peak_mb()
    cpu = _cpu_seconds()
    report = send(store, flows, settings, args.url, args.profile, args.workers)
    send_cpu, workers_cpu = (
        after - before for after, before in zip(_cpu_seconds(), cpu, strict=True)
    )
    verify(store, report, channel, args.count)
    print(json.dumps({
        "count": args.count,
        "send_cpu": send_cpu + workers_cpu,
        "workers_cpu": workers_cpu,
        "send_seconds": report.seconds,
        "build_seconds": build_seconds,
        "before_mb": before_mb,
        "peak_mb": _peak_mb(),
        "requests": _requests(store),
        "outside_http": 1 - _http_seconds(store) / report.seconds,
    }))  # fmt: skip
    store.close()


def _cpu_seconds() -> tuple[float, float]:
    """CPU seconds of this process, and of its children that ended (the render workers)."""
    own = resource.getrusage(resource.RUSAGE_SELF)
    children = resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime, children.ru_utime + children.ru_stime


def _peak_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def _harness() -> None:
    for folder in ("engine", "activation"):
        path = str(ROOT / "tests" / folder)
        if path not in sys.path:
            sys.path.insert(0, path)


def build_store(folder: Path, customers: int, channel: Channel, count: int) -> tuple[Any, Any, Any]:
    """A fresh store: customers, the flow library deployed, ``count`` messages queued."""
    _harness()
    from sending import sending_store  # type: ignore[import-not-found]

    from flowhouse.core.paths import FLOWS
    from flowhouse.core.warehouse import Location
    from flowhouse.flows.load import load_flows
    from flowhouse.orchestration.engine.tick import run_tick

    store = sending_store(Location.parse(str(folder / "store.duckdb")), folder)
    flows, settings = load_flows(FLOWS)
    with store.wh.transaction():
        store.wh.execute(customers_insert(customers))
    run_tick(store.wh, SCHEMA, NOW - timedelta(hours=1), flows, settings)
    with store.wh.transaction():
        for statement in queue_inserts(flows, channel, count):
            store.wh.execute(statement)
    return store, flows, settings


#: Values of ``core.customer_attributes`` for customer ``i`` (an integer column); the rest is null.
_CUSTOMER = {
    "customer_id": "'c' || lpad(cast(i as text), 7, '0')",
    "email": "'c' || cast(i as text) || '@example.com'",
    "phone": "'+1555' || lpad(cast(i as text), 7, '0')",
    "first_name": "'Sam'",
    "effective_timezone": "'UTC'",
    "has_valid_timezone": "true",
    "country": "'US'",
    "created_at": "cast(:created as timestamp)",
    "is_wholesale": "false",
    "has_ordered": "false",
    "order_count": "0",
    "gross_revenue": "0",
    "refunded_amount": "0",
    "lifetime_revenue": "0",
    "predicted_ltv": "0",
    "discounted_order_count": "0",
    "promo_pressure_14d": "0",
    "promo_pressure_30d": "0",
    "has_email_consent": "true",
    "has_sms_consent": "true",
    "has_email_opt_in": "true",
    "has_sms_opt_in": "true",
    "computed_at": "cast(:created as timestamp)",
}


def customers_insert(n: int) -> Any:
    """One statement: ``n`` customers with e-mail and SMS consent, in UTC."""
    from harness import CUSTOMER_ATTRIBUTES  # type: ignore[import-not-found]

    from flowhouse.core.sql import statement

    missing = [c for c, _, required in CUSTOMER_ATTRIBUTES if required and c not in _CUSTOMER]
    if missing:
        sys.exit(f"the benchmark gives no value to required customer attributes {missing}")
    text = (
        f"insert into core.customer_attributes ({', '.join(_CUSTOMER)}) "
        f"select {', '.join(_CUSTOMER.values())} from range(:n) as r(i)"
    )
    return statement(text, n=n, created=NOW - timedelta(days=30))


_ENROLLMENTS = """
insert into flowhouse.enrollments
    (enrollment_id, flow_id, flow_version, customer_id, trigger_event_id, trigger_type,
     trigger_properties, entered_at, enrolled_at_tick, is_holdout, status, step_id,
     step_started_at, due_at, arrived_at_tick, updated_at_tick)
select 'bench:' || :flow || ':' || c.customer_id, f.flow_id, f.version, c.customer_id,
    'ev:' || c.customer_id, :trigger, cast('{}' as json), :queued, :queued, false, 'active',
    :step, :queued, :queued, :queued, :queued
from core.customer_attributes as c
cross join flowhouse.flows as f
where f.flow_id = :flow
order by c.customer_id
limit :n
"""

_MESSAGES = """
insert into flowhouse.messages
    (message_id, enrollment_id, flow_id, flow_version, step_id, customer_id, channel, kind,
     is_marketing, address, template, subject, preheader, due_at, queued_at, status, updated_at)
select md5(e.enrollment_id || ':' || e.step_id), e.enrollment_id, e.flow_id, e.flow_version,
    e.step_id, e.customer_id, :channel, 'message', true, :address, :template, :subject,
    :preheader, :queued, :queued, 'queued', :queued
from flowhouse.enrollments as e
join core.customer_attributes as c on c.customer_id = e.customer_id
where e.flow_id = :flow and e.step_id = :step
"""


def queue_inserts(flows: Sequence[Any], channel: Channel, count: int) -> list[Any]:
    """Two statements: ``count`` enrollments waiting at the step, and their queued messages
    (template, subject and preheader as the flow library's step sets them)."""
    from sqlglot import exp

    from flowhouse.core.sql import statement

    compiled = next(f for f in flows if f.id == channel.flow_id)
    step = next(s for s in compiled.steps if s.step_id == channel.step_id)
    params = step.params
    if params.get("channel") != channel.name:
        sys.exit(f"{channel.flow_id}.{channel.step_id} does not send {channel.name}")
    common: dict[str, Any] = {
        "flow": channel.flow_id,
        "step": channel.step_id,
        "queued": NOW - timedelta(minutes=1),
    }
    enroll = statement(_ENROLLMENTS, trigger=channel.trigger, n=count, **common)
    messages = statement(
        _MESSAGES,
        channel=channel.name,
        address=exp.column(channel.address, "c"),
        template=params["template"],
        subject=params.get("subject"),
        preheader=params.get("preheader"),
        **common,
    )
    return [enroll, messages]


def send(store: Any, flows: Any, settings: Any, url: str, profile: int, workers: int | None) -> Any:
    """``send_open`` on the store against the fake (under cProfile when ``profile``)."""
    from flowhouse.activation.deliver import Options, send_open
    from flowhouse.core.paths import FLOWS

    options = Options(provider_url=url, workers=workers)

    def run() -> Any:
        return send_open(store.wh, SCHEMA, NOW, flows, settings, FLOWS, options)

    if not profile:
        return run()
    profiler = cProfile.Profile()
    report = profiler.runcall(run)
    _print_profile(profiler, profile)
    return report


def _print_profile(profiler: cProfile.Profile, top: int) -> None:
    for order in ("tottime", "cumulative"):
        out = io.StringIO()
        pstats.Stats(profiler, stream=out).sort_stats(order).print_stats(top)
        print(out.getvalue(), file=sys.stderr)


def verify(store: Any, report: Any, channel: Channel, count: int) -> None:
    """Every queued message was claimed and sent, and the outbox says so."""
    from flowhouse.core.sql import statement

    (sent,) = store.wh.query(
        statement("select count(*) from flowhouse.messages where status = 'sent'")
    )[0]
    clean = not report.skipped and not report.requeued_quiet_hours and not report.scheduled
    if report.claimed != count or report.outcomes["sent"] != count or sent != count or not clean:
        print(report.describe(), file=sys.stderr)
        sys.exit(f"{channel.name}: {sent} of {count} messages sent")


def _requests(store: Any) -> int:
    """Requests made: attempts of distinct (start, duration), as one request logs per message."""
    from flowhouse.core.sql import statement

    rows = store.wh.query(
        statement(
            "select count(*) from (select distinct started_at, milliseconds, provider "
            "from flowhouse.send_attempts) as a"
        )
    )
    return int(rows[0][0])


def _http_seconds(store: Any) -> float:
    """Wall seconds during which at least one request was in flight (union of the intervals)."""
    from flowhouse.core.sql import statement

    rows = store.wh.query(
        statement(
            "select distinct started_at, milliseconds from flowhouse.send_attempts order by 1"
        )
    )
    total, end = 0.0, None
    for started, ms in rows:
        stop = started + timedelta(milliseconds=ms)
        if end is None or started > end:
            total += (stop - started).total_seconds()
            end = stop
        elif stop > end:
            total += (stop - end).total_seconds()
            end = stop
    return total


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--emails", type=int, default=20_000, help="e-mails flowhouse sends")
    parser.add_argument("--sms", type=int, default=2_000, help="text messages flowhouse sends")
    parser.add_argument(
        "--customers", type=int, default=0, help="customers in each store (default: one a message)"
    )
    parser.add_argument("--email-requests", type=int, default=30, help="load generator, SendGrid")
    parser.add_argument("--sms-requests", type=int, default=1_500, help="load generator, Twilio")
    parser.add_argument("--profile", type=int, default=0, help="cProfile the sends: top N")
    parser.add_argument("--workers", type=int, default=None, help="render worker processes")
    parser.add_argument("--repeat", type=int, default=1, help="measure N times, side by side")
    parser.add_argument("--dir", default=None, help="where the temporary stores go")
    parser.add_argument("--keep", action="store_true", help="keep the stores")
    parser.add_argument("--phase", choices=sorted(CHANNELS), help=argparse.SUPPRESS)
    parser.add_argument("--url", help=argparse.SUPPRESS)
    parser.add_argument("--count", type=int, default=0, help=argparse.SUPPRESS)
    return parser.parse_args()


if __name__ == "__main__":
    main()
