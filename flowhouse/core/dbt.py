"""Run the dbt project in-process against a warehouse.

dbt runs on the project of the process (:mod:`flowhouse.core.project`): the example store's dbt
project, or a store's own, whose flowhouse dbt package is installed (``dbt deps``) the first time.
Each adapter gets its own target path (``target-duckdb``, ``target-postgres``) so switching
warehouses never forces a full reparse. dbtRunner reports failures instead of raising;
:func:`run_dbt` turns them into :class:`DbtError` naming each failing node.

A build's time reaches the models in the environment variable ``FLOWHOUSE_DBT_NOW``
(:data:`NOW_ENV`), which the ``flowhouse_now()`` macro reads only while a model runs, never while
dbt parses: the vars (the store settings) stay the same from tick to tick, so dbt's partial
parsing stays valid and a tick pays no re-parse. Every run sets the variable, empty when the build
has no time of its own, so a value left in the caller's environment never stands for "now".
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from flowhouse.core.clock import utc
from flowhouse.core.errors import DbtError
from flowhouse.core.paths import DBT_PACKAGE
from flowhouse.core.project import Project, current
from flowhouse.core.warehouse import Location

#: The environment variable that carries a build's "now" to the models (dbt_project/macros/now.sql).
NOW_ENV = "FLOWHOUSE_DBT_NOW"


def now_env(now: datetime | None) -> dict[str, str]:
    """The environment that gives dbt's models `now` (naive UTC), or no time of their own (the
    newest loaded_at, capped at the wall clock) when None."""
    return {NOW_ENV: utc(now).isoformat(sep=" ") if now is not None else ""}


@dataclass(frozen=True)
class NodeResult:
    name: str
    status: str
    message: str | None
    seconds: float
    #: The node's dbt tags (the lane of a model: :mod:`flowhouse.core.lanes`).
    tags: tuple[str, ...] = ()
    #: The unique ids of the nodes it reads (``model.flowhouse.stg_events``, ``source....``).
    reads: tuple[str, ...] = ()


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


def target_path(location: Location, project: Project | None = None) -> str:
    return str((project or current()).work_dir / f"target-{location.dialect}")


def dbt_args(
    command: str,
    location: Location,
    extra: Sequence[str] = (),
    dbt_vars: Mapping[str, Any] | None = None,
) -> list[str]:
    project = current()
    args = [
        command,
        "--project-dir", str(project.dbt_dir),
        "--profiles-dir", str(project.dbt_dir),
        "--target-path", target_path(location, project),
        "--log-path", str(project.work_dir / "logs"),
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
    now: datetime | None = None,
) -> list[NodeResult]:
    """Run ``dbt <command>`` (build, run, test, parse, ...) and return one result per node; the
    models run as of `now` (naive UTC), else as of the data (see :func:`now_env`)."""
    from dbt.cli.main import dbtRunner

    install_package(location)
    args = dbt_args(command, location, extra, dbt_vars)
    if quiet:
        args = ["--quiet", "--no-print", *args] if command != "parse" else ["--quiet", *args]
    with environment({**location.dbt_env(), **current().dbt_env(), **now_env(now)}):
        outcome = dbtRunner().invoke(args)
    results = _node_results(outcome.result)
    if not outcome.success:
        failed = [r for r in results if r.status in {"error", "fail", "runtime error"}]
        detail = "\n".join(f"  {failure(r)}" for r in failed)
        cause = f"\n  {outcome.exception}" if outcome.exception else ""
        raise DbtError(f"dbt {command} failed{cause}\n{detail}".rstrip(), results)
    return results


#: How the warehouses say a statement read a relation that does not exist: DuckDB, PostgreSQL.
_MISSING_RELATION = (
    re.compile(r"Catalog Error: Table(?: or view)? with name (?P<name>[^\s!]+) does not exist"),
    re.compile(r'relation "(?P<name>[^"]+)" does not exist'),
)


def missing_relation(message: str | None) -> str | None:
    """The relation a failure's message says does not exist, in DuckDB's or PostgreSQL's words
    (``int_customer_attributes``, ``core.int_customer_attributes``), or None."""
    for pattern in _MISSING_RELATION:
        found = pattern.search(message or "")
        if found:
            return found.group("name")
    return None


def failure(result: NodeResult) -> str:
    """One failed node, said plainly: a model that reads a relation never built names it and the
    fix; any other failure is dbt's own message."""
    relation = missing_relation(result.message)
    if relation is None or not result.name.startswith("model."):
        return f"{result.name}: {result.status}: {result.message}"
    model = result.name.split(".")[-1]
    table = relation.split(".")[-1]
    source = next(
        (n for n in result.reads if n.startswith("source.") and n.endswith(f".{table}")), None
    )
    if source is not None:
        name = ".".join(source.split(".")[2:])
        return (
            f"the model {model} reads {relation}, which does not exist in the warehouse: it is the "
            f"source {name}, a table dbt does not build; create it, or point the source at the "
            "table that holds it"
        )
    return (
        f"the model {model} reads {relation}, which was never built in this warehouse (the "
        f"relation does not exist): build {model} with the models it reads, `flowhouse build -s "
        f"+{model}`, or every model, `flowhouse build`"
    )


def install_package(location: Location) -> None:
    """A store's project gets flowhouse's dbt package (``dbt deps``) when it lacks it or has
    another copy's; the example store is flowhouse's dbt project itself."""
    from dbt.cli.main import dbtRunner

    project = current()
    installed = project.packages_dir / "flowhouse"
    if not project.own or (installed.exists() and installed.resolve() == DBT_PACKAGE):
        return
    with environment({**location.dbt_env(), **project.dbt_env()}):
        outcome = dbtRunner().invoke(
            [
                "--quiet",
                "deps",
                "--project-dir",
                str(project.dbt_dir),
                "--profiles-dir",
                str(project.dbt_dir),
                "--log-path",
                str(project.work_dir / "logs"),
            ]
        )
    if not outcome.success:
        raise DbtError(f"dbt deps failed in {project.dbt_dir}: {outcome.exception or ''}".rstrip())


def _node_results(result: Any) -> list[NodeResult]:
    rows = getattr(result, "results", None) or []
    return [
        NodeResult(
            name=getattr(r.node, "unique_id", "?"),
            status=str(getattr(r.status, "value", r.status)),
            message=r.message,
            seconds=float(r.execution_time or 0.0),
            tags=tuple(getattr(r.node, "tags", None) or ()),
            reads=tuple(getattr(getattr(r.node, "depends_on", None), "nodes", None) or ()),
        )
        for r in rows
    ]
