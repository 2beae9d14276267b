"""Where the project's own files are (the dbt project, the models, the shipped flows)."""

from __future__ import annotations

from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
DBT_PROJECT = ROOT / "dbt_project"
MODELS = ROOT / "models"
#: The flow library shipped with flowhouse (flows, settings, templates, syncs).
FLOWS = ROOT / "flows" / "library"
