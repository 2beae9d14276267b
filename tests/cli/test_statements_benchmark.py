"""benchmarks/statements.py: a flowhouse command's warehouse statements, timed and ranked."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

from flowhouse.core.warehouse import Location, Warehouse

SCRIPT = Path(__file__).resolve().parents[2] / "benchmarks" / "statements.py"


def run(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, str(SCRIPT), *args], capture_output=True, text=True, check=False
    )


def test_the_command_runs_and_its_statements_are_ranked(tmp_path: Path) -> None:
    warehouse = tmp_path / "w.duckdb"
    with Warehouse.open(Location.parse(str(warehouse))) as wh:
        wh.ensure_raw_tables()
    out = run("--top", "3", "--", "erase", "--customer", "c1", "--warehouse", str(warehouse))
    assert out.returncode == 0, out.stderr
    assert "erased 1 customer(s)" in out.stdout  # the command itself ran, as it always does
    summary = re.search(r"# (\d+) statements in ([\d.]+) s of wall: ([\d.]+) s in the", out.stdout)
    assert summary is not None, out.stdout
    assert int(summary[1]) > 3 and float(summary[3]) <= float(summary[2])
    rows = [line for line in out.stdout.splitlines() if re.match(r"\| \d+\.\d\d \| \d+% \|", line)]
    assert len(rows) == 3, out.stdout  # --top
    seconds = [float(line.split("|")[1]) for line in rows]
    assert seconds == sorted(seconds, reverse=True)
    assert (
        f"reproduce: python benchmarks/statements.py -- erase --customer c1 --warehouse {warehouse}"
        in out.stdout
    )


def test_a_failing_command_keeps_its_exit_code_and_the_figures(tmp_path: Path) -> None:
    out = run("--", "tick", "--no-build", "--warehouse", str(tmp_path / "missing" / "w.duckdb"))
    assert out.returncode != 0
    assert "statements in" in out.stdout


def test_a_bad_option_is_said_as_the_cli_says_it() -> None:
    out = run("--", "tick", "--no-such-option")
    assert out.returncode == 2
    assert "No such option '--no-such-option'" in out.stderr and "Traceback" not in out.stderr


def test_no_command_is_an_error() -> None:
    out = run("--top", "3")
    assert out.returncode == 2
    assert "give a flowhouse command after --" in out.stderr
