"""The errors flowhouse raises.

Every error derives from :class:`FlowhouseError`; the CLI prints its message as ``Error: ...`` and
exits non-zero (tracebacks only with ``--debug``)::

    FlowhouseError
    ├── ConfigError      a bad setting or file, with where (file, line, field), value and expected
    ├── WarehouseError   the warehouse refused a statement or cannot be reached
    ├── LoadError        an input file cannot be read at all (bad rows are rejects, not errors)
    └── DbtError         dbt reported a failure (compile, run or test)
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any


class FlowhouseError(Exception):
    """Root of every error flowhouse raises on purpose."""


@dataclass(frozen=True)
class FileLocation:
    """Where a problem is: a file, optionally a line, and the dotted path of the field."""

    file: str
    line: int | None = None
    field: str | None = None

    def __str__(self) -> str:
        where = self.file if self.line is None else f"{self.file}:{self.line}"
        return where if self.field is None else f"{where}: {self.field}"


class ConfigError(FlowhouseError):
    """A setting or a user file is wrong; carries where, what was received and what was expected."""

    def __init__(
        self,
        message: str,
        location: FileLocation | None = None,
        value: object = None,
        expected: str | None = None,
    ) -> None:
        self.location = location
        self.value = value
        self.expected = expected
        parts = [f"{location}: {message}" if location else message]
        if value is not None:
            parts.append(f"got {value!r}")
        if expected:
            parts.append(f"expected {expected}")
        super().__init__("; ".join(parts))


class WarehouseError(FlowhouseError):
    """The warehouse cannot be reached or refused a statement."""


class LoadError(FlowhouseError):
    """An input file cannot be read at all (missing, unknown format, no usable columns)."""


class DbtError(FlowhouseError):
    """dbt finished with failures; the message lists the failing nodes, ``results`` holds every
    node's result (``flowhouse.core.dbt.NodeResult``) when dbt got as far as running them."""

    def __init__(self, message: str, results: Sequence[Any] = ()) -> None:
        super().__init__(message)
        self.results = list(results)
