"""Message templates: the one render context every template gets, the sandboxed environment that
renders them, and the static checks ``flowhouse validate`` runs on each send step's template.

Templates are Jinja2 files under ``flows/library/templates/`` (``.html.j2`` for e-mail bodies,
``.txt.j2`` for SMS and push). They are checked before anything runs, so a typo such as
``customer.frist_name`` is a validation error with a suggestion, not a failed send: the context is
declared here, in one place, and both the checks and the sender read it from here.
"""

from __future__ import annotations

import difflib
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import date, datetime
from functools import cache, lru_cache
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

from jinja2 import (
    FileSystemLoader,
    StrictUndefined,
    TemplateNotFound,
    TemplateSyntaxError,
    meta,
    nodes,
    pass_context,
)
from jinja2.runtime import Context
from jinja2.sandbox import SandboxedEnvironment

from flowhouse.flows.bounds import DEFAULT_LIMITS, BoundedSandbox, Limits, render_bounded
from flowhouse.flows.channels import CHANNELS
from flowhouse.flows.flowfile import Flow, Message
from flowhouse.flows.predicates import customer_columns
from flowhouse.flows.settings import Settings

TEMPLATES_DIR = "templates"
LAYOUT = "_layout.html.j2"
PRODUCT_KEYS = frozenset({"sku", "name", "url", "image_url", "price"})
#: The lists of ``recommendations``, each of products (see activation/recommend.py).
RECOMMENDATION_LISTS = ("recently_viewed", "popular", "complementary")
#: File endings per channel: what the template renders into.
ENDINGS: dict[str, tuple[str, ...]] = {c.name: c.endings for c in CHANNELS.values()}


@dataclass(frozen=True)
class Variable:
    """A name every template can use; ``keys`` are the attributes it has (None: any, unchecked)."""

    name: str
    keys: frozenset[str] | None
    description: str


def _keys(*names: str) -> frozenset[str]:
    return frozenset(names)


_PRODUCT = "{sku, name, url, image_url, price}"


@cache
def context_variables() -> dict[str, Variable]:
    """The render context, by name. ``coupon`` exists only when the send step names a pool."""
    found = (
        Variable("customer", customer_columns(), "the customer's attributes"),
        Variable("event", None, "the trigger event's properties (any key)"),
        Variable("flow", _keys("id", "name"), "the flow"),
        Variable("step", _keys("id"), "the send step"),
        Variable("message", _keys("subject", "preheader"), "the step's subject and preheader"),
        Variable(
            "coupon",
            _keys("code", "discount", "free_shipping", "expires_at"),
            "the code issued from the step's coupon_pool",
        ),
        Variable("store", _keys("name", "url", "postal_address"), "the store (_settings.yml)"),
        Variable(
            "sender",
            _keys("name", "email", "postal_address"),
            "the flow's sender, else the store's name and address",
        ),
        Variable("links", _keys("unsubscribe", "preferences"), "signed, per message"),
        Variable("utm", None, "the UTM query string naming the flow and step"),
        Variable("products", None, f"recommended products, a list of {_PRODUCT}"),
        Variable(
            "recommendations",
            _keys(*RECOMMENDATION_LISTS),
            f"lists of {_PRODUCT}: recently_viewed, popular, complementary",
        ),
        Variable("product", None, f"product(sku): that product's {_PRODUCT}, or none"),
    )
    return {v.name: v for v in found}


# -- rendering -----------------------------------------------------------------------------------


@lru_cache(maxsize=4096)
def _with_utm_query(url: str, utm: str) -> str:
    """``url`` with the UTM parameters added (replacing any it already has), fragment kept."""
    parts = urlsplit(url)
    extra = dict(parse_qsl(utm))
    query = [(k, v) for k, v in parse_qsl(parts.query, keep_blank_values=True) if k not in extra]
    path = parts.path or ("/" if parts.netloc else "")
    return urlunsplit(parts._replace(path=path, query=urlencode([*query, *extra.items()])))


@pass_context
def with_utm(context: Context, url: str) -> str:
    """Filter: ``{{ store.url | with_utm }}`` appends the message's UTM parameters."""
    return _with_utm_query(str(url), str(context["utm"]))


def format_date(value: str | date | None, fmt: str | None = None) -> str:
    """Filter: ``{{ event.next_renewal_at | date }}`` -> ``March 5, 2026`` (ISO text or a date)."""
    if value is None or value == "":
        return ""
    day = datetime.fromisoformat(value) if isinstance(value, str) else value
    return day.strftime(fmt) if fmt else f"{day:%B} {day.day}, {day.year}"


def _autoescape(name: str | None) -> bool:
    return bool(name) and str(name).endswith((".html.j2", ".html"))


def _finalize(value: Any) -> Any:
    """A null attribute (no first name) prints as nothing, not as ``None``."""
    return "" if value is None else value


def template_environment(templates_dir: Path) -> SandboxedEnvironment:
    """The sandbox templates render in: no attribute escapes, no mutation of the context,
    HTML escaping for ``.html.j2``, an error for any undefined name, and the time, size and
    depth bounds of :mod:`flowhouse.flows.bounds`."""
    env = BoundedSandbox(
        loader=FileSystemLoader(templates_dir),
        autoescape=_autoescape,
        undefined=StrictUndefined,
        finalize=_finalize,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.filters["with_utm"] = with_utm
    env.filters["date"] = format_date
    return env


def utm_query(flow_id: str, step_id: str, channel: str) -> str:
    return urlencode(
        {
            "utm_source": "flowhouse",
            "utm_medium": channel,
            "utm_campaign": flow_id,
            "utm_content": step_id,
        }
    )


def render_context(
    *,
    flow: Flow,
    step_id: str,
    message: Message,
    settings: Settings,
    customer: Mapping[str, Any],
    event: Mapping[str, Any],
    links: Mapping[str, str],
    products: Sequence[Mapping[str, Any]] = (),
    catalog: Mapping[str, Mapping[str, Any]] | None = None,
    coupon: Mapping[str, Any] | None = None,
    recommendations: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """Everything a template sees (the names of :func:`context_variables`), for one message.

    ``catalog`` maps sku -> product for ``product(sku)``; ``coupon`` is given exactly when the step
    names a coupon pool; ``recommendations`` maps each of :data:`RECOMMENDATION_LISTS` to its
    products (a missing list is empty).
    """
    shared = step_context(flow=flow, step_id=step_id, message=message, settings=settings)
    shared["product"] = product_lookup(dict(catalog or {}))
    return shared | message_context(
        customer=customer,
        event=event,
        links=links,
        products=products,
        coupon=coupon,
        recommendations=recommendations,
    )


def step_context(
    *, flow: Flow, step_id: str, message: Message, settings: Settings
) -> dict[str, Any]:
    """The part of the context every message of one send step shares (a sender renders many
    messages of a step with it; the sandbox keeps templates from changing it)."""
    store = settings.store
    sender = flow.sender
    return {
        "flow": {"id": flow.flow, "name": flow.name},
        "step": {"id": step_id},
        "message": {"subject": message.subject, "preheader": message.preheader},
        "store": {"name": store.name, "url": store.url, "postal_address": store.postal_address},
        "sender": {
            "name": sender.name if sender else store.name,
            "email": sender.email if sender else None,
            "postal_address": (sender and sender.postal_address) or store.postal_address,
        },
        "utm": utm_query(flow.flow, step_id, message.channel),
    }


def message_context(
    *,
    customer: Mapping[str, Any],
    event: Mapping[str, Any],
    links: Mapping[str, str],
    products: Sequence[Mapping[str, Any]] = (),
    coupon: Mapping[str, Any] | None = None,
    recommendations: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """The part of the context that is one message's own."""
    context: dict[str, Any] = {
        "customer": dict(customer),
        "event": dict(event),
        "links": dict(links),
        "products": [dict(p) for p in products],
        "recommendations": _recommendation_lists(recommendations or {}),
    }
    if coupon is not None:
        context["coupon"] = dict(coupon)
    return context


def _recommendation_lists(found: Mapping[str, Any]) -> dict[str, list[dict[str, Any]]]:
    return {key: [dict(p) for p in found.get(key) or ()] for key in RECOMMENDATION_LISTS}


def product_lookup(
    catalog: Mapping[str, Mapping[str, Any]],
) -> Callable[[str], dict[str, Any] | None]:
    """The template's ``product(sku)`` over ``catalog``."""

    def product(sku: str) -> dict[str, Any] | None:
        found = catalog.get(str(sku))
        return dict(found) if found is not None else None

    return product


def render(
    templates_dir: Path, name: str, context: Mapping[str, Any], limits: Limits = DEFAULT_LIMITS
) -> str:
    template = template_environment(templates_dir).get_template(name)
    return render_bounded(template, context, limits, limits.max_chars)


# -- checks --------------------------------------------------------------------------------------


def _suggest(name: str, known: Sequence[str]) -> str:
    close = difflib.get_close_matches(name, sorted(known), n=3, cutoff=0.7)
    return f"; did you mean {', '.join(close)}?" if close else ""


@dataclass(frozen=True)
class _Source:
    name: str
    tree: nodes.Template


def _load(env: SandboxedEnvironment, name: str) -> _Source | str:
    """The parsed and compiled template, or the problem that stops it."""
    assert env.loader is not None
    try:
        source, _, _ = env.loader.get_source(env, name)
    except TemplateNotFound:
        return f"{name}: no such template"
    try:
        tree = env.parse(source, name)
        env.compile(tree, name)
    except TemplateSyntaxError as err:
        return f"{name}:{err.lineno}: syntax error: {err.message}"
    return _Source(name, tree)


def _referenced(source: _Source) -> Iterator[str | None]:
    """Names of the templates ``source`` extends, includes or imports (None: computed)."""
    yield from meta.find_referenced_templates(source.tree)


def _first_line(tree: nodes.Template, name: str) -> int | None:
    found = (n.lineno for n in tree.find_all(nodes.Name) if n.name == name and n.ctx == "load")
    return next(found, None)


def _guards_coupon(tree: nodes.Template) -> bool:
    """Whether the template asks ``coupon is defined`` (so it works with and without a pool)."""
    return any(
        isinstance(t.node, nodes.Name)
        and t.node.name == "coupon"
        and t.name in {"defined", "undefined"}
        for t in tree.find_all(nodes.Test)
    )


def _declared(tree: nodes.Template) -> set[str]:
    """Every name the template binds anywhere (set, for, macro, import).

    Jinja's own analysis counts a name set inside an ``if`` or at the top of a child template as
    undeclared although it renders; a name bound anywhere is trusted here, and rendering with
    ``StrictUndefined`` catches the rest.
    """
    names = {n.name for n in tree.find_all(nodes.Name) if n.ctx in ("store", "param")}
    names |= {m.name for m in tree.find_all(nodes.Macro)}
    names |= {i.target for i in tree.find_all(nodes.Import)}
    for imported in tree.find_all(nodes.FromImport):
        names |= {n[1] if isinstance(n, tuple) else n for n in imported.names}
    return names


def _name_problems(source: _Source, has_coupon: bool) -> Iterator[str]:
    known = context_variables()
    undeclared = meta.find_undeclared_variables(source.tree) - _declared(source.tree)
    for name in sorted(undeclared):
        line = _first_line(source.tree, name)
        where = f"{source.name}:{line}: " if source.name else ""
        if name == "coupon" and not has_coupon and not _guards_coupon(source.tree):
            yield f"{where}coupon is only defined when the send step names a coupon_pool"
        elif name not in known:
            yield f"{where}undefined variable {name!r}{_suggest(name, list(known))}"


Shapes = dict[str, frozenset[str] | None]


def _attribute(node: nodes.Node) -> tuple[str, str] | None:
    """``(name, attr)`` for ``name.attr`` or ``name['attr']``."""
    if isinstance(node, nodes.Getattr) and isinstance(node.node, nodes.Name):
        return node.node.name, node.attr
    if (
        isinstance(node, nodes.Getitem)
        and isinstance(node.node, nodes.Name)
        and isinstance(node.arg, nodes.Const)
        and isinstance(node.arg.value, str)
    ):
        return node.node.name, node.arg.value
    return None


def _is_product_list(value: nodes.Node) -> bool:
    """Whether ``value`` is a list of products: ``products`` or ``recommendations.<list>``."""
    if isinstance(value, nodes.Name):
        return value.name == "products"
    found = _attribute(value)
    return found is not None and found[0] == "recommendations" and found[1] in RECOMMENDATION_LISTS


def _bound_shape(value: nodes.Node) -> frozenset[str] | None:
    """The attributes of what a loop or ``set`` binds, when known (products, product(sku))."""
    if _is_product_list(value):
        return PRODUCT_KEYS
    if isinstance(value, nodes.Getitem):  # products[0], recommendations.popular[:3]
        return PRODUCT_KEYS if _is_product_list(value.node) else None
    if isinstance(value, nodes.Call) and isinstance(value.node, nodes.Name):
        return PRODUCT_KEYS if value.node.name == "product" else None
    return None


def _bind(shapes: Shapes, target: nodes.Node, shape: frozenset[str] | None) -> Shapes:
    names = {n.name for n in target.find_all(nodes.Name)}
    if isinstance(target, nodes.Name):
        names.add(target.name)
    out = {k: v for k, v in shapes.items() if k not in names}
    if isinstance(target, nodes.Name) and shape is not None:
        out[target.name] = shape
    return out


def _attribute_problems(node: nodes.Node, shapes: Shapes, name: str) -> Iterator[str]:
    """Unknown attributes of names whose attributes are known, respecting loops and ``set``."""
    found = _attribute(node)
    keys = shapes.get(found[0]) if found else None
    if found and keys is not None and found[1] not in keys:
        hint = _suggest(found[1], sorted(keys))
        where = f"{name}:{node.lineno}: " if name else ""
        yield f"{where}unknown attribute {found[0]}.{found[1]}{hint}"
    if isinstance(node, nodes.For):
        yield from _attribute_problems(node.iter, shapes, name)
        inner = _bind(shapes, node.target, _bound_shape(node.iter))
        yield from _body_problems([*node.body, *([node.test] if node.test else [])], inner, name)
        yield from _body_problems(node.else_, shapes, name)
        return
    if isinstance(node, nodes.Macro):
        inner = shapes
        for arg in node.args:
            inner = _bind(inner, arg, None)
        yield from _body_problems(node.body, inner, name)
        return
    for _, value in node.iter_fields():
        children = value if isinstance(value, list) else [value]
        yield from _body_problems([c for c in children if isinstance(c, nodes.Node)], shapes, name)


def _body_problems(children: Sequence[nodes.Node], shapes: Shapes, name: str) -> Iterator[str]:
    """Statements in order: a ``set`` changes what a name means for the statements after it."""
    scope = shapes
    for child in children:
        yield from _attribute_problems(child, scope, name)
        if isinstance(child, nodes.Assign):
            scope = _bind(scope, child.target, _bound_shape(child.node))
        elif isinstance(child, nodes.AssignBlock):
            scope = _bind(scope, child.target, None)


def _top_shapes(event: frozenset[str] | None = None) -> Shapes:
    """What each context name's attributes are; ``event``: the trigger's properties, when known."""
    return {name: v.keys for name, v in context_variables().items()} | {"event": event}


# -- what reaches the output of a marketing e-mail ------------------------------------------------

#: Each requirement and the references (``name.attr``, a bare name, or ``|filter``) that satisfy it.
_MARKETING_NEEDS = {
    "an unsubscribe link ({{ links.unsubscribe }})": {"links.unsubscribe"},
    "the postal address ({{ sender.postal_address }})": {
        "sender.postal_address",
        "store.postal_address",
    },
    "UTM parameters (the with_utm filter)": {"|with_utm", "utm"},
}


def _walk(node: nodes.Node, skip: frozenset[str]) -> Iterator[nodes.Node]:
    """Every node under ``node`` except the bodies of blocks named in ``skip`` (overridden)."""
    for child in node.iter_child_nodes():
        if isinstance(child, nodes.Block) and child.name in skip:
            continue
        yield child
        yield from _walk(child, skip)


def _refs(found: Sequence[nodes.Node]) -> set[str]:
    out: set[str] = set()
    for node in found:
        attribute = _attribute(node)
        if attribute:
            out.add(".".join(attribute))
        elif isinstance(node, nodes.Filter):
            out.add(f"|{node.name}")
        elif isinstance(node, nodes.Name):
            out.add(node.name)
    return out


def _overrides(tree: nodes.Template) -> frozenset[str]:
    """Blocks this template replaces outright (a block calling super() keeps its parent's)."""
    return frozenset(
        b.name
        for b in tree.find_all(nodes.Block)
        if not any(
            isinstance(c.node, nodes.Name) and c.node.name == "super"
            for c in b.find_all(nodes.Call)
        )
    )


def _output_refs(
    env: SandboxedEnvironment, source: _Source, skip: frozenset[str], seen: frozenset[str]
) -> set[str]:
    """References that reach the rendered output: a child's blocks plus its parent's rest."""
    parent = next(iter(source.tree.find_all(nodes.Extends)), None)
    if parent is not None:
        blocks = [b for b in source.tree.find_all(nodes.Block) if b.name not in skip]
        refs = _refs([n for b in blocks for n in _walk(b, skip)])
        inner = [n for b in blocks for n in b.find_all(nodes.Include)]
        skip = skip | _overrides(source.tree)
        refs |= _included_refs(env, inner, seen)
        return refs | _ref_of(env, parent.template, skip, seen)
    found = list(_walk(source.tree, skip))
    includes = [n for n in found if isinstance(n, nodes.Include)]
    return _refs(found) | _included_refs(env, includes, seen)


def _included_refs(
    env: SandboxedEnvironment, includes: Sequence[nodes.Include], seen: frozenset[str]
) -> set[str]:
    out: set[str] = set()
    for node in includes:
        out |= _ref_of(env, node.template, frozenset(), seen)
    return out


def _ref_of(
    env: SandboxedEnvironment, template: nodes.Expr, skip: frozenset[str], seen: frozenset[str]
) -> set[str]:
    if not isinstance(template, nodes.Const) or template.value in seen:
        return set()
    loaded = _load(env, str(template.value))
    if isinstance(loaded, str):
        return set()
    return _output_refs(env, loaded, skip, seen | {loaded.name})


def _marketing_problems(env: SandboxedEnvironment, source: _Source) -> Iterator[str]:
    refs = _output_refs(env, source, frozenset(), frozenset({source.name}))
    missing = [need for need, options in _MARKETING_NEEDS.items() if not refs & options]
    if missing:
        yield (
            f"{source.name}: a marketing e-mail must carry {', '.join(missing)}; "
            f'extend the shared layout ({{% extends "{LAYOUT}" %}}) to get them all'
        )


# -- the entry point -----------------------------------------------------------------------------


_LITERAL = "name templates in extends and include literally, so they can be checked"


def _sources(env: SandboxedEnvironment, name: str) -> tuple[list[_Source], list[str]]:
    """The template and every template it reaches, parsed; and the problems loading them."""
    sources: list[_Source] = []
    problems: list[str] = []
    todo, seen = [name], set()
    while todo:
        current = todo.pop(0)
        if current in seen:
            continue
        seen.add(current)
        loaded = _load(env, current)
        if isinstance(loaded, str):
            problems.append(loaded if current == name else f"{loaded} (used by {name})")
            continue
        sources.append(loaded)
        for ref in _referenced(loaded):
            if ref is None:
                problems.append(f"{current}: {_LITERAL}")
            else:
                todo.append(ref)
    return sources, problems


def check_template(
    templates_dir: Path,
    name: str,
    *,
    has_coupon: bool,
    channel: str,
    transactional: bool = False,
    event: frozenset[str] | None = None,
) -> list[str]:
    """Every problem with template ``name`` as the body of a ``channel`` message; ``event``: the
    properties of the flow's trigger (None: any).

    Each message starts with the template (and line) it is about: a missing file, a syntax error,
    a name the context does not define (``coupon`` without a pool), an unknown attribute of a
    known variable (``customer.frist_name``), and for marketing e-mail a missing unsubscribe
    link, postal address or UTM parameters.
    """
    endings = ENDINGS.get(channel, ())
    if endings and not name.endswith(endings):
        return [f"{name}: {channel} templates end in {' or '.join(endings)}"]
    env = template_environment(templates_dir)
    sources, problems = _sources(env, name)
    complete = not problems  # every template it reaches loaded: its output can be judged
    for source in sources:
        problems += _name_problems(source, has_coupon)
        problems += _attribute_problems(source.tree, _top_shapes(event), source.name)
    if complete and channel == "email" and not transactional:
        problems += _marketing_problems(env, sources[0])
    return problems


def check_text(
    templates_dir: Path, text: str, *, has_coupon: bool, event: frozenset[str] | None = None
) -> list[str]:
    """Every problem with ``text`` (a subject or preheader) as a template rendered with the
    message's context, as :func:`check_template` checks a body: a syntax error (with its line
    when the text has several), names the context does not define, unknown attributes."""
    if "{" not in text:
        return []
    env = template_environment(templates_dir)
    try:
        tree = env.parse(text)
        env.compile(tree)
    except TemplateSyntaxError as err:
        line = f" (line {err.lineno})" if "\n" in text.strip() else ""
        return [f"syntax error{line}: {err.message}"]
    source = _Source("", tree)
    problems = list(_name_problems(source, has_coupon))
    problems += _attribute_problems(tree, _top_shapes(event), "")
    return problems
