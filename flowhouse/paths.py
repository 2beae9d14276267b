"""Where the project's own files are (the dbt project, the models, the shipped flows)."""

from __future__ import annotations

from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
DBT_PROJECT = ROOT / "dbt_project"
MODELS = ROOT / "models"
FLOWS = ROOT / "flows"
