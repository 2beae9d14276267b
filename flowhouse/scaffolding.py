"""``flowhouse init DIR``: a store's own project, ready to validate, build and tick.

The files come from ``flowhouse/scaffold/`` (shipped in the package): a dbt project that installs
flowhouse's models as a dbt package and maps a typical shop's tables onto the canonical inputs, a
segment and attributes of the store's own, two starter flows with their templates and settings, a
``profiles.yml`` read from the environment, the Dagster code location and a README. ``__NAME__``
becomes the dbt project's name (from the folder's name) and ``__TITLE__`` the store's.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

from flowhouse.core.errors import ConfigError
from flowhouse.core.paths import PACKAGE
from flowhouse.flows.validate import json_schema

SCAFFOLD = PACKAGE / "scaffold"
#: Files stored under another name in the package (a ``.py`` there would be a module of it).
RENAMED = {"gitignore": ".gitignore", "definitions.py.tmpl": "definitions.py"}
_NAME = re.compile(r"[a-z_][a-z0-9_]*")


@dataclass(frozen=True)
class Created:
    root: Path
    name: str
    files: tuple[Path, ...]

    def describe(self) -> str:
        return "\n".join(
            [
                f"created the flowhouse project {self.name} in {self.root}"
                f" ({len(self.files)} files)",
                "next:",
                f"  cd {self.root}",
                "  flowhouse validate",
                "  flowhouse build      # after pointing models/inputs/ at the store's tables",
                "see README.md there",
            ]
        )


def project_name(root: Path, given: str | None = None) -> str:
    """The dbt project's name: ``given``, else the folder's name made a valid identifier."""
    name = given or re.sub(r"[^a-z0-9_]+", "_", root.resolve().name.lower()).strip("_")
    if name and name[0].isdigit():
        name = f"store_{name}"
    if not _NAME.fullmatch(name or "") or name == "flowhouse":
        raise ConfigError(
            "not a usable project name",
            value=name,
            expected="letters, digits and underscores, not starting with a digit, not 'flowhouse'"
            " (--name NAME)",
        )
    return name


def init_project(root: Path, name: str | None = None, title: str | None = None) -> Created:
    """Write a new project into ``root`` (absent or empty); nothing is overwritten."""
    if root.exists() and (not root.is_dir() or any(root.iterdir())):
        raise ConfigError(
            f"{root} already exists and is not empty",
            expected="a new or empty folder (flowhouse init never overwrites files)",
        )
    dbt_name = project_name(root, name)
    store = title or dbt_name.replace("_", " ").title()
    written: list[Path] = []
    for source in sorted(p for p in SCAFFOLD.rglob("*") if p.is_file()):
        if "__pycache__" in source.parts:
            continue
        relative = source.relative_to(SCAFFOLD)
        target = root / relative.parent / RENAMED.get(relative.name, relative.name)
        text = source.read_text(encoding="utf-8")
        text = text.replace("__NAME__", dbt_name).replace("__TITLE__", store)
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(text, encoding="utf-8")
        written.append(target)
    schema = root / "flow.schema.json"
    schema.write_text(json_schema() + "\n", encoding="utf-8")
    written.append(schema)
    return Created(root, dbt_name, tuple(written))
