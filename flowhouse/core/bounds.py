"""Resource bounds for the engine's SQL: a time-out per statement and a memory limit.

A predicate in a flow file runs inside the engine's statements, for every row of every tick; one
that asks for too much must fail fast and alone (the tick then skips its flow, see
:mod:`flowhouse.orchestration.engine.isolate`), not hold the warehouse for an hour or exhaust its
memory.

- PostgreSQL: ``statement_timeout`` and ``work_mem``, set for the tick's transaction
  (``set local``).
- DuckDB: ``memory_limit`` for the connection, and a timer that interrupts a statement past the
  time-out (DuckDB has no time-out setting).

Defaults (:data:`DEFAULT`) may be changed with the environment variables
``FLOWHOUSE_STATEMENT_TIMEOUT`` (seconds), ``FLOWHOUSE_MEMORY_LIMIT`` (DuckDB, e.g. ``4GB``) and
``FLOWHOUSE_WORK_MEM`` (PostgreSQL, e.g. ``256MB``).
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass

from flowhouse.core.errors import ConfigError
from flowhouse.core.warehouse import Warehouse

_SIZE = re.compile(r"^[0-9]+(\.[0-9]+)?\s*(KB|MB|GB|TB)$", re.IGNORECASE)


@dataclass(frozen=True)
class Bounds:
    """How long one statement may run and how much memory the engine's SQL may take."""

    #: seconds one statement may run
    statement_timeout: float = 300.0
    #: DuckDB's memory limit for the connection
    memory_limit: str = "4GB"
    #: PostgreSQL's memory per sort or hash of a statement
    work_mem: str = "256MB"

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> Bounds:
        env = os.environ if env is None else env
        timeout = env.get("FLOWHOUSE_STATEMENT_TIMEOUT", str(DEFAULT.statement_timeout))
        try:
            seconds = float(timeout)
        except ValueError:
            seconds = 0.0
        if not seconds > 0:
            raise ConfigError(
                "FLOWHOUSE_STATEMENT_TIMEOUT is not a number of seconds",
                value=timeout,
                expected="a positive number of seconds, such as 300",
            )
        return cls(
            seconds,
            _size(env, "FLOWHOUSE_MEMORY_LIMIT", DEFAULT.memory_limit),
            _size(env, "FLOWHOUSE_WORK_MEM", DEFAULT.work_mem),
        )


DEFAULT = Bounds()


def _size(env: Mapping[str, str], name: str, default: str) -> str:
    value = env.get(name, default).strip()
    if not _SIZE.match(value):
        raise ConfigError(
            f"{name} is not a size", value=value, expected="a size such as 512MB or 4GB"
        )
    return value.replace(" ", "").upper()


@contextmanager
def bounded(wh: Warehouse, bounds: Bounds) -> Iterator[None]:
    """Statements run inside (within the caller's transaction, on PostgreSQL) keep to
    ``bounds``."""
    if wh.dialect == "postgres":
        wh.execute(f"set local statement_timeout = {int(bounds.statement_timeout * 1000)}")
        wh.execute(f"set local work_mem = '{bounds.work_mem}'")
        yield
        return
    wh.execute(f"set memory_limit = '{bounds.memory_limit}'")
    before, wh.statement_timeout = wh.statement_timeout, bounds.statement_timeout
    try:
        yield
    finally:
        wh.statement_timeout = before
