"""``flowhouse test-send FLOW --to ADDRESS``: a flow's messages, rendered for a customer as
``flowhouse preview`` renders them, sent to a seed address through the configured destinations.

Each e-mail step goes to the e-mail address given with ``--to``, each SMS step to the phone number
(``--to`` may be given twice); push steps and actions are only previewed. A test send is marked:
its subject (an SMS its body) starts with ``[TEST]``, SendGrid gets the category and custom argument
``flowhouse_test``, Klaviyo the event property ``flowhouse_test``; its message id is new each time
(no provider drops it as a duplicate of a real message) and the profile a destination sees is the
seed address, never the customer's. The customer's data only personalises the content.

Test sends never enter ``flowhouse.messages``, so the marts, caps and smart sending never count
them; each is recorded in ``flowhouse.test_sends`` with the provider's answer.
"""

from __future__ import annotations

import asyncio
import re
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime
from pathlib import Path

from sqlglot import exp

from flowhouse.activation.deliver import Destinations
from flowhouse.activation.message import Outgoing
from flowhouse.activation.outbox import Attempt, Final
from flowhouse.activation.providers.base import Secrets
from flowhouse.activation.providers.delivery import provider_configs
from flowhouse.activation.sender import Policy, Run, deliver
from flowhouse.core.clock import utc, utcnow
from flowhouse.core.errors import ConfigError
from flowhouse.core.locks import tick_lock
from flowhouse.core.sql import STATE_SCHEMA, literal, render, statement
from flowhouse.core.state import TABLES, ensure_state
from flowhouse.core.warehouse import Location, Warehouse
from flowhouse.flows.compile import CompiledFlow
from flowhouse.flows.load import load_flows
from flowhouse.flows.settings import Settings
from flowhouse.orchestration.engine.enroll import FAN_OUT_TYPES
from flowhouse.preview import PREVIEW_SCHEMA, Item, Preview, compose, find_flow

TEST_PREFIX = "[TEST] "
#: Channels a test send reaches, and how a seed address for each looks.
SEED_ADDRESSES = {
    "email": re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s.]{2,}$"),
    "sms": re.compile(r"^\+?[0-9][0-9 ().-]{6,}$"),
}


@dataclass(frozen=True)
class SentTest:
    step_id: str
    channel: str
    address: str
    subject: str | None
    provider: str
    status: str
    status_code: int | None = None
    provider_message_id: str | None = None
    reason: str | None = None


@dataclass
class SendTestReport:
    preview: Preview
    sent: list[SentTest] = field(default_factory=list)
    #: Steps not sent, and why.
    not_sent: list[tuple[str, str]] = field(default_factory=list)

    def lines(self) -> list[str]:
        p = self.preview
        out = [f"test send of {p.flow.id}, personalised for customer {p.customer_id}:"]
        for s in self.sent:
            said = f"{s.status}" + (f" ({s.status_code})" if s.status_code else "")
            said += f": {s.reason}" if s.reason else ""
            subject = f' "{s.subject}"' if s.subject else ""
            out.append(f"  {s.step_id} ({s.channel} via {s.provider}) to {s.address}{subject}:"
                       f" {said}")  # fmt: skip
        out += [f"  {step}: not sent: {why}" for step, why in self.not_sent]
        out.append("recorded in flowhouse.test_sends (never in flowhouse.messages)")
        return out


def seed_addresses(to: Sequence[str]) -> dict[str, str]:
    """``--to`` values by channel; a value that is neither an e-mail address nor a phone number
    is an error."""
    found: dict[str, str] = {}
    for address in to:
        channel = next((c for c, rule in SEED_ADDRESSES.items() if rule.match(address)), None)
        if channel is None:
            raise ConfigError(
                "--to: not an e-mail address or a phone number",
                value=address,
                expected="name@example.com or +15551234567",
            )
        if channel in found:
            raise ConfigError(f"--to: two {channel} addresses", value=[found[channel], address])
        found[channel] = address
    return found


def run_test_send(
    location: Location,
    flows_dir: Path,
    flow_id: str,
    to: Sequence[str],
    step: str | None = None,
    customer_id: str | None = None,
    provider_url: str | None = None,
    environ: Mapping[str, str] | None = None,
    now: datetime | None = None,
) -> SendTestReport:
    """Render the flow's messages for the customer (default: a sample customer with a trigger
    event), send the e-mail and SMS ones to the seed addresses, record each in ``test_sends``."""
    seeds = seed_addresses(to)
    flows, settings = load_flows(flows_dir)
    flow = find_flow(flows, flow_id)
    if location.path is not None and not location.path.exists():
        raise ConfigError("no warehouse at this location", value=str(location))
    with tick_lock(location, PREVIEW_SCHEMA), Warehouse.open(location) as wh:
        customer = customer_id or sample_customer(wh, flow)
        found = compose(wh, flow, settings, flows_dir, customer, step=step)
        report = SendTestReport(found)
        messages = _messages(report, seeds)
        if not messages:
            reasons = "; ".join(f"{s}: {why}" for s, why in report.not_sent)
            raise ConfigError(f"nothing to test-send in {flow_id} ({reasons})")
        at = utc(now or utcnow())
        finals = _send(settings, messages, provider_url, environ, at)
        report.sent = [_sent(o, finals[o.message_id]) for _, o in messages]
        _record(wh, flow, customer, [o for _, o in messages], report.sent, at)
    return report


_SAMPLE = """
select ev.customer_id from core.events as ev
join core.customer_attributes as c on c.customer_id = ev.customer_id
where ev.event_type = :t
order by ev.occurred_at desc, ev.event_id desc limit 1
"""

_SAMPLE_FANNED_OUT = """
select pi.customer_id from core.events as ev
join core.product_interest as pi on pi.sku = json_text(ev.properties, 'sku')
where ev.event_type = :t
order by ev.occurred_at desc, pi.last_interest_at desc, pi.customer_id limit 1
"""


def sample_customer(wh: Warehouse, flow: CompiledFlow) -> str:
    """The customer of the latest trigger event of the flow (for a catalog event, the customer
    most recently interested in its product)."""
    kind = flow.flow.trigger.event
    text = _SAMPLE_FANNED_OUT if kind in FAN_OUT_TYPES else _SAMPLE
    rows = wh.query(render(statement(text, t=kind), wh.dialect))
    if not rows:
        raise ConfigError(
            f"no customer has a {kind} event, the trigger of flow {flow.id}",
            expected="--customer ID, or a warehouse with such events",
        )
    return str(rows[0][0])


def _messages(report: SendTestReport, seeds: Mapping[str, str]) -> list[tuple[str, Outgoing]]:
    """(route, message) for each step that can be sent; the others go to ``not_sent``."""
    chosen: list[tuple[str, Outgoing]] = []
    for item in report.preview.items:
        why = _why_not(item, seeds)
        if why is not None:
            report.not_sent.append((item.step_id, why))
            continue
        assert item.outgoing is not None
        chosen.append((item.route, as_test(item.outgoing, seeds[item.channel])))
    return chosen


def _why_not(item: Item, seeds: Mapping[str, str]) -> str | None:
    if item.error:
        return f"failed to render: {item.error}"
    if item.kind != "message" or item.channel not in SEED_ADDRESSES:
        return f"{item.channel} steps are previewed only (test-send sends e-mail and SMS)"
    if item.channel not in seeds:
        wanted = "an e-mail address" if item.channel == "email" else "a phone number"
        return f"no --to address for {item.channel} (give {wanted})"
    return None


def as_test(message: Outgoing, address: str) -> Outgoing:
    """`message` as a test send to `address` (see the module docstring)."""
    subject = TEST_PREFIX + message.subject if message.subject else message.subject
    text = message.text
    if message.channel == "sms":
        text = TEST_PREFIX + (text or "")
    profile = {"email" if message.channel == "email" else "phone": address}
    data = dict(message.data)
    if "subject" in data:
        data["subject"] = subject
    return replace(
        message, message_id=uuid.uuid4().hex, customer_id=f"test:{address}", address=address,
        subject=subject, text=text, customer=profile, data=data, send_at=None, is_test=True,
    )  # fmt: skip


def _send(
    settings: Settings,
    messages: Sequence[tuple[str, Outgoing]],
    provider_url: str | None,
    environ: Mapping[str, str] | None,
    now: datetime,
) -> dict[str, tuple[Final, Attempt | None]]:
    secrets = Secrets(environ, fake=provider_url is not None)
    destinations = Destinations(provider_configs(settings), secrets, provider_url)
    by_route: dict[str, list[Outgoing]] = {}
    for route, message in messages:
        by_route.setdefault(route, []).append(message)
    for route in by_route:
        destinations.get(route)  # a destination that cannot be built fails before anything goes
    return asyncio.run(_deliver_all(destinations, by_route, now))


async def _deliver_all(
    destinations: Destinations, by_route: Mapping[str, Sequence[Outgoing]], now: datetime
) -> dict[str, tuple[Final, Attempt | None]]:
    found: dict[str, tuple[Final, Attempt | None]] = {}

    def on_done(finals: Sequence[Final], attempts: Sequence[Attempt]) -> None:
        last = {a.message_id: a for a in attempts}
        found.update({f.message_id: (f, last.get(f.message_id)) for f in finals})

    try:
        for route, messages in by_route.items():
            run = Run(destinations.get(route), destinations.client(route), now, Policy())
            await deliver(run, messages, lambda ids: None, on_done)
    finally:
        await destinations.close()
    return found


def _sent(message: Outgoing, result: tuple[Final, Attempt | None]) -> SentTest:
    final, attempt = result
    return SentTest(
        step_id=message.step_id,
        channel=message.channel,
        address=message.address or "",
        subject=message.subject or None,
        provider=attempt.provider if attempt else "-",
        status=final.status,
        status_code=attempt.status_code if attempt else None,
        provider_message_id=final.provider_message_id,
        reason=final.reason,
    )


def _record(
    wh: Warehouse,
    flow: CompiledFlow,
    customer_id: str,
    messages: Sequence[Outgoing],
    sent: Sequence[SentTest],
    now: datetime,
) -> None:
    """One ``test_sends`` row per message, with the provider's answer."""
    ensure_state(wh, STATE_SCHEMA)
    columns = [name for name, _, _ in TABLES["test_sends"]]
    rows = [
        (m.message_id, flow.id, flow.version, s.step_id, customer_id, s.channel, s.address,
         s.subject, s.provider, now, s.status, s.status_code, s.provider_message_id, s.reason)
        for m, s in zip(messages, sent, strict=True)
    ]  # fmt: skip
    values = exp.values([tuple(literal(v) for v in row) for row in rows])
    table = exp.to_table(f"{STATE_SCHEMA}.test_sends")
    wh.execute(render(exp.insert(values, table, columns=columns), wh.dialect))
    wh.commit()
