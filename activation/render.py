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

from jinja2 import Template, TemplateError, meta, nodes
from jinja2.sandbox import SandboxedEnvironment

from flowhouse.activation import recommend
from flowhouse.activation.links import Claims, ShortLinks, message_links
from flowhouse.activation.message import Device, Outgoing, Sender
from flowhouse.activation.providers.delivery import ProviderConfigs
from flowhouse.flows.bounds import DEFAULT_LIMITS, Limits, describe, output_chars, render_bounded
from flowhouse.flows.compile import CompiledFlow
from flowhouse.flows.flowfile import Message
from flowhouse.flows.settings import Settings
from flowhouse.flows.templating import (
    TEMPLATES_DIR,
    message_context,
    product_lookup,
    step_context,
    template_environment,
)
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
#: the loyalty points awarded, the latest change_tier unless it expired (the same rules as the model
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
    select u.customer_id, u.value, u.expires_at,
        row_number() over (
            partition by u.customer_id order by u.updated_at desc, u.update_id desc
        ) as latest
    from flowhouse.profile_updates as u
    where u.customer_id in (select customer_id from {table}) and u.updated_at <= :now
        and u.action = 'change_tier'
) as t
where t.latest = 1 and (t.expires_at is null or t.expires_at > :now)
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


#: Context names filled from the recommendation queries: a claim whose templates use neither
#: (and whose destinations do not send the context itself) skips those queries.
RECOMMENDATION_NAMES = frozenset({"products", "recommendations"})


@dataclass(frozen=True)
class Step:
    """What every message of one send step shares, built once per run: the message spec and
    the shared part of the render context."""

    message: Message
    context: dict[str, Any]


@dataclass(frozen=True)
class Renderer:
    """What rendering needs besides the rows: flows, settings, templates, the link key.

    Everything that is the same for many messages is built once per run and kept in ``_once``:
    the sandbox with its compiled templates (not re-read or re-checked per message), compiled
    subjects and preheaders, each step's shared context, the catalog. A renderer handed to a
    render worker (:meth:`portable`) carries only the catalog; the worker builds the rest."""

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
            env = template_environment(self.flows_dir / TEMPLATES_DIR)
            env.auto_reload = False  # a run renders the templates as they were when it began
            self._once["env"] = env
        return self._once["env"]  # type: ignore[no-any-return]

    def catalog(self, ctx: Context) -> dict[str, Any]:
        if "catalog" not in self._once:
            self._once["catalog"] = recommend.catalog(ctx.wh)
        return self._once["catalog"]  # type: ignore[no-any-return]

    def portable(self, ctx: Context) -> Renderer:
        """A copy to send to another process: the catalog read, nothing compiled."""
        return replace(self, messages={}, _once={"catalog": self.catalog(ctx)})

    def template(self, name: str) -> Template:
        """The compiled template ``name`` (compiled at its first use in the run)."""
        cache: dict[str, Template] = self._once.setdefault("templates", {})
        if name not in cache:
            cache[name] = self.environment().get_template(name)
        return cache[name]

    def text(self, source: str) -> Template:
        """A subject or preheader, compiled once per run."""
        cache: dict[str, Template] = self._once.setdefault("texts", {})
        if source not in cache:
            cache[source] = self.environment().from_string(source)
        return cache[source]

    def step(self, flow_id: str, step_id: str) -> Step:
        """The send step's shared parts (built at its first message in the run)."""
        cache: dict[tuple[str, str], Step] = self._once.setdefault("steps", {})
        key = (flow_id, step_id)
        if key not in cache:
            flow = self.flows[flow_id].flow
            message = _message(self, flow_id, step_id)
            shared = step_context(
                flow=flow, step_id=step_id, message=message, settings=self.settings
            )
            shared["product"] = product_lookup(self._once.get("catalog") or {})
            cache[key] = Step(message, shared)
        return cache[key]

    def uses_recommendations(self, row: Mapping[str, Any]) -> bool:
        """Whether the row's template (with what it extends, includes or imports), subject,
        preheader, or its step's title, deep link or content variables name ``products`` or
        ``recommendations``; True when that cannot be told."""
        if row["kind"] != "message":
            return False
        cache: dict[tuple[Any, ...], bool] = self._once.setdefault("uses", {})
        key = (row["flow_id"], row["step_id"], row["template"], row["subject"], row["preheader"])
        if key not in cache:
            try:
                spec = _message(self, row["flow_id"], row["step_id"])
            except (KeyError, StopIteration, ValueError):  # rendering it fails with the reason
                return True
            texts = [spec.title, spec.deep_link, *(spec.content_variables or {}).values()]
            cache[key] = _names_recommendations(
                self.environment(), row["template"], row["subject"], row["preheader"], *texts
            )
        return cache[key]


def _names_recommendations(
    env: SandboxedEnvironment, template: str | None, *texts: str | None
) -> bool:
    trees: list[nodes.Template] = []
    try:
        trees += [env.parse(t) for t in texts if t]
    except TemplateError:
        return True
    seen: set[str] = set()
    todo: list[str | None] = [template] if template else []
    while todo:
        name = todo.pop()
        if name is None:
            return True  # a computed template name: anything may be rendered
        if name in seen:
            continue
        seen.add(name)
        try:
            assert env.loader is not None
            source, _, _ = env.loader.get_source(env, name)
            tree = env.parse(source, name)
        except (TemplateError, OSError):
            return True  # rendering it fails with the reason; reading more does not matter
        trees.append(tree)
        todo += list(meta.find_referenced_templates(tree))
    return any(n.name in RECOMMENDATION_NAMES for tree in trees for n in tree.find_all(nodes.Name))


@dataclass
class Batch:
    """Rows to render with what they need from the warehouse (their customers' attributes,
    their recommendations, device tokens and shop states, each read in one query for the whole
    claim): enough to render them anywhere, in this process or a render worker's."""

    rows: list[dict[str, Any]]
    people: dict[str, dict[str, Any]]
    recs: dict[str, recommend.Recommendations]
    #: The usable device tokens of the customers with a push to FCM (:func:`devices`).
    devices: dict[str, tuple[Device, ...]] = field(default_factory=dict)
    #: The action state of the customers with a state action (:func:`shop_states`).
    states: dict[str, dict[str, Any]] = field(default_factory=dict)

    def split(self, size: int) -> list[Batch]:
        """Consecutive slices of at most ``size`` rows, each with only its rows' data."""
        out = []
        for start in range(0, len(self.rows), size):
            rows = self.rows[start : start + size]
            customers = {r["customer_id"] for r in rows}
            messages = {r["message_id"] for r in rows}
            out.append(
                Batch(
                    rows,
                    _only(self.people, customers),
                    _only(self.recs, messages),
                    _only(self.devices, customers),
                    _only(self.states, customers),
                )
            )
        return out


def _only(found: dict[str, Any], keys: set[str]) -> dict[str, Any]:
    return {k: v for k, v in found.items() if k in keys}


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
    return render_batch(renderer, claim_batch(ctx, renderer, claim_id, status))


def claim_batch(ctx: Context, renderer: Renderer, claim_id: str, status: str = "claimed") -> Batch:
    """The claim's rows with what rendering them needs (a few set-based queries)."""
    rows = load(ctx, claim_id, status)
    if not rows:
        return Batch([], {}, {})
    ctx.temp("_fh_claimed", _CLAIMED_TABLE, claim=claim_id, status=status)
    return prepare(ctx, renderer, rows, "_fh_claimed")


def render_rows(
    ctx: Context, renderer: Renderer, rows: Sequence[dict[str, Any]], table: str
) -> Rendered:
    """``rows`` (with the columns of :func:`load`) rendered, in or outside the outbox (a preview
    renders rows it made itself). ``table`` names a table of their ``message_id, customer_id,
    enrollment_id``; recommendations read the trigger of each enrollment in ``ctx.schema``."""
    return render_batch(renderer, prepare(ctx, renderer, rows, table))


def prepare(ctx: Context, renderer: Renderer, rows: Sequence[dict[str, Any]], table: str) -> Batch:
    """``rows`` with their customers and, when a template or destination uses them, their
    recommendations (see :func:`render_rows` for ``table``)."""
    people = customers(ctx, table)
    renderer.catalog(ctx)
    needs = any(
        renderer.uses_recommendations(r) or _wants_data(renderer, route_of(renderer.settings, r), r)
        for r in rows
    )
    recs = recommend.recommendations(ctx.wh, table, ctx.now, schema=ctx.schema) if needs else {}
    pushes = any(r["channel"] == "push" and route_of(renderer.settings, r) == "fcm" for r in rows)
    reached = devices(ctx, table) if pushes else {}
    states = shop_states(ctx, table) if any(r["channel"] in STATE_ACTIONS for r in rows) else {}
    return Batch(list(rows), people, recs, reached, states)


def render_batch(renderer: Renderer, batch: Batch) -> Rendered:
    """Every row of ``batch`` rendered; a row that fails is recorded with its reason and the
    others go on. Reads nothing from the warehouse (a render worker runs it). The short links its
    SMS bodies register are written to the links folder before it returns, by the process that
    rendered them: registered before any of the messages is sent, wherever rendering runs."""
    out = Rendered()
    for row in batch.rows:
        route = route_of(renderer.settings, row)
        wrong = _channel_problem(route, row)
        if wrong is not None:
            out.failed[row["message_id"]] = wrong
            continue
        try:
            outgoing = _outgoing(
                renderer, row, batch.people, batch.recs, _wants_data(renderer, route, row),
                batch.states,
            )  # fmt: skip
            if route == "fcm":
                outgoing = replace(outgoing, devices=batch.devices.get(row["customer_id"], ()))
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
    row: dict[str, Any],
    people: Mapping[str, Mapping[str, Any]],
    recs: Mapping[str, recommend.Recommendations],
    with_data: bool = True,
    states: Mapping[str, dict[str, Any]] | None = None,
) -> Outgoing:
    customer = people.get(row["customer_id"]) or {"customer_id": row["customer_id"]}
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
        own: dict[str, Any] = {}
        if row["channel"] in STATE_ACTIONS:  # the whole state, as of the claim
            empty = {"tags": [], "loyalty_points": 0, "tier": None}
            facts["shop"] = (states or {}).get(row["customer_id"], empty)
            own = jsonable(_properties(customer.get("properties")))
        return Outgoing(**base, payload=payload, data=jsonable(facts), properties=own)
    context = _context(renderer, row, customer, recs)
    limits = renderer.limits
    message = renderer.step(row["flow_id"], row["step_id"]).message
    subject = _render_text(renderer, message.title or row["subject"], context, limits)
    preheader = _render_text(renderer, row["preheader"], context, limits)
    context["message"] = {"subject": subject, "preheader": preheader}
    template = renderer.template(row["template"])
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
    link = _render_text(renderer, message.deep_link, context, limits)
    extra: dict[str, Any] = {"deep_link": link} if link else {}
    if message.expires_after is not None:
        extra["expires_after_seconds"] = int(message.expires_after.total_seconds())
    return Outgoing(
        **base, subject=subject, html=html, text=text, template=row["template"],
        data=jsonable(data), headers=headers,
        payload=extra | _content(renderer, message, context),
    )  # fmt: skip


def _content(renderer: Renderer, spec: Message, context: dict[str, Any]) -> dict[str, Any]:
    """A WhatsApp step's approved template and its variables, rendered as subjects are."""
    if spec.content_sid is None:
        return {}
    variables = {
        key: _render_text(renderer, text, context, renderer.limits)
        for key, text in (spec.content_variables or {}).items()
    }
    return {"content_sid": spec.content_sid, "content_variables": variables}


def _context(
    renderer: Renderer,
    row: Mapping[str, Any],
    customer: Mapping[str, Any],
    recs: Mapping[str, recommend.Recommendations],
) -> dict[str, Any]:
    """The step's shared context with the message's own part."""
    step = renderer.step(row["flow_id"], row["step_id"])
    claims = Claims(row["message_id"], row["customer_id"], row["channel"])
    base_url = links_base(renderer.settings)
    found = recs.get(row["message_id"])
    return step.context | message_context(
        customer=customer,
        event=_properties(row["trigger_properties"]),
        links=message_links(base_url, claims, renderer.signing_key),
        products=recommend.blend(found) if found else [],
        recommendations=found,
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
    renderer: Renderer, text: str | None, context: Mapping[str, Any], limits: Limits
) -> str:
    """A subject or preheader, rendered with the message's context as the body is."""
    if not text:
        return ""
    if "{" not in text:
        return text
    return render_bounded(renderer.text(text), context, limits, SUBJECT_CHARS)


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
