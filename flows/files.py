"""Read flow files: YAML to :class:`~flowhouse.flows.flowfile.Flow`, with every error located at
``file:line``.

All problems in a file are reported at once, each with the dotted field path, the value received and
what was expected.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml
from pydantic import ValidationError

from flowhouse.core.errors import ConfigError
from flowhouse.flows.checks import check_flow
from flowhouse.flows.flowfile import STEP_KINDS, Flow
from flowhouse.flows.vocabulary import Vocabulary

FLOW_SUFFIXES = (".yml", ".yaml")


@dataclass(frozen=True)
class Problem:
    """One thing wrong in a flow file."""

    file: str
    line: int | None
    field: str
    message: str
    value: Any = None
    column: int | None = None

    def __str__(self) -> str:
        where = f"{self.file}:{self.line}" if self.line else self.file
        where += f":{self.column}" if self.line and self.column else ""
        got = "" if self.value is None else f" (got {self.value!r})"
        field = f" {self.field}:" if self.field else ""
        return f"{where}:{field} {self.message}{got}"


Lines = dict[tuple[str | int, ...], int]


def _compose(node: yaml.Node, path: tuple[str | int, ...], lines: Lines) -> Any:
    """Build plain Python data from a YAML node, recording each value's 1-based line."""
    lines[path] = node.start_mark.line + 1
    if isinstance(node, yaml.MappingNode):
        out: dict[str, Any] = {}
        for key, value in node.value:
            name = str(yaml.safe_load(yaml.serialize(key)))
            lines[(*path, name)] = key.start_mark.line + 1
            out[name] = _compose(value, (*path, name), lines)
            lines[(*path, name)] = key.start_mark.line + 1
        return out
    if isinstance(node, yaml.SequenceNode):
        return [_compose(item, (*path, i), lines) for i, item in enumerate(node.value)]
    return yaml.safe_load(yaml.serialize(node))


def read_yaml(path: Path) -> tuple[Any, Lines]:
    text = path.read_text(encoding="utf-8")
    node = yaml.compose(text, Loader=yaml.SafeLoader)
    lines: Lines = {}
    data = _compose(node, (), lines) if node is not None else None
    return data, lines


def _clean_loc(loc: tuple[str | int, ...]) -> tuple[str | int, ...]:
    """Drop the union tags pydantic adds (``steps.1.wait.wait`` -> ``steps.1.wait``)."""
    out: list[str | int] = []
    for i, part in enumerate(loc):
        if part in STEP_KINDS and i > 0 and isinstance(loc[i - 1], int):
            continue
        if isinstance(part, str) and part.startswith("function-"):
            continue
        out.append(part)
    return tuple(out)


def line_of(lines: Lines, loc: tuple[str | int, ...]) -> int | None:
    for end in range(len(loc), -1, -1):
        if loc[:end] in lines:
            return lines[loc[:end]]
    return None


def _problems_from(err: ValidationError, file: str, lines: Lines) -> Iterator[Problem]:
    for e in err.errors(include_url=False):
        loc = _clean_loc(tuple(e["loc"]))
        message = e["msg"].removeprefix("Value error, ")
        if e["type"] == "extra_forbidden":
            message = "unknown field; check the spelling (docs/flows.md lists every field)"
        value = e.get("input") if e["type"] != "missing" else None
        if isinstance(value, (dict, list)):
            value = None
        yield Problem(file, line_of(lines, loc), ".".join(map(str, loc)), message, value)


@dataclass(frozen=True)
class ParsedFlow:
    """A flow file read: the flow (None when it has problems), the problems, and the line of
    every field (so later checks can point at ``file:line`` too)."""

    flow: Flow | None
    problems: list[Problem]
    lines: Lines
    #: The flow as parsed even when later checks found problems (None: its shape is wrong), so
    #: what it names beside it can be checked too.
    parsed: Flow | None = None

    def line(self, loc: tuple[str | int, ...]) -> int | None:
        return line_of(self.lines, loc)


def yaml_problem(file: str, err: yaml.YAMLError) -> Problem:
    """A YAML syntax error at its line and column."""
    mark = getattr(err, "problem_mark", None) or getattr(err, "context_mark", None)
    line, column = (mark.line + 1, mark.column + 1) if mark else (None, None)
    context = getattr(err, "context", None)
    what = getattr(err, "problem", None) or str(err)
    detail = f"{what} ({context})" if context else what
    return Problem(file, line, "", f"not valid YAML: {detail}", column=column)


class YamlSyntaxError(ConfigError):
    """A file that is not valid YAML (settings): the problem, at its line and column."""

    def __init__(self, problem: Problem) -> None:
        self.problem = problem
        super().__init__(str(problem))


def parse_flow(path: Path) -> tuple[Flow | None, list[Problem]]:
    """Parse one file; returns the flow (or None) and every problem found."""
    parsed = read_flow(path)
    return parsed.flow, parsed.problems


def read_flow(path: Path, vocabulary: Vocabulary | None = None) -> ParsedFlow:
    """Parse one file, keeping the line of every field; names are checked against
    ``vocabulary`` (default: flowhouse's own, :class:`~flowhouse.flows.vocabulary.Vocabulary`)."""
    file = str(path)
    try:
        data, lines = read_yaml(path)
    except yaml.YAMLError as err:
        return ParsedFlow(None, [yaml_problem(file, err)], {})
    if not isinstance(data, dict):
        problem = Problem(file, 1, "", "a flow file is a YAML mapping (flow:, name:, ...)")
        return ParsedFlow(None, [problem], lines)
    try:
        flow = Flow.model_validate(data)
    except ValidationError as err:
        return ParsedFlow(None, list(_problems_from(err, file, lines)), lines)
    problems = [
        Problem(file, line_of(lines, loc), ".".join(map(str, loc)), message, value)
        for loc, message, value in check_flow(flow, vocabulary)
    ]
    problems.sort(key=lambda p: p.line or 0)
    return ParsedFlow(None if problems else flow, problems, lines, flow)


#: The folder of sync files beside the flows (activation/sync/files.py reads them).
SYNCS_FOLDER = "syncs"


def flow_files(paths: Iterable[Path]) -> list[Path]:
    """The flow files named, or found in the folders named (sorted; skips hidden and `_` files
    and the sync files in ``syncs/``)."""
    found: list[Path] = []
    for p in paths:
        if p.is_dir():
            found += [
                f
                for f in sorted(p.rglob("*"))
                if f.suffix in FLOW_SUFFIXES
                and not f.name.startswith(("_", "."))
                and SYNCS_FOLDER not in f.relative_to(p).parts[:-1]
            ]
        elif p.parent.name != SYNCS_FOLDER:
            found.append(p)
    return found
