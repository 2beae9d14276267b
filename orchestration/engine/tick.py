"""One tick of the engine at time ``now``: a function of the warehouse state and ``now``.

1. refresh the dbt models as of ``now`` (unless told not to);
2. deploy the flow files: new flows go live now, new versions are recorded;
3. mark coupons redeemed by orders loaded since the previous tick;
4. enroll the new triggers of every flow (:mod:`orchestration.engine.enroll`);
5. advance every enrollment whose step is due at or before ``now``
   (:mod:`orchestration.engine.advance`), queueing messages (:mod:`orchestration.engine.send`).

Steps 2-5 run in one transaction: a tick that fails or is killed leaves nothing half done, and a
rerun at the same ``now`` changes nothing. A lock keeps two ticks from running at once.
"""

from __future__ import annotations

import fcntl
import time
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

from sqlglot import exp

from activation.deliver import Options, SendReport
from flowhouse.build import MARTS, build_models
from flowhouse.errors import ConfigError, FlowhouseError
from flowhouse.warehouse import Location, Warehouse
from flows.compile import CompiledFlow, compile_flow
from flows.files import flow_files, parse_flow
from flows.settings import Settings, load_settings
from orchestration.engine.advance import advance
from orchestration.engine.context import Context
from orchestration.engine.deploy import deploy
from orchestration.engine.enroll import enroll
from orchestration.engine.sql import STATE_SCHEMA
from orchestration.engine.state import ensure_state


class TickBusy(FlowhouseError):
    """Another tick holds the lock on this warehouse."""


@dataclass
class TickResult:
    now: datetime
    seconds: float
    counts: dict[str, int] = field(default_factory=dict)
    skipped_build: bool = False
    sent: SendReport | None = None

    def describe(self) -> str:
        c = self.counts
        engine = (
            f"tick at {self.now:%Y-%m-%d %H:%M:%S}: {c.get('triggers', 0)} triggers, "
            f"{c.get('enrolled', 0)} enrolled, {c.get('refused', 0)} refused, "
            f"{c.get('decisions', 0)} decisions, {c.get('messages', 0)} messages and actions, "
            f"{c.get('exited', 0)} exits in {self.seconds:.2f} s"
        )
        return engine if self.sent is None else f"{engine}\n{self.sent.describe()}"


def load_flows(flows_dir: Path) -> tuple[list[CompiledFlow], Settings]:
    """Every flow in `flows_dir`, compiled; any invalid file stops the tick with its problems."""
    if not flows_dir.is_dir():
        raise ConfigError("no such flows folder", value=str(flows_dir))
    compiled: list[CompiledFlow] = []
    problems = []
    for path in flow_files([flows_dir]):
        flow, found = parse_flow(path)
        problems += found
        if flow is not None:
            compiled.append(compile_flow(flow))
    if problems:
        listed = "\n  ".join(str(p) for p in problems)
        raise ConfigError(f"invalid flow files (run flowhouse validate):\n  {listed}")
    ids = [f.id for f in compiled]
    duplicates = sorted({i for i in ids if ids.count(i) > 1})
    if duplicates:
        raise ConfigError("duplicate flow ids", value=duplicates)
    return compiled, load_settings(flows_dir)


def tick(
    location: Location,
    flows_dir: Path,
    now: datetime | None = None,
    build: bool = True,
    schema: str = STATE_SCHEMA,
    delivery: Options | None = None,
) -> TickResult:
    """One tick; with ``delivery``, the provider webhooks in its inbox are ingested first (so the
    refresh sees them) and the due messages are sent at the end (``flowhouse send``)."""
    from activation.deliver import ingest_inbox, lock_name, send_open

    now = (now or datetime.now(UTC)).replace(tzinfo=None)
    flows, settings = load_flows(flows_dir)
    started = time.perf_counter()
    sent = None
    with tick_lock(location, schema), ExitStack() as stack:
        ingested = None
        if delivery is not None:
            stack.enter_context(tick_lock(location, lock_name(schema, delivery.bucket)))
            ingested = ingest_inbox(location, delivery, now)
        if build:
            build_models(location, tests=False, now=now, exclude=[MARTS])
        with Warehouse.open(location) as wh:
            ensure_state(wh, schema)
            counts = run_tick(wh, schema, now, flows, settings, started)
            if delivery is not None:
                sent = send_open(wh, schema, now, flows, settings, flows_dir, delivery)
                sent.ingested = ingested or sent.ingested
    return TickResult(now, time.perf_counter() - started, counts, not build, sent)


def run_tick(
    wh: Warehouse,
    schema: str,
    now: datetime,
    flows: list[CompiledFlow],
    settings: Settings,
    started: float | None = None,
) -> dict[str, int]:
    """Steps 2-5 in one transaction on an open warehouse (the caller holds the lock)."""
    started = time.perf_counter() if started is None else started
    wall = datetime.now(UTC).replace(tzinfo=None)
    with wh.transaction():
        ctx = Context(wh, schema, now, None, flows, settings)
        last = ctx.value("select max(tick_at) from flowhouse.ticks")
        if last is not None and now < last:
            raise ConfigError(
                f"the last tick ran at {last:%Y-%m-%d %H:%M:%S}; a tick cannot go back in time",
                value=now.isoformat(sep=" "),
                expected=f"a time at or after {last}",
            )
        ctx.previous = last
        deploy(ctx)
        ctx.temp("_fh_window", _WINDOW, now=now, since=last)
        _redeem(ctx)
        enroll(ctx)
        advance(ctx)
        c = ctx.counts
        ctx.run(
            """
            insert into flowhouse.ticks
            select :now, :wall, :finished, :seconds, :triggers, :enrolled, :refused,
                :decisions, :messages
            where not exists (select 1 from flowhouse.ticks where tick_at = :now)
            """,
            now=now,
            wall=wall,
            finished=datetime.now(UTC).replace(tzinfo=None),
            seconds=round(time.perf_counter() - started, 3),
            **{
                k: c.get(k, 0) for k in ("triggers", "enrolled", "refused", "decisions", "messages")
            },
        )
    return ctx.counts


#: The events this tick sees for the first time: most statements need only these. The very
#: first tick starts with none (no enrollment or coupon can have been waiting for them).
_WINDOW = """
select * from core.events
where loaded_at <= :now and :since is not null and loaded_at > :since
"""


def _redeem(ctx: Context) -> None:
    """A coupon stops being active when an order redeems it (``order_placed.coupon_code``)."""
    ctx.run(
        """
        update flowhouse.coupon_codes as c
        set redeemed_at = r.redeemed_at
        from (
            select json_text(properties, 'coupon_code') as code, min(occurred_at) as redeemed_at
            from _fh_window
            where event_type = 'order_placed'
                and json_text(properties, 'coupon_code') is not null
            group by json_text(properties, 'coupon_code')
        ) as r
        where c.code = r.code and c.message_id is not null
            and (c.redeemed_at is null or c.redeemed_at > r.redeemed_at)
        """,
        now=ctx.now,
        since=ctx.previous,
    )


@contextmanager
def tick_lock(location: Location, schema: str) -> Iterator[None]:
    """Hold the tick lock: a lock file beside a DuckDB file, an advisory lock on PostgreSQL."""
    if location.dialect == "duckdb":
        assert location.path is not None
        path = Path(f"{location.path}.{schema}.lock")
        path.parent.mkdir(parents=True, exist_ok=True)
        with path.open("w") as handle:
            try:
                fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError as err:
                raise TickBusy(
                    f"another flowhouse run holds the lock {schema!r} on {location} "
                    f"({path} is locked): a tick, a send or a sync of the same scope"
                ) from err
            try:
                yield
            finally:
                fcntl.flock(handle, fcntl.LOCK_UN)
        return
    key = exp.func("hashtext", exp.Literal.string(f"flowhouse.tick.{schema}"))
    with Warehouse.open(location) as wh:
        if not wh.scalar(exp.select(exp.func("pg_try_advisory_lock", key))):
            raise TickBusy(
                f"another flowhouse run holds the lock {schema!r} on {location} (advisory lock)"
            )
        try:
            yield
        finally:
            wh.execute(exp.select(exp.func("pg_advisory_unlock", key.copy())))
