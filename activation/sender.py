"""Sending one destination's messages: batches, bounded concurrency and rate, retries.

:func:`deliver` takes the rendered messages of one destination and returns where each ended
(:class:`~flowhouse.activation.outbox.Final`) and every attempt it took
(:class:`~flowhouse.activation.outbox.Attempt`). Messages go in waves: each wave is recorded in
flight (durably, through ``on_flight``) before any of its requests goes out, sent as the
destination's batches under a semaphore (``concurrency``) and a token bucket
(``rate_per_second``), and its results are handed to ``on_done``. Runs of one destination side
by side (the chunks of a claim) share one :class:`Gate`: the semaphore, the rate and the number
of waves in flight at once.

Retries: a transient failure (429, 5xx, 408, a connection error) is retried with exponential
backoff and full jitter, waiting at least what ``Retry-After`` asked. A time-out after the request
was written is not a plain failure: the provider may hold the message. It is retried only when the
destination deduplicates (``idempotent``) or a lookup in the provider's records finds it absent;
a lookup that cannot tell leaves it in flight for the next run, and a destination that offers
neither marks it ``unconfirmed`` (never resent blindly). Permanent failures end at once with the
provider's reason. When attempts run out, or ``Retry-After`` asks for longer than a run waits, the
message goes back to the queue with a ``next_attempt_at``.
"""

from __future__ import annotations

import asyncio
import random
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta

import httpx

from flowhouse.activation.message import Outcome, Outgoing
from flowhouse.activation.outbox import Attempt, Final
from flowhouse.activation.providers.base import Call, Destination, Match, match
from flowhouse.core.clock import utcnow

#: The longest a run waits before one retry; a provider asking for more is retried next run.
MAX_WAIT_SECONDS = 30.0
BASE_BACKOFF_SECONDS = 0.5
#: How far before an attempt a lookup searches the provider's records (clocks differ a little).
CLOCK_SLACK = timedelta(minutes=5)


@dataclass
class Policy:
    """Retry and pacing knobs (tests shrink the waits)."""

    base_backoff: float = BASE_BACKOFF_SECONDS
    max_wait: float = MAX_WAIT_SECONDS
    #: The most messages recorded in flight at once (per destination).
    wave: int = 2000
    seed: int | None = None


class Limiter:
    """A token bucket: at most ``rate`` acquisitions a second (None: unbounded)."""

    def __init__(self, rate: float | None) -> None:
        self.rate = rate
        self._next = 0.0
        self._lock = asyncio.Lock()

    async def acquire(self) -> None:
        if not self.rate:
            return
        async with self._lock:
            now = time.monotonic()
            wait = self._next - now
            self._next = max(now, self._next) + 1.0 / self.rate
        if wait > 0:
            await asyncio.sleep(wait)


@dataclass
class Gate:
    """What every run of one destination shares within a send (the chunks of a claim are sent
    by runs of their own, side by side): the connections in use (``concurrency``), the rate,
    and the waves in flight at once, so that a crash leaves at most ``waves`` waves of the
    destination to reconcile."""

    semaphore: asyncio.Semaphore
    limiter: Limiter
    waves: asyncio.Semaphore

    @classmethod
    def of(cls, destination: Destination, waves: int = 2) -> Gate:
        config = destination.config
        return cls(
            asyncio.Semaphore(config.concurrency),
            Limiter(config.rate_per_second),
            asyncio.Semaphore(waves),
        )


@dataclass
class _Try:
    """The outcome of one call: per message, plus whether the provider may hold it anyway."""

    outcomes: list[Outcome]
    uncertain: bool
    started_at: datetime
    milliseconds: float


@dataclass
class Run:
    """One destination's sending in this run."""

    destination: Destination
    client: httpx.AsyncClient
    now: datetime
    policy: Policy = field(default_factory=Policy)
    finals: list[Final] = field(default_factory=list)
    attempts: list[Attempt] = field(default_factory=list)
    #: The provider's messages rows already recorded as their own, among the keys given (a
    #: lookup after a time-out never confirms a row with one of them).
    taken: Callable[[Sequence[str]], set[str]] | None = None
    #: The provider's messages this run's rows hold (accepted, or confirmed by a lookup).
    held: set[str] = field(default_factory=set)
    #: Shared with the destination's other runs in the send (None: this run's own).
    gate: Gate | None = None

    def __post_init__(self) -> None:
        gate = self.gate or Gate.of(self.destination, waves=1)
        self.semaphore = gate.semaphore
        self.limiter = gate.limiter
        self.waves = gate.waves
        self.random = random.Random(self.policy.seed)


OnFlight = Callable[[Sequence[str]], None]
OnDone = Callable[[Sequence[Final], Sequence[Attempt]], None]


async def deliver(
    run: Run, messages: Sequence[Outgoing], on_flight: OnFlight, on_done: OnDone
) -> None:
    """Send ``messages`` in waves; each wave is marked in flight before it goes out and its
    results are handed to ``on_done`` when it is settled."""
    size = wave_size(run)
    for start in range(0, len(messages), size):
        wave = list(messages[start : start + size])
        async with run.waves:
            on_flight([m.message_id for m in wave])
            run.finals, run.attempts = [], []
            await _send_wave(run, wave)
            on_done(run.finals, run.attempts)


def wave_size(run: Run) -> int:
    """Enough messages to keep every connection busy for a few rounds, and no more: a crash
    leaves at most one wave in flight to reconcile."""
    dest = run.destination
    return max(dest.max_batch, min(run.policy.wave, dest.max_batch * dest.config.concurrency * 8))


async def _send_wave(run: Run, wave: list[Outgoing]) -> None:
    pending = wave
    by_id = {m.message_id: m for m in wave}
    max_attempts = run.destination.config.max_attempts
    for attempt in range(1, max_attempts + 1):
        results = await asyncio.gather(*(_call(run, c) for c in _calls(run, pending)))
        run.held.update(
            o.provider_message_id
            for r in results
            for o in r.outcomes
            if o.status == "sent" and o.provider_message_id
        )
        retry: list[Outcome] = []
        for result in results:
            retry += await _settle(run, result, by_id, attempt)
        if not retry:
            return
        wait = _backoff(run, attempt, retry)
        if attempt == max_attempts or wait > run.policy.max_wait:
            _requeue(run, retry, attempt, max(wait, run.policy.max_wait))
            return
        await asyncio.sleep(wait)
        pending = [by_id[o.message_id] for o in retry]


def _calls(run: Run, pending: Sequence[Outgoing]) -> list[Call]:
    size = run.destination.max_batch
    calls: list[Call] = []
    for start in range(0, len(pending), size):
        calls += run.destination.calls(pending[start : start + size])
    return calls


async def _call(run: Run, call: Call) -> _Try:
    async with run.semaphore:
        await run.limiter.acquire()
        started = utcnow()
        clock = time.perf_counter()
        uncertain = False
        try:
            outcomes = await run.destination.send(run.client, call)
        except (httpx.ConnectError, httpx.ConnectTimeout, httpx.PoolTimeout) as err:
            outcomes = _transient(call, f"could not connect: {type(err).__name__}")
        except httpx.TransportError as err:  # the request may have reached the provider
            uncertain = True
            outcomes = _transient(call, f"no answer: {type(err).__name__}")
        ms = (time.perf_counter() - clock) * 1000
        return _Try(outcomes, uncertain, started, ms)


def _transient(call: Call, reason: str) -> list[Outcome]:
    return [Outcome(m, "retry", reason=reason) for m in call.message_ids]


async def _settle(
    run: Run, result: _Try, by_id: dict[str, Outgoing], attempt: int
) -> list[Outcome]:
    """Log the attempt; finish sent and failed messages; return those to retry."""
    retry: list[Outcome] = []
    for o in result.outcomes:
        _log(run, o, attempt, result)
        retries = attempt - 1
        if o.status == "sent":
            run.finals.append(Final(o.message_id, "sent", o.provider_message_id, retries=retries))
        elif o.status == "failed":
            run.finals.append(Final(o.message_id, "failed", reason=o.reason, retries=retries))
        elif result.uncertain:
            # the run's time, when it is earlier, is the clock a simulated provider keeps
            since = min(result.started_at, run.now) - CLOCK_SLACK
            if await _may_retry(run, by_id[o.message_id], retries, since):
                retry.append(o)
        else:
            retry.append(o)
    return retry


async def _may_retry(run: Run, message: Outgoing, retries: int, since: datetime) -> bool:
    """After a time-out: whether resending cannot duplicate (else the message is settled)."""
    dest = run.destination
    if dest.reconcile == "idempotent":
        return True
    found: Match = Match(message.message_id, "unknown")
    if dest.reconcile == "lookup":
        listing = await dest.lookup(run.client, message, since)
        keys = [item.key for item in listing.items] if listing else []
        held = run.held | (run.taken(keys) if run.taken and keys else set())
        found = match([message.message_id], [listing], held)[0]
        if found.found == "absent" and dest.lookup_delay > timedelta(0):
            found = Match(message.message_id, "unknown")  # too soon to trust an absence
    if found.found == "absent":
        return True
    if found.found == "sent" and found.key:
        run.held.add(found.key)
    status, reason = {
        "sent": ("sent", "confirmed by lookup after a time-out"),
        "unconfirmed": ("unconfirmed", found.reason),
        "unknown": (
            ("sending", "timed out; the lookup could not tell")
            if dest.reconcile == "lookup"
            else ("unconfirmed", "timed out; the provider offers no lookup")
        ),
    }[found.found]
    run.finals.append(
        Final(message.message_id, status, found.provider_message_id, reason, retries=retries)
    )
    return False


def _log(run: Run, o: Outcome, attempt: int, result: _Try) -> None:
    run.attempts.append(
        Attempt(
            message_id=o.message_id,
            attempt=attempt,
            provider=run.destination.name,
            started_at=result.started_at,
            milliseconds=round(result.milliseconds, 3),
            status_code=o.status_code,
            outcome=o.status if o.status != "retry" else "transient",
            reason=o.reason,
            provider_message_id=o.provider_message_id,
        )
    )


def _backoff(run: Run, attempt: int, retry: Sequence[Outcome]) -> float:
    """Full jitter on an exponential step, but never less than the provider asked."""
    step = run.policy.base_backoff * 2 ** (attempt - 1)
    asked = max((o.retry_after or 0.0 for o in retry), default=0.0)
    return max(asked, run.random.uniform(0, step))


def _requeue(run: Run, retry: Sequence[Outcome], attempt: int, wait: float) -> None:
    later = run.now + timedelta(seconds=wait * 2 ** min(attempt, 6))
    for o in retry:
        run.finals.append(
            Final(
                o.message_id, "queued", reason=o.reason, next_attempt_at=later, retries=attempt - 1
            )
        )
