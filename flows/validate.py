"""``flowhouse validate`` and ``flowhouse schema``: check flow files, export their JSON Schema."""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path

from flows.files import Problem, flow_files, parse_flow
from flows.spec import Flow


def validate_paths(paths: Sequence[Path]) -> tuple[list[Problem], int]:
    """Every problem in every flow file under ``paths``, and how many files were checked."""
    problems = [
        Problem(str(p), None, "", "no such file or folder") for p in paths if not p.exists()
    ]
    files = flow_files([p for p in paths if p.exists()])
    seen: dict[str, str] = {}
    for path in files:
        flow, found = parse_flow(path)
        problems += found
        if flow is not None:
            if flow.flow in seen:
                problems.append(
                    Problem(
                        str(path),
                        1,
                        "flow",
                        f"duplicate flow id, also in {seen[flow.flow]}",
                        flow.flow,
                    )
                )
            seen.setdefault(flow.flow, str(path))
    return problems, len(files)


def json_schema() -> str:
    schema = Flow.model_json_schema(by_alias=True)
    schema["$schema"] = "https://json-schema.org/draft/2020-12/schema"
    schema["title"] = "flowhouse flow file"
    return json.dumps(schema, indent=2, sort_keys=True)
