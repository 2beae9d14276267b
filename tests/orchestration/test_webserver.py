"""The real Dagster webserver: `orchestration/dagster/ui.sh` (what `make ui` runs) starts `dagster dev` and
the fake provider over a small generated store; a run of the whole cycle is launched over
GraphQL, waited for, and must succeed; then the script is stopped with SIGTERM and must stop
both servers."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import time
from datetime import timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest

from flowhouse.core.warehouse import Location
from flowhouse.demo import DEMO_START
from flowhouse.generate import generate_store

ROOT = Path(__file__).resolve().parents[2]

LAUNCH = """
mutation Launch($params: ExecutionParams!) {
  launchRun(executionParams: $params) {
    __typename
    ... on LaunchRunSuccess { run { runId } }
    ... on PythonError { message }
    ... on RunConfigValidationInvalid { errors { message } }
  }
}
"""

STATUS = """
query Status($runId: ID!) {
  runOrError(runId: $runId) { __typename ... on Run { status } }
}
"""


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def graphql(url: str, query: str, variables: dict[str, Any]) -> dict[str, Any]:
    response = httpx.post(
        f"{url}/graphql", json={"query": query, "variables": variables}, timeout=30
    )
    response.raise_for_status()
    body = response.json()
    assert "errors" not in body, body
    return dict(body["data"])


def wait_until_up(url: str, proc: subprocess.Popen[bytes], seconds: float = 120) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        assert proc.poll() is None, "orchestration/dagster/ui.sh exited early"
        try:
            if httpx.get(f"{url}/server_info", timeout=2).status_code == 200:
                return
        except httpx.TransportError:
            pass
        time.sleep(0.5)
    raise AssertionError("the Dagster webserver did not come up")


@pytest.mark.slow
def test_a_run_launched_over_graphql_succeeds_and_the_server_stops(tmp_path: Path) -> None:
    warehouse = tmp_path / "store" / "warehouse.duckdb"
    generate_store(Location.parse(str(warehouse)), customers=800, days=21, seed=5, start=DEMO_START)
    port, fake_port = free_port(), free_port()
    script = ["bash", str(ROOT / "orchestration" / "dagster" / "ui.sh"), "--port", str(port),
              "--fake-port", str(fake_port), "--warehouse", str(warehouse)]  # fmt: skip
    log = (tmp_path / "ui.log").open("wb")
    proc = subprocess.Popen(script, stdout=log, stderr=subprocess.STDOUT, cwd=ROOT)
    url = f"http://127.0.0.1:{port}"
    try:
        wait_until_up(url, proc)
        launch = DEMO_START + timedelta(days=21)
        params = {
            "selector": {
                "repositoryLocationName": "flowhouse.orchestration.dagster.definitions",
                "repositoryName": "__repository__",
                "jobName": "flowhouse_cycle",
            },
            "runConfigData": {},
            "executionMetadata": {"tags": [{"key": "flowhouse/now", "value": launch.isoformat()}]},
        }
        launched = graphql(url, LAUNCH, {"params": params})["launchRun"]
        assert launched["__typename"] == "LaunchRunSuccess", launched
        run_id = launched["run"]["runId"]
        status = ""
        deadline = time.monotonic() + 600
        while time.monotonic() < deadline:
            status = graphql(url, STATUS, {"runId": run_id})["runOrError"]["status"]
            if status in ("SUCCESS", "FAILURE", "CANCELED"):
                break
            time.sleep(2)
        assert status == "SUCCESS", (tmp_path / "ui.log").read_text()[-3000:]
        stats = httpx.get(f"http://127.0.0.1:{fake_port}/_fake/stats", timeout=5).json()
        assert stats["rejected"] == {}
    finally:
        os.kill(proc.pid, signal.SIGTERM)
        try:
            proc.wait(timeout=60)
        finally:
            log.close()
    assert proc.returncode == 0, (tmp_path / "ui.log").read_text()[-3000:]
    for stopped in (port, fake_port):
        with socket.socket() as s:
            assert s.connect_ex(("127.0.0.1", stopped)) != 0, f"port {stopped} still serves"
