"""benchmarks/ticks.py (`make bench`): at a tiny size it runs every step and prints every row."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

SCRIPT = Path(__file__).resolve().parents[2] / "benchmarks" / "ticks.py"
#: every step of a size, in the summary table; the second size also has the same-volume tick
STEPS = [
    "generate",
    "initial build (`build --skip-tests`)",
    "first tick, `--no-build` (flows go live)",
    "tick with refresh, nothing new",
    "tick with refresh, 15 min of new events",
    "tick with refresh, slow lane due, 15 min of new events",
    "tick `--no-build`, 15 min of new events",
]
SAME = "tick with refresh, the previous size's new events"
REFRESH = {
    "tick with refresh, nothing new",
    "tick with refresh, 15 min of new events",
    "tick with refresh, slow lane due, 15 min of new events",
    SAME,
}
#: a measured cell: seconds, with dbt's re-parse or the models' own time by lane after it
TIMED = re.compile(
    r"\d+\.\d\d s( \((re-parsed|own time: fast \d+\.\d\d \+ enrichment \d+\.\d\d)\))?"
)
SLOW_DUE = "tick with refresh, slow lane due, 15 min of new events"


def run(*args: str, tmp_path: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, str(SCRIPT), "--dir", str(tmp_path), *args],
        capture_output=True,
        text=True,
        env=os.environ.copy(),
        check=False,
    )


def cells(line: str) -> list[str]:
    return [c.strip() for c in line.strip().strip("|").split("|")]


@pytest.mark.slow
def test_every_row_of_the_table_is_printed(tmp_path: Path) -> None:
    out = run(
        "--sizes", "100,200", "--days", "2", "--latency", "--latency-ticks", "1",
        "--build-memory-limit", "1GB", tmp_path=tmp_path,
    )  # fmt: skip
    assert out.returncode == 0, out.stderr
    rows = {(c[0], c[1]): c for c in map(cells, out.stdout.splitlines()) if len(c) == 12}
    for size in ("100", "200"):
        for step in [*STEPS, *([SAME] if size == "200" else [])]:
            assert (size, step) in rows, f"no row {step!r} for {size} customers:\n{out.stdout}"
            row = rows[size, step]
            assert row[3].endswith(" s") and row[5].endswith(" MB"), row  # wall, peak RSS
            if step in REFRESH:
                # start, dbt start, models, engine, rest: all measured
                assert all(TIMED.fullmatch(c) for c in row[6:11]), row
                assert row[11] == "not run", row
    assert ("100", SAME) not in rows, "the first size has no previous size"
    for size in ("100", "200"):  # the initial build ran with the limit given; the ticks without
        assert rows[size, STEPS[1]][2] == "- (DuckDB memory_limit 1GB)", rows[size, STEPS[1]]
        assert "memory_limit" not in rows[size, STEPS[3]][2], rows[size, STEPS[3]]
    # the slow lane's models (the marts, the category affinity) ran in the tick where it was due,
    # not in the tick right after the initial build (which ran both lanes)
    assert rows["100", "tick with refresh, nothing new"][8].endswith("enrichment 0.00)"), rows
    assert not rows["100", SLOW_DUE][8].endswith("enrichment 0.00)"), rows
    assert "| model |" in out.stdout and "| **sum** |" in out.stdout
    assert "| stg_orders |" in out.stdout
    assert "The initial build's 15 slowest models" in out.stdout
    assert "| model | 100 | 200 |" in out.stdout and "| **sum of all models** | " in out.stdout
    assert "Same new events (" in out.stdout
    for size in ("100", "200"):  # the latency table: a row per size, after one 5-minute tick
        assert f"\n| {size} | 1 | " in out.stdout, out.stdout
    assert (
        "reproduce: python benchmarks/ticks.py --sizes 100,200 --days 2 --seed 7 --latency "
        "--latency-ticks 1 --build-memory-limit 1GB" in out.stdout
    )
    assert not list(tmp_path.iterdir()), "the temporary warehouses are removed"


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--sizes", "1000,100"], "--sizes '1000,100': expected increasing customer counts"),
        (["--sizes", "10k"], "--sizes '10k': expected customer counts separated by commas"),
        (["--customers", "100", "--sizes", "100"], "give --customers or --sizes, not both"),
        (["--latency-ticks", "0"], "--latency-ticks 0: expected at least 1"),
    ],
)
def test_bad_arguments_are_named(args: list[str], message: str, tmp_path: Path) -> None:
    out = run(*args, tmp_path=tmp_path)
    assert out.returncode == 2
    assert message in out.stderr
