"""Locks that keep two runs of the same scope apart: a tick, a send bucket, a sync, the inbox.

On DuckDB a lock file beside the warehouse file (``warehouse.duckdb.<scope>.lock``, held with
``flock``); on PostgreSQL a session advisory lock keyed by the scope's name.
"""

from __future__ import annotations

import fcntl
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from sqlglot import exp

from flowhouse.core.errors import FlowhouseError
from flowhouse.core.warehouse import Location, Warehouse


class TickBusy(FlowhouseError):
    """Another tick holds the lock on this warehouse."""


@contextmanager
def tick_lock(location: Location, schema: str) -> Iterator[None]:
    """Hold the tick lock: a lock file beside a DuckDB file, an advisory lock on PostgreSQL."""
    if location.dialect == "duckdb":
        assert location.path is not None
        path = Path(f"{location.path}.{schema}.lock")
        path.parent.mkdir(parents=True, exist_ok=True)
        with path.open("w") as handle:
            try:
                fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError as err:
                raise TickBusy(
                    f"another flowhouse run holds the lock {schema!r} on {location} "
                    f"({path} is locked): a tick, a send or a sync of the same scope"
                ) from err
            try:
                yield
            finally:
                fcntl.flock(handle, fcntl.LOCK_UN)
        return
    key = exp.func("hashtext", exp.Literal.string(f"flowhouse.tick.{schema}"))
    with Warehouse.open(location) as wh:
        if not wh.scalar(exp.select(exp.func("pg_try_advisory_lock", key))):
            raise TickBusy(
                f"another flowhouse run holds the lock {schema!r} on {location} (advisory lock)"
            )
        try:
            yield
        finally:
            wh.execute(exp.select(exp.func("pg_advisory_unlock", key.copy())))
