"""``python -m flowhouse.orchestration.dagster.prepare [--warehouse W]``: parse the dbt project for Dagster.

The Dagster definitions (:mod:`flowhouse.orchestration.dagster.definitions`) read the dbt manifest from
the target path of the warehouse's adapter (``dbt_project/target-duckdb`` or
``target-postgres``); this writes it with ``dbt parse``, which reads the project only (it never
connects to the warehouse).
The warehouse is ``--warehouse``, else ``FLOWHOUSE_WAREHOUSE``, else the demo store, as for the
definitions.
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

from flowhouse.core.dbt import run_dbt, target_path
from flowhouse.core.errors import FlowhouseError
from flowhouse.core.paths import FLOWS
from flowhouse.core.warehouse import ENV_VAR, Location
from flowhouse.flows.settings import load_settings
from flowhouse.orchestration.dagster.resources import DEMO_WAREHOUSE, FLOWS_ENV


def prepare(location: Location, flows_dir: Path = FLOWS) -> Path:
    """``dbt parse`` into the adapter's target path, with the store settings of `flows_dir` (a
    derivation the store switched off is no asset); returns the manifest's path."""
    run_dbt("parse", location, dbt_vars=load_settings(flows_dir).dbt_vars())
    return Path(target_path(location)) / "manifest.json"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m flowhouse.orchestration.dagster.prepare",
        description="Parse the dbt project into the target path the Dagster definitions read.",
    )
    parser.add_argument(
        "--warehouse",
        default=os.environ.get(ENV_VAR) or str(DEMO_WAREHOUSE),
        help=f"a DuckDB file or a postgresql:// URL (default: {ENV_VAR}, else the demo store)",
    )
    args = parser.parse_args(argv)
    try:
        manifest = prepare(Location.parse(args.warehouse), Path(os.environ.get(FLOWS_ENV) or FLOWS))
    except FlowhouseError as err:
        print(f"Error: {err}", file=sys.stderr)
        return 1
    print(f"dbt manifest for Dagster: {manifest}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
