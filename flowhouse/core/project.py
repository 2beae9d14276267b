"""The project a command works on: a store's own, or the example store flowhouse ships.

A store's project (``flowhouse init DIR`` writes one) is a folder holding a ``dbt_project.yml`` and
a ``flows/`` folder. Every command finds it as dbt does: ``--project DIR`` (env
``FLOWHOUSE_PROJECT``), else the working folder or the nearest folder above it that is one. Its dbt
project installs flowhouse's models as a dbt package (``packages.yml`` names it through the
``FLOWHOUSE_DBT_PACKAGE`` variable, which flowhouse sets when it runs dbt); its own models
(segments, lists, attributes) sit beside them, and dbt writes into ``target-<adapter>/`` there.

Outside any project, commands use the example store: flowhouse's dbt project run as it is, with the
shipped flow library. In a source checkout dbt writes into ``dbt_project/target-<adapter>/``; from
an installed package, into a cache folder of the user's (``XDG_CACHE_HOME``).
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from flowhouse.core.errors import ConfigError
from flowhouse.core.paths import CHECKOUT, DBT_PACKAGE, FLOWS, MODELS

ENV_VAR = "FLOWHOUSE_PROJECT"
#: The variable a store's ``packages.yml`` reads flowhouse's dbt package from.
PACKAGE_ENV = "FLOWHOUSE_DBT_PACKAGE"


@dataclass(frozen=True)
class Project:
    """Where a project's parts are. ``models`` are the folders of model YAML that flows may name
    (segments, attributes): the store's first, then flowhouse's."""

    dbt_dir: Path
    flows_dir: Path
    models: tuple[Path, ...]
    work_dir: Path
    own: bool

    @classmethod
    def example(cls) -> Project:
        """The example store: flowhouse's dbt project and flow library."""
        work = DBT_PACKAGE if CHECKOUT is not None else _cache() / "dbt"
        return cls(DBT_PACKAGE, FLOWS, (MODELS,), work, own=False)

    @classmethod
    def at(cls, root: Path) -> Project:
        """The store's project in ``root``; a clear error when it is not one."""
        root = root.resolve()
        missing = [p for p in ("dbt_project.yml", "flows") if not (root / p).exists()]
        if missing:
            raise ConfigError(
                f"{root} is not a flowhouse project: no {' and no '.join(missing)}",
                expected="a folder made by `flowhouse init`, with dbt_project.yml and flows/",
            )
        return cls(root, root / "flows", (root / "models", MODELS), root, own=True)

    @property
    def warehouse(self) -> Path:
        """The DuckDB file the Dagster code location defaults to: the project's
        ``warehouse.duckdb``, or the demo store's (``demo/warehouse.duckdb``)."""
        if self.own:
            return self.dbt_dir / "warehouse.duckdb"
        return (CHECKOUT or Path.cwd()) / "demo" / "warehouse.duckdb"

    @property
    def packages_dir(self) -> Path:
        return self.dbt_dir / "dbt_packages"

    def dbt_env(self) -> dict[str, str]:
        """What dbt needs in the environment to read this project."""
        return {PACKAGE_ENV: str(DBT_PACKAGE)}


def find(start: Path) -> Path | None:
    """The nearest folder from ``start`` upwards that holds a store's project, or None."""
    for folder in (start.resolve(), *start.resolve().parents):
        if (folder / "dbt_project.yml").is_file() and (folder / "flows").is_dir():
            return folder
    return None


def locate(given: Path | str | None = None) -> Project:
    """``given`` (``--project``), else ``FLOWHOUSE_PROJECT``, else the project around the working
    folder, else the example store."""
    named = given or os.environ.get(ENV_VAR)
    if named:
        return Project.at(Path(named))
    found = find(Path.cwd())
    return Project.at(found) if found is not None else Project.example()


_current: list[Project] = []


def current() -> Project:
    """The project of this process: set by :func:`use`, else found by :func:`locate`."""
    if not _current:
        _current.append(locate())
    return _current[-1]


def use(project: Project) -> None:
    """Make ``project`` the one every command of this process works on."""
    _current[:] = [project]


@contextmanager
def using(project: Project) -> Iterator[Project]:
    """``project`` for the duration of a block (tests, the Dagster code location)."""
    saved = list(_current)
    use(project)
    try:
        yield project
    finally:
        _current[:] = saved


def _cache() -> Path:
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "flowhouse"
