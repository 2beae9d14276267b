"""Where a customer is in a flow, and every decision on the way, with its reason in plain words.

``flowhouse status FLOW --customer ID`` answers the question support and marketers ask most: "why
didn't she get the e-mail?". :func:`customer_status` reads, for one flow and one customer, the
enrollments, the journal (``flowhouse.decisions``), the outbox (``flowhouse.messages``), the send
attempts and the engagement written back to ``raw.events``, in a handful of set-based queries (one
per table, never one per decision), and explains every token (``consent``, ``reentry``,
``order_placed``, ...) in words. :func:`render_text` and :func:`render_json` print the same facts
for people and for support tooling. Addresses are masked (``j***@example.com``, ``+1******1234``).
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field
from datetime import datetime, timedelta
from itertools import pairwise
from typing import Any

from sqlglot import exp

from flowhouse.core.errors import ConfigError
from flowhouse.core.lanes import LaneRun, lane_states
from flowhouse.core.sql import STATE_SCHEMA, literal, render, statement
from flowhouse.core.warehouse import Location, Warehouse
from flowhouse.flows.channels import CHANNELS as REGISTRY
from flowhouse.orchestration.engine.enroll import FAN_OUT_TYPES

Spec = Mapping[str, Any]
Row = tuple[Any, ...]

# -- the queries ----------------------------------------------------------------------------------

_FLOW = """
select f.flow_id, f.name, f.version, f.went_live_at, f.removed_at, v.version, v.spec
from flowhouse.flows as f
left join flowhouse.flow_versions as v on v.flow_id = f.flow_id
where f.flow_id = :flow_id
"""

_FLOW_IDS = "select flow_id from flowhouse.flows order by flow_id"

#: Where a customer can be known from, when the table exists: (schema, table).
_CUSTOMER_SOURCES = (("core", "customer_attributes"), ("raw", "customers"))

_ENROLLMENTS = """
select e.enrollment_id, e.flow_version, e.trigger_type, e.trigger_event_id, e.entered_at,
    e.entry_key, e.is_holdout, e.status, e.step_id, s.kind, e.due_at, e.ended_at, e.end_reason
from flowhouse.enrollments as e
left join flowhouse.steps as s on s.flow_id = e.flow_id and s.step_id = e.step_id
where e.flow_id = :flow_id and e.customer_id = :customer_id
order by e.entered_at, e.enrollment_id
"""

_DECISIONS = """
select d.enrollment_id, d.flow_version, d.step_id, d.step_kind, d.effective_at, d.decided_at,
    d.outcome, d.reason, d.detail
from flowhouse.decisions as d
left join flowhouse.steps as s on s.flow_id = d.flow_id and s.step_id = d.step_id
where d.flow_id = :flow_id and d.customer_id = :customer_id
order by d.effective_at, d.decided_at,
    case d.step_id when '_entry' then 0 when '_end' then 2 else 1 end,
    coalesce(s.position, -1),
    case when d.step_kind = 'send_check' then 1 else 0 end,
    d.decision_id
"""

_MESSAGES = """
select m.enrollment_id, m.step_id, m.message_id, m.channel, m.kind, m.address, m.subject,
    m.template, m.destination, m.status, m.skip_reason, m.failure_reason, m.due_at, m.sent_at,
    m.delivered_at, m.provider, coalesce(a.attempts, 0) as attempts
from flowhouse.messages as m
left join (
    select message_id, count(*) as attempts from flowhouse.send_attempts
    where message_id in (
        select message_id from flowhouse.messages
        where flow_id = :flow_id and customer_id = :customer_id
    )
    group by message_id
) as a on a.message_id = m.message_id
where m.flow_id = :flow_id and m.customer_id = :customer_id
"""

_ENGAGEMENT = """
select m.message_id, ev.event_type, min(ev.occurred_at) as first_at
from raw.events as ev
join flowhouse.messages as m on m.message_id = json_text(ev.properties, 'message_id')
where ev.customer_id = :customer_id
    and ev.event_type in ('message_delivered', 'message_opened', 'message_clicked',
        'message_bounced', 'message_complained', 'unsubscribed')
    and m.flow_id = :flow_id and m.customer_id = :customer_id
group by m.message_id, ev.event_type
"""

_TRIGGER_EVENTS = """
select count(*) from core.events
where customer_id = :customer_id and event_type = :event_type
"""

# -- the words ------------------------------------------------------------------------------------

#: A channel named in a sentence.
CHANNELS = {c.name: c.noun for c in REGISTRY.values()}

SKIPS = {
    "no_address": "no address for this channel (no {channel} address on file)",
    "consent": "no marketing consent for {channel}: the customer has not opted in",
    "unsubscribed": "the customer unsubscribed from {channel}",
    "suppressed": "suppressed: the address bounced hard or complained before, or one of the "
    "flow's suppression rules (such as a recent refund or an open support ticket) matched",
    "stale": "stale: it was due longer ago than the flow's maximum lateness ({lateness}) when "
    "it was decided, so it was dropped rather than sent late",
    "frequency_cap": "a frequency cap was reached: the customer already got as many marketing "
    "messages in the cap's window as allowed",
    "smart_sending": "smart sending: the customer got another marketing message on {channel} "
    "shortly before",
    "quiet_hours": "due in the customer's quiet hours, with no allowed time to move it to",
    "discount_active": "the customer already holds an active discount (one at a time)",
    "coupon_pool_empty": "the coupon pool had no free code left",
}

REFUSALS = {
    "paused": "the flow was paused when the trigger came; triggers while paused do not enroll",
    "audience": "the customer was not in the flow's audience when the trigger happened",
    "reentry": "the re-entry policy ({reentry}) does not allow another enrollment yet",
    "concurrency": "an earlier enrollment in this flow was still active, and the flow does not "
    "run two at once for a customer",
    "before_live": "the trigger happened before the flow went live ({live}); past triggers do "
    "not enroll",
    "duplicate_key": "an enrollment with the same entry key ({key}) already exists",
}

EXITS = {
    "exit_condition": "the flow's exit condition was met{exit_where}",
    "filter": "the flow filter{filter} no longer held before a send",
    "step_removed": "the step it was on was removed by a new version of the flow",
    "flow_removed": "the flow was removed",
    "no_date": "the date the wait counts to is missing for this customer",
    "completed": "reached the end of the flow",
}

OUTCOMES = {
    "waited": "waited: the wait ended at this time",
    "event_received": "the awaited event arrived",
    "timed_out": "timed out: the awaited event did not come before the deadline",
    "queued": "queued in the outbox",
    "applied": "applied: the action was written to the warehouse",
    "held_out": "held out: the customer is in the holdout group, so no message was sent",
    "completed": "completed: reached the end of the flow",
}

STATUSES = {
    "queued": "queued, not sent yet",
    "claimed": "being sent",
    "sending": "being sent",
    "sent": "sent, delivery not confirmed yet",
    "bounced": "bounced",
    "failed": "failed",
    "unconfirmed": "unconfirmed: the provider did not say whether it was sent; the next send "
    "run looks it up instead of sending it again",
    "held_out": "held out: not sent (holdout group)",
}


# -- the facts ------------------------------------------------------------------------------------


@dataclass
class Message:
    """One outbox row, with its delivery and the first time of each kind of engagement."""

    message_id: str
    channel: str
    kind: str
    address: str | None
    subject: str | None
    template: str | None
    destination: str | None
    status: str
    skip_reason: str | None
    failure_reason: str | None
    due_at: datetime
    sent_at: datetime | None
    delivered_at: datetime | None
    provider: str | None
    attempts: int
    engagement: dict[str, datetime] = field(default_factory=dict)
    explanation: str = ""


@dataclass
class Decision:
    step_id: str
    step_kind: str
    effective_at: datetime
    decided_at: datetime
    outcome: str
    reason: str | None
    explanation: str
    message: Message | None = None


@dataclass
class Trigger:
    event_type: str
    event_id: str
    occurred_at: datetime
    entry_key: str | None = None


@dataclass
class Enrollment:
    enrollment_id: str
    flow_version: str
    trigger: Trigger
    group: str  # treatment | holdout
    arms: dict[str, str]  # split step -> arm
    status: str
    step_id: str | None
    step_kind: str | None
    due_at: datetime | None
    ended_at: datetime | None
    end_reason: str | None
    state: str  # the state now, in words
    decisions: list[Decision] = field(default_factory=list)


@dataclass
class Refusal:
    """A trigger that did not enroll (journaled on ``_entry`` with outcome ``refused``)."""

    trigger: Trigger
    decided_at: datetime
    reason: str
    explanation: str


@dataclass
class FlowFacts:
    flow_id: str
    name: str
    version: str
    trigger_event: str
    trigger_where: str | None
    went_live_at: datetime
    removed_at: datetime | None


@dataclass
class CustomerStatus:
    """Everything :func:`render_text` and :func:`render_json` print."""

    flow: FlowFacts
    customer_id: str
    enrollments: list[Enrollment]
    refused_triggers: list[Refusal]
    #: Set when the customer never triggered the flow: why, in words.
    never_triggered: str | None = None


# -- reading --------------------------------------------------------------------------------------


def status_at(location: Location, flow_id: str, customer_id: str) -> CustomerStatus:
    """:func:`customer_status` on the warehouse at `location` (it writes nothing)."""
    if location.path is not None and not location.path.exists():
        raise ConfigError("no warehouse at this location", value=str(location))
    with Warehouse.open(location) as wh:
        return customer_status(wh, flow_id, customer_id)


def customer_status(
    wh: Warehouse, flow_id: str, customer_id: str, schema: str = STATE_SCHEMA
) -> CustomerStatus:
    """The customer's enrollments, refused triggers and decisions in the flow `flow_id`.

    Raises :class:`ConfigError` for a flow that was never deployed (naming the deployed ones) or
    a customer the warehouse does not know."""
    q = _Queries(wh, schema, flow_id, customer_id)
    flow, specs = _flow(q)
    _check_customer(q)
    messages = _messages(q, specs.get(flow.version, {}))
    decisions = q.rows(_DECISIONS)
    enrollments = [_enrollment(r, specs) for r in q.rows(_ENROLLMENTS)]
    refusals = _attach(enrollments, decisions, messages, specs, flow)
    found = CustomerStatus(flow, customer_id, enrollments, refusals)
    if not enrollments and not refusals:
        found.never_triggered = _never_triggered(q, flow)
    return found


@dataclass(frozen=True)
class _Queries:
    """The statements of one status call, bound to its flow and customer."""

    wh: Warehouse
    schema: str
    flow_id: str
    customer_id: str

    def tree(self, text: str, **values: Any) -> exp.Expr:
        return statement(
            text, self.schema, flow_id=self.flow_id, customer_id=self.customer_id, **values
        )

    def rows(self, text: str, **values: Any) -> list[Row]:
        return self.run(self.tree(text, **values))

    def run(self, tree: exp.Expr) -> list[Row]:
        return self.wh.query(render(tree, self.wh.dialect))

    def customer_in(self, table: str) -> exp.Select:
        """``select customer_id from table where customer_id = :customer_id``."""
        match = exp.column("customer_id").eq(literal(self.customer_id))
        return exp.select("customer_id").from_(exp.to_table(table)).where(match)

    def exists(self, schema: str, table: str) -> bool:
        return self.wh.table_exists(schema, table)


def _flow(q: _Queries) -> tuple[FlowFacts, dict[str, Spec]]:
    if not q.exists(q.schema, "flows"):
        raise ConfigError("no flow has been deployed in this warehouse yet (flowhouse tick does)")
    rows = q.rows(_FLOW)
    if not rows:
        known = ", ".join(r[0] for r in q.rows(_FLOW_IDS)) or "none deployed"
        raise ConfigError("unknown flow", value=q.flow_id, expected=f"one of: {known}")
    specs = {r[5]: json.loads(r[6]) for r in rows if r[5] is not None}
    flow_id, name, version, live, removed = rows[0][:5]
    trigger = specs.get(version, {}).get("trigger", {})
    facts = FlowFacts(
        flow_id, name, version, trigger.get("event", "?"), trigger.get("where"), live, removed
    )
    return facts, specs


def _check_customer(q: _Queries) -> None:
    """A customer is known from the customer tables or from the journal of any flow."""
    tables = [f"{s}.{t}" for s, t in _CUSTOMER_SOURCES if q.exists(s, t)]
    tables.append(f"{q.schema}.decisions")
    union: exp.Query = q.customer_in(tables[0])
    for table in tables[1:]:
        union = exp.union(union, q.customer_in(table), distinct=False)
    found = q.run(exp.select("count(*)").from_(exp.paren(union).as_("known")))
    if not found or not found[0][0]:
        raise ConfigError(
            "unknown customer",
            value=q.customer_id,
            expected="a customer id of core.customer_attributes or raw.customers",
        )


def _messages(q: _Queries, spec: Spec) -> dict[tuple[str, str], Message]:
    found = {(r[0], r[1]): Message(*r[2:]) for r in q.rows(_MESSAGES)}
    if found and q.exists("raw", "events"):
        by_id = {m.message_id: m for m in found.values()}
        for message_id, event_type, first_at in q.rows(_ENGAGEMENT):
            by_id[message_id].engagement[event_type] = first_at
    for m in found.values():
        m.address = mask_address(m.address)
        m.engagement = dict(sorted(m.engagement.items(), key=lambda kv: kv[1]))
        m.explanation = explain_message(m, spec)
    return found


def _enrollment(row: Row, specs: Mapping[str, Spec]) -> Enrollment:
    (enrollment_id, version, trigger_type, event_id, entered_at, key, holdout, status, step_id,
     step_kind, due_at, ended_at, end_reason) = row  # fmt: skip
    found = Enrollment(
        enrollment_id, version, Trigger(trigger_type, event_id, entered_at, key),
        "holdout" if holdout else "treatment", {}, status, step_id, step_kind, due_at, ended_at,
        end_reason, "",
    )  # fmt: skip
    found.state = explain_state(found, specs.get(version, {}))
    return found


def _attach(
    enrollments: list[Enrollment],
    decisions: Sequence[Row],
    messages: Mapping[tuple[str, str], Message],
    specs: Mapping[str, Spec],
    flow: FlowFacts,
) -> list[Refusal]:
    """Hang each decision (and its message) on its enrollment; return the refused triggers."""
    by_id = {e.enrollment_id: e for e in enrollments}
    refusals: list[Refusal] = []
    for row in decisions:
        enrollment_id, version, step_id, kind, effective, decided, outcome, reason, detail = row
        spec = specs.get(version, {})
        if outcome == "refused":
            trigger = Trigger(spec.get("trigger", {}).get("event", flow.trigger_event),
                              detail, effective)  # fmt: skip
            refusals.append(Refusal(trigger, decided, reason, explain_refusal(reason, spec, flow)))
            continue
        words = explain_decision(kind, outcome, reason, spec, _channel(messages, row))
        decision = Decision(step_id, kind, effective, decided, outcome, reason, words)
        if kind in ("send", "action") and outcome in ("queued", "held_out", "skipped"):
            decision.message = messages.get((enrollment_id, step_id))
        if enrollment_id in by_id:
            _append(by_id[enrollment_id], decision)
    return refusals


def _append(e: Enrollment, d: Decision) -> None:
    """Add `d` to the enrollment's timeline. A send or action is due as soon as it is reached,
    so one that took effect later than the decision before it was moved out of quiet hours."""
    steps = [x for x in e.decisions if x.step_kind != "send_check"]
    before = steps[-1].effective_at if steps else None
    if d.step_kind in ("send", "action") and before is not None and d.effective_at > before:
        d.explanation += f" (reached {_when(before)}, moved out of quiet hours)"
    if d.step_kind == "split" and d.reason is not None:
        e.arms[d.step_id] = d.reason
    e.decisions.append(d)


def _channel(messages: Mapping[tuple[str, str], Message], row: Row) -> str | None:
    found = messages.get((row[0], row[2]))
    return found.channel if found else None


def _never_triggered(q: _Queries, flow: FlowFacts) -> str:
    words = f"{q.customer_id} has never triggered {flow.flow_id}: no {flow.trigger_event} event"
    words += " of theirs was considered by a tick (nothing journaled)."
    if flow.trigger_where:
        words += f" The trigger also requires: {flow.trigger_where}."
    if flow.trigger_event in FAN_OUT_TYPES:
        words += (
            f" {flow.trigger_event} is a catalog event: it reaches the customers who viewed or "
            "carted its product shortly before."
        )
    elif q.exists("core", "events"):
        n = int(q.rows(_TRIGGER_EVENTS, event_type=flow.trigger_event)[0][0])
        words += f" The warehouse holds {n} {flow.trigger_event} event(s) of this customer"
        words += "." if not n else (
            ": none matched the trigger's condition, or no tick has considered them yet."
        )  # fmt: skip
    return words


# -- explaining -----------------------------------------------------------------------------------


def explain_decision(
    kind: str, outcome: str, reason: str | None, spec: Spec, channel: str | None = None
) -> str:
    """One journaled decision in words (starting with its outcome)."""
    if outcome == "enrolled":
        if reason == "holdout":
            return "enrolled in the holdout group: walks the flow but is sent nothing"
        return "enrolled in the treatment group"
    if outcome == "skipped":
        when = " at send time (re-checked right before sending)" if kind == "send_check" else ""
        return f"skipped{when}: {explain_skip(reason, spec, channel)}"
    if outcome == "exited":
        return f"exited: {explain_exit(reason, spec)}"
    if outcome == "branched":
        return f"branched: {_branch(reason)}"
    if outcome == "split":
        return f"split: assigned arm {reason}"
    if kind == "action" and outcome == "held_out":
        return "held out: the customer is in the holdout group, so the action was not taken"
    words = OUTCOMES.get(outcome, outcome)
    return words if reason is None or outcome in OUTCOMES else f"{words} ({reason})"


def _branch(path: str | None) -> str:
    if path == "else":
        return "took the else path: no branch condition matched"
    if path and path.startswith("path_"):
        return f"took path {path.removeprefix('path_')}: its condition was the first to match"
    return f"took path {path}"


def explain_skip(reason: str | None, spec: Spec, channel: str | None = None) -> str:
    template = SKIPS.get(reason or "", f"{reason}")
    return template.format(
        channel=CHANNELS.get(channel or "", channel or "this channel"),
        lateness=spec.get("max_lateness", "the flow's setting"),
    )


def explain_exit(reason: str | None, spec: Spec) -> str:
    if reason not in EXITS:
        return f"a {reason} event after entry ended the enrollment (an exit event of the flow)"
    exit_where = spec.get("exit", {}).get("where")
    return EXITS[reason].format(
        exit_where=f" ({exit_where})" if exit_where else "",
        filter=f" ({_shown(spec['filter'])})" if spec.get("filter") else "",
    )


def _shown(condition: Any) -> str:
    """A filter as written: its predicate, or its object form's fields (``not_segment: vip``)."""
    if not isinstance(condition, dict):
        return str(condition)
    return ", ".join(f"{k}: {v}" for k, v in condition.items() if v is not None)


def explain_refusal(reason: str | None, spec: Spec, flow: FlowFacts) -> str:
    entry = spec.get("entry", {})
    template = REFUSALS.get(reason or "", f"refused ({reason})")
    key = entry.get("key")
    return template.format(
        reentry=_reentry(entry.get("reentry", "once")),
        live=_when(flow.went_live_at),
        key=f"the trigger's {key}" if key else "as named by the flow",
    )


def _reentry(policy: str) -> str:
    if policy == "once":
        return "once: one enrollment per customer, ever"
    if policy.startswith("after "):
        return f"not again within {policy.removeprefix('after ')} of the last entry"
    return policy


def explain_state(e: Enrollment, spec: Spec) -> str:
    """Where the enrollment is now."""
    if e.status == "active":
        step = f"{e.step_id} ({e.step_kind})" if e.step_kind else f"{e.step_id}"
        return f"active: at step {step}, due {_when(e.due_at)}"
    if e.status == "completed":
        return f"completed {_when(e.ended_at)}: reached the end of the flow"
    return f"exited {_when(e.ended_at)} at step {e.step_id}: {explain_exit(e.end_reason, spec)}"


def explain_message(m: Message, spec: Spec) -> str:
    """The message's delivery in words."""
    if m.status == "skipped":
        return f"skipped: {explain_skip(m.skip_reason, spec, m.channel)}"
    words = STATUSES.get(m.status, m.status)
    if m.status in ("bounced", "failed") and m.failure_reason:
        words += f": {_EMAIL.sub(lambda found: mask_address(found[0]) or '', m.failure_reason)}"
    return words


# -- masking --------------------------------------------------------------------------------------


_EMAIL = re.compile(r"[\w.+-]+@[\w-]+(\.[\w-]+)+")


def mask_address(address: str | None) -> str | None:
    """An e-mail address or phone number with most of it hidden: ``j***@example.com``,
    ``+1******1234``. Other addresses (a customer id for push, a URL) are shown as they are."""
    if not address:
        return address
    if "@" in address:
        local, _, domain = address.rpartition("@")
        return f"{local[:1]}***@{domain}"
    digits = sum(c.isdigit() for c in address)
    if digits >= 7 and all(c.isdigit() or c in "+-() ." for c in address):
        keep = 2 if address.startswith("+") else 1
        hidden = len(address) - keep - 4
        return address[:keep] + "*" * max(hidden, 0) + address[-4:]
    return address


# -- rendering ------------------------------------------------------------------------------------


def render_json(status: CustomerStatus) -> str:
    """The status as JSON: timestamps in ISO 8601 (UTC, no offset)."""
    return json.dumps(asdict(status), indent=2, default=_iso)


def _iso(value: Any) -> str:
    if isinstance(value, datetime):
        return value.isoformat()
    raise TypeError(f"not serialisable: {type(value).__name__}")


def _when(value: datetime | None) -> str:
    if value is None:
        return "-"
    return f"{value:%Y-%m-%d %H:%M}" + (f":{value:%S}" if value.second else "")


def render_text(status: CustomerStatus) -> str:
    """The status for people: the flow, then each trigger in time order with its decisions."""
    lines = _header(status)
    if status.never_triggered:
        return "\n".join([*lines, "", status.never_triggered])
    n = len(status.enrollments)
    entries = [(e.trigger.occurred_at, 0, _enrollment_lines(e, i, n))
               for i, e in enumerate(status.enrollments, 1)]  # fmt: skip
    entries += [(r.trigger.occurred_at, 1, _refusal_lines(r)) for r in status.refused_triggers]
    for _, _, block in sorted(entries, key=lambda item: item[:2]):
        lines += ["", *block]
    return "\n".join(lines)


def _header(status: CustomerStatus) -> list[str]:
    f = status.flow
    lines = [f"flow {f.flow_id} ({f.name}), version {f.version}, trigger: {f.trigger_event}"]
    if f.removed_at is not None:
        lines.append(f"  removed {_when(f.removed_at)}")
    lines.append(
        f"customer {status.customer_id}: {len(status.enrollments)} enrollment(s), "
        f"{len(status.refused_triggers)} refused trigger(s)"
    )
    return lines


def _trigger_words(t: Trigger) -> str:
    key = f", entry key {t.entry_key}" if t.entry_key else ""
    return f"{t.event_type} event {t.event_id} at {_when(t.occurred_at)}{key}"


def _refusal_lines(r: Refusal) -> list[str]:
    return [
        f"refused trigger: {_trigger_words(r.trigger)} (decided {_when(r.decided_at)})",
        f"  refused ({r.reason}): {r.explanation}",
    ]


def _enrollment_lines(e: Enrollment, i: int, n: int) -> list[str]:
    arms = "".join(f"; split {step}: arm {arm}" for step, arm in e.arms.items())
    lines = [
        f"enrollment {i} of {n} ({e.enrollment_id}, flow version {e.flow_version})",
        f"  entered on {_trigger_words(e.trigger)}",
        f"  group: {e.group}{arms}",
        f"  now: {e.state}",
        "  timeline (effective at | decided at | step | decision):",
    ]
    width = max((len(_step(d)) for d in e.decisions), default=0)
    for d in e.decisions:
        lines += _decision_lines(d, width)
    return lines


def _step(d: Decision) -> str:
    return f"{d.step_id} ({d.step_kind})"


def _decision_lines(d: Decision, width: int) -> list[str]:
    times = f"{_when(d.effective_at):<19} | {_when(d.decided_at):<19}"
    lines = [f"    {times} | {_step(d):<{width}} | {d.explanation}"]
    if d.message is not None:
        lines += [f"        {line}" for line in message_lines(d.message, d.outcome)]
    return lines


#: Message statuses the decision that made the message already explains.
_DECIDED = ("skipped", "held_out")


def message_lines(m: Message, decided: str | None = None) -> list[str]:
    """A message in a few lines: what, to whom, how it went, what the customer did with it (the
    status in words unless the decision, `decided`, already said it)."""
    what = f'"{m.subject}" ' if m.subject else ""
    what += f"({m.template})" if m.template else ""
    to = m.address or m.destination or "-"
    lines = [f"{CHANNELS.get(m.channel, m.channel)} {m.kind} {m.message_id} to {to}: {what}"]
    said = m.explanation == m.status or (m.status == decided and m.status in _DECIDED)
    lines.append(f"status {m.status}" if said else f"status {m.status}: {m.explanation}")
    if m.status not in ("skipped", "held_out"):
        lines.append(
            f"due {_when(m.due_at)}, sent {_when(m.sent_at)}, delivered {_when(m.delivered_at)}"
            f", provider {m.provider or '-'}, {m.attempts} send attempt(s)"
        )
    if m.engagement:
        seen = ", ".join(
            f"{k.removeprefix('message_')} {_when(v)}" for k, v in m.engagement.items()
        )
        lines.append(f"engagement (first of each): {seen}")
    return lines


# -- the refresh lanes (``flowhouse status`` without a flow) --------------------------------------


@dataclass(frozen=True)
class LaneLine:
    """One lane as ``flowhouse status`` shows it."""

    lane: str
    last_success: datetime | None
    age: timedelta | None
    #: How often the lane should run: the setting (enrichment), the cadence of its recent runs
    #: (fast); None when unknown or never.
    interval: timedelta | None
    stale: bool
    note: str
    last_failure: LaneRun | None


def lane_lines(
    location: Location, enrichment_every: timedelta | None, now: datetime
) -> list[LaneLine]:
    """Each lane's last success, its age at `now`, whether it is stale (older than twice its
    interval) and its last run when that failed."""
    if location.path is not None and not location.path.exists():
        raise ConfigError("no warehouse at this location", value=str(location))
    with Warehouse.open(location) as wh:
        states = lane_states(wh)
    out = []
    for name, state in states.items():
        interval = enrichment_every if name == "enrichment" else _cadence(state.recent)
        age = now - state.last_success if state.last_success is not None else None
        stale = age is None or (interval is not None and age > 2 * interval)
        failed = state.last_run if state.last_run and not state.last_run.ok else None
        out.append(
            LaneLine(
                name,
                state.last_success,
                age,
                interval,
                stale,
                _note(name, enrichment_every, interval),
                failed,
            )
        )
    return out


def _cadence(recent: Sequence[datetime]) -> timedelta | None:
    """The median gap between a lane's recent successful runs (None with fewer than two)."""
    gaps = sorted(a - b for a, b in pairwise(recent) if a > b)
    return gaps[len(gaps) // 2] if gaps else None


def _note(lane: str, every: timedelta | None, interval: timedelta | None) -> str:
    if lane == "fast":
        cadence = f"about every {_span(interval)}" if interval else "cadence unknown yet"
        return f"every tick ({cadence})"
    if every is None:
        return (
            "only on its own schedule (refresh.enrichment_every: never): flowhouse refresh "
            "--lane enrichment, or the Dagster job flowhouse_enrichment"
        )
    return f"every {_span(every)} (refresh.enrichment_every), by the first tick after"


def _span(value: timedelta) -> str:
    seconds = max(int(value.total_seconds()), 0)
    if seconds < 120:
        return f"{seconds} s"
    if seconds < 2 * 3600:
        return f"{seconds // 60} min"
    if seconds < 2 * 86400:
        return f"{seconds / 3600:.1f} h"
    return f"{seconds / 86400:.1f} days"


def render_lanes(lines: Sequence[LaneLine], now: datetime, color: bool = True) -> str:
    """The lanes for people: stale ones marked STALE (red on a terminal), failures with why."""
    out = [f"model refresh lanes at {_when(now)} (flowhouse.lane_runs):"]
    for line in lines:
        if line.last_success is None:
            said = "never refreshed"
        else:
            age = _span(line.age or timedelta())
            said = f"last success as of {_when(line.last_success)}, {age} ago"
        text = f"  {line.lane:<10}  {said}; {line.note}"
        if line.stale:
            limit = f" (older than twice {_span(line.interval)})" if line.interval else ""
            text += f"  STALE{limit}"
        out.append(_red(text, color) if line.stale else text)
        if line.last_failure is not None:
            run = line.last_failure
            why = " / ".join(w.strip() for w in (run.error or "").splitlines()[:3] if w.strip())
            out.append(
                _red(
                    f"  {'':<10}  last run FAILED as of {_when(run.now)} ({run.ran_by}): {why}",
                    color,
                )
            )
    return "\n".join(out)


def _red(text: str, color: bool) -> str:
    return f"\x1b[31m{text}\x1b[0m" if color else text
