"""Where flowhouse's own files are: its dbt package (macros and models), the flow library, the
providers' API documents.

In a source checkout they are the repository's top-level folders, which ``flowhouse/`` links to; in
an installed wheel they are inside the package. A store's own project
(:mod:`flowhouse.core.project`) uses the dbt package from here.
"""

from __future__ import annotations

from pathlib import Path

#: The installed ``flowhouse`` package.
PACKAGE = Path(__file__).resolve().parents[1]
#: flowhouse's dbt project: run as it is for the example store, or installed as a dbt package.
DBT_PACKAGE = (PACKAGE / "dbt_project").resolve()
MODELS = DBT_PACKAGE / "models"
#: The flow library shipped with flowhouse (flows, settings, templates, syncs).
FLOWS = (PACKAGE / "flows").resolve() / "library"
#: The providers' official API documents the fake provider validates requests against.
SPECS = (PACKAGE / "specs").resolve()
#: The repository when flowhouse runs from a source checkout, else None.
CHECKOUT = PACKAGE.parent if (PACKAGE.parent / "pyproject.toml").is_file() else None
