"""``flowhouse demo``: the main job end to end on a fresh synthetic store."""

from __future__ import annotations

import shutil
import time
from collections import Counter, defaultdict
from collections.abc import Callable
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from sqlglot import exp

from flowhouse.activation.deliver import Options
from flowhouse.activation.fake.server import running
from flowhouse.activation.fake.settings import FakeSettings
from flowhouse.activation.sync.compare import in_sync
from flowhouse.activation.sync.run import SyncOptions, run_syncs
from flowhouse.core.build import MARTS, build_models
from flowhouse.core.paths import FLOWS
from flowhouse.core.sql import render, statement
from flowhouse.core.warehouse import Location, Warehouse
from flowhouse.cycle import cycle
from flowhouse.flows.settings import load_settings
from flowhouse.flows.sync.files import load_syncs
from flowhouse.generate import continue_store, generate_store
from flowhouse.orchestration.engine.coupons import generate_codes
from flowhouse.orchestration.engine.report import render_flow_counts
from flowhouse.report import write_report
from flowhouse.summary import render_summary

DEMO_START = datetime(2026, 9, 1)


def run_demo(
    location: Location,
    customers: int,
    days: int,
    seed: int,
    echo: Callable[[str], None],
    simulate_days: int = 7,
    flows_dir: Path | None = None,
) -> None:
    """Generate `days` of history, build, launch the flow library, then live `simulate_days`
    more days: new events arrive (``--continue-until``), models refresh every 12 hours and the
    engine ticks every 4 hours."""

    if location.path is not None:
        for stale in (location.path, location.path.with_suffix(location.path.suffix + ".wal")):
            stale.unlink(missing_ok=True)
        for folder in ("tmp", "inbox", "fake_provider"):
            shutil.rmtree(location.path.parent / folder, ignore_errors=True)
    started = time.perf_counter()
    flows_dir = flows_dir or FLOWS
    model_vars = load_settings(flows_dir).dbt_vars()
    echo(f"1/5 generating a store of {customers:,} customers over {days} days (seed {seed}) ...")
    stats = generate_store(location, customers=customers, days=days, seed=seed, start=DEMO_START)
    echo("    " + stats.describe().replace("\n", "\n    "))
    launch = DEMO_START + timedelta(days=days)
    echo("2/5 building the dbt models and running their tests ...")
    echo("    " + build_models(location, now=launch, dbt_vars=model_vars).describe())
    echo("3/5 summary")
    echo(render_summary(location))
    echo(
        f"4/5 launching the flow library at {launch:%Y-%m-%d} and living {simulate_days} more days"
    )
    simulate(location, flows_dir, launch, simulate_days, echo)
    finish = launch + timedelta(days=simulate_days)
    echo("5/5 flow performance: the marts and the report")
    echo(
        "    " + build_models(location, select=[MARTS], now=finish, dbt_vars=model_vars).describe()
    )
    report = write_report(location, demo_folder(location) / "report", now=finish)
    with Warehouse.open(location) as wh:
        echo(render_performance(wh))
    echo(f"\nDone in {time.perf_counter() - started:.0f} s. Warehouse: {location}")
    echo(f"The flow performance report: {report} (open it in a browser)")
    echo("Explore it: flowhouse summary --warehouse " + str(location))
    echo("  the journal: flowhouse.decisions, the outbox: flowhouse.messages,")
    echo("  every request: flowhouse.send_attempts, engagement: raw.events (message_*)")


def demo_folder(location: Location) -> Path:
    """Where the demo keeps its files beside the warehouse (the fake provider's, the report)."""
    return location.path.parent if location.path is not None else Path("demo")


def simulate(
    location: Location,
    flows_dir: Path,
    launch: datetime,
    days: int,
    echo: Callable[[str], None],
    tick_every: timedelta = timedelta(hours=4),
    build_every: timedelta = timedelta(hours=12),
) -> None:
    """Tick the flows in `flows_dir` from `launch` through `days` days of new events, sending
    every due message to the local fake provider, whose engagement webhooks (delivered, opened,
    clicked, bounced, unsubscribed) land in an inbox the next tick ingests."""

    with Warehouse.open(location) as wh:
        for pool in load_settings(flows_dir).coupon_pools:
            generate_codes(wh, pool, 5_000, launch, pool.upper() + "-")
    folder = demo_folder(location)
    settings = FakeSettings(inbox=folder / "inbox", record_dir=folder / "fake_provider")
    with running(settings) as fake:
        delivery = Options(provider_url=fake.url, inbox=settings.inbox)
        syncing = SyncOptions(provider_url=fake.url)
        synced: dict[str, Counter[str]] = defaultdict(Counter)
        echo(f"    sending to the fake provider at {fake.url}")
        fake.set_now(launch)
        cycle(location, flows_dir, now=launch, build=False, delivery=delivery)
        at = launch
        for day in range(days):
            continue_store(location, until=launch + timedelta(days=day + 1))
            counts: Counter[str] = Counter()
            sent: Counter[str] = Counter()
            ticks = 0
            while at < launch + timedelta(days=day + 1):
                at += tick_every
                fake.set_now(at)
                due_build = (at - launch) % build_every == timedelta(0)
                result = cycle(location, flows_dir, now=at, build=due_build, delivery=delivery)
                respond(location, at - tick_every, at)
                counts.update(result.tick.counts)
                if due_build:  # the segments just refreshed: bring their destinations along
                    for report in run_syncs(location, flows_dir, now=at, options=syncing):
                        synced[report.sync_id].update(report.sent)
                        synced[report.sync_id]["rejected"] += sum(report.rejected.values())
                        synced[report.sync_id]["runs"] += 1
                if result.sent is not None:
                    sent.update(result.sent.outcomes)
                    sent.update({f"in {k}": v for k, v in result.sent.ingested.items()})
                ticks += 1
            echo(
                f"    {at:%Y-%m-%d}: {ticks} ticks, {counts['triggers']:,} triggers, "
                f"{counts['enrolled']:,} enrolled, {counts['refused']:,} refused, "
                f"{counts['messages']:,} messages and actions, {counts['exited']:,} exits; "
                f"{sent['sent']:,} sent, {sent['in message_delivered']:,} delivered, "
                f"{sent['in message_opened']:,} opened, {sent['in message_clicked']:,} clicked"
            )
        stats = fake.state.stats()
        with Warehouse.open(location) as wh:
            echo(render_flow_counts(wh))
            echo(render_delivery(wh, stats))
            echo(render_syncs(wh, fake.state, flows_dir, synced))


#: The demo's customers respond to messages: this share of the clicks on a message leads to an
#: order 90 minutes later (a deterministic draw per message). Holdout customers get no message,
#: so the flows' holdout lift has a real effect to find.
ORDER_AFTER_CLICK = 0.3

_RESPOND = """
insert into raw.events (event_id, customer_id, event_type, occurred_at, loaded_at, properties)
select
    md5('demo-order:' || c.message_id), c.customer_id, 'order_placed',
    c.clicked_at + 90 * interval '1 minute', c.clicked_at + 95 * interval '1 minute',
    json_pairs('order_id', 'r' || substr(md5(c.message_id), 1, 12),
        'value', round(40 + 120 * unit_hash(c.message_id || ':value'), 2), 'currency', 'USD')
from (
    select customer_id, json_text(properties, 'message_id') as message_id,
        min(occurred_at) as clicked_at
    from raw.events
    where event_type = 'message_clicked' and loaded_at > :since and loaded_at <= :until
    group by 1, 2
) as c
where unit_hash(c.message_id || ':order') < :rate
    and not exists (
        select 1 from raw.events as e where e.event_id = md5('demo-order:' || c.message_id)
    )
"""


def respond(location: Location, since: datetime, until: datetime) -> None:
    """Orders from the customers who clicked a message whose click was loaded in (since, until]."""

    with Warehouse.open(location) as wh:
        pairs = "jsonb_build_object" if wh.dialect == "postgres" else "json_object"
        values = {"since": since, "until": until, "rate": ORDER_AFTER_CLICK}
        tree = statement(_RESPOND, "flowhouse", **values)
        for node in tree.find_all(exp.Anonymous):
            if node.name == "json_pairs":
                node.set("this", pairs)
        wh.execute(render(tree, wh.dialect))
        wh.commit()


_PERFORMANCE = """
select d.flow_id, d.enrolled, d.sent, d.conversions, d.revenue,
    l.treatment_conversion_rate, l.holdout_conversion_rate, l.conversion_rate_lift,
    l.conversion_rate_p_value, l.incremental_revenue
from (
    select flow_id, sum(enrolled) as enrolled, sum(messages_sent) as sent,
        sum(conversions) as conversions, sum(attributed_revenue) as revenue
    from marts.flow_daily
    group by flow_id
) as d
left join marts.flow_holdout_lift as l on l.flow_id = d.flow_id and l.period = 'all'
order by d.revenue desc, d.flow_id
"""


def render_performance(wh: Any) -> str:
    """Per flow, from the marts: last-touch revenue beside the holdout comparison."""

    lines = [
        "Flow performance (marts.flow_daily, marts.flow_holdout_lift):",
        f"  {'flow':<22}{'enrolled':>9}{'sent':>7}{'orders':>7}{'revenue':>10}"
        f"{'treated':>9}{'holdout':>9}{'lift':>8}{'p':>6}{'incremental':>13}",
    ]
    for row in wh.query(render(statement(_PERFORMANCE), wh.dialect)):
        flow, enrolled, sent, orders, revenue, treated, held, lift, p, extra = row
        lines.append(
            f"  {flow:<22}{int(enrolled):>9,}{int(sent):>7,}{int(orders):>7,}"
            f"{float(revenue):>10,.0f}"
            f"{_pct(treated):>9}{_pct(held):>9}{_points(lift):>8}{_num(p, '.2f'):>6}"
            f"{_num(extra, ',.0f'):>13}"
        )
    return "\n".join(lines)


def _pct(value: Any) -> str:
    return "-" if value is None else f"{float(value):.1%}"


def _points(value: Any) -> str:
    return "-" if value is None else f"{100 * float(value):+.1f}pt"


def _num(value: Any, spec: str) -> str:
    return "-" if value is None else format(float(value), spec)


_DELIVERY = """
select channel, coalesce(provider, '-') as provider, status, count(*) as n from flowhouse.messages
where status not in ('skipped', 'held_out')
group by 1, 2, 3
order by 1, 2, 3
"""

_SKIPS = """
select channel, skip_reason, count(*) as n from flowhouse.messages
where status = 'skipped'
group by 1, 2
order by 1, 3 desc, 2
"""

#: What the fake provider refuses as a real device would, not as an invalid request: FCM's answer
#: for an uninstalled app's token (the generated store has a few such tokens).
DEAD_TOKEN = "unregistered"

_ENGAGEMENT = """
select event_type, count(*) as n from raw.events
where json_text(properties, 'provider') is not null
    and event_type in ('message_delivered', 'message_opened', 'message_clicked',
        'message_bounced', 'message_complained', 'unsubscribed')
group by 1
order by 1
"""


def render_delivery(wh: Any, stats: dict[str, Any]) -> str:
    """What reached the fake provider, and what came back, from the warehouse's side."""

    rows = wh.query(render(statement(_DELIVERY), wh.dialect))
    skips: dict[str, list[str]] = defaultdict(list)
    for channel, reason, n in wh.query(render(statement(_SKIPS), wh.dialect)):
        skips[channel].append(f"{reason} {n:,}")
    engagement = wh.query(render(statement(_ENGAGEMENT), wh.dialect))
    lines = ["\nDelivery (flowhouse.messages by channel, provider and status)"]
    lines += [f"  {c:<13} {p:<10} {s:<12} {n:>8,}" for c, p, s, n in rows]
    lines.append("Skipped, by channel and reason")
    lines += [f"  {c:<13} {', '.join(r)}" for c, r in sorted(skips.items())]
    accepted = ", ".join(f"{k} {v:,}" for k, v in sorted(stats["accepted"].items()))
    dead = stats["rejected"].get(DEAD_TOKEN, 0)
    rejected = sum(stats["rejected"].values()) - dead
    lines.append(f"  accepted by the fake provider: {accepted or 'nothing'}")
    lines.append(f"  rejected by it: {rejected}; delivered twice: {stats['duplicates']}")
    lines.append(f"  device tokens it answered as uninstalled (FCM's UNREGISTERED): {dead}")
    lines.append("Engagement written back (raw.events)")
    lines += [f"  {t:<22} {n:>8,}" for t, n in engagement]
    return "\n".join(lines)


def render_syncs(wh: Any, state: Any, flows_dir: Path, synced: dict[str, Counter[str]]) -> str:
    """Each audience sync's runs, and whether its destination now matches its source."""

    lines = ["Audience syncs (flowhouse.sync_runs, flowhouse.sync_rows)"]
    for sync in load_syncs(flows_dir):
        c = synced.get(sync.sync, Counter())
        ok, source, held = in_sync(wh, state, sync)
        relation = "equal to" if sync.mode == "mirror" else "containing"
        verdict = f"{relation} the source" if ok else f"NOT {relation} the source"
        lines.append(
            f"  {sync.sync:<24} {sync.mode:<8} {c['runs']} runs: {c['add']:,} added, "
            f"{c['change']:,} changed, {c['remove']:,} removed, {c['rejected']:,} rejected; "
            f"destination {verdict} ({held:,} held, {source:,} in the source)"
        )
    return "\n".join(lines)
