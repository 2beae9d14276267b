"""The one reader of a flows folder: the tick, ``plan``, ``backtest``, ``send`` and
``validate`` all load flows through :func:`read_flows`, so the tick refuses exactly what
``flowhouse validate`` rejects.

Beyond each file on its own (:mod:`flows.files`), a flow is checked against what lies beside it:
the store settings (``_settings.yml``: its coupon pools, the postal address) and the message
templates (``templates/``) its send steps name. Flow ids are unique across the files read.

What the flow language cannot judge itself is passed in as ``checks``: callables that take a
folder's settings and return their problems (the CLI passes activation's check of the provider
sections under ``delivery``).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from flowhouse.core.errors import ConfigError
from flows.checks import Loc, walk_steps
from flows.compile import CompiledFlow, compile_flow
from flows.files import Problem, flow_files, read_flow
from flows.flowfile import Action, Flow, Send
from flows.settings import SETTINGS_FILE, Settings, load_settings, off_domains
from flows.templating import TEMPLATES_DIR, check_template

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
    folder's settings and templates; each folder's settings also pass ``checks``."""
    out = ReadFlows()
    out.problems += [
        Problem(str(p), None, "", "no such file or folder") for p in paths if not p.exists()
    ]
    files = flow_files([p for p in paths if p.exists()])
    out.files = len(files)
    seen: dict[str, str] = {}
    for path in files:
        parsed = read_flow(path)
        out.problems += parsed.problems
        flow = parsed.flow
        if flow is None:
            continue
        if flow.flow in seen:
            message = f"duplicate flow id, also in {seen[flow.flow]}"
            out.problems.append(Problem(str(path), 1, "flow", message, flow.flow))
            continue
        seen[flow.flow] = str(path)
        if path.parent not in out.settings:
            out.settings[path.parent], found = _settings(path.parent, checks)
            out.problems += found
        references = [
            Problem(str(path), parsed.line(loc), ".".join(map(str, loc)), message, value)
            for loc, message, value in _references(flow, path.parent, out.settings[path.parent])
        ]
        out.problems += references
        if not references:
            out.flows.append((path, flow))
    return out


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
    return [compile_flow(flow) for _, flow in found.flows], settings


def _settings(
    flows_dir: Path, checks: Sequence[SettingsCheck]
) -> tuple[Settings | None, list[Problem]]:
    """The store settings beside the flows and the problems ``checks`` find in them, or the
    problem that stops them loading."""
    try:
        settings = load_settings(flows_dir)
    except ConfigError as err:
        where = err.location
        if where is None:
            return None, [Problem(str(flows_dir / SETTINGS_FILE), None, "", str(err))]
        message = str(err).removeprefix(f"{where}: ").split("; got ")[0]
        return None, [Problem(where.file, where.line, where.field or "", message, err.value)]
    return settings, [p for check in checks for p in check(settings)]


Reference = tuple[Loc, str, object]


def _references(flow: Flow, flows_dir: Path, settings: Settings | None) -> Iterator[Reference]:
    """Problems with what the flow names outside itself: templates, coupon pools, the address."""
    templates = flows_dir / TEMPLATES_DIR
    for step, loc in walk_steps(flow.steps, ("steps",)):
        if isinstance(step, Send):
            yield from _send_references(flow, step, loc, templates, settings)
        elif isinstance(step, Action):
            yield from _action_fields(step, loc)
            if step.action.type == "coupon" and step.action.pool:
                yield from _pool(step.action.pool, (*loc, "action", "pool"), settings)
    if settings is not None:
        yield from _postal_address(flow, settings)
        yield from _sender_domain(flow, settings)


def _send_references(
    flow: Flow, step: Send, loc: Loc, templates: Path, settings: Settings | None
) -> Iterator[Reference]:
    message = step.send
    for problem in check_template(
        templates,
        message.template,
        has_coupon=message.coupon_pool is not None,
        channel=message.channel,
        transactional=flow.transactional,
    ):
        yield (*loc, "send", "template"), f"template {problem}", None
    if message.coupon_pool:
        yield from _pool(message.coupon_pool, (*loc, "send", "coupon_pool"), settings)


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


def _action_fields(step: Action, loc: Loc) -> Iterator[Reference]:
    kind = step.action.type
    given = step.action.model_dump(exclude_none=True, exclude={"type"})
    needed = ACTION_FIELDS[kind]
    for name in sorted(needed - given.keys()):
        yield (*loc, "action"), f"type {kind} needs {name}:", None
    for name in sorted(given.keys() - needed):
        expected = ", ".join(sorted(needed))
        yield (
            (*loc, "action", name),
            f"{name}: does not apply to {kind} (it takes {expected})",
            None,
        )


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
