"""``flowhouse send``: deliver the due outbox rows through their destinations.

One run:

1. rows a dead run claimed but never put in flight go back to the queue;
2. rows a dead run left in flight are reconciled, per destination (see
   :mod:`flowhouse.activation.providers.base`): looked up in the provider's records, resent with the
   same idempotency key, or marked ``unconfirmed``;
3. the destinations the due rows route to are built first: a credential missing from the
   environment stops the run before anything is claimed (:func:`check_credentials`);
4. then, claim after claim (earliest due first): the send-time rules are checked again, the rows
   are rendered chunk by chunk off the sending loop (:mod:`flowhouse.activation.pipeline`: in
   worker processes for a large run, ``Options.workers``), and each chunk's messages are sent as
   soon as it is rendered, while the next chunks render: in waves, each wave recorded in flight
   before it goes out and its results recorded when it is settled
   (:mod:`flowhouse.activation.sender`), at most two waves of a destination in flight at once.

A run stopped by SIGTERM or Ctrl-C stops its render workers, lets nothing new go out, and ends
with :class:`Stopped`: rows whose request may have gone out stay in flight (reconciled by the
next run), the others stay claimed (back in the queue at the next run).

``bucket`` splits the outbox between parallel senders (``I/N``: the messages of the customers
whose id hashes to I);
each run holds a lock for its bucket, so two senders never share a row.

``Options.retry`` (``flowhouse send --retry-failed``) first puts failed rows still within their
flow's ``max_lateness`` back in the queue (:func:`flowhouse.activation.outbox.retry_failed`),
journaled.
"""

from __future__ import annotations

import asyncio
import signal
import time
import uuid
from collections import Counter
from collections.abc import Callable, Coroutine, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx

from flowhouse.activation import onsite
from flowhouse.activation.engagement import ingest
from flowhouse.activation.links import LINKS_FOLDER
from flowhouse.activation.links import prune as prune_links
from flowhouse.activation.message import Outgoing
from flowhouse.activation.outbox import (
    Attempt,
    Bucket,
    Final,
    Retried,
    RetryFilter,
    claim,
    due_routes,
    fail_without_coupon,
    mark_in_flight,
    recheck,
    record,
    record_dead_tokens,
    retry_failed,
    unclaim,
)
from flowhouse.activation.pipeline import CHUNK, RenderPool, auto_workers, rendered
from flowhouse.activation.providers import DESTINATIONS
from flowhouse.activation.providers.base import (
    Destination,
    Listing,
    Match,
    MissingSecret,
    Secrets,
    match,
)
from flowhouse.activation.providers.delivery import ProviderConfigs, provider_configs
from flowhouse.activation.render import (
    Renderer,
    by_route,
    claim_batch,
    render_claim,
    short_links,
)
from flowhouse.activation.sender import CLOCK_SLACK, Gate, Policy, Run, deliver
from flowhouse.core.clock import utc, utcnow
from flowhouse.core.errors import ConfigError, FlowhouseError
from flowhouse.core.locks import tick_lock
from flowhouse.core.sql import STATE_SCHEMA, array_rows, literal, render, statement
from flowhouse.core.state import ensure_state
from flowhouse.core.warehouse import Location, Warehouse
from flowhouse.flows.compile import CompiledFlow
from flowhouse.flows.load import load_flows
from flowhouse.flows.settings import Settings
from flowhouse.rules.context import Context, per_flow

#: The route whose messages are written to the warehouse, not sent (:mod:`.onsite`).
ONSITE = "onsite"

#: Rows claimed at once; each claim is checked, rendered and sent before the next.
CLAIM_SIZE = 5000
#: Waves of one destination in flight at once: one sending while the next is put in flight.
WAVES_IN_FLIGHT = 2


class Stopped(FlowhouseError):
    """The run was stopped (SIGTERM, Ctrl-C) before it finished."""


@dataclass
class SendReport:
    """What one run did, per outcome and per destination."""

    now: datetime
    claimed: int = 0
    unclaimed: int = 0
    skipped: Counter[str] = field(default_factory=Counter)
    requeued_quiet_hours: int = 0
    scheduled: int = 0
    outcomes: Counter[str] = field(default_factory=Counter)
    by_destination: dict[str, Counter[str]] = field(default_factory=dict)
    reconciled: Counter[str] = field(default_factory=Counter)
    ingested: Counter[str] = field(default_factory=Counter)
    #: Device tokens the push provider answered dead in this run (never used again).
    dead_tokens: int = 0
    #: Onsite messages moved forward before sending: seen, dismissed, expired.
    onsite: dict[str, int] = field(default_factory=dict)
    #: Files of SMS short links past ``delivery.sms_link_days`` deleted from ``<inbox>/links/``.
    links_pruned: int = 0
    retried: Retried | None = None
    seconds: float = 0.0

    @property
    def failed(self) -> int:
        """Messages that failed for good in this run."""
        return self.outcomes["failed"]

    def add(self, destination: str, finals: Sequence[Final]) -> None:
        counts = self.by_destination.setdefault(destination, Counter())
        for f in finals:
            self.outcomes[f.status] += 1
            counts[f.status] += 1

    def describe(self) -> str:
        lines = [
            *_retried(self.retried),
            f"send at {self.now:%Y-%m-%d %H:%M:%S}: {self.claimed} claimed, "
            f"{sum(self.skipped.values())} skipped at send time, "
            f"{self.outcomes['sent']} sent, {self.outcomes['failed']} failed, "
            f"{self.outcomes['queued']} to retry, {self.outcomes['unconfirmed']} unconfirmed "
            f"in {self.seconds:.2f} s",
        ]
        for name, counts in sorted(self.by_destination.items()):
            lines.append(f"  {name}: " + ", ".join(f"{k} {v}" for k, v in sorted(counts.items())))
        if self.skipped:
            lines.append(
                "  skipped: " + ", ".join(f"{k} {v}" for k, v in sorted(self.skipped.items()))
            )
        if self.requeued_quiet_hours or self.scheduled:
            lines.append(
                f"  quiet hours: {self.requeued_quiet_hours} moved back to the queue, "
                f"{self.scheduled} scheduled with the provider"
            )
        if self.onsite:
            lines.append(
                "  onsite messages: "
                + ", ".join(f"{k} {v}" for k, v in sorted(self.onsite.items()))
            )
        if self.dead_tokens:
            lines.append(f"  device tokens found dead and retired: {self.dead_tokens}")
        if self.links_pruned:
            lines.append(f"  SMS short-link files past their days pruned: {self.links_pruned}")
        if self.ingested:
            lines.append(
                "  engagement ingested: "
                + ", ".join(f"{k} {v}" for k, v in sorted(self.ingested.items()))
            )
        if self.reconciled:
            lines.append(
                "  reconciled after a crash: "
                + ", ".join(f"{k} {v}" for k, v in sorted(self.reconciled.items()))
            )
        return "\n".join(lines)


def _retried(retried: Retried | None) -> list[str]:
    """What ``--retry-failed`` did, by the reason the rows had failed with."""
    if retried is None:
        return []
    lines = [
        f"retry-failed: {sum(retried.requeued.values())} failed message(s) requeued, "
        f"{sum(retried.stale.values())} left failed (past their flow's max_lateness)"
    ]
    for word, counts in (("requeued", retried.requeued), ("left failed", retried.stale)):
        lines += [
            f"  {word} {n}: {reason or '(no reason)'}" for reason, n in sorted(counts.items())
        ]
    return lines


def provider_urls(url: str) -> dict[str, str]:
    """Every destination pointed at one server (the fake provider serves them all)."""
    root = url.rstrip("/")
    return {
        "sendgrid": root,
        "twilio": root,
        "klaviyo": root,
        "webhook": f"{root}/hooks/flowhouse",
        "audience": f"{root}/audiences",
        "vonage": root,
        "fcm": root,
        "spree": root,
    }


class Destinations:
    """The destinations this run uses, built on first use (a destination never used needs no
    credentials), each with its own HTTP client (time-out, connection pool)."""

    def __init__(
        self, configs: ProviderConfigs, secrets: Secrets, provider_url: str | None
    ) -> None:
        self.configs = configs
        self.secrets = secrets
        self.urls = provider_urls(provider_url) if provider_url else {}
        self.built: dict[str, Destination] = {}
        self.clients: dict[str, httpx.AsyncClient] = {}
        self.gates: dict[str, Gate] = {}

    def get(self, name: str) -> Destination:
        if name not in self.built:
            if name not in DESTINATIONS:
                raise ConfigError(
                    "unknown destination", value=name, expected=", ".join(sorted(DESTINATIONS))
                )
            config = self.configs[name]
            self.built[name] = DESTINATIONS[name](config, self.secrets, self.urls.get(name))
        return self.built[name]

    def client(self, name: str) -> httpx.AsyncClient:
        if name not in self.clients:
            config = self.get(name).config
            seconds = config.timeout.total_seconds()
            self.clients[name] = httpx.AsyncClient(
                timeout=httpx.Timeout(seconds, connect=min(seconds, 5.0)),
                limits=httpx.Limits(max_connections=config.concurrency),
            )
        return self.clients[name]

    def gate(self, name: str) -> Gate:
        """What every run of the destination shares in this send (made in the running loop)."""
        if name not in self.gates:
            self.gates[name] = Gate.of(self.get(name), waves=WAVES_IN_FLIGHT)
        return self.gates[name]

    async def close(self) -> None:
        for client in self.clients.values():
            await client.aclose()


@dataclass(frozen=True)
class Options:
    """How a run sends (``flowhouse send`` and ``flowhouse tick`` take the same options).

    ``provider_url`` points every destination at one server (the fake provider; credentials
    missing from the environment are then placeholders). ``inbox`` is where provider webhooks
    land (see :mod:`flowhouse.activation.receiver`); it is ingested before anything is sent.
    """

    provider_url: str | None = None
    bucket: Bucket = field(default_factory=Bucket)
    limit: int | None = None
    inbox: Path | None = None
    environ: Mapping[str, str] | None = None
    policy: Policy | None = None
    #: Told a line after each claim (the CLI prints it): long sends show their progress.
    progress: Callable[[str], None] | None = None
    #: Requeue the failed rows this selects (within their flow's lateness) before sending.
    retry: RetryFilter | None = None
    #: Render worker processes (0: render in the sending process; None: chosen by the number of
    #: due rows, see :func:`flowhouse.activation.pipeline.auto_workers`).
    workers: int | None = None


def lock_name(schema: str, bucket: Bucket) -> str:
    return f"{schema}.send.{bucket.index}.{bucket.count}"


def send(
    location: Location,
    flows_dir: Path,
    now: datetime | None = None,
    options: Options = Options(),
    schema: str = STATE_SCHEMA,
) -> SendReport:
    """One send run on the warehouse at ``location``: ingest the inbox, then send (holding the
    lock of its bucket)."""
    now = utc(now or utcnow())
    flows, settings = load_flows(flows_dir)
    with tick_lock(location, lock_name(schema, options.bucket)):
        ingested = ingest_inbox(location, options, now)
        with Warehouse.open(location) as wh:
            ensure_state(wh, schema)
            report = send_open(wh, schema, now, flows, settings, flows_dir, options)
    report.ingested = ingested
    return report


def ingest_inbox(location: Location, options: Options, now: datetime) -> Counter[str]:
    """Write the provider webhooks waiting in the inbox to the warehouse (if there is one);
    one ingest at a time, whichever sender runs it."""
    if options.inbox is None:
        return Counter()
    with tick_lock(location, f"{STATE_SCHEMA}.inbox"):
        found = ingest(location, options.inbox, now)
    counts = Counter(found.events)
    if found.expired_clicks:
        counts["expired SMS link clicks"] = found.expired_clicks
    return counts


def send_open(
    wh: Warehouse,
    schema: str,
    now: datetime,
    flows: list[CompiledFlow],
    settings: Settings,
    flows_dir: Path,
    options: Options = Options(),
) -> SendReport:
    """One send run on an open warehouse (the caller holds the lock)."""
    started = time.perf_counter()
    secrets = Secrets(options.environ, fake=options.provider_url is not None)
    try:
        key = secrets.get(settings.delivery.signing_key_env, "the key that signs unsubscribe links")
    except ConfigError as err:
        raise ConfigError(
            f"{err} (tick --no-send queues without sending; --provider-url sends to "
            "flowhouse fake-provider)"
        ) from err
    configs = provider_configs(settings)
    ctx = Context(wh, schema, now, None, flows, settings)
    folder = None if options.inbox is None else options.inbox / LINKS_FOLDER
    renderer = Renderer(
        {f.id: f for f in flows}, settings, flows_dir, key, configs,
        short_links=None if folder is None else short_links(settings, key, folder),
    )  # fmt: skip
    destinations = Destinations(configs, secrets, options.provider_url)
    report = SendReport(now)
    if folder is not None:
        report.links_pruned = prune_links(
            folder, datetime.now(UTC), settings.delivery.sms_link_days
        )
    if options.retry is not None:
        report.retried = retry_failed(ctx, options.retry)
        ctx.wh.commit()
    report.onsite = onsite.refresh(ctx)
    due = check_credentials(ctx, destinations, options.bucket)
    policy = options.policy or Policy()
    workers = options.workers if options.workers is not None else auto_workers(due)
    pool = RenderPool(renderer.portable(ctx) if workers else renderer, workers)
    try:
        asyncio.run(_stoppable(_run(ctx, renderer, destinations, options, report, policy, pool)))
    except BaseException:
        pool.close(stop=True)
        raise
    pool.close()
    report.seconds = time.perf_counter() - started
    return report


async def _stoppable(run: Coroutine[Any, Any, None]) -> None:
    """``run``, cancelled by SIGTERM (where this thread can take signals): it ends with
    :class:`Stopped`, what it sent recorded or left in flight for the next run to reconcile."""
    task = asyncio.ensure_future(run)
    loop = asyncio.get_running_loop()
    before = signal.getsignal(signal.SIGTERM)
    try:
        loop.add_signal_handler(signal.SIGTERM, task.cancel)
    except (ValueError, RuntimeError, NotImplementedError):  # not the main thread
        return await task
    try:
        await task
    except asyncio.CancelledError:
        current = asyncio.current_task()
        if current is not None and current.cancelling():  # Ctrl-C: asyncio.run says so
            raise
        raise Stopped(
            "stopped by SIGTERM: messages in flight are reconciled and claimed ones go back to "
            "the queue at the next run"
        ) from None
    finally:
        loop.remove_signal_handler(signal.SIGTERM)
        if before is not None:  # whoever runs the send (Dagster) gets its handler back
            signal.signal(signal.SIGTERM, before)


def check_credentials(ctx: Context, destinations: Destinations, bucket: Bucket) -> int:
    """Build every destination the due rows route to; credentials missing from the environment
    are one error, raised before anything is claimed (other problems of a destination fail its
    rows only, with the reason, when they are sent). Returns how many rows are due."""
    missing = []
    routes = due_routes(ctx, bucket)
    for route, n in routes.items():
        try:
            destinations.get(route)
        except MissingSecret as err:
            missing.append(f"{n} due message(s) route to {route}: {err}")
        except ConfigError:
            continue
    if missing:
        listed = "\n  ".join(missing)
        raise MissingSecret(
            f"cannot send, nothing was claimed (the messages stay queued):\n  {listed}\n"
            "Set the variable(s), or run tick --no-send to queue without sending, or "
            "--provider-url to send to flowhouse fake-provider."
        )
    return sum(routes.values())


async def _run(
    ctx: Context,
    renderer: Renderer,
    destinations: Destinations,
    options: Options,
    report: SendReport,
    policy: Policy,
    pool: RenderPool,
) -> None:
    bucket, limit = options.bucket, options.limit
    try:
        report.unclaimed = unclaim(ctx, bucket)
        ctx.wh.commit()
        await _reconcile(ctx, renderer, destinations, bucket, report, policy)
        while limit is None or report.claimed < limit:
            size = CLAIM_SIZE if limit is None else min(CLAIM_SIZE, limit - report.claimed)
            claim_id = uuid.uuid4().hex
            dead = fail_without_coupon(ctx, bucket)
            if dead:
                report.outcomes["failed"] += dead
            n = claim(ctx, claim_id, bucket, size)
            ctx.wh.commit()
            if not n:
                break
            report.claimed += n
            await _send_claim(ctx, renderer, destinations, claim_id, report, policy, pool)
            if options.progress is not None:
                o = report.outcomes
                options.progress(
                    f"  {report.claimed:,} claimed so far: {o['sent']:,} sent, "
                    f"{sum(report.skipped.values()):,} skipped, {o['failed']:,} failed"
                )
    finally:
        await destinations.close()


#: Destinations the sender asks to hold a message until a given time (SendGrid's ``send_at``,
#: up to 72 hours ahead: quiet hours never last longer).
SCHEDULING = ("sendgrid",)


async def _send_claim(
    ctx: Context,
    renderer: Renderer,
    destinations: Destinations,
    claim_id: str,
    report: SendReport,
    policy: Policy,
    pool: RenderPool,
) -> None:
    """Check the claim again, then render it chunk by chunk in the pool and send each chunk as
    soon as it is rendered, in the claim's order, while the next ones render."""
    checked = recheck(ctx, claim_id, SCHEDULING)
    ctx.wh.commit()
    report.skipped.update(checked.skipped)
    report.requeued_quiet_hours += checked.requeued
    report.scheduled += checked.scheduled
    chunks = [pool.submit(b) for b in claim_batch(ctx, renderer, claim_id).split(CHUNK)]
    sending: list[asyncio.Task[None]] = []
    try:
        for chunk in chunks:
            done = await rendered(chunk)
            _fail_unrendered(ctx, claim_id, done.failed, report)
            routed = by_route(done.ready)
            # written to the warehouse, not sent: each chunk's own, once
            posted = onsite.post(ctx, claim_id, routed.pop(ONSITE, []), destinations.configs.onsite)
            if posted:
                report.add(ONSITE, posted)
            groups = _reachable(ctx, destinations, routed, claim_id, report)
            sending += [
                asyncio.create_task(
                    _deliver(ctx, destinations, route, messages, claim_id, report, policy)
                )
                for route, messages in groups.items()
            ]
    except asyncio.CancelledError:
        for task in sending:
            task.cancel()
        raise
    finally:
        for chunk in chunks:
            chunk.cancel()
        await _settle(sending)


async def _settle(sending: Sequence[asyncio.Task[None]]) -> None:
    """Wait for the chunks being sent: every wave in flight is settled and recorded, even when
    the claim stops early (a worker died); cancelled (SIGTERM, Ctrl-C), they stop where they
    are, their rows left in flight for the next run to reconcile."""
    results = await asyncio.gather(*sending, return_exceptions=True)
    for result in results:
        if isinstance(result, BaseException) and not isinstance(result, asyncio.CancelledError):
            raise result


def _reachable(
    ctx: Context,
    destinations: Destinations,
    groups: dict[str, list[Outgoing]],
    claim_id: str,
    report: SendReport,
) -> dict[str, list[Outgoing]]:
    """The groups whose destination can be built (configured, with its credentials), before
    anything is put in flight; the messages of the others fail with the reason, and the rest of
    the claim goes on."""
    ready = {}
    for route, messages in groups.items():
        try:
            destinations.get(route)
        except ConfigError as err:
            reason = destinations.secrets.redact(f"{route}: {err}")
            finals = [Final(m.message_id, "failed", reason=reason) for m in messages]
            record(ctx, claim_id, finals, [])
            report.add(route, finals)
            continue
        ready[route] = messages
    return ready


def _fail_unrendered(
    ctx: Context, claim_id: str, failed: Mapping[str, str], report: SendReport
) -> None:
    if failed:
        finals = [Final(m, "failed", reason=reason) for m, reason in failed.items()]
        record(ctx, claim_id, finals, [])
        report.add("render", finals)


async def _deliver(
    ctx: Context,
    destinations: Destinations,
    route: str,
    messages: Sequence[Outgoing],
    claim_id: str,
    report: SendReport,
    policy: Policy,
) -> None:
    destination = destinations.get(route)
    run = Run(
        destination,
        destinations.client(route),
        ctx.now,
        policy,
        taken=lambda keys: _taken(ctx, keys),
        gate=destinations.gate(route),
    )

    def on_flight(ids: Sequence[str]) -> None:
        mark_in_flight(ctx, destination.name, ids)

    def on_done(finals: Sequence[Final], attempts: Sequence[Attempt]) -> None:
        record(ctx, claim_id, finals, attempts)
        dead = destination.dead_addresses()
        record_dead_tokens(
            ctx,
            destination.name,
            [(d.address, d.customer_id, d.reason, d.message_id) for d in dead],
        )
        report.add(destination.name, finals)
        report.dead_tokens += len({d.address for d in dead})

    await deliver(run, messages, on_flight, on_done)


# -- after a crash ---------------------------------------------------------------------------------

_RECONCILED = {
    "sent": "confirmed sent",
    "absent": "absent",
    "unknown": "unknown",
    "unconfirmed": "unconfirmed",
}

_ADOPT = """
update flowhouse.messages set claim_id = :claim
where status = 'sending' and :bucket
"""


async def _reconcile(
    ctx: Context,
    renderer: Renderer,
    destinations: Destinations,
    bucket: Bucket,
    report: SendReport,
    policy: Policy,
) -> None:
    """Settle the rows a dead run left in flight, each as its destination allows."""
    claim_id = "reconcile-" + uuid.uuid4().hex
    adopted = ctx.wh.execute_count(ctx.sql(_ADOPT, claim=claim_id, bucket=bucket.condition()))
    if adopted:
        report.reconciled["given up"] += _give_up(ctx, claim_id)
    ctx.wh.commit()
    if not adopted:
        return
    rendered = render_claim(ctx, renderer, claim_id, status="sending")
    _fail_unrendered(ctx, claim_id, rendered.failed, report)
    groups = _reachable(ctx, destinations, by_route(rendered.ready), claim_id, report)
    for route, messages in groups.items():
        destination = destinations.get(route)
        resend = await _settle_in_flight(
            ctx, destination, destinations.client(route), messages, claim_id, report
        )
        if resend:
            report.reconciled["resent"] += len(resend)
            await _deliver(ctx, destinations, route, resend, claim_id, report, policy)


_GIVE_UP = """
update flowhouse.messages as o
set status = 'unconfirmed', updated_at = :now,
    failure_reason = 'in flight longer than the flow allows (max_lateness); '
        || 'the provider could not confirm it'
where o.claim_id = :claim and o.status = 'sending'
    and o.in_flight_at + :lateness * interval 1 second < :now
"""


def _give_up(ctx: Context, claim_id: str) -> int:
    """Rows whose lookups never could tell, past the flow's lateness: ``unconfirmed``."""

    lateness = per_flow(
        ctx.flows,
        lambda f: literal(int(f.flow.max_lateness.total_seconds())),
        default=literal(7 * 86400),
        on="o",
    )
    return ctx.wh.execute_count(ctx.sql(_GIVE_UP, now=ctx.now, claim=claim_id, lateness=lateness))


async def _settle_in_flight(
    ctx: Context,
    destination: Destination,
    client: httpx.AsyncClient,
    messages: Sequence[Outgoing],
    claim_id: str,
    report: SendReport,
) -> list[Outgoing]:
    """Which in-flight messages may be sent again; the others are settled here."""
    if destination.reconcile == "idempotent":
        return list(messages)
    if destination.reconcile == "none":
        finals = [
            Final(m.message_id, "unconfirmed", reason="in flight when a run died") for m in messages
        ]
        record(ctx, claim_id, finals, [])
        report.reconciled["unconfirmed"] += len(finals)
        return []
    first = ctx.value(
        "select min(in_flight_at) from flowhouse.messages where claim_id = :claim", claim=claim_id
    )
    since = min(first or ctx.now, ctx.now) - CLOCK_SLACK
    semaphore = asyncio.Semaphore(destination.config.concurrency)

    async def look(m: Outgoing) -> Listing | None:
        async with semaphore:
            return await destination.lookup(client, m, since)

    ordered = _in_order(ctx, claim_id, messages)
    listings = list(await asyncio.gather(*(look(m) for m in ordered)))
    taken = _taken(ctx, [item.key for listing in listings if listing for item in listing.items])
    same = [destination.identity(m) for m in ordered]
    matches = match([m.message_id for m in ordered], listings, taken, same)
    if first is not None and ctx.now - first < destination.lookup_delay:
        matches = [  # too soon to trust an absence
            Match(m.message_id, "unknown") if m.found == "absent" else m for m in matches
        ]
    finals = [
        Final(m.message_id, "sent", m.provider_message_id, reason="confirmed by lookup")
        if m.found == "sent"
        else Final(m.message_id, "unconfirmed", reason=m.reason)
        for m in matches
        if m.found in ("sent", "unconfirmed")
    ]
    record(ctx, claim_id, finals, [])
    for m in matches:
        report.reconciled[_RECONCILED[m.found]] += 1
    absent = {m.message_id for m in matches if m.found == "absent"}
    return [m for m in ordered if m.message_id in absent]


_ORDER = """
select message_id from flowhouse.messages where claim_id = :claim
order by queued_at, due_at, message_id
"""


def _in_order(ctx: Context, claim_id: str, messages: Sequence[Outgoing]) -> list[Outgoing]:
    """``messages`` in their order of creation (how identical ones are paired with the
    provider's messages)."""
    rank = {str(row[0]): n for n, row in enumerate(ctx.rows(_ORDER, claim=claim_id))}
    return sorted(messages, key=lambda m: (rank.get(m.message_id, len(rank)), m.message_id))


_TAKEN = """
select distinct m.provider_message_id
from flowhouse.messages as m
join :keys on m.provider_message_id = k.key
"""


def _taken(ctx: Context, keys: Sequence[str]) -> set[str]:
    """The listed provider messages rows already recorded as their own."""
    if not keys:
        return set()
    tree = statement(_TAKEN, ctx.schema, keys=array_rows([("key", "text")], "k"))
    return {str(r[0]) for r in ctx.wh.query(render(tree, ctx.wh.dialect), [sorted(set(keys))])}
