"""``flowhouse preview FLOW --customer ID``: every message of a flow rendered for one customer, and
the path that customer would take, with each decision's reason; nothing sent, live state untouched.

Two parts, each reusing what a real run uses:

- **The path.** The real engine (:func:`flowhouse.orchestration.engine.tick.run_tick`) runs the flow
  in a scratch state schema, ``flowhouse_preview`` (recreated each time, like ``backtest``'s), for
  this customer and one trigger event (``--trigger``, default their latest event of the flow's
  trigger type): the first tick sees the trigger, then time jumps to each due time until the
  enrollment ends. The decisions are read back and explained by :mod:`flowhouse.status`.
- **The messages.** Every send and action step is rendered by
  :func:`flowhouse.activation.render.render_rows`,
  the code that renders claimed outbox rows before sending: subject, preheader, HTML or text,
  links with UTM and the signed unsubscribe link, the ``List-Unsubscribe`` header, and where a
  coupon pool would hand out a code, :data:`PREVIEW_COUPON`. Steps the path does not reach are
  rendered too (as of the trigger's time). Links are signed with a placeholder key
  (:data:`PREVIEW_KEY`): clicking one in a preview or a test send unsubscribes nobody.

:func:`write_files` writes what a browser opens: ``index.html`` listing the steps, one ``.html``
per e-mail, one ``.txt`` per SMS, push, WhatsApp or Viber message (a WhatsApp step's approved
template and its rendered variables are listed beside its text), one ``.json`` per action.

Customer attributes are the models as last built; the path uses everything the warehouse holds
(later events can exit the flow or answer a ``wait_for``), as a tick at those times would.
"""

from __future__ import annotations

import hashlib
import html
import json
import math
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from sqlglot import exp

from flowhouse.activation.message import Outgoing
from flowhouse.activation.providers.delivery import provider_configs
from flowhouse.activation.render import (
    ROW_COLUMNS,
    Renderer,
    jsonable,
    render_rows,
    route_of,
    short_links,
)
from flowhouse.core.errors import ConfigError
from flowhouse.core.locks import tick_lock
from flowhouse.core.sql import literal, render, statement
from flowhouse.core.state import ensure_state
from flowhouse.core.warehouse import Location, Warehouse
from flowhouse.flows.compile import WAREHOUSE_ACTIONS, CompiledFlow, StepRow, compile_flow
from flowhouse.flows.load import load_flows
from flowhouse.flows.settings import Settings
from flowhouse.orchestration.engine.coupons import generate_codes
from flowhouse.orchestration.engine.enroll import FAN_OUT_TYPES
from flowhouse.orchestration.engine.tick import run_tick
from flowhouse.orchestration.engine.winners import carry_winners
from flowhouse.rules.context import Context
from flowhouse.rules.sendtime import ADDRESSES, NATIVE_PUSH_ADDRESS, native_push
from flowhouse.status import CHANNELS, CustomerStatus, Decision, customer_status, message_lines

PREVIEW_SCHEMA = "flowhouse_preview"
#: The code a preview shows where a coupon pool would hand one out.
PREVIEW_COUPON = "PREVIEW-COUPON"
#: The key preview and test-send links are signed with (not the store's: they verify nowhere).
PREVIEW_KEY = "flowhouse-preview-not-a-real-key"
#: Ticks a path may take at most (one per wait); a longer flow is cut off, and says so.
MAX_TICKS = 200

# -- finding the flow, the customer and the trigger ---------------------------------------------


@dataclass(frozen=True)
class TriggerEvent:
    event_id: str
    event_type: str
    customer_id: str | None
    occurred_at: datetime
    loaded_at: datetime
    properties: Any


def find_flow(flows: Sequence[CompiledFlow], flow_id: str) -> CompiledFlow:
    found = next((f for f in flows if f.id == flow_id), None)
    if found is None:
        known = ", ".join(sorted(f.id for f in flows)) or "none in the flows folder"
        raise ConfigError("unknown flow", value=flow_id, expected=f"one of: {known}")
    return found


def _query(wh: Warehouse, text: str, schema: str = PREVIEW_SCHEMA, **values: Any) -> list[Any]:
    return wh.query(render(statement(text, schema, **values), wh.dialect))


def check_customer(wh: Warehouse, customer_id: str) -> None:
    if not wh.table_exists("core", "customer_attributes"):
        raise ConfigError("the warehouse has no core.customer_attributes (run flowhouse build)")
    found = _query(
        wh, "select count(*) from core.customer_attributes where customer_id = :c", c=customer_id
    )
    if not found[0][0]:
        raise ConfigError(
            "unknown customer",
            value=customer_id,
            expected="a customer id of core.customer_attributes",
        )


_EVENT_COLUMNS = "ev.event_id, ev.event_type, ev.customer_id, ev.occurred_at, ev.loaded_at, "

_BY_ID = f"select {_EVENT_COLUMNS} ev.properties from core.events as ev where ev.event_id = :id"

_LATEST = f"""
select {_EVENT_COLUMNS} ev.properties from core.events as ev
where ev.event_type = :t and ev.customer_id = :c
order by ev.occurred_at desc, ev.event_id desc limit 1
"""

#: Catalog events have no customer: the latest one on a product the customer showed interest in.
_LATEST_FANNED_OUT = f"""
select {_EVENT_COLUMNS} ev.properties from core.events as ev
join core.product_interest as pi on pi.sku = json_text(ev.properties, 'sku')
where ev.event_type = :t and pi.customer_id = :c
order by ev.occurred_at desc, ev.event_id desc limit 1
"""


def trigger_event(
    wh: Warehouse, flow: CompiledFlow, customer_id: str, event_id: str | None
) -> TriggerEvent:
    """The given trigger event (checked against the flow and customer), or the customer's latest
    event of the flow's trigger type."""
    kind = flow.flow.trigger.event
    if event_id is not None:
        return _given(wh, flow, customer_id, event_id)
    rows = _query(
        wh, _LATEST_FANNED_OUT if kind in FAN_OUT_TYPES else _LATEST, t=kind, c=customer_id
    )
    if not rows:
        near = " on a product they viewed or carted" if kind in FAN_OUT_TYPES else ""
        raise ConfigError(
            f"customer {customer_id} has no {kind} event{near}, the trigger of flow {flow.id}",
            expected=f"a customer with a {kind} event in core.events, or --trigger EVENT_ID",
        )
    return TriggerEvent(*rows[0])


def _given(wh: Warehouse, flow: CompiledFlow, customer_id: str, event_id: str) -> TriggerEvent:
    kind = flow.flow.trigger.event
    rows = _query(wh, _BY_ID, id=event_id)
    if not rows:
        raise ConfigError("--trigger: no such event in core.events", value=event_id)
    found = TriggerEvent(*rows[0])
    if found.event_type != kind:
        raise ConfigError(
            f"--trigger: event {event_id} is a {found.event_type} event",
            expected=f"a {kind} event (the trigger of flow {flow.id})",
        )
    if kind not in FAN_OUT_TYPES and found.customer_id != customer_id:
        raise ConfigError(
            f"--trigger: event {event_id} belongs to customer {found.customer_id}",
            expected=f"an event of customer {customer_id}",
        )
    return found


# -- the path -----------------------------------------------------------------------------------


@dataclass
class CustomerPath:
    """The customer's path in the scratch schema: what the engine decided, and when."""

    status: CustomerStatus
    ticks: list[datetime]
    cut_off: bool = False

    @property
    def enrollment_id(self) -> str | None:
        return self.status.enrollments[0].enrollment_id if self.status.enrollments else None

    def decision(self, step_id: str) -> Decision | None:
        for e in self.status.enrollments:
            for d in e.decisions:
                if d.step_id == step_id and d.step_kind in ("send", "action"):
                    return d
        return None


def simulate(
    wh: Warehouse, flow: CompiledFlow, settings: Settings, customer_id: str, event: TriggerEvent
) -> CustomerPath:
    """Run the real engine on this one trigger in the scratch schema, tick after tick at each due
    time, until the enrollment ends (or :data:`MAX_TICKS`)."""
    _reset(wh)
    scoped = scoped_flow(flow, customer_id, event.event_id)
    start = max(event.occurred_at, event.loaded_at)
    _fill_pools(wh, flow, start)
    _copy_winners(wh, flow.id)
    at, ticks = start, []
    for _ in range(MAX_TICKS):
        run_tick(wh, PREVIEW_SCHEMA, at, [scoped], settings)
        ticks.append(at)
        due = _query(wh, "select min(due_at) from flowhouse.enrollments where status = 'active'")
        if due[0][0] is None or due[0][0] <= at:
            break
        at = due[0][0]
    status = customer_status(wh, flow.id, customer_id, PREVIEW_SCHEMA)
    active = any(e.status == "active" for e in status.enrollments)
    return CustomerPath(status, ticks, cut_off=active and len(ticks) == MAX_TICKS)


def scoped_flow(flow: CompiledFlow, customer_id: str, event_id: str) -> CompiledFlow:
    """The flow with its trigger narrowed to one event and one customer, considering triggers from
    before it went live (the scratch schema deploys it at the trigger's time)."""
    narrowed = exp.and_(
        exp.column("event_id", "event").eq(literal(event_id)),
        exp.column("customer_id", "event").eq(literal(customer_id)),
    )
    where = flow.flow.trigger.where
    if where:
        narrowed = exp.and_(exp.paren(exp.maybe_parse(where, dialect="duckdb")), narrowed)
    trigger = flow.flow.trigger.model_copy(update={"where": narrowed.sql("duckdb")})
    entry = flow.flow.entry.model_copy(update={"past_triggers": True})
    return compile_flow(flow.flow.model_copy(update={"trigger": trigger, "entry": entry}))


def _reset(wh: Warehouse) -> None:
    drop = statement("drop schema if exists flowhouse cascade", PREVIEW_SCHEMA)
    wh.execute(render(drop, wh.dialect))
    wh.commit()
    ensure_state(wh, PREVIEW_SCHEMA)


def _copy_winners(wh: Warehouse, flow_id: str) -> None:
    """The flow's decided split winners, so the preview routes new entrants as the tick will."""
    carry_winners(wh, flow_id, PREVIEW_SCHEMA)
    wh.commit()


def _fill_pools(wh: Warehouse, flow: CompiledFlow, at: datetime) -> None:
    """A few codes in each pool the flow uses, so the path shows a code handed out."""
    for pool in sorted(_pools(flow)):
        generate_codes(wh, pool, 5, at - timedelta(days=1), "PREVIEW-", PREVIEW_SCHEMA)


def _pools(flow: CompiledFlow) -> set[str]:
    found = {s.params.get("coupon_pool") or s.params.get("pool") for s in flow.steps}
    return {p for p in found if isinstance(p, str)}


def _when(value: datetime | None) -> str:
    if value is None:
        return "-"
    return f"{value:%Y-%m-%d %H:%M}" + (f":{value:%S}" if value.second else "")


def path_lines(path: CustomerPath, flow: CompiledFlow, event: TriggerEvent) -> list[str]:
    """The path in words: the trigger, then each decision (effective time, step, outcome and
    reason), then where the enrollment ends."""
    s = path.status
    lines = [
        f"path of customer {s.customer_id} through {flow.id} (simulated in the scratch schema "
        f"{PREVIEW_SCHEMA}: nothing sent, live state untouched)",
        f"  trigger: {event.event_type} event {event.event_id} at {_when(event.occurred_at)}"
        f" (loaded {_when(event.loaded_at)}); {len(path.ticks)} tick(s)",
    ]
    for r in s.refused_triggers:
        lines.append(f"  {_when(r.trigger.occurred_at)} | refused ({r.reason}): {r.explanation}")
    if not s.enrollments and not s.refused_triggers:
        where = flow.flow.trigger.where
        lines.append(
            "  not enrolled: the event does not match the trigger's condition"
            + (f" ({where})" if where else "")
        )
    for e in s.enrollments:
        arms = "".join(f"; split {step}: arm {arm}" for step, arm in e.arms.items())
        lines.append(f"  group: {e.group}{arms}")
        width = max((len(f"{d.step_id} ({d.step_kind})") for d in e.decisions), default=0)
        for d in e.decisions:
            step = f"{d.step_id} ({d.step_kind})"
            lines.append(f"  {_when(d.effective_at):<16} | {step:<{width}} | {d.explanation}")
            if d.message is not None:
                lines += [f"      {line}" for line in message_lines(d.message, d.outcome)[:1]]
        lines.append(f"  end: {e.state}")
    if path.cut_off:
        lines.append(f"  (cut off after {MAX_TICKS} ticks)")
    return lines


# -- the messages -------------------------------------------------------------------------------


@dataclass
class Segments:
    """An SMS body's encoding, length in the encoding's units and segment count."""

    encoding: str  # GSM-7 | UCS-2
    units: int
    segments: int

    def words(self) -> str:
        return f"{self.units} {self.encoding} characters, {self.segments} segment(s)"


#: The GSM 03.38 basic character set (one septet each) and its extension (two: escape + char).
GSM_BASIC = frozenset(
    "@£$¥èéùìòÇ\nØø\rÅåΔ_ΦΓΛΩΠΨΣΘΞÆæßÉ !\"#¤%&'()*+,-./0123456789:;<=>?¡ABCDEFGHIJKLMNOPQRSTUVWXYZ"
    "ÄÖÑÜ§¿abcdefghijklmnopqrstuvwxyzäöñüà"
)
GSM_EXTENDED = frozenset("^{}\\[~]|€\f")


def sms_segments(body: str) -> Segments:
    """GSM-7 when every character is in the GSM alphabet (160 a message, 153 a part when split),
    else UCS-2 (70, 67 a part; counted in UTF-16 units)."""
    if all(c in GSM_BASIC or c in GSM_EXTENDED for c in body):
        units = sum(2 if c in GSM_EXTENDED else 1 for c in body)
        encoding, single, part = "GSM-7", 160, 153
    else:
        units = len(body.encode("utf-16-le")) // 2
        encoding, single, part = "UCS-2", 70, 67
    count = 0 if not units else 1 if units <= single else math.ceil(units / part)
    return Segments(encoding, units, count)


_HREF = re.compile(r"""href=["']([^"']+)["']""")
_URL = re.compile(r"https?://[^\s<>\"']+")


@dataclass
class Item:
    """One send or action step, rendered (or why it could not be)."""

    step_id: str
    kind: str  # message | action
    channel: str
    route: str
    outgoing: Outgoing | None = None
    preheader: str | None = None
    error: str | None = None
    decision: Decision | None = None  # on the customer's path, if reached
    file: str | None = None

    @property
    def links(self) -> list[str]:
        o = self.outgoing
        if o is None:
            return []
        found = _HREF.findall(o.html) if o.html else _URL.findall(o.text or "")
        return list(dict.fromkeys(html.unescape(u) for u in found))

    @property
    def segments(self) -> Segments | None:
        if self.channel != "sms" or self.outgoing is None:
            return None
        return sms_segments(self.outgoing.text or "")


@dataclass
class Preview:
    flow: CompiledFlow
    customer_id: str
    event: TriggerEvent
    path: CustomerPath
    items: list[Item] = field(default_factory=list)
    out: Path | None = None

    def lines(self) -> list[str]:
        out = path_lines(self.path, self.flow, self.event)
        out.append(f"messages and actions of {self.flow.id} rendered for {self.customer_id}:")
        for item in self.items:
            out.append("  " + _item_line(item))
        if self.out is not None:
            out.append(f"wrote {self.out / 'index.html'}")
        return out


def _item_line(item: Item) -> str:
    where = f"{CHANNELS.get(item.channel, item.channel)} via {item.route}"
    if item.error:
        return f"{item.step_id} ({where}): FAILED to render: {item.error}"
    o = item.outgoing
    assert o is not None
    what = f'"{o.subject}"' if o.subject else ""
    if item.segments is not None:
        what = item.segments.words()
    if o.payload.get("content_sid") and item.kind == "message":
        what = "approved template " + _template_words(o.payload)
    reached = "" if item.decision is None else f" [on the path: {item.decision.outcome}]"
    return f"{item.step_id} ({where}): {what}{reached}".replace(": [", " [").rstrip(": ")


def _template_words(payload: Mapping[str, Any]) -> str:
    """A WhatsApp template and its rendered variables: ``HX... (1=Ann, 2=...)``."""
    variables = payload.get("content_variables") or {}
    given = ", ".join(f"{k}={v}" for k, v in variables.items())
    return f"{payload['content_sid']}" + (f" ({given})" if given else "")


def send_steps(flow: CompiledFlow, step_id: str | None) -> list[StepRow]:
    """The flow's send and action steps (only `step_id`'s when given: an unknown one is an
    error naming the others)."""
    steps = [s for s in flow.steps if s.kind in ("send", "action")]
    if step_id is None:
        return steps
    chosen = [s for s in steps if s.step_id == step_id]
    if not chosen:
        raise ConfigError(
            f"--step: flow {flow.id} has no send or action step of that id",
            value=step_id,
            expected="one of: " + ", ".join(s.step_id for s in steps),
        )
    return chosen


def render_items(
    wh: Warehouse,
    flow: CompiledFlow,
    settings: Settings,
    flows_dir: Path,
    customer_id: str,
    event: TriggerEvent,
    path: CustomerPath,
    steps: Sequence[StepRow],
) -> list[Item]:
    """Every step of `steps` rendered by activation's renderer, as rows it builds itself."""
    customer = _customer(wh, customer_id)
    enrollment_id = path.enrollment_id or _md5(f"{flow.id}:{event.event_id}")
    properties = _trigger_properties(wh, enrollment_id, event)
    rows = [
        step_row(settings, flow, s, customer, enrollment_id, properties, path, event.occurred_at)
        for s in steps
    ]
    now = path.ticks[0] if path.ticks else event.occurred_at
    ctx = Context(wh, PREVIEW_SCHEMA, now, None, [flow], settings)
    _rows_table(ctx, rows)
    renderer = Renderer(
        {flow.id: flow}, settings, flows_dir, PREVIEW_KEY, provider_configs(settings),
        short_links=short_links(settings, PREVIEW_KEY, None),  # the length SMS will have
    )  # fmt: skip
    rendered = render_rows(ctx, renderer, rows, "_fh_preview")
    ready = {o.message_id: o for _, o in rendered.ready}
    return [_item(settings, row, ready, rendered.failed, path) for row in rows]


def _item(
    settings: Settings,
    row: Mapping[str, Any],
    ready: Mapping[str, Outgoing],
    failed: Mapping[str, str],
    path: CustomerPath,
) -> Item:
    route = "warehouse" if row["channel"] in WAREHOUSE_ACTIONS else route_of(settings, row)
    return Item(
        step_id=row["step_id"],
        kind=row["kind"],
        channel=row["channel"],
        route=route,
        outgoing=ready.get(row["message_id"]),
        preheader=row["preheader"],
        error=failed.get(row["message_id"]),
        decision=path.decision(row["step_id"]),
    )


def _md5(text: str) -> str:
    return hashlib.md5(text.encode()).hexdigest()


def _customer(wh: Warehouse, customer_id: str) -> dict[str, Any]:
    names = wh.columns("core", "customer_attributes")
    rows = _query(
        wh, "select * from core.customer_attributes where customer_id = :c", c=customer_id
    )
    return dict(zip(names, rows[0], strict=True))


def _trigger_properties(wh: Warehouse, enrollment_id: str, event: TriggerEvent) -> Any:
    """The enrollment's trigger properties (a fanned-out event's carry the interest), else the
    event's own."""
    rows = _query(
        wh,
        "select trigger_properties from flowhouse.enrollments where enrollment_id = :e",
        e=enrollment_id,
    )
    return rows[0][0] if rows and rows[0][0] is not None else event.properties


def step_row(
    settings: Settings,
    flow: CompiledFlow,
    step: StepRow,
    customer: Mapping[str, Any],
    enrollment_id: str,
    properties: Any,
    path: CustomerPath,
    default_due: datetime,
) -> dict[str, Any]:
    """The outbox row the engine would queue for `step` (the columns render reads)."""
    p = dict(step.params)
    decided = path.decision(step.step_id)
    due = decided.effective_at if decided is not None else default_due
    row: dict[str, Any] = dict.fromkeys(ROW_COLUMNS)
    row.update(
        message_id=_md5(f"{enrollment_id}:{step.step_id}"),
        enrollment_id=enrollment_id,
        customer_id=customer["customer_id"],
        flow_id=flow.id,
        step_id=step.step_id,
        due_at=due,
        trigger_properties=properties,
    )
    if step.kind == "send":
        row.update(
            channel=p["channel"], kind="message", is_marketing=not flow.flow.transactional,
            template=p.get("template"), subject=p.get("subject"), preheader=p.get("preheader"),
            destination=p.get("destination"), coupon_pool=p.get("coupon_pool"),
        )  # fmt: skip
    else:
        action = p.pop("type")
        pool = p.get("pool") if action == "coupon" else None
        row.update(channel=action, kind="action", is_marketing=False, coupon_pool=pool)
        row["payload"] = json.dumps(p, sort_keys=True)
    push = row["channel"] == "push" and native_push(settings)
    row["address"] = customer.get(
        NATIVE_PUSH_ADDRESS if push else ADDRESSES.get(row["channel"], "")
    )
    if row["coupon_pool"]:
        pool = settings.coupon_pools.get(row["coupon_pool"])
        row["coupon_code"] = PREVIEW_COUPON
        row["coupon_expires_at"] = due + (pool.expires_in if pool else timedelta(days=14))
    return row


def _rows_table(ctx: Context, rows: Sequence[Mapping[str, Any]]) -> None:
    """``_fh_preview``: the rows' message, customer and enrollment ids (what recommendations
    and customers are read for)."""
    columns = ("message_id", "customer_id", "enrollment_id")
    values = exp.values(
        [tuple(exp.cast(literal(r[c]), "text") for c in columns) for r in rows],
        alias="v",
        columns=list(columns),
    )
    ctx.temp("_fh_preview", "select * from :v", v=values)


# -- the files ----------------------------------------------------------------------------------


def write_files(preview: Preview, out: Path) -> Path:
    """``index.html`` and one file per step under `out` (created; earlier files replaced)."""
    out.mkdir(parents=True, exist_ok=True)
    for item in preview.items:
        o = item.outgoing
        if o is None:
            continue
        if item.kind == "message" and o.html is not None:
            item.file = f"{item.step_id}.html"
            (out / item.file).write_text(o.html)
        elif item.kind == "message":
            item.file = f"{item.step_id}.txt"
            (out / item.file).write_text((o.text or "") + "\n")
        else:
            item.file = f"{item.step_id}.json"
            body = {"channel": o.channel, "payload": o.payload, "data": o.data}
            (out / item.file).write_text(json.dumps(jsonable(body), indent=2) + "\n")
    (out / "index.html").write_text(index_html(preview))
    preview.out = out
    return out / "index.html"


def index_html(preview: Preview) -> str:
    e = html.escape
    title = f"{preview.flow.id} for {preview.customer_id}"
    path = "\n".join(path_lines(preview.path, preview.flow, preview.event))
    cards = "\n".join(_card(item) for item in preview.items)
    return (
        f"<!doctype html>\n<html><head><meta charset='utf-8'><title>Preview: {e(title)}</title>"
        f"<style>{_CSS}</style></head><body>\n<h1>Preview: {e(preview.flow.flow.name)}"
        f" ({e(preview.flow.id)}) for customer {e(preview.customer_id)}</h1>\n"
        f"<h2>Path</h2>\n<pre>{e(path)}</pre>\n<h2>Steps</h2>\n{cards}\n</body></html>\n"
    )


_CSS = (
    "body{font-family:system-ui,sans-serif;margin:2em;max-width:70em}"
    "pre{background:#f6f6f6;padding:1em;overflow:auto}"
    ".step{border:1px solid #ddd;padding:.5em 1em;margin:1em 0}.error{color:#b00}"
    "dt{font-weight:bold}dd{margin:0 0 .4em 1em;word-break:break-all}"
)


def _card(item: Item) -> str:
    e = html.escape
    head = (
        f"<h3>{e(item.step_id)}: {e(CHANNELS.get(item.channel, item.channel))} via {e(item.route)}"
    )
    head += "</h3>"
    if item.error:
        return (
            f"<div class='step'>{head}<p class='error'>failed to render: {e(item.error)}</p></div>"
        )
    o = item.outgoing
    assert o is not None
    facts: list[tuple[str, str]] = []
    if o.subject:
        facts.append(("subject", o.subject))
    if item.preheader:
        facts.append(("preheader", item.preheader))
    if item.segments is not None:
        facts.append(("length", item.segments.words()))
    if o.payload.get("content_sid") and item.kind == "message":
        facts.append(("approved template", str(o.payload["content_sid"])))
        facts += [(f"variable {k}", str(v)) for k, v in o.payload["content_variables"].items()]
    if item.decision is not None:
        facts.append(("on the path", f"{_when(item.decision.effective_at)}: "
                      f"{item.decision.explanation}"))  # fmt: skip
    facts += [("header " + k, v) for k, v in o.headers.items()]
    facts += [("link", link) for link in item.links]
    items = "".join(f"<dt>{e(k)}</dt><dd>{e(v)}</dd>" for k, v in facts)
    opened = f"<p><a href='{e(item.file)}'>open {e(item.file)}</a></p>" if item.file else ""
    text = f"<pre>{e(o.text)}</pre>" if o.text and not o.html else ""
    return f"<div class='step'>{head}<dl>{items}</dl>{text}{opened}</div>"


# -- the whole preview ----------------------------------------------------------------------------


def compose(
    wh: Warehouse,
    flow: CompiledFlow,
    settings: Settings,
    flows_dir: Path,
    customer_id: str,
    trigger: str | None = None,
    step: str | None = None,
) -> Preview:
    """The path and the rendered steps for one customer (on an open warehouse; the caller holds
    the preview lock)."""
    steps = send_steps(flow, step)
    check_customer(wh, customer_id)
    event = trigger_event(wh, flow, customer_id, trigger)
    path = simulate(wh, flow, settings, customer_id, event)
    found = Preview(flow, customer_id, event, path)
    found.items = render_items(wh, flow, settings, flows_dir, customer_id, event, path, steps)
    return found


def preview(
    location: Location,
    flows_dir: Path,
    flow_id: str,
    customer_id: str,
    trigger: str | None = None,
    step: str | None = None,
    out: Path | None = None,
) -> Preview:
    """``flowhouse preview``: :func:`compose` under the preview lock, then the files (under
    `out`, default ``preview/<flow>/<customer>/``)."""
    flows, settings = load_flows(flows_dir)
    flow = find_flow(flows, flow_id)
    if location.path is not None and not location.path.exists():
        raise ConfigError("no warehouse at this location", value=str(location))
    with tick_lock(location, PREVIEW_SCHEMA), Warehouse.open(location) as wh:
        found = compose(wh, flow, settings, flows_dir, customer_id, trigger, step)
    write_files(found, out or default_out(flow_id, customer_id))
    return found


def default_out(flow_id: str, customer_id: str) -> Path:
    safe = re.sub(r"[^A-Za-z0-9_.-]", "_", customer_id)
    return Path("preview") / flow_id / safe
