"""The one reader of a flows folder: the tick, ``plan``, ``backtest``, ``send`` and
``validate`` all load flows through :func:`read_flows`, so the tick refuses exactly what
``flowhouse validate`` rejects.

Beyond each file on its own (:mod:`flowhouse.flows.files`), a flow is checked against what lies
beside it: the store settings (``_settings.yml``: its own event types and properties, its lists,
coupon pools, the postal address; :mod:`flowhouse.flows.vocabulary`), the lists other flows add
customers to, and the message templates (``templates/``), subjects and preheaders its send steps
name. Flow ids are unique across the files read.

What the flow language cannot judge itself is passed in as ``checks``: callables that take a
folder's settings and return their problems (the CLI passes activation's check of the provider
sections under ``delivery``).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path

from flowhouse.core.errors import ConfigError
from flowhouse.flows.checks import Loc, memberships, walk_steps
from flowhouse.flows.compile import CompiledFlow, compile_flow
from flowhouse.flows.files import ParsedFlow, Problem, YamlSyntaxError, flow_files, read_flow
from flowhouse.flows.flowfile import Action, Flow, Message, Send, format_duration
from flowhouse.flows.settings import SETTINGS_FILE, Settings, load_settings, off_domains
from flowhouse.flows.templating import TEMPLATES_DIR, check_template, check_text
from flowhouse.flows.vocabulary import Vocabulary

#: A check of a folder's settings beyond their shape, passed in by the composition.
SettingsCheck = Callable[[Settings], Iterable[Problem]]


@dataclass
class ReadFlows:
    """What :func:`read_flows` found: the valid flows (with their files), the settings of each
    folder read, and every problem, located."""

    flows: list[tuple[Path, Flow]] = field(default_factory=list)
    settings: dict[Path, Settings | None] = field(default_factory=dict)
    problems: list[Problem] = field(default_factory=list)
    files: int = 0


def read_flows(paths: Sequence[Path], checks: Sequence[SettingsCheck] = ()) -> ReadFlows:
    """Every flow file under ``paths`` (files or folders), checked on its own and against its
    folder's settings, names (:mod:`flowhouse.flows.vocabulary`) and templates; each folder's
    settings also pass ``checks``."""
    out = ReadFlows()
    out.problems += [
        Problem(str(p), None, "", "no such file or folder") for p in paths if not p.exists()
    ]
    files = flow_files([p for p in paths if p.exists()])
    out.files = len(files)
    parsed: list[tuple[Path, ParsedFlow]] = []
    seen: dict[str, str] = {}
    for path in files:
        if path.parent not in out.settings:
            out.settings[path.parent], found = _settings(path.parent, checks)
            out.problems += found
        one = read_flow(path, vocabulary_of(out.settings[path.parent]))
        out.problems += one.problems
        if one.parsed is None:
            continue
        if one.parsed.flow in seen:
            message = f"duplicate flow id, also in {seen[one.parsed.flow]}"
            out.problems.append(Problem(str(path), 1, "flow", message, one.parsed.flow))
            continue
        seen[one.parsed.flow] = str(path)
        parsed.append((path, one))
    lists = _lists(out.settings, parsed)
    for path, one in parsed:
        assert one.parsed is not None
        settings = out.settings[path.parent]
        references = [
            Problem(str(path), one.line(loc), ".".join(map(str, loc)), message, value)
            for loc, message, value in _references(
                one.parsed, path.parent, settings, lists[path.parent]
            )
        ]
        out.problems += references
        if one.flow is not None and not references:
            out.flows.append((path, one.flow))
    out.problems.sort(key=lambda p: (p.file, p.line or 0))
    return out


def vocabulary_of(settings: Settings | None) -> Vocabulary:
    """The names flows beside ``settings`` may use (flowhouse's own when they did not load)."""
    if settings is None:
        return Vocabulary()
    events = settings.events
    return Vocabulary.of(
        events.custom, events.properties, customer_properties=settings.customer_properties
    )


def _lists(
    settings: dict[Path, Settings | None], parsed: Sequence[tuple[Path, ParsedFlow]]
) -> dict[Path, Vocabulary]:
    """Per folder, the vocabulary with its lists: the settings' and those its flows add to."""
    lists: dict[Path, set[str]] = {
        folder: set(found.lists if found else ()) for folder, found in settings.items()
    }
    for path, one in parsed:
        assert one.parsed is not None
        for step, _ in walk_steps(one.parsed.steps, ("steps",)):
            if isinstance(step, Action) and step.action.type == "add_to_list" and step.action.list:
                lists[path.parent].add(step.action.list)
    return {
        folder: vocabulary_of(settings[folder]).with_lists(names) for folder, names in lists.items()
    }


def load_flows(
    flows_dir: Path, checks: Sequence[SettingsCheck] = ()
) -> tuple[list[CompiledFlow], Settings]:
    """Every flow in `flows_dir`, compiled, and the store settings; any problem that
    ``flowhouse validate`` would report stops the load with all of them listed."""
    if not flows_dir.is_dir():
        raise ConfigError("no such flows folder", value=str(flows_dir))
    found = read_flows([flows_dir], checks)
    if found.problems:
        listed = "\n  ".join(str(p) for p in found.problems)
        raise ConfigError(f"invalid flow files (run flowhouse validate):\n  {listed}")
    settings = found.settings.get(flows_dir) or load_settings(flows_dir)
    return [replace(compile_flow(flow), source=str(path)) for path, flow in found.flows], settings


def _settings(
    flows_dir: Path, checks: Sequence[SettingsCheck]
) -> tuple[Settings | None, list[Problem]]:
    """The store settings beside the flows and the problems ``checks`` find in them, or the
    problem that stops them loading."""
    try:
        settings = load_settings(flows_dir)
    except YamlSyntaxError as err:
        return None, [err.problem]
    except ConfigError as err:
        where = err.location
        if where is None:
            return None, [Problem(str(flows_dir / SETTINGS_FILE), None, "", str(err))]
        message = str(err).removeprefix(f"{where}: ").split("; got ")[0]
        return None, [Problem(where.file, where.line, where.field or "", message, err.value)]
    return settings, [p for check in checks for p in check(settings)]


Reference = tuple[Loc, str, object]


def _references(
    flow: Flow, flows_dir: Path, settings: Settings | None, vocabulary: Vocabulary
) -> Iterator[Reference]:
    """Problems with what the flow names outside itself: templates, coupon pools, lists, the
    address."""
    templates = flows_dir / TEMPLATES_DIR
    for loc, name in memberships(flow, "list"):
        problem = vocabulary.check_list(name)
        if problem:
            yield loc, problem, name
    event = vocabulary.properties(flow.trigger.event)
    for step, loc in walk_steps(flow.steps, ("steps",)):
        if isinstance(step, Send):
            yield from _send_references(flow, step, loc, templates, settings, event)
        elif isinstance(step, Action):
            yield from _action_fields(step, loc)
            if step.action.type == "coupon" and step.action.pool:
                yield from _pool(step.action.pool, (*loc, "action", "pool"), settings)
    if settings is not None:
        yield from _postal_address(flow, settings)
        yield from _sender_domain(flow, settings)


def _send_references(
    flow: Flow,
    step: Send,
    loc: Loc,
    templates: Path,
    settings: Settings | None,
    event: Mapping[str, str] | None,
) -> Iterator[Reference]:
    message = step.send
    has_coupon = message.coupon_pool is not None
    keys = None if event is None else frozenset(event)
    for problem in check_template(
        templates,
        message.template,
        has_coupon=has_coupon,
        channel=message.channel,
        transactional=flow.transactional,
        event=keys,
    ):
        yield (*loc, "send", "template"), f"template {problem}", None
    for name in ("subject", "preheader", "title", "deep_link"):
        text = getattr(message, name)
        for problem in check_text(templates, text or "", has_coupon=has_coupon, event=keys):
            yield (*loc, "send", name), problem, text
    if message.coupon_pool:
        yield from _pool(message.coupon_pool, (*loc, "send", "coupon_pool"), settings)
    yield from _whatsapp_template(flow, message, loc)
    for key, text in (message.content_variables or {}).items():
        where = (*loc, "send", "content_variables", key)
        for problem in check_text(templates, text, has_coupon=has_coupon, event=keys):
            yield where, problem, text


def _whatsapp_template(flow: Flow, message: Message, loc: Loc) -> Iterator[Reference]:
    """WhatsApp lets a business start a conversation only with an approved template (Twilio's
    ``ContentSid``); free text is allowed only inside the 24-hour window after the customer wrote,
    which flowhouse does not track, so a marketing WhatsApp step must name its template. A
    transactional one may send its text template as free text (Twilio refuses it, error 63016,
    outside the window, and the message fails with that reason)."""
    if message.channel != "whatsapp":
        for name in ("content_sid", "content_variables"):
            if getattr(message, name) is not None:
                yield (
                    (*loc, "send", name),
                    f"{name}: applies to WhatsApp steps only (this step's channel is "
                    f"{message.channel})",
                    None,
                )
        return
    if message.content_sid is None and message.content_variables is not None:
        yield (*loc, "send", "content_variables"), "content_variables needs content_sid", None
    if message.content_sid is None and not flow.transactional:
        yield (
            (*loc, "send"),
            "a marketing WhatsApp message needs an approved template: content_sid: HX... (Twilio "
            "Content API); free text is only allowed in transactional flows",
            None,
        )


#: The fields each action type needs; any other field is a mistake.
ACTION_FIELDS: dict[str, frozenset[str]] = {
    "add_tag": frozenset({"tag"}),
    "remove_tag": frozenset({"tag"}),
    "add_to_list": frozenset({"list"}),
    "remove_from_list": frozenset({"list"}),
    "set_property": frozenset({"property", "value"}),
    "coupon": frozenset({"pool"}),
    "loyalty_points": frozenset({"points"}),
    "change_tier": frozenset({"tier"}),
    "admin_task": frozenset({"task"}),
    "webhook": frozenset({"url"}),
    "audience_sync": frozenset({"audience"}),
}


#: The fields an action type may also take.
OPTIONAL_ACTION_FIELDS: dict[str, frozenset[str]] = {"change_tier": frozenset({"expires_in"})}


def _action_fields(step: Action, loc: Loc) -> Iterator[Reference]:
    kind = step.action.type
    given = step.action.model_dump(exclude_none=True, exclude={"type"})
    needed = ACTION_FIELDS[kind]
    allowed = needed | OPTIONAL_ACTION_FIELDS.get(kind, frozenset())
    for name in sorted(needed - given.keys()):
        yield (*loc, "action"), f"type {kind} needs {name}:", None
    for name in sorted(given.keys() - allowed):
        expected = ", ".join(sorted(allowed))
        yield (
            (*loc, "action", name),
            f"{name}: does not apply to {kind} (it takes {expected})",
            None,
        )
    yield from _expiry(step, loc)


def _expiry(step: Action, loc: Loc) -> Iterator[Reference]:
    """An override's ``expires_in`` is a positive duration, and ``tier: auto`` (which clears the
    override) has nothing to expire."""
    expires = step.action.expires_in
    if expires is None or step.action.type != "change_tier":
        return
    where = (*loc, "action", "expires_in")
    if expires.total_seconds() <= 0:
        yield where, "expires_in: must be a positive duration (e.g. 30d)", format_duration(expires)
    if step.action.tier == "auto":
        yield where, "expires_in: tier auto clears the override; there is nothing to expire", None


def _pool(name: str, loc: Loc, settings: Settings | None) -> Iterator[Reference]:
    if settings is not None and name not in settings.coupon_pools:
        known = ", ".join(sorted(settings.coupon_pools)) or "none yet"
        yield loc, f"no such coupon pool in {SETTINGS_FILE} (pools: {known})", name


def _postal_address(flow: Flow, settings: Settings) -> Iterator[Reference]:
    """Marketing e-mail must show a postal address: the flow's sender's or the store's."""
    if flow.transactional or (flow.sender and flow.sender.postal_address):
        return
    if settings.store.postal_address:
        return
    for step, loc in walk_steps(flow.steps, ("steps",)):
        if isinstance(step, Send) and step.send.channel == "email":
            yield (
                (*loc, "send"),
                "a marketing e-mail needs a postal address: set store.postal_address in "
                f"{SETTINGS_FILE} or sender.postal_address in the flow",
                None,
            )
            return


def _sender_domain(flow: Flow, settings: Settings) -> Iterator[Reference]:
    """The flow's from address must be on one of the store's validated sending domains."""
    address = flow.sender.email if flow.sender else None
    problem = off_domains(address, settings) if address else None
    if problem:
        yield ("sender", "email"), problem, address
