"""Running syncs: diff, send the difference in batches, keep the snapshot and the logs.

For each sync (``flowhouse sync [NAME] [--dry-run]``):

1. a run row is written to ``flowhouse.sync_runs`` (``running``), and committed; a run of the same
   sync left ``running`` by a crash is marked ``interrupted``;
2. the source is diffed against the snapshot (:mod:`flowhouse.activation.sync.diff`);
3. by mode: ``mirror`` sends adds, changes and removals; ``upsert`` adds and changes; ``add_only``
   adds. Batches go to the target (:mod:`flowhouse.activation.providers`); after each batch, in one
   commit, the snapshot takes the rows the destination accepted (removed rows leave it) and
   ``flowhouse.sync_rows`` logs every row with its outcome and reason;
4. the run row gets its counts and ``succeeded``, ``partial`` (some rows rejected or left for
   a retry) or ``failed`` (with the error).

A rejected row never reaches the snapshot, so the next run sends it again; a crash between a
batch and its commit leaves the snapshot as it was before the batch, and the next run sends that
batch again (every target's operations are idempotent: an upsert of the same values, a removal of
what is gone). ``--dry-run`` computes the diff and prints it, and writes nothing.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import httpx

from flowhouse.activation.providers import TARGETS
from flowhouse.activation.providers.base import Secrets
from flowhouse.activation.providers.delivery import provider_configs
from flowhouse.activation.sync.diff import Diff, Pending, compute, fields_json
from flowhouse.activation.sync.target import RowResult, SyncTarget
from flowhouse.core.clock import utc, utcnow
from flowhouse.core.errors import ConfigError
from flowhouse.core.locks import tick_lock
from flowhouse.core.sql import STATE_SCHEMA, array_rows, render, statement
from flowhouse.core.state import ensure_state
from flowhouse.core.warehouse import Location, Warehouse
from flowhouse.flows.settings import Settings, load_settings
from flowhouse.flows.sync.files import load_syncs
from flowhouse.flows.sync.syncfile import Sync
from flowhouse.rules.context import Context

#: What each mode sends.
OPERATIONS = {
    "mirror": ("add", "change", "remove"),
    "upsert": ("add", "change"),
    "add_only": ("add",),
}
SAMPLE = 5


@dataclass
class SyncReport:
    """One sync's run: what the diff found, what was sent, what the destination said."""

    sync_id: str
    destination: str
    mode: str
    dry_run: bool
    run_id: str | None = None
    source_rows: int = 0
    found: Counter[str] = field(default_factory=Counter)
    sent: Counter[str] = field(default_factory=Counter)
    rejected: Counter[str] = field(default_factory=Counter)
    retried: int = 0
    samples: dict[str, list[str]] = field(default_factory=dict)
    status: str = "running"
    error: str | None = None
    seconds: float = 0.0

    def describe(self) -> str:
        head = (
            f"{self.sync_id} -> {self.destination} ({self.mode}"
            f"{', dry run' if self.dry_run else ''}): {self.source_rows:,} rows in the source; "
        )
        found = ", ".join(f"{self.found[o]:,} to {o}" for o in ("add", "change", "remove"))
        lines = [head + found]
        for operation, keys in self.samples.items():
            more = self.found[operation] - len(keys)
            lines.append(
                f"  {operation}: {', '.join(keys)}" + (f" and {more:,} more" if more > 0 else "")
            )
        if not self.dry_run:
            sent = ", ".join(f"{k} {v:,}" for k, v in sorted(self.sent.items())) or "nothing"
            lines.append(f"  sent: {sent}; {self.status} in {self.seconds:.2f} s")
        for reason, n in self.rejected.most_common(5):
            lines.append(f"  rejected {n:,}: {reason}")
        if self.retried:
            lines.append(f"  left for the next run (transient failures): {self.retried:,}")
        if self.error:
            lines.append(f"  error: {self.error}")
        return "\n".join(lines)


@dataclass(frozen=True)
class SyncOptions:
    dry_run: bool = False
    provider_url: str | None = None
    environ: Mapping[str, str] | None = None
    #: Told a line after each batch (the CLI prints it): long syncs show their progress.
    progress: Callable[[str], None] | None = None


def target_urls(url: str) -> dict[str, str]:
    root = url.rstrip("/")
    return {
        "klaviyo": root,
        "sendgrid": root,
        "audience": f"{root}/audiences",
        "webhook": f"{root}/hooks/sync",
    }


def run_syncs(
    location: Location,
    flows_dir: Path,
    names: Sequence[str] = (),
    now: datetime | None = None,
    options: SyncOptions = SyncOptions(),
    schema: str = STATE_SCHEMA,
) -> list[SyncReport]:
    """Run the named syncs (all enabled ones when none is named), one after the other."""

    now = utc(now or utcnow())
    syncs = _chosen(load_syncs(flows_dir), names)
    settings = load_settings(flows_dir)
    reports = []
    for sync in syncs:
        with (
            tick_lock(location, f"{schema}.sync.{sync.sync}"),
            Warehouse.open(location, read_only=_read_only(location, options)) as wh,
        ):
            if not options.dry_run:
                ensure_state(wh, schema)
            reports.append(run_sync(wh, schema, sync, settings, now, options))
    return reports


def _read_only(location: Location, options: SyncOptions) -> bool:
    return options.dry_run and location.dialect == "duckdb"


def _chosen(syncs: list[Sync], names: Sequence[str]) -> list[Sync]:
    if not names:
        return [s for s in syncs if s.enabled]
    known = {s.sync: s for s in syncs}
    missing = [n for n in names if n not in known]
    if missing:
        raise ConfigError("no such sync", value=missing, expected=", ".join(sorted(known)))
    return [known[n] for n in names]


def run_sync(
    wh: Warehouse,
    schema: str,
    sync: Sync,
    settings: Settings,
    now: datetime,
    options: SyncOptions = SyncOptions(),
    target: SyncTarget | None = None,
) -> SyncReport:
    """One run of ``sync`` on an open warehouse (the caller holds the sync's lock); ``target``
    replaces the destination the sync file names (tests)."""
    started = time.perf_counter()
    ctx = Context(wh, schema, now, None, [], settings)
    report = SyncReport(sync.sync, sync.target_name, sync.mode, options.dry_run)
    if options.dry_run:
        _pending(report, sync, compute(ctx, sync))
        report.status = "dry_run"
        report.seconds = time.perf_counter() - started
        return report
    report.run_id = uuid.uuid4().hex
    _begin(ctx, sync, report)
    try:
        pending = _pending(report, sync, compute(ctx, sync))
        chosen = target or _target(sync, settings, options)
        asyncio.run(_send(ctx, sync, chosen, pending, report, options.progress))
        report.status = "partial" if report.rejected or report.retried else "succeeded"
    except Exception as err:  # recorded, then raised: the run must not stay "running"
        report.status, report.error = "failed", f"{type(err).__name__}: {err}"[:1000]
        ctx.wh.commit()
        raise
    finally:
        report.seconds = time.perf_counter() - started
        _finish(ctx, report)
    return report


def _pending(report: SyncReport, sync: Sync, diff: Diff) -> list[Pending]:
    """The rows this sync's mode sends, counted (and sampled) in the report."""
    report.source_rows = diff.source_rows
    wanted = OPERATIONS[sync.mode]
    found = {"add": diff.adds, "change": diff.changes, "remove": diff.removes}
    pending: list[Pending] = []
    for operation, rows in found.items():
        if operation in wanted:
            report.found[operation] = len(rows)
            report.samples[operation] = [p.row.key for p in rows[:SAMPLE]] if rows else []
            pending += rows
    report.samples = {k: v for k, v in report.samples.items() if v}
    return pending


def _target(sync: Sync, settings: Settings, options: SyncOptions) -> SyncTarget:

    name = sync.target_name
    base = target_urls(options.provider_url).get(name) if options.provider_url else None
    secrets = Secrets(options.environ, fake=options.provider_url is not None)
    provider = provider_configs(settings)[name]
    target_options = {**sync.target_options, "sync_id": sync.sync}
    return TARGETS[name](target_options, provider, secrets, base)


async def _send(
    ctx: Context,
    sync: Sync,
    target: SyncTarget,
    pending: list[Pending],
    report: SyncReport,
    progress: Callable[[str], None] | None = None,
) -> None:
    upserts = [p for p in pending if p.operation != "remove"]
    removes = [p for p in pending if p.operation == "remove"]
    seconds = target.provider.timeout.total_seconds()
    async with httpx.AsyncClient(timeout=seconds) as client:
        done = 0
        for operation, rows in (("upsert", upserts), ("remove", removes)):
            for batch in _batches(rows, target.batch_size):
                call = target.upsert if operation == "upsert" else target.remove
                results = await call(client, [p.row for p in batch])
                _commit(ctx, sync, report, batch, results)
                done += len(batch)
                if progress is not None:
                    progress(f"  {sync.sync}: {done:,} of {len(pending):,} rows sent")


def _batches(rows: Sequence[Pending], size: int) -> list[list[Pending]]:
    return [list(rows[i : i + size]) for i in range(0, len(rows), size)]


# -- the snapshot and the logs ---------------------------------------------------------------------

_BEGIN = """
update flowhouse.sync_runs set status = 'interrupted', finished_at = :now
where sync_id = :sync and status = 'running'
"""

_RUN = """
insert into flowhouse.sync_runs (run_id, sync_id, destination, mode, started_at, status)
values (:run, :sync, :destination, :mode, :now, 'running')
"""

_FINISH = """
update flowhouse.sync_runs
set finished_at = :finished, status = :status, source_rows = :source_rows, added = :added,
    changed = :changed, removed = :removed, rejected = :rejected, retried = :retried,
    error = :error
where run_id = :run
"""

_FORGET = """
delete from flowhouse.sync_state
where sync_id = :sync and sync_key in (select sync_key from :rows)
"""

_REMEMBER = """
insert into flowhouse.sync_state (sync_id, sync_key, row_hash, fields, destination_id, synced_at)
select :sync, r.sync_key, r.row_hash, r.fields, r.destination_id, :now from :rows
"""

#: The log of a run's rows; the key of an erased customer (the removal that erasure queued) is
#: logged as the erasure writes it, never in clear.
_LOG = """
insert into flowhouse.sync_rows
    (run_id, sync_id, sync_key, operation, status, reason, destination_id, logged_at)
select :run, :sync,
    case
        when exists (
            select 1 from flowhouse.erased_customers as e where e.customer_hash = md5(r.sync_key)
        ) then 'erased:' || md5(r.sync_key)
        else r.sync_key
    end,
    r.operation, r.status, r.reason, r.destination_id, :now
from :rows
"""

_STATE_COLUMNS = (("sync_key", "text"), ("row_hash", "text"), ("fields", "text"),
                  ("destination_id", "text"))  # fmt: skip
_LOG_COLUMNS = (("sync_key", "text"), ("operation", "text"), ("status", "text"),
                ("reason", "text"), ("destination_id", "text"))  # fmt: skip


def _begin(ctx: Context, sync: Sync, report: SyncReport) -> None:
    ctx.run(_BEGIN, sync=sync.sync, now=ctx.now)
    ctx.run(
        _RUN,
        run=report.run_id,
        sync=sync.sync,
        destination=sync.target_name,
        mode=sync.mode,
        now=ctx.now,
    )
    ctx.wh.commit()


def _finish(ctx: Context, report: SyncReport) -> None:
    ctx.run(
        _FINISH,
        finished=ctx.now + timedelta(seconds=round(report.seconds, 3)),
        status=report.status,
        source_rows=report.source_rows,
        added=report.sent["add"],
        changed=report.sent["change"],
        removed=report.sent["remove"],
        rejected=sum(report.rejected.values()),
        retried=report.retried,
        error=report.error,
        run=report.run_id,
    )
    ctx.wh.commit()


def _commit(
    ctx: Context,
    sync: Sync,
    report: SyncReport,
    batch: Sequence[Pending],
    results: Sequence[RowResult],
) -> None:
    """In one commit: the accepted rows into (or, removed, out of) the snapshot, every row
    into the log."""
    by_key = {r.key: r for r in results}
    accepted = [p for p in batch if _status(by_key, p) == "accepted"]
    kept = [p for p in accepted if p.operation != "remove"]
    if accepted:
        _execute(ctx, _FORGET, [[p.row.key for p in accepted]], sync=sync.sync)
    if kept:
        columns: list[list[Any]] = [
            [p.row.key for p in kept],
            [p.row_hash for p in kept],
            [fields_json(p.row.fields) for p in kept],
            [by_key[p.row.key].destination_id or p.row.destination_id for p in kept],
        ]
        _execute(ctx, _REMEMBER, columns, rows=_STATE_COLUMNS, sync=sync.sync, now=ctx.now)
    log = [_logged(p, by_key.get(p.row.key)) for p in batch]
    _execute(
        ctx, _LOG, [list(c) for c in zip(*log, strict=True)], rows=_LOG_COLUMNS,
        run=report.run_id, sync=sync.sync, now=ctx.now,
    )  # fmt: skip
    ctx.wh.commit()
    for p in batch:
        result = by_key.get(p.row.key)
        if result is None or result.status == "retry":
            report.retried += 1
        elif result.status == "rejected":
            report.rejected[result.reason or "rejected"] += 1
        else:
            report.sent[p.operation] += 1


def _status(by_key: Mapping[str, RowResult], p: Pending) -> str:
    found = by_key.get(p.row.key)
    return found.status if found else "retry"


def _logged(p: Pending, result: RowResult | None) -> tuple[Any, ...]:
    if result is None:
        return (p.row.key, p.operation, "retry", "the destination gave no answer for it", None)
    status = {"accepted": "sent"}.get(result.status, result.status)
    return (p.row.key, p.operation, status, result.reason, result.destination_id)


def _execute(
    ctx: Context,
    text: str,
    params: list[list[Any]],
    rows: Sequence[tuple[str, str]] = (("sync_key", "text"),),
    **values: Any,
) -> None:
    tree = statement(text, ctx.schema, rows=array_rows(rows, "r"), **values)
    ctx.wh.execute(render(tree, ctx.wh.dialect), params)
