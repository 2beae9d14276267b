"""Bounds on rendering one message: time, size and depth, so that no template, however hostile,
can hang a send, exhaust its memory or stop the other messages.

The sandbox of :mod:`flowhouse.flows.templating` already refuses attribute escapes and ranges over
100,000 items. This module adds, per message rendered with :func:`render_bounded`:

- **time**: a deadline (:attr:`Limits.seconds`) checked at every step of every ``for`` loop and
  at every call (macros, methods, ``caller()``), so nested loops and recursion stop in time;
- **size**: any string or list a template builds (``*``, ``+``, ``~``, ``%``, filters, string
  methods such as ``ljust`` or ``join``) stays within :attr:`Limits.max_chars`, checked before
  the value is built where it could grow past it (``'x' * 10**8``, ``10**10**10``); the rendered
  output stays within its channel's limit (:data:`OUTPUT_CHARS`), checked while it streams;
- **depth**: macros nested deeper than :attr:`Limits.depth` calls stop with a clear error.

Every bound raises :class:`RenderLimit` (a Jinja ``SecurityError``) where it is hit, inside the
template, so :func:`describe` can name the template file and line.
"""

from __future__ import annotations

import copy
import math
import re
from collections.abc import Callable, Iterable, Iterator, Mapping
from contextvars import ContextVar
from dataclasses import dataclass
from pathlib import Path
from time import monotonic
from types import TracebackType
from typing import Any

from jinja2 import Template, TemplateError, nodes
from jinja2.compiler import CodeGenerator, Frame
from jinja2.exceptions import SecurityError, TemplateSyntaxError
from jinja2.runtime import Macro
from jinja2.sandbox import ImmutableSandboxedEnvironment

from flowhouse.flows.channels import CHANNELS

#: Longest rendered output per channel, in characters (the registry's, with its reasons).
OUTPUT_CHARS: dict[str, int] = {c.name: c.output_chars for c in CHANNELS.values()}
DEFAULT_OUTPUT_CHARS = 1_000_000
#: Largest integer a template may compute (``**`` and ``*``), in bits (10**1000 has 3,322).
MAX_INT_BITS = 4096


@dataclass(frozen=True)
class Limits:
    """The bounds on rendering one message."""

    #: Wall-clock time to render one message (body, subject and preheader each).
    seconds: float = 1.0
    #: Longest string or list a template may build, in characters or items.
    max_chars: int = 1_000_000
    #: Macro calls nested at most this deep.
    depth: int = 50


DEFAULT_LIMITS = Limits()


class RenderLimit(SecurityError):
    """A message's rendering went past one of its bounds."""


@dataclass
class _Budget:
    limits: Limits
    deadline: float
    depth: int = 0

    def tick(self) -> None:
        if monotonic() > self.deadline:
            raise RenderLimit(f"took longer than {self.limits.seconds:g} s to render")


_BUDGET: ContextVar[_Budget | None] = ContextVar("flowhouse_render_budget", default=None)
_UNTIMED = Limits(seconds=math.inf)


def _limits() -> Limits:
    budget = _BUDGET.get()
    return budget.limits if budget is not None else _UNTIMED


def _size(value: Any) -> int:
    return len(value) if isinstance(value, (str, list, tuple)) else 0


def _check_size(value: Any) -> Any:
    limit = _limits().max_chars
    if _size(value) > limit:
        raise RenderLimit(
            f"a value of {_size(value):,} characters or items (the limit is {limit:,})"
        )
    return value


def _refuse_size(n: float) -> None:
    limit = _limits().max_chars
    if n > limit:
        raise RenderLimit(f"would build {n:,.0f} characters or items (the limit is {limit:,})")


def _check_int(value: Any) -> Any:
    if isinstance(value, int) and value.bit_length() > MAX_INT_BITS:
        raise RenderLimit(f"an integer over {MAX_INT_BITS} bits")
    return value


class _Loop:
    """A ``for`` loop's items, checking the deadline at every step (``len`` kept for ``loop``)."""

    __slots__ = ("_items",)

    def __init__(self, items: Any) -> None:
        self._items = items

    def __len__(self) -> int:
        return len(self._items)

    def __iter__(self) -> Iterator[Any]:
        budget = _BUDGET.get()
        for item in self._items:
            if budget is not None:
                budget.tick()
            yield item


class _BoundedCode(CodeGenerator):
    """The sandbox's code generator, with every loop's items, filter result and ``~`` checked."""

    def visit_For(self, node: nodes.For, frame: Frame) -> None:
        bounded = copy.copy(node)  # the tree stays as parsed for the checks that walk it
        bounded.iter = nodes.Call(
            nodes.EnvironmentAttribute("bounded_loop"), [node.iter], [], None, None
        )
        super().visit_For(bounded, frame)

    def visit_Filter(self, node: nodes.Filter, frame: Frame) -> None:
        self.write("environment.checked(")
        super().visit_Filter(node, frame)
        self.write(")")

    def visit_Concat(self, node: nodes.Concat, frame: Frame) -> None:
        self.write("environment.checked(")
        super().visit_Concat(node, frame)
        self.write(")")


#: ``%d``-style and ``{:...}``-style widths and precisions in a format string.
_PERCENT_WIDTH = re.compile(r"%(?:\([^)]*\))?[#0\- +]*(\d+|\*)?(?:\.(\d+|\*))?")
_BRACE_WIDTH = re.compile(r"\{[^{}]*:[^{}]*?(\d+)[^{}]*\}")


def _format_width(text: str, args: Any) -> None:
    """Refuse a format string whose widths would build an oversized string."""
    widths = [int(w) for m in _PERCENT_WIDTH.finditer(text) for w in m.groups() if w and w != "*"]
    widths += [int(m.group(1)) for m in _BRACE_WIDTH.finditer(text)]
    if "*" in text:
        values = args if isinstance(args, (tuple, list)) else [args]
        widths += [abs(v) for v in values if isinstance(v, int)]
    _refuse_size(max(widths, default=0))


def _joined(items: Iterable[Any]) -> list[Any]:
    """``items`` as a list, refused once their text would be too long to join."""
    out, total, limit = [], 0, _limits().max_chars
    for item in items:
        total += len(item) if isinstance(item, str) else 20
        if total > limit:
            _refuse_size(total)
        out.append(item)
    return out


def _check_method(obj: Any, args: tuple[Any, ...]) -> tuple[Any, ...]:
    """Refuse a string method call that would build an oversized string; the arguments to call
    it with (the items of a ``join``, listed as they were measured)."""
    method = getattr(obj, "__wrapped__", obj)  # the sandbox wraps str.format
    target, name = getattr(method, "__self__", None), getattr(method, "__name__", "")
    if not isinstance(target, str):
        return args
    ints = [a for a in args if isinstance(a, int)]
    if name in {"ljust", "rjust", "center", "zfill"} and ints:
        _refuse_size(ints[0])
    elif name == "expandtabs" and ints:
        _refuse_size(len(target) * max(ints[0], 1))
    elif name == "replace" and len(args) >= 2:
        _refuse_size(_replaced(target, str(args[0]), str(args[1])))
    elif name == "format":
        _format_width(target, args)
    elif name == "join" and args:
        return (_joined(args[0]), *args[1:])
    return args


def _replaced(text: str, old: str, new: str) -> int:
    return len(text) + (text.count(old) if old else len(text) + 1) * max(len(new) - len(old), 0)


class BoundedSandbox(ImmutableSandboxedEnvironment):
    """The immutable sandbox with every bound of this module (see the module docstring)."""

    code_generator_class = _BoundedCode
    intercepted_binops = frozenset({"*", "**", "+", "%"})

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.globals.pop("lipsum", None)  # megabytes of filler on request; no use in a message
        for name, check in _FILTER_CHECKS.items():
            self.filters[name] = _guarded(self.filters[name], check)

    def bounded_loop(self, items: Any) -> _Loop:
        return _Loop(items)

    def checked(self, value: Any) -> Any:
        return _check_size(value)

    def call_binop(self, context: Any, operator: str, left: Any, right: Any) -> Any:
        if operator == "**" and isinstance(left, int) and isinstance(right, int) and right > 0:
            if max(left.bit_length(), 1) * right > MAX_INT_BITS and abs(left) > 1:
                raise RenderLimit(f"an integer over {MAX_INT_BITS} bits")
        elif operator == "*":
            _check_product(left, right)
        elif operator == "%" and isinstance(left, str):
            _format_width(left, right)
        result = super().call_binop(context, operator, left, right)
        return _check_int(_check_size(result))

    def call(__self, __context: Any, __obj: Any, *args: Any, **kwargs: Any) -> Any:
        budget = _BUDGET.get()
        if budget is not None:
            budget.tick()
        args = _check_method(__obj, args)
        if not isinstance(__obj, Macro) or budget is None:
            return _check_size(super().call(__context, __obj, *args, **kwargs))
        budget.depth += 1
        try:
            if budget.depth > budget.limits.depth:
                raise RenderLimit(f"macros nested deeper than {budget.limits.depth} calls")
            return super().call(__context, __obj, *args, **kwargs)
        finally:
            budget.depth -= 1


def _check_product(left: Any, right: Any) -> None:
    if isinstance(left, int) and isinstance(right, int):
        if left.bit_length() + right.bit_length() > MAX_INT_BITS:
            raise RenderLimit(f"an integer over {MAX_INT_BITS} bits")
        return
    seq, n = (left, right) if isinstance(right, int) else (right, left)
    if isinstance(n, int) and isinstance(seq, (str, list, tuple)):
        _refuse_size(len(seq) * n)


Check = Callable[[tuple[Any, ...], dict[str, Any]], tuple[Any, ...]]


def _guarded(fn: Callable[..., Any], check: Check) -> Callable[..., Any]:
    """A built-in filter that first refuses arguments that would build too much (``check``
    returns the positional arguments to call it with)."""

    def guarded(*args: Any, **kwargs: Any) -> Any:
        return fn(*check(args, kwargs), **kwargs)

    for attribute in ("jinja_pass_arg", "__name__", "__doc__"):
        if hasattr(fn, attribute):
            setattr(guarded, attribute, getattr(fn, attribute))
    return guarded


def _arg(args: tuple[Any, ...], kwargs: Mapping[str, Any], i: int, name: str) -> Any:
    return args[i] if len(args) > i else kwargs.get(name)


def _int_arg(i: int, name: str) -> Check:
    def check(args: tuple[Any, ...], kwargs: dict[str, Any]) -> tuple[Any, ...]:
        value = _arg(args, kwargs, i, name)
        _refuse_size(len(value) if isinstance(value, str) else value or 0)
        return args

    return check


def _replace_check(args: tuple[Any, ...], kwargs: dict[str, Any]) -> tuple[Any, ...]:
    # replace(eval_ctx, s, old, new, count=None)
    s, old, new = (str(_arg(args, kwargs, i, n)) for i, n in ((1, "s"), (2, "old"), (3, "new")))
    _refuse_size(_replaced(s, old, new))
    return args


def _format_check(args: tuple[Any, ...], kwargs: dict[str, Any]) -> tuple[Any, ...]:
    _format_width(str(args[0]) if args else "", args[1:])
    return args


def _join_check(args: tuple[Any, ...], kwargs: dict[str, Any]) -> tuple[Any, ...]:
    # join(eval_ctx, value, d="", attribute=None): the items are listed and measured first
    if len(args) > 1 and not isinstance(args[1], str):
        return (args[0], _joined(args[1]), *args[2:])
    return args


_FILTER_CHECKS: dict[str, Check] = {
    "center": _int_arg(1, "width"),
    "indent": _int_arg(1, "width"),
    "batch": _int_arg(1, "linecount"),
    "slice": _int_arg(1, "slices"),
    "replace": _replace_check,
    "format": _format_check,
    "join": _join_check,
}


def output_chars(channel: str) -> int:
    """The longest rendered output a message of ``channel`` may have."""
    return OUTPUT_CHARS.get(channel, DEFAULT_OUTPUT_CHARS)


def render_bounded(
    template: Template, context: Mapping[str, Any], limits: Limits, max_output: int
) -> str:
    """``template`` rendered with ``context`` within ``limits`` and ``max_output`` characters."""
    token = _BUDGET.set(_Budget(limits, monotonic() + limits.seconds))
    try:
        out: list[str] = []
        total = 0
        for chunk in template.generate(context):
            total += len(chunk)
            if total > max_output:
                raise RenderLimit(f"output longer than {max_output:,} characters")
            out.append(chunk)
        return "".join(out)
    finally:
        _BUDGET.reset(token)


def describe(err: BaseException, templates_dir: Path | None = None) -> str:
    """``err`` raised while rendering, located: ``template t.html.j2 line 3: division by zero``.

    The innermost template frame of the traceback names the file (relative to ``templates_dir``)
    and the line; a subject or preheader is ``text line N``."""
    where = _where(err.__traceback__, templates_dir)
    if isinstance(err, TemplateSyntaxError):
        where = f"template {err.name} line {err.lineno}" if err.name else f"text line {err.lineno}"
    what = str(err) if isinstance(err, TemplateError) else f"{err} ({type(err).__name__})"
    if isinstance(err, RecursionError):
        what = "macros or loops nested too deep (RecursionError)"
    return f"{where}: {what}" if where else what


def _where(tb: TracebackType | None, templates_dir: Path | None) -> str:
    found = None
    while tb is not None:
        if "__jinja_exception__" in tb.tb_frame.f_globals:
            found = (tb.tb_frame.f_code.co_filename, tb.tb_lineno)
        tb = tb.tb_next
    if found is None:
        return ""
    filename, line = found
    if filename == "<template>":
        return f"text line {line}"
    path = Path(filename)
    if templates_dir is not None and path.is_relative_to(templates_dir):
        name = path.relative_to(templates_dir.parent).as_posix()
    else:
        name = path.name
    return f"template {name} line {line}"
