"""Benchmark the performance marts (models/marts): full build, incremental rebuilds, full refresh.

    python benchmarks/marts.py                              # 1,000,000 customers, 30 days
    python benchmarks/marts.py --customers 20000 --test     # small, and run the marts' tests too

Steps, each command its own process (so its peak RSS is measured alone), on a fresh DuckDB file:
1. generate the store; build the models as of the first day (when the flows go live), three days
   before the end and the last day's last hour (`--now`). A build stamps the segment and tier
   changes it finds with its own now: built once, every customer's segments and tier would look
   changed in the last hours and the marts' incremental builds would redo nearly everyone; built
   like this, the incremental lookback (48 hours) sees about three days of such changes, as a
   deployment that builds its models every few days would;
2. one tick deploys the flow library (18 flows go live on the first day); then a month of flow
   history is synthesized in set-based SQL: every trigger event of the month that passes its
   flow's trigger filter enrolls (refused outside the flow's audience, both filters compiled as
   the engine compiles them, and 5% at random; 10% held out where the flow holds out), walks one
   of the flow's paths (the paths of branches, split arms and waits for an event chosen by
   weight, some enrollments exit at their first wait), with a decision per step, an outbox row
   per send or external action
   (queued, held out or skipped with a reason; then delivered, bounced, failed or sent), a
   send attempt per message that went out, and the engagement written back to raw.events
   (delivered, opened, clicked, bounced, unsubscribed, with properties.message_id); conversions
   are the store's own orders. The SQL runs in a child process of this script, timed too;
3. timed: the first `flowhouse build -s tag:marts --skip-tests` (every mart built in full), the
   same again with nothing new (the incremental facts redo only their lookback);
4. a day passes: `generate --continue-until` appends the store's next day, the upstream models
   are refreshed, and the flows advance through that day (new enrollments, due steps, messages,
   engagement); timed: the incremental marts build after it, then `--full-refresh`.

After each marts build, the seconds dbt spent on each mart (from its run_results.json).

With --test, `flowhouse build -s tag:marts` (the marts and their data tests) runs after the
incremental build and after the full refresh, and must pass.
"""

from __future__ import annotations

import argparse
import json
import platform
import shlex
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Callable, Iterator, Sequence
from dataclasses import astuple, dataclass, replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import duckdb
from generate import measure

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from flowhouse.flows.compile import (  # noqa: E402
    WAREHOUSE_ACTIONS,
    CompiledFlow,
    StepRow,
    compile_flow,
    predicate,
)
from flowhouse.flows.files import flow_files, read_flow  # noqa: E402
from flowhouse.flows.flowfile import Flow  # noqa: E402

START = datetime(2026, 9, 1)
MARTS = (
    "message_facts", "enrollment_facts", "order_attribution", "flow_daily", "flow_reasons",
    "flow_steps", "flow_branches", "flow_variants", "flow_holdout_lift",
)  # fmt: skip
#: Where `flowhouse build` leaves dbt's run_results.json on DuckDB.
RUN_RESULTS = ROOT / "dbt_project" / "target-duckdb" / "run_results.json"
#: Share of each path's enrollments that exit at its first wait (flows with exit events).
EXIT_SHARE = 0.06
#: A wait_until step waits this long (plus its offset in days), whatever its time of day.
WAIT_UNTIL_HOURS = 10


# -- the flow library as path templates --------------------------------------------------------


@dataclass(frozen=True)
class Hop:
    """One decision of a path through a flow, `offset` seconds after entry."""

    step_id: str
    kind: str
    outcome: str
    reason: str | None
    offset: int
    channel: str | None = None
    message: str | None = None  # 'message' or 'action': the step queues an outbox row
    variant: str | None = None
    template: str | None = None
    subject: str | None = None


Route = tuple[float, list[Hop]]


def library() -> list[CompiledFlow]:
    """The shipped flows, compiled as the engine deploys them."""
    flows = [read_flow(path).flow for path in flow_files([ROOT / "flows" / "library"])]
    return [compile_flow(flow) for flow in flows if flow is not None]


def routes(flow: CompiledFlow) -> list[Route]:
    """Every path through `flow` with its probability, exits included."""
    walked = list(_walk(flow, flow.first_step, 0, None))
    return [route for walk in walked for route in _with_exit(flow, walk)]


def _walk(flow: CompiledFlow, step_id: str | None, at: int, variant: str | None) -> Iterator[Route]:
    if step_id is None:
        yield 1.0, [Hop("_end", "end", "completed", None, at)]
        return
    row = flow.step(step_id)
    if row.kind in ("branch", "split", "wait_for"):
        for share, hop, first in _forks(flow, row, at, variant):
            for weight, rest in _walk(flow, first, hop.offset, hop.variant):
                yield share * weight, [hop, *rest]
        return
    hop = _hop(row, at, variant)
    for weight, rest in _walk(flow, row.next_step, hop.offset, variant):
        yield weight, [hop, *rest]


def _forks(
    flow: CompiledFlow, row: StepRow, at: int, variant: str | None
) -> list[tuple[float, Hop, str | None]]:
    """The ways out of a branch (else half the time), split (by weight) or wait_for."""
    paths = flow.paths[row.step_id]
    if row.kind == "split":
        return [
            (
                p.weight,
                Hop(row.step_id, "split", "split", p.label, at, variant=p.label),
                p.first_step,
            )
            for p in paths
        ]
    if row.kind == "wait_for":
        timeout = int(row.params["timeout_seconds"])
        event, timed_out = paths
        received = Hop(row.step_id, "wait_for", "event_received", None, at + timeout // 4)
        waited = Hop(row.step_id, "wait_for", "timed_out", None, at + timeout)
        return [
            (0.4, replace(received, variant=variant), event.first_step),
            (0.6, replace(waited, variant=variant), timed_out.first_step),
        ]
    others = [p for p in paths if p.label != "else"]
    rest = 0.5 if len(others) < len(paths) else 1.0
    return [
        (
            rest / len(others) if p.label != "else" else 0.5,
            Hop(row.step_id, "branch", "branched", p.label, at, variant=variant),
            p.first_step,
        )
        for p in paths
    ]


def _hop(row: StepRow, at: int, variant: str | None) -> Hop:
    params = row.params
    if row.kind == "wait":
        return Hop(row.step_id, "wait", "waited", None, at + int(params["seconds"]))
    if row.kind == "wait_until":
        days = max(int(params.get("offset_days") or 0), 0)
        return Hop(
            row.step_id, "wait_until", "waited", None, at + days * 86400 + WAIT_UNTIL_HOURS * 3600
        )
    if row.kind == "send":
        return Hop(
            row.step_id, "send", "queued", None, at, params["channel"], "message", variant,
            params.get("template"), params.get("subject"),
        )  # fmt: skip
    if params["type"] in WAREHOUSE_ACTIONS:
        return Hop(row.step_id, "action", "applied", None, at, variant=variant)
    return Hop(row.step_id, "action", "queued", None, at, params["type"], "action", variant)


def _with_exit(flow: CompiledFlow, route: Route) -> list[Route]:
    """The route, and the same route exited during its first wait (EXIT_SHARE of it)."""
    weight, hops = route
    reasons = flow.flow.exit.events
    waits = [i for i, hop in enumerate(hops) if hop.kind in ("wait", "wait_until")]
    if not reasons or not waits:
        return [route]
    k = waits[0]
    began = hops[k - 1].offset if k else 0
    exited = replace(
        hops[k], outcome="exited", reason=reasons[0], offset=(began + hops[k].offset) // 2
    )
    return [(weight * (1 - EXIT_SHARE), hops), (weight * EXIT_SHARE, [*hops[:k], exited])]


def template_rows(flows: Sequence[CompiledFlow]) -> list[tuple[Any, ...]]:
    """bench.templates: one row per hop of each route, with the route's slice [lo, hi) of [0, 1)."""
    rows: list[tuple[Any, ...]] = []
    for flow in flows:
        found = routes(flow)
        total = sum(weight for weight, _ in found)
        lo = 0.0
        for number, (weight, hops) in enumerate(found):
            hi = 1.0 if number == len(found) - 1 else lo + weight / total
            rows += [
                (flow.id, number, lo, hi, seq, *astuple(hop)) for seq, hop in enumerate(hops, 1)
            ]
            lo = hi
    return rows


def meta_rows(flows: Sequence[CompiledFlow]) -> list[tuple[Any, ...]]:
    """bench.flow_meta: trigger, holdout share, marketing or not, share refused at random."""
    return [
        (
            f.id, f.flow.trigger.event, f.flow.holdout, not f.flow.transactional,
            0.05, f.flow.entry.key,
        )
        for f in flows
    ]  # fmt: skip


# -- synthesized flow history (DuckDB, set-based) --------------------------------------------------

_SETUP = """
create schema bench;
create table bench.templates (
    flow_id varchar, route integer, lo double, hi double, seq integer, step_id varchar,
    step_kind varchar, outcome varchar, reason varchar, offset_s bigint, channel varchar,
    message varchar, variant varchar, template varchar, subject varchar
);
create table bench.flow_meta (
    flow_id varchar, trigger_event varchar, holdout double, is_marketing boolean,
    refuse_share double, entry_key varchar
);
create table bench.entries (
    enrollment_id varchar, flow_id varchar, flow_version varchar, customer_id varchar,
    trigger_event_id varchar, trigger_type varchar, trigger_properties json, entry_key varchar,
    entered_at timestamp, enrolled_at_tick timestamp, is_refused boolean, refused_reason varchar,
    is_holdout boolean, pick double
);
create table bench.plan (
    enrollment_id varchar, flow_id varchar, flow_version varchar, customer_id varchar,
    seq integer, step_id varchar, step_kind varchar, effective_at timestamp, decided_at timestamp,
    outcome varchar, reason varchar, detail varchar, message_id varchar, message varchar,
    channel varchar, variant varchar, template varchar, subject varchar, is_marketing boolean,
    status varchar, v double
);
"""

_MACROS = """
create or replace temp macro unit(key) as (hash(key) % 1000003) / 1000003.0;
create or replace temp macro tick(moment) as date_trunc('hour', moment) + interval 1 hour;
create or replace temp macro json_text(doc, name) as json_extract_string(doc, '$.' || name);
"""

# the trigger events strictly inside ($lo, $hi) that pass their flow's trigger filter, each
# enrolled or refused (outside its audience, or at random for re-entry and concurrency); at the
# bounds sit the events a build stamps at its own now (segment and tier changes)
_ENTRIES = """
insert into bench.entries
with triggers as (
    select
        md5(meta.flow_id || '|' || event.event_id) as enrollment_id,
        meta.flow_id,
        flows.version as flow_version,
        event.customer_id,
        event.event_id as trigger_event_id,
        event.event_type as trigger_type,
        event.properties as trigger_properties,
        json_text(event.properties, meta.entry_key) as entry_key,
        event.occurred_at as entered_at,
        meta.holdout,
        meta.refuse_share,
        coalesce(AUDIENCE, false) as in_audience
    from core.events as event
    inner join bench.flow_meta as meta on meta.trigger_event = event.event_type
    inner join flowhouse.flows as flows on flows.flow_id = meta.flow_id
    left join core.customer_attributes as customer on customer.customer_id = event.customer_id
    where event.customer_id is not null
        and event.occurred_at > $lo and event.occurred_at < $hi
        and coalesce(TRIGGER, false)
    qualify row_number() over (
        partition by meta.flow_id, event.event_id order by event.loaded_at
    ) = 1
)
select
    enrollment_id, flow_id, flow_version, customer_id, trigger_event_id, trigger_type,
    trigger_properties, entry_key, entered_at,
    tick(entered_at) as enrolled_at_tick,
    not in_audience or unit(enrollment_id || 'r') < refuse_share as is_refused,
    case when not in_audience then 'audience'
        when unit(enrollment_id || 'r') < refuse_share * 0.8 then 'reentry'
        else 'concurrency' end as refused_reason,
    unit(enrollment_id || 'h') < holdout as is_holdout,
    unit(enrollment_id || 'p') as pick
from triggers
"""


def filters(flows: Sequence[CompiledFlow], pick: Callable[[Flow], str | None]) -> str:
    """One flow filter per flow (`pick`: the trigger's or the audience's), compiled as the engine
    compiles it (over `event` and `customer`), as a DuckDB case over the flow."""
    whens = [
        f"when '{f.id}' then {predicate(sql).sql('duckdb')}" for f in flows if (sql := pick(f.flow))
    ]
    return f"case meta.flow_id {' '.join(whens)} else true end"


def entries_sql(flows: Sequence[CompiledFlow]) -> str:
    trigger = filters(flows, lambda flow: flow.trigger.where)
    audience = filters(flows, lambda flow: flow.audience.where)
    return _ENTRIES.replace("TRIGGER", trigger).replace("AUDIENCE", audience)


# each enrollment's whole walk (the future included), with what each send will do
_PLAN = """
insert into bench.plan
with walked as (
    select
        entries.enrollment_id, entries.flow_id, entries.flow_version, entries.customer_id,
        entries.is_holdout, meta.is_marketing, templates.seq, templates.step_id,
        templates.step_kind, templates.outcome, templates.reason, templates.channel,
        templates.message, templates.variant, templates.template, templates.subject,
        entries.entered_at + templates.offset_s * interval 1 second as effective_at,
        md5(entries.enrollment_id || '|' || templates.step_id) as message_id,
        unit(entries.enrollment_id || templates.step_id) as u
    from bench.entries as entries
    inner join bench.flow_meta as meta on meta.flow_id = entries.flow_id
    inner join bench.templates as templates
        on templates.flow_id = entries.flow_id
        and entries.pick >= templates.lo and entries.pick < templates.hi
    where not entries.is_refused and entries.entered_at > $lo and entries.entered_at < $hi
),
skips as (
    select
        *,
        case
            when message is distinct from 'message' or is_holdout then null
            when not is_marketing then case when u < 0.02 then 'no_address' end
            when u < (case channel when 'sms' then 0.45 else 0.12 end) then 'consent'
            when u < (case channel when 'sms' then 0.49 else 0.16 end) then 'no_address'
            when u < (case channel when 'sms' then 0.55 else 0.22 end) then 'smart_sending'
            when u < (case channel when 'sms' then 0.58 else 0.25 end) then 'frequency_cap'
            when u < (case channel when 'sms' then 0.59 else 0.26 end) then 'unsubscribed'
            when u < (case channel when 'sms' then 0.60 else 0.27 end) then 'suppressed'
            when u < (case channel when 'sms' then 0.605 else 0.275 end) then 'stale'
        end as skip_reason,
        unit(message_id || 'd') as v
    from walked
)
select
    enrollment_id, flow_id, flow_version, customer_id, seq, step_id, step_kind, effective_at,
    tick(effective_at) as decided_at,
    case
        when (message is not null or step_kind = 'action') and is_holdout then 'held_out'
        when skip_reason is not null then 'skipped'
        else outcome
    end as outcome,
    coalesce(skip_reason, reason) as reason,
    case when message is not null then message_id end as detail,
    case when message is not null then message_id end as message_id,
    message, channel, variant, template, subject, is_marketing,
    case
        when message is null then null
        when is_holdout then 'held_out'
        when skip_reason is not null then 'skipped'
        when message = 'action' then 'sent'
        when v < 0.01 then 'rechecked'
        when v < 0.95 then 'delivered'
        when v < 0.97 then 'bounced'
        when v < 0.98 then 'failed'
        else 'sent'
    end as status,
    v
from skips
union all
select
    enrollment_id, flow_id, flow_version, customer_id, 0, '_entry', 'entry', entered_at,
    enrolled_at_tick, 'enrolled', case when is_holdout then 'holdout' else 'treatment' end,
    trigger_event_id, null, null, null, null, null, null, null, null, null
from bench.entries
where not is_refused and entered_at > $lo and entered_at < $hi
"""

_DECISIONS = """
insert into flowhouse.decisions (
    decision_id, enrollment_id, flow_id, flow_version, customer_id, step_id, step_kind,
    effective_at, decided_at, outcome, reason, detail
)
select
    md5(enrollment_id || '|' || step_id || '|' || step_kind), enrollment_id, flow_id, flow_version,
    customer_id, step_id, step_kind, effective_at, decided_at, outcome, reason, detail
from bench.plan
where decided_at > $lo and decided_at <= $hi
union all
select
    md5(message_id || '|check'), enrollment_id, flow_id, flow_version, customer_id, step_id,
    'send_check', decided_at, decided_at, 'skipped', 'smart_sending', message_id
from bench.plan
where status = 'rechecked' and decided_at > $lo and decided_at <= $hi
union all
select
    md5(enrollment_id || '|_entry|entry'), enrollment_id, flow_id, flow_version, customer_id,
    '_entry', 'entry', entered_at, enrolled_at_tick, 'refused', refused_reason, customer_id
from bench.entries
where is_refused and enrolled_at_tick > $lo and enrolled_at_tick <= $hi
"""

_MESSAGES = """
insert into flowhouse.messages (
    message_id, enrollment_id, flow_id, flow_version, step_id, customer_id, channel, kind,
    is_marketing, variant, template, subject, destination, due_at, queued_at, status, skip_reason,
    updated_at, claim_id, claimed_at, attempts, provider, provider_message_id, sent_at,
    delivered_at, failure_reason
)
with sent as (
    select
        *,
        status in ('delivered', 'bounced', 'sent', 'failed') as went_out,
        status in ('delivered', 'bounced', 'sent') as accepted,
        case channel when 'email' then 'sendgrid' when 'sms' then 'twilio'
            when 'audience_sync' then 'audience' else 'webhook' end as route,
        decided_at + cast(v * 240 as integer) * interval 1 second as sent_at
    from bench.plan
    where message is not null and decided_at > $lo and decided_at <= $hi
)
select
    message_id, enrollment_id, flow_id, flow_version, step_id, customer_id, channel, message,
    is_marketing, variant, template, subject,
    case when went_out then route end,
    effective_at,
    decided_at,
    case status when 'rechecked' then 'skipped' else status end,
    case status when 'rechecked' then 'smart_sending' when 'skipped' then reason end,
    case
        when status = 'delivered' then sent_at + interval 90 second
        when status = 'bounced' then sent_at + interval 60 second
        when went_out then sent_at
        else decided_at
    end,
    case when went_out then md5(flow_id || step_id || decided_at) end,
    case when went_out then decided_at end,
    case when went_out then 1 end,
    case when went_out then route end,
    case when accepted then md5(message_id || 'p') end,
    case when accepted then sent_at end,
    case when status = 'delivered' and message = 'message' then sent_at + interval 90 second end,
    case when status = 'failed' then 'invalid destination' end
from sent
"""

_ATTEMPTS = """
insert into flowhouse.send_attempts (
    message_id, attempt, claim_id, provider, started_at, milliseconds, status_code, outcome,
    reason, provider_message_id
)
select
    message_id, 1, claim_id, provider, claimed_at, 40.0,
    case status when 'failed' then 400 else 202 end,
    case status when 'failed' then 'failed' else 'sent' end,
    failure_reason, provider_message_id
from flowhouse.messages
where claim_id is not null and queued_at > $lo and queued_at <= $hi
"""

# the state at $hi of every enrollment that entered or moved in ($lo, $hi]
_ENROLLMENTS = (
    """
create or replace temp table moved as
select
    enrollment_id,
    max(decided_at) filter (where decided_at <= $hi) as updated_at_tick,
    arg_max(step_id, seq) filter (where decided_at <= $hi) as last_step,
    arg_max(step_kind, seq) filter (where decided_at <= $hi) as last_kind,
    arg_max(outcome, seq) filter (where decided_at <= $hi) as last_outcome,
    arg_max(reason, seq) filter (where decided_at <= $hi) as last_reason,
    max(effective_at) filter (where decided_at <= $hi) as last_at,
    arg_min(step_id, seq) filter (where decided_at > $hi) as next_step,
    min(effective_at) filter (where decided_at > $hi) as next_at,
    arg_max(reason, seq) filter (where decided_at <= $hi and step_kind = 'split') as variant
from bench.plan
where enrollment_id in (
    select enrollment_id from bench.plan where decided_at > $lo and decided_at <= $hi
)
group by enrollment_id
""",
    "delete from flowhouse.enrollments where enrollment_id in (select enrollment_id from moved)",
    """
insert into flowhouse.enrollments (
    enrollment_id, flow_id, flow_version, customer_id, trigger_event_id, trigger_type,
    trigger_properties, entry_key, entered_at, enrolled_at_tick, is_holdout, variant, status,
    step_id, step_started_at, due_at, arrived_at_tick, checked_at_tick, ended_at, end_reason,
    updated_at_tick
)
select
    entries.enrollment_id, entries.flow_id, entries.flow_version, entries.customer_id,
    entries.trigger_event_id, entries.trigger_type, entries.trigger_properties, entries.entry_key,
    entries.entered_at, entries.enrolled_at_tick, entries.is_holdout, moved.variant,
    case when moved.last_outcome = 'exited' then 'exited'
        when moved.last_kind = 'end' then 'completed' else 'active' end,
    case when moved.last_outcome = 'exited' then moved.last_step
        when moved.last_kind = 'end' then null else moved.next_step end,
    moved.last_at,
    coalesce(moved.next_at, moved.last_at),
    tick(moved.last_at),
    null,
    case when moved.last_outcome = 'exited' or moved.last_kind = 'end' then moved.last_at end,
    case when moved.last_outcome = 'exited' then moved.last_reason
        when moved.last_kind = 'end' then 'completed' end,
    moved.updated_at_tick
from moved
inner join bench.entries as entries on entries.enrollment_id = moved.enrollment_id
""",
)

# what providers reported back, landed in raw.events within ($lo, $hi]
_ENGAGEMENT = """
insert into raw.events (event_id, customer_id, event_type, occurred_at, loaded_at, properties)
with delivered as (
    select
        *,
        unit(message_id || 'o') as o,
        delivered_at + cast(unit(message_id || 't') * 72000 as integer) * interval 1 second
            as opened_at
    from flowhouse.messages
    where kind = 'message' and status in ('delivered', 'bounced')
        and coalesce(delivered_at, sent_at) > cast($lo as timestamp) - interval 3 day
),
reported as (
    select message_id, customer_id, channel, flow_id, step_id, provider,
        'message_delivered' as event_type, delivered_at as occurred_at
    from delivered where status = 'delivered'
    union all
    select message_id, customer_id, channel, flow_id, step_id, provider,
        'message_bounced', sent_at + interval 60 second
    from delivered where status = 'bounced'
    union all
    select message_id, customer_id, channel, flow_id, step_id, provider,
        'message_opened', opened_at
    from delivered where status = 'delivered' and channel = 'email' and o < 0.30
    union all
    select message_id, customer_id, channel, flow_id, step_id, provider,
        'message_clicked',
        case channel when 'email' then opened_at + interval 3 minute else opened_at end
    from delivered
    where status = 'delivered' and o < (case channel when 'email' then 0.05 else 0.08 end)
    union all
    select message_id, customer_id, channel, flow_id, step_id, provider,
        'unsubscribed', opened_at + interval 5 minute
    from delivered where status = 'delivered' and channel = 'email' and o >= 0.298 and o < 0.30
)
select
    md5(message_id || '|' || event_type), customer_id, event_type, occurred_at,
    tick(occurred_at),
    json_object('channel', channel, 'message_id', message_id, 'flow_id', flow_id,
        'step_id', step_id, 'provider', provider)
from reported
where tick(occurred_at) > $lo and tick(occurred_at) <= $hi
"""


_STEPS = (_PLAN, _DECISIONS, _MESSAGES, _ATTEMPTS, *_ENROLLMENTS, _ENGAGEMENT)

_VOLUMES = """
select
    (select count(*) from flowhouse.enrollments),
    (select count(*) from flowhouse.decisions),
    (select count(*) from flowhouse.messages),
    (select count(*) from flowhouse.send_attempts),
    (select count(*) from raw.events where event_type in ('message_delivered', 'message_opened',
        'message_clicked', 'message_bounced')
        or (event_type = 'unsubscribed' and properties ->> 'message_id' is not null))
"""
_VOLUME_NAMES = ("enrollments", "decisions", "messages", "send attempts", "engagement events")


def synthesize(warehouse: str, lo: datetime, hi: datetime, lay_out: bool) -> None:
    """Flow history for the triggers in (lo, hi) and everything decided or reported in (lo, hi];
    with `lay_out` (the first call), the bench schema and the library's templates first."""
    flows = library()
    with duckdb.connect(warehouse) as con:
        con.execute(_MACROS)
        if lay_out:
            _lay_out(con, flows)
        for text in (entries_sql(flows), *_STEPS):
            con.execute(text, {k: v for k, v in (("lo", lo), ("hi", hi)) if f"${k}" in text})


def _lay_out(con: duckdb.DuckDBPyConnection, flows: Sequence[CompiledFlow]) -> None:
    con.execute(_SETUP)
    con.executemany(
        f"insert into bench.templates values ({', '.join('?' * 15)})", template_rows(flows)
    )
    con.executemany("insert into bench.flow_meta values (?, ?, ?, ?, ?, ?)", meta_rows(flows))
    for table in ("enrollments", "decisions", "messages", "send_attempts"):
        con.execute(f"delete from flowhouse.{table}")


def volumes(warehouse: str) -> tuple[int, ...]:
    with duckdb.connect(warehouse, read_only=True) as con:
        row = con.execute(_VOLUMES).fetchone()
    assert row is not None
    return tuple(row)


def where_time_went(since: datetime) -> str | None:
    """Seconds per mart, from dbt's run_results.json when the last dbt run there was this one."""
    try:
        data = json.loads(RUN_RESULTS.read_text())
        at = datetime.fromisoformat(data["metadata"]["generated_at"])
        took = {r["unique_id"].split(".")[-1]: float(r["execution_time"]) for r in data["results"]}
    except (OSError, ValueError, KeyError):
        return None
    if at < since or set(took) != set(MARTS):
        return None
    return ", ".join(
        f"{m} {took[m]:.1f}" for m in sorted(MARTS, key=took.__getitem__, reverse=True)
    )


def mart_rows(warehouse: str) -> str:
    with duckdb.connect(warehouse, read_only=True) as con:
        counts = [(m, con.execute(f"select count(*) from marts.{m}").fetchone()) for m in MARTS]
    return ", ".join(f"{m} {row[0]:,}" for m, row in counts if row is not None)


# -- the run -----------------------------------------------------------------------------------


def main() -> None:
    args = parse_args()
    if args.synthesize:
        lo, hi = (datetime.fromisoformat(at) for at in args.synthesize)
        synthesize(args.warehouse, lo, hi, args.lay_out)
        return
    workdir = Path(tempfile.mkdtemp(prefix="flowhouse-bench-marts-", dir=args.dir))
    try:
        run_all(args, str(workdir / "store.duckdb"))
    finally:
        if not args.keep:
            shutil.rmtree(workdir, ignore_errors=True)


def timed(label: str, command: list[str]) -> None:
    wall, peak = measure(command)
    print(f"{label + ':':50s} {wall:7.1f} s, {peak:7,.0f} MB")


def flow_history(warehouse: str, lo: datetime, hi: datetime, lay_out: bool = False) -> None:
    """Synthesize the flows' activity in (lo, hi] in a child process (so that its memory is its
    own); print what it added."""
    before = volumes(warehouse)
    command = [sys.executable, __file__, "--synthesize", lo.isoformat(), hi.isoformat()]
    command += ["--warehouse", warehouse, *(["--lay-out"] if lay_out else [])]
    timed(f"flow activity {lo:%m-%d %H:%M} -> {hi:%m-%d %H:%M} (SQL)", command)
    added = [after - prior for after, prior in zip(volumes(warehouse), before, strict=True)]
    print("  " + ", ".join(f"{name} +{n:,}" for name, n in zip(_VOLUME_NAMES, added, strict=True)))


def run_all(args: argparse.Namespace, warehouse: str) -> None:
    flowhouse = str(Path(sys.executable).with_name("flowhouse"))
    end = START + timedelta(days=args.days)

    def step(label: str, *cli: str) -> None:
        timed(label, [flowhouse, *cli, "--warehouse", warehouse])

    print(f"# {platform.machine()}, {args.customers:,} customers / {args.days} days")
    step("generate", "generate", "--customers", str(args.customers), "--days", str(args.days))
    first = end - timedelta(hours=1)
    for at in (START, first - timedelta(days=3), first):  # see the module's docstring
        step(f"build as of {at:%Y-%m-%d %H:%M}", "build", "--skip-tests", "--now", at.isoformat())
    step("tick: the flow library goes live", "tick", "--no-build", "--no-send",
         "--flows", str(ROOT / "flows" / "library"), "--now", START.isoformat())  # fmt: skip
    flow_history(warehouse, START, first, lay_out=True)

    def marts(label: str, *extra: str) -> None:
        started = datetime.now(UTC)
        step(label, "build", "-s", "tag:marts", "--skip-tests", *extra)
        took = where_time_went(started)
        if took:
            print(f"  seconds per mart: {took}")

    marts("(a) marts, first build (all in full)")
    marts("(b) marts, nothing new (lookback only)")
    a_day_later(step, warehouse, end)
    marts("(c) marts, incremental after a day")
    if args.test:
        check(flowhouse, warehouse, "after the incremental build")
    marts("(d) marts, --full-refresh", "--full-refresh")
    if args.test:
        check(flowhouse, warehouse, "after the full refresh")
    print(f"mart rows: {mart_rows(warehouse)}")
    print(f"reproduce: python benchmarks/marts.py --customers {args.customers} --days {args.days}")


def a_day_later(step: Callable[..., None], warehouse: str, end: datetime) -> None:
    """The store's next day lands, the upstream models are refreshed (as of an hour before the
    day's last tick, so that the segment and tier changes they stamp are triggers of the day),
    and the flows run through the day."""
    next_day = end + timedelta(days=1)
    step("a day passes: generate --continue-until", "generate", "--continue-until",
         next_day.isoformat())  # fmt: skip
    last_tick = next_day - timedelta(hours=1)
    refresh = last_tick - timedelta(hours=1)
    step("  upstream models (stg_orders, events)", "build", "--skip-tests", "--now",
         refresh.isoformat(), "-s", "+events", "-s", "+stg_orders")  # fmt: skip
    flow_history(warehouse, end - timedelta(hours=1), last_tick)


def check(flowhouse: str, warehouse: str, when: str) -> None:
    """`flowhouse build -s tag:marts` with the marts' tests; stop the benchmark if one fails."""
    command = [flowhouse, "build", "-s", "tag:marts", "--warehouse", warehouse]
    done = subprocess.run(command, capture_output=True, text=True, check=False)
    last = (done.stdout + done.stderr).strip().splitlines()[-1:]
    print(f"  marts' tests {when}: {'pass' if done.returncode == 0 else 'FAIL'} ({' '.join(last)})")
    if done.returncode != 0:
        sys.exit(f"failed: {shlex.join(command)}\n{done.stdout}\n{done.stderr}")


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--customers", type=int, default=1_000_000)
    parser.add_argument("--days", type=int, default=30)
    parser.add_argument("--test", action="store_true", help="also run the marts' data tests")
    parser.add_argument("--dir", default=None, help="where to put the temporary warehouse")
    parser.add_argument("--keep", action="store_true")
    # the child process that synthesizes flow activity
    parser.add_argument("--synthesize", nargs=2, metavar=("LO", "HI"), help=argparse.SUPPRESS)
    parser.add_argument("--warehouse", help=argparse.SUPPRESS)
    parser.add_argument("--lay-out", action="store_true", help=argparse.SUPPRESS)
    return parser.parse_args()


if __name__ == "__main__":
    main()
