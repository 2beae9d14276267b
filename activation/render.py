"""Turning claimed outbox rows into :class:`~flowhouse.activation.message.Outgoing` messages.

Everything a template sees is read in a few set-based queries for the whole claim — the rows with
their trigger event and coupon, the customers' attributes, product recommendations
(:mod:`flowhouse.activation.recommend`) and the catalog — and each message is then rendered in the
sandbox of :mod:`flowhouse.flows.templating`: HTML auto-escaped, undefined names an error, and each
message within the time, size and depth bounds of :mod:`flowhouse.flows.bounds`. A template that
fails to render, for whatever reason (an error, a bound), fails its message with a reason naming the
flow, the step, the template file and line, and the error; the rest of the claim goes on.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import date, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

from jinja2.sandbox import SandboxedEnvironment

from flowhouse.activation import recommend
from flowhouse.activation.links import Claims, ShortLinks, message_links
from flowhouse.activation.message import Device, Outgoing, Sender
from flowhouse.activation.providers.delivery import ProviderConfigs
from flowhouse.flows.bounds import DEFAULT_LIMITS, Limits, describe, output_chars, render_bounded
from flowhouse.flows.compile import CompiledFlow
from flowhouse.flows.flowfile import Message
from flowhouse.flows.settings import Settings
from flowhouse.flows.templating import TEMPLATES_DIR, render_context, template_environment
from flowhouse.rules.context import Context

_ROWS = """
select m.message_id, m.enrollment_id, m.customer_id, m.flow_id, m.step_id, m.channel, m.kind,
    m.is_marketing, m.address, m.template, m.subject, m.preheader, m.destination, m.coupon_code,
    m.payload, m.send_at, m.due_at, e.trigger_properties, cc.pool as coupon_pool,
    cc.expires_at as coupon_expires_at
from flowhouse.messages as m
left join flowhouse.enrollments as e on e.enrollment_id = m.enrollment_id
left join flowhouse.coupon_codes as cc on cc.code = m.coupon_code
    and (cc.message_id = m.message_id or md5(cc.message_id || ':coupon') = m.message_id)
where m.claim_id = :claim and m.status = :status
order by m.message_id
"""

ROW_COLUMNS = (
    "message_id", "enrollment_id", "customer_id", "flow_id", "step_id", "channel", "kind",
    "is_marketing", "address", "template", "subject", "preheader", "destination", "coupon_code",
    "payload", "send_at", "due_at", "trigger_properties", "coupon_pool", "coupon_expires_at",
)  # fmt: skip

_CLAIMED_TABLE = """
select message_id, customer_id, enrollment_id from flowhouse.messages
where claim_id = :claim and status = :status
"""

#: The action types whose outbox rows carry the customer's whole action state (``data["shop"]``),
#: for a destination that sets it rather than applying one change.
STATE_ACTIONS = ("add_tag", "remove_tag", "loyalty_points", "change_tier")

#: What flows' actions did to each customer of a table, as ``(customer_id, kind, value)`` rows:
#: each tag whose latest add_tag / remove_tag is an add (ties: the later update_id), the sum of
#: the loyalty points awarded, the latest change_tier (the same rules as the model
#: ``int_customer_actions``, read from ``profile_updates`` now rather than at the last refresh).
_SHOP_STATE = """
select t.customer_id, 'tag', t.name from (
    select u.customer_id, u.name, u.action,
        row_number() over (
            partition by u.customer_id, u.name order by u.updated_at desc, u.update_id desc
        ) as latest
    from flowhouse.profile_updates as u
    where u.customer_id in (select customer_id from {table}) and u.updated_at <= :now
        and u.action in ('add_tag', 'remove_tag') and u.name is not null
) as t
where t.latest = 1 and t.action = 'add_tag'
union all
select u.customer_id, 'loyalty_points', cast(sum(cast(u.value as bigint)) as text)
from flowhouse.profile_updates as u
where u.customer_id in (select customer_id from {table}) and u.updated_at <= :now
    and u.action = 'loyalty_points'
group by u.customer_id
union all
select t.customer_id, 'tier', t.value from (
    select u.customer_id, u.value,
        row_number() over (
            partition by u.customer_id order by u.updated_at desc, u.update_id desc
        ) as latest
    from flowhouse.profile_updates as u
    where u.customer_id in (select customer_id from {table}) and u.updated_at <= :now
        and u.action = 'change_tier'
) as t
where t.latest = 1
"""

#: Longest rendered subject or preheader, in characters.
SUBJECT_CHARS = 1_000

_DEVICES = """
select t.customer_id, t.token, t.platform
from staging.stg_device_tokens as t
where t.customer_id in (select customer_id from :table)
    and t.created_at <= :now and (t.revoked_at is null or t.revoked_at > :now)
    and not exists (select 1 from flowhouse.invalid_device_tokens as i where i.token = t.token)
order by t.customer_id, t.created_at desc, t.token
"""

#: Customer fields a destination may need beyond the template (profiles, audiences).
PROFILE_FIELDS = ("email", "phone", "first_name", "last_name", "country", "effective_timezone")


@dataclass
class Rendered:
    """The claim, rendered: messages ready to send, and those that failed to render (reason)."""

    ready: list[tuple[str, Outgoing]] = field(default_factory=list)  # (destination route, message)
    failed: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class Renderer:
    """What rendering needs besides the rows: flows, settings, templates, the link key."""

    flows: Mapping[str, CompiledFlow]
    settings: Settings
    flows_dir: Path
    signing_key: str
    configs: ProviderConfigs = field(default_factory=ProviderConfigs)
    messages: dict[tuple[str, str], Message] = field(default_factory=dict)
    limits: Limits = DEFAULT_LIMITS
    #: SMS links rewritten to tracked short links (none: sent as written).
    short_links: ShortLinks | None = None
    #: Read once per run, not once per claim: the catalog, the compiled templates.
    _once: dict[str, Any] = field(default_factory=dict)

    def environment(self) -> SandboxedEnvironment:
        if "env" not in self._once:
            self._once["env"] = template_environment(self.flows_dir / TEMPLATES_DIR)
        return self._once["env"]  # type: ignore[no-any-return]

    def catalog(self, ctx: Context) -> dict[str, Any]:
        if "catalog" not in self._once:
            self._once["catalog"] = recommend.catalog(ctx.wh)
        return self._once["catalog"]  # type: ignore[no-any-return]


def load(ctx: Context, claim_id: str, status: str = "claimed") -> list[dict[str, Any]]:
    """The claimed rows, each a dict with its trigger properties and coupon."""
    rows = ctx.rows(_ROWS, claim=claim_id, status=status)
    return [dict(zip(ROW_COLUMNS, r, strict=True)) for r in rows]


def customers(ctx: Context, table: str) -> dict[str, dict[str, Any]]:
    """The attributes of every customer of ``table`` (a table with a ``customer_id``), by id."""
    names = ctx.wh.columns("core", "customer_attributes")
    rows = ctx.rows(
        "select customer.* from core.customer_attributes as customer where customer.customer_id "
        f"in (select customer_id from {table})"
    )
    return {str(r[names.index("customer_id")]): dict(zip(names, r, strict=True)) for r in rows}


def devices(ctx: Context, table: str) -> dict[str, tuple[Device, ...]]:
    """The usable device tokens of every customer of ``table``, newest first: not revoked, not
    answered dead (read now, so a token retired since the message was queued is left out)."""
    if not ctx.wh.table_exists("staging", "stg_device_tokens"):
        return {}
    found: dict[str, list[Device]] = {}
    for customer_id, token, platform in ctx.rows(_DEVICES.replace(":table", table), now=ctx.now):
        found.setdefault(str(customer_id), []).append(Device(str(token), str(platform)))
    return {c: tuple(d) for c, d in found.items()}


def shop_states(ctx: Context, table: str) -> dict[str, dict[str, Any]]:
    """The action state of every customer of ``table`` (a table with a ``customer_id``) with one:
    ``{"tags": [...], "loyalty_points": 75, "tier": "gold"}`` (sorted tags; points 0 and tier
    None when flows gave none; ``tier: auto`` clears an override, so it is None too)."""
    states: dict[str, dict[str, Any]] = {}
    for customer_id, kind, value in ctx.rows(_SHOP_STATE.format(table=table), now=ctx.now):
        state = states.setdefault(str(customer_id), {"tags": [], "loyalty_points": 0, "tier": None})
        if kind == "tag":
            state["tags"] = sorted([*state["tags"], str(value)])
        elif kind == "loyalty_points":
            state["loyalty_points"] = int(value or 0)
        elif value not in (None, "auto"):
            state["tier"] = str(value)
    return states


def render_claim(
    ctx: Context, renderer: Renderer, claim_id: str, status: str = "claimed"
) -> Rendered:
    """Every row of the claim rendered, with what it needs read in a few queries."""
    rows = load(ctx, claim_id, status)
    if not rows:
        return Rendered()
    ctx.temp("_fh_claimed", _CLAIMED_TABLE, claim=claim_id, status=status)
    return render_rows(ctx, renderer, rows, "_fh_claimed")


def render_rows(
    ctx: Context, renderer: Renderer, rows: Sequence[dict[str, Any]], table: str
) -> Rendered:
    """``rows`` (with the columns of :func:`load`) rendered, in or outside the outbox (a preview
    renders rows it made itself). ``table`` names a table of their ``message_id, customer_id,
    enrollment_id``; recommendations read the trigger of each enrollment in ``ctx.schema``."""
    out = Rendered()
    people = customers(ctx, table)
    pushes = any(r["channel"] == "push" and route_of(renderer.settings, r) == "fcm" for r in rows)
    reached = devices(ctx, table) if pushes else {}
    states = shop_states(ctx, table) if any(r["channel"] in STATE_ACTIONS for r in rows) else {}
    recs = recommend.recommendations(ctx.wh, table, ctx.now, schema=ctx.schema)
    catalog = renderer.catalog(ctx)
    env = renderer.environment()
    for row in rows:
        route = route_of(renderer.settings, row)
        wrong = _channel_problem(route, row)
        if wrong is not None:
            out.failed[row["message_id"]] = wrong
            continue
        try:
            outgoing = _outgoing(
                renderer, env, row, people, recs, catalog, _wants_data(renderer, route, row),
                states,
            )  # fmt: skip
            if route == "fcm":
                outgoing = replace(outgoing, devices=reached.get(row["customer_id"], ()))
        except Exception as err:
            out.failed[row["message_id"]] = failure_reason(renderer, row, err)
            continue
        out.ready.append((route, outgoing))
    if renderer.short_links is not None:
        renderer.short_links.flush()  # registered before any of them is sent
    return out


#: The channels a route sends when it sends only some (the others are refused with a reason).
ROUTE_CHANNELS = {"vonage": ("viber",)}


def _channel_problem(route: str, row: Mapping[str, Any]) -> str | None:
    """Why ``row`` cannot go to ``route`` (a channel it does not send), or None."""
    channels = ROUTE_CHANNELS.get(route)
    if channels is None or row["channel"] in channels:
        return None
    sends = ", ".join(channels)
    return (
        f"route {route} sends {sends} only, not {row['channel']}: flow {row['flow_id']}, "
        f"step {row['step_id']} (delivery.routes or the step's destination)"
    )


def failure_reason(renderer: Renderer, row: Mapping[str, Any], err: BaseException) -> str:
    """Why ``row`` could not be rendered: ``render failed: flow cart, step s1, template
    templates/cart.html.j2 line 3: division by zero (ZeroDivisionError)``."""
    where = describe(err, renderer.flows_dir / TEMPLATES_DIR)
    if where.startswith("text line"):
        where = f"subject or preheader{where[4:]}"
    elif not where.startswith("template"):
        where = f"template {TEMPLATES_DIR}/{row['template']}: {where}"
    return f"render failed: flow {row['flow_id']}, step {row['step_id']}, {where}"[:500]


def _wants_data(renderer: Renderer, route: str, row: Mapping[str, Any]) -> bool:
    """Whether the destination sends the render context itself (an event's properties, a
    dynamic template's data, a webhook body), not only the rendered content."""
    if route == "sendgrid":
        return row["template"] in renderer.configs.sendgrid.templates
    return route not in ("twilio", "vonage")


def route_of(settings: Settings, row: Mapping[str, Any]) -> str:
    """The destination a row goes to: its own, or the channel's route."""
    return str(row["destination"] or settings.delivery.routes.get(row["channel"], "webhook"))


def _outgoing(
    renderer: Renderer,
    env: SandboxedEnvironment,
    row: dict[str, Any],
    people: Mapping[str, Mapping[str, Any]],
    recs: Mapping[str, recommend.Recommendations],
    catalog: Mapping[str, Mapping[str, Any]],
    with_data: bool = True,
    states: Mapping[str, dict[str, Any]] | None = None,
) -> Outgoing:
    customer = dict(people.get(row["customer_id"], {"customer_id": row["customer_id"]}))
    profile = {k: customer.get(k) for k in PROFILE_FIELDS if customer.get(k) is not None}
    base = {
        "message_id": row["message_id"],
        "channel": row["channel"],
        "customer_id": row["customer_id"],
        "flow_id": row["flow_id"],
        "step_id": row["step_id"],
        "address": row["address"],
        "customer": jsonable(profile),
        "send_at": row["send_at"],
        "is_marketing": bool(row["is_marketing"]),
        "sender": _sender(renderer, row["flow_id"]),
    }
    if row["kind"] != "message":
        payload = json.loads(row["payload"]) if row["payload"] else {}
        if row["coupon_code"]:  # a code created in the shop (a coupon action, or a send's)
            payload |= {"pool": row["coupon_pool"], "coupon": _coupon(renderer.settings, row)}
        event = _properties(row["trigger_properties"])
        facts: dict[str, Any] = {"event": event}
        if row["channel"] in STATE_ACTIONS:  # the whole state, as of the claim
            empty = {"tags": [], "loyalty_points": 0, "tier": None}
            facts["shop"] = (states or {}).get(row["customer_id"], empty)
        return Outgoing(**base, payload=payload, data=jsonable(facts))
    context = _context(renderer, row, customer, recs, catalog)
    limits = renderer.limits
    message = _message(renderer, row["flow_id"], row["step_id"])
    subject = _render_text(env, message.title or row["subject"], context, limits)
    preheader = _render_text(env, row["preheader"], context, limits)
    context["message"] = {"subject": subject, "preheader": preheader}
    template = env.get_template(row["template"])
    body = render_bounded(template, context, limits, output_chars(row["channel"]))
    is_html = row["channel"] == "email" or str(row["template"]).endswith(".html.j2")
    html, text = (body, None) if is_html else (None, body.strip())
    if text is not None and row["channel"] == "sms" and renderer.short_links is not None:
        text = renderer.short_links.shorten(
            text, row["message_id"], row["customer_id"], row["channel"]
        )
    headers = (
        _headers(context["links"]) if row["channel"] == "email" and row["is_marketing"] else {}
    )
    data: dict[str, Any] = {}
    if with_data:
        data = {k: context[k] for k in ("event", "links", "products", "recommendations", "utm")}
        data |= {"customer": profile, "subject": subject, "preheader": preheader}
        if "coupon" in context:
            data["coupon"] = context["coupon"]
    link = _render_text(env, message.deep_link, context, limits)
    extra: dict[str, Any] = {"deep_link": link} if link else {}
    if message.expires_after is not None:
        extra["expires_after_seconds"] = int(message.expires_after.total_seconds())
    return Outgoing(
        **base, subject=subject, html=html, text=text, template=row["template"],
        data=jsonable(data), headers=headers,
        payload=extra | _content(renderer, env, row, context),
    )  # fmt: skip


def _content(
    renderer: Renderer, env: SandboxedEnvironment, row: Mapping[str, Any], context: dict[str, Any]
) -> dict[str, Any]:
    """A WhatsApp step's approved template and its variables, rendered as subjects are."""
    spec = _message(renderer, row["flow_id"], row["step_id"])
    if spec.content_sid is None:
        return {}
    variables = {
        key: _render_text(env, text, context, renderer.limits)
        for key, text in (spec.content_variables or {}).items()
    }
    return {"content_sid": spec.content_sid, "content_variables": variables}


def _context(
    renderer: Renderer,
    row: Mapping[str, Any],
    customer: Mapping[str, Any],
    recs: Mapping[str, recommend.Recommendations],
    catalog: Mapping[str, Mapping[str, Any]],
) -> dict[str, Any]:
    compiled = renderer.flows[row["flow_id"]]
    message = _message(renderer, row["flow_id"], row["step_id"])
    claims = Claims(row["message_id"], row["customer_id"], row["channel"])
    base_url = links_base(renderer.settings)
    found = recs.get(row["message_id"])
    return render_context(
        flow=compiled.flow,
        step_id=row["step_id"],
        message=message,
        settings=renderer.settings,
        customer=customer,
        event=_properties(row["trigger_properties"]),
        links=message_links(base_url, claims, renderer.signing_key),
        products=recommend.blend(found) if found else [],
        recommendations=found,
        catalog=catalog,
        coupon=_coupon(renderer.settings, row) if row["coupon_code"] else None,
    )


def links_base(settings: Settings) -> str:
    """Where flowhouse's own links point (``flowhouse receive``): ``delivery.links_url``, else
    the store's url."""
    return settings.delivery.links_url or settings.store.url


def short_links(settings: Settings, key: str, folder: Path | None) -> ShortLinks | None:
    """The SMS link shortener, registering into ``folder`` (None: rewrite, register nothing);
    None when ``delivery.sms_click_tracking`` is off."""
    if not settings.delivery.sms_click_tracking:
        return None
    return ShortLinks(links_base(settings), key, folder)


def _sender(renderer: Renderer, flow_id: str) -> Sender | None:
    """The flow's own sender, if it names one (else the providers' defaults apply)."""
    compiled = renderer.flows.get(flow_id)
    given = compiled.flow.sender if compiled is not None else None
    if given is None:
        return None
    return Sender(given.name, given.email, given.reply_to, given.sms_from)


def _message(renderer: Renderer, flow_id: str, step_id: str) -> Message:
    """The send step's message spec (parsed once per step)."""
    key = (flow_id, step_id)
    if key not in renderer.messages:
        step = next(s for s in renderer.flows[flow_id].steps if s.step_id == step_id)
        renderer.messages[key] = Message.model_validate(
            {k: v for k, v in step.params.items() if k in Message.model_fields}
        )
    return renderer.messages[key]


def _render_text(
    env: SandboxedEnvironment, text: str | None, context: Mapping[str, Any], limits: Limits
) -> str:
    """A subject or preheader, rendered with the message's context as the body is."""
    if not text:
        return ""
    if "{" not in text:
        return text
    return render_bounded(env.from_string(text), context, limits, SUBJECT_CHARS)


def _headers(links: Mapping[str, str]) -> dict[str, str]:
    """RFC 8058 one-click unsubscribe, as mailbox providers expect of bulk senders."""
    return {
        "List-Unsubscribe": f"<{links['unsubscribe']}>",
        "List-Unsubscribe-Post": "List-Unsubscribe=One-Click",
    }


def _coupon(settings: Settings, row: Mapping[str, Any]) -> dict[str, Any]:
    pool = settings.coupon_pools.get(row["coupon_pool"] or "")
    return {
        "code": row["coupon_code"],
        "discount": pool.discount if pool else None,
        "free_shipping": bool(pool and pool.free_shipping),
        "expires_at": row["coupon_expires_at"],
    }


def _properties(value: Any) -> dict[str, Any]:
    if value is None:
        return {}
    if isinstance(value, str):
        loaded = json.loads(value)
        return loaded if isinstance(loaded, dict) else {}
    return dict(value)


def jsonable(value: Any) -> Any:
    """``value`` with dates as ISO text and decimals as floats (what JSON APIs take)."""
    if isinstance(value, Mapping):
        return {str(k): jsonable(v) for k, v in value.items() if not callable(v)}
    if isinstance(value, (list, tuple)):
        return [jsonable(v) for v in value]
    if isinstance(value, (datetime, date)):
        return value.isoformat()
    if isinstance(value, Decimal):
        return float(value)
    return value


def by_route(rendered: Sequence[tuple[str, Outgoing]]) -> dict[str, list[Outgoing]]:
    out: dict[str, list[Outgoing]] = {}
    for route, outgoing in rendered:
        out.setdefault(route, []).append(outgoing)
    return out
