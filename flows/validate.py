"""``flowhouse validate`` and ``flowhouse schema``: check flow and sync files, export the flow
files' JSON Schema.

Flows are read by :func:`flowhouse.flows.load.read_flows`, the reader the tick uses too; sync files by
:func:`flowhouse.flows.sync.files.validate_syncs`.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path

from flowhouse.flows.files import Problem
from flowhouse.flows.flowfile import Flow
from flowhouse.flows.load import SettingsCheck, read_flows
from flowhouse.flows.sync.files import validate_syncs


def validate_paths(
    paths: Sequence[Path], checks: Sequence[SettingsCheck] = ()
) -> tuple[list[Problem], int]:
    """Every problem in every flow and sync file under ``paths``, and how many files were
    checked; each folder's settings also pass ``checks`` (see :mod:`flowhouse.flows.load`)."""
    found = read_flows(paths, checks)
    sync_problems, syncs = validate_syncs([p for p in paths if p.exists()])
    return found.problems + sync_problems, found.files + syncs


def json_schema() -> str:
    schema = Flow.model_json_schema(by_alias=True)
    schema["$schema"] = "https://json-schema.org/draft/2020-12/schema"
    schema["title"] = "flowhouse flow file"
    return json.dumps(schema, indent=2, sort_keys=True)
