"""The one YAML reader of flowhouse: flow files, store settings, sync files, load mappings and the
dbt documentation flowhouse reads all go through :func:`read_yaml` (or :func:`load_yaml`).

A YAML file is input like any other, so its reading is bounded (:data:`LIMITS`): its size, how
deeply its collections nest, how many aliases it uses and how many values it expands to (a
"billion laughs" file of a few lines would otherwise expand to 10⁹ values). A key given twice
in one mapping is refused with the lines of both (YAML's "last wins" would hide the first). Every
refusal is a :class:`yaml.MarkedYAMLError`, so it is reported at its line and column like any
syntax error. The C parser is used where PyYAML has it.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml
from yaml.constructor import SafeConstructor

#: PyYAML's C parser where it is built, its Python one otherwise.
Loader: type[yaml.SafeLoader] = getattr(yaml, "CSafeLoader", yaml.SafeLoader)

#: The 1-based line of each value, by its path of keys and indexes.
Lines = dict[tuple[str | int, ...], int]


@dataclass(frozen=True)
class YamlLimits:
    """How big a YAML file may be."""

    #: bytes of the file
    size: int = 1_000_000
    #: collections (mappings, lists) open at once
    depth: int = 50
    #: aliases (``*name``) in the file
    aliases: int = 100
    #: values the file expands to, aliases expanded
    values: int = 100_000


LIMITS = YamlLimits()


class YamlLimitError(yaml.MarkedYAMLError):
    """A YAML file refused for its size, depth, aliases or a duplicate key."""

    def __init__(self, problem: str, mark: Any = None) -> None:
        super().__init__(problem=problem, problem_mark=mark)


def read_yaml(path: Path, limits: YamlLimits = LIMITS) -> tuple[Any, Lines]:
    """The data of the YAML file at `path` and the line of each value."""
    size = path.stat().st_size
    if size > limits.size:
        raise YamlLimitError(f"the file is too large: {size} bytes, at most {limits.size}")
    raw = path.read_bytes()
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as err:
        line = raw[: err.start].count(b"\n")
        mark = yaml.Mark(str(path), err.start, line, 0, "", 0)
        raise YamlLimitError(f"not UTF-8 text (byte {raw[err.start]:#04x})", mark) from None
    return parse_yaml(text, limits)


def load_yaml(path: Path, limits: YamlLimits = LIMITS) -> Any:
    """The data of the YAML file at `path`."""
    return read_yaml(path, limits)[0]


def parse_yaml(text: str, limits: YamlLimits = LIMITS) -> tuple[Any, Lines]:
    """The data of a YAML document and the line of each value."""
    try:
        _check_events(text, limits, Loader)
    except YamlLimitError:
        raise
    except yaml.YAMLError:
        # The Python parser says what it expected and what it got; the C one, less.
        _check_events(text, limits, yaml.SafeLoader)
        raise
    node = yaml.compose(text, Loader=Loader)
    if node is None:
        return None, {}
    lines: Lines = {}
    return _Builder(limits, lines).build(node, ()), lines


def _check_events(text: str, limits: YamlLimits, loader: type[yaml.SafeLoader]) -> None:
    """Depth and aliases, from the parser's events: before anything is built (composing a
    deeply nested document recurses)."""
    depth = aliases = 0
    for event in yaml.parse(text, Loader=loader):
        if isinstance(event, yaml.CollectionStartEvent):
            depth += 1
            if depth > limits.depth:
                raise YamlLimitError(
                    f"nested too deeply: more than {limits.depth} levels", event.start_mark
                )
        elif isinstance(event, yaml.CollectionEndEvent):
            depth -= 1
        elif isinstance(event, yaml.AliasEvent):
            aliases += 1
            if aliases > limits.aliases:
                raise YamlLimitError(
                    f"too many aliases: more than {limits.aliases}", event.start_mark
                )


class _Builder:
    """Plain Python data from a YAML node, counting the values (aliases expanded) and recording
    each value's line."""

    def __init__(self, limits: YamlLimits, lines: Lines) -> None:
        self.limits = limits
        self.lines = lines
        self.values = 0
        self.scalars = SafeConstructor()

    def build(self, node: yaml.Node, path: tuple[str | int, ...]) -> Any:
        self.values += 1
        if self.values > self.limits.values:
            raise YamlLimitError(
                f"expands to more than {self.limits.values} values (aliases of aliases?)",
                node.start_mark,
            )
        if len(path) > self.limits.depth:
            raise YamlLimitError(
                f"nested too deeply through aliases: more than {self.limits.depth} levels",
                node.start_mark,
            )
        self.lines[path] = node.start_mark.line + 1
        if isinstance(node, yaml.MappingNode):
            return self._mapping(node, path)
        if isinstance(node, yaml.SequenceNode):
            return [self.build(item, (*path, i)) for i, item in enumerate(node.value)]
        return self._scalar(node)

    def _mapping(self, node: yaml.MappingNode, path: tuple[str | int, ...]) -> dict[str, Any]:
        out: dict[str, Any] = {}
        first: dict[str, int] = {}
        for key, value in node.value:
            if not isinstance(key, yaml.ScalarNode):
                raise YamlLimitError(
                    "a key must be a plain value, not a list or mapping", key.start_mark
                )
            name = str(self._scalar(key))
            line = key.start_mark.line + 1
            if name in first:
                raise YamlLimitError(
                    f"duplicate key {name!r}: also at line {first[name]}; a key may appear once "
                    "in a mapping",
                    key.start_mark,
                )
            first[name] = line
            out[name] = self.build(value, (*path, name))
            self.lines[(*path, name)] = line
        return out

    def _scalar(self, node: yaml.Node) -> Any:
        try:
            return self.scalars.construct_object(node, deep=True)
        except yaml.constructor.ConstructorError:
            return node.value


def describe(err: yaml.YAMLError) -> str:
    """A YAML error in one line: ``line 3, column 1: duplicate key ...``."""
    mark = getattr(err, "problem_mark", None) or getattr(err, "context_mark", None)
    what = getattr(err, "problem", None) or str(err)
    context = getattr(err, "context", None)
    detail = f"{what} ({context})" if context else what
    return f"line {mark.line + 1}, column {mark.column + 1}: {detail}" if mark else detail
