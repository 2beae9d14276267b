"""Run the dbt project in-process against a warehouse.

Each adapter gets its own target path (``dbt_project/target-duckdb``, ``target-postgres``) so
switching warehouses never forces a full reparse. dbtRunner reports failures instead of raising;
:func:`run_dbt` turns them into :class:`DbtError` naming each failing node.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

from flowhouse.core.errors import DbtError
from flowhouse.core.paths import DBT_PROJECT
from flowhouse.core.warehouse import Location


@dataclass(frozen=True)
class NodeResult:
    name: str
    status: str
    message: str | None
    seconds: float


@contextmanager
def environment(values: Mapping[str, str]) -> Iterator[None]:
    """``values`` set in the environment while dbt starts (its profile reads them)."""
    saved = {k: os.environ.get(k) for k in values}
    os.environ.update(values)
    try:
        yield
    finally:
        for key, old in saved.items():
            if old is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = old


def target_path(location: Location) -> str:
    return str(DBT_PROJECT / f"target-{location.dialect}")


def dbt_args(
    command: str,
    location: Location,
    extra: Sequence[str] = (),
    dbt_vars: Mapping[str, Any] | None = None,
) -> list[str]:
    args = [
        command,
        "--project-dir", str(DBT_PROJECT),
        "--profiles-dir", str(DBT_PROJECT),
        "--target-path", target_path(location),
        "--log-path", str(DBT_PROJECT / "logs"),
    ]  # fmt: skip
    if dbt_vars:
        args += ["--vars", json.dumps(dict(dbt_vars))]
    return args + list(extra)


def run_dbt(
    command: str,
    location: Location,
    extra: Sequence[str] = (),
    dbt_vars: Mapping[str, Any] | None = None,
    quiet: bool = True,
) -> list[NodeResult]:
    """Run ``dbt <command>`` (build, run, test, parse, ...) and return one result per node."""
    from dbt.cli.main import dbtRunner

    args = dbt_args(command, location, extra, dbt_vars)
    if quiet:
        args = ["--quiet", "--no-print", *args] if command != "parse" else ["--quiet", *args]
    with environment(location.dbt_env()):
        outcome = dbtRunner().invoke(args)
    results = _node_results(outcome.result)
    if not outcome.success:
        failed = [r for r in results if r.status in {"error", "fail", "runtime error"}]
        detail = "\n".join(f"  {r.name}: {r.status}: {r.message}" for r in failed)
        cause = f"\n  {outcome.exception}" if outcome.exception else ""
        raise DbtError(f"dbt {command} failed{cause}\n{detail}".rstrip())
    return results


def _node_results(result: Any) -> list[NodeResult]:
    rows = getattr(result, "results", None) or []
    return [
        NodeResult(
            name=getattr(r.node, "unique_id", "?"),
            status=str(getattr(r.status, "value", r.status)),
            message=r.message,
            seconds=float(r.execution_time or 0.0),
        )
        for r in rows
    ]
