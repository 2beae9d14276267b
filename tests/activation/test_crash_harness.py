"""The crash harness in the suite: seeded trials of ``tests/support/crash.py`` (``tick``, ``send``
and ``sync`` killed with SIGKILL at random moments against the fake provider failing some
requests, then rerun): no message delivered twice, none lost, ticks all-or-nothing, syncs
converged. The script runs many trials (``python tests/support/crash.py``; results in
docs/reliability.md); here one trial on DuckDB, and one on PostgreSQL with two senders
(``--bucket``) and two ticks at once."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "support"))

from crash import Result, Warehouses, run

#: Customers per trial: three messages each (an e-mail, two identical SMS), a third in the sync.
CUSTOMERS = 12


def check(result: Result) -> None:
    assert result.trials == 1
    assert result.kills > 0, "no kill landed on a live process: the trial proves nothing"
    assert result.messages == 3 * CUSTOMERS
    assert result.problems == []
    assert (result.duplicates, result.lost) == (0, 0)
    assert (result.tick_mismatches, result.diverged_syncs) == (0, 0)


def test_killed_ticks_sends_and_syncs_lose_and_duplicate_nothing(tmp_path: Path) -> None:
    check(run(1, 11, Warehouses(tmp_path), CUSTOMERS, concurrent=False))


@pytest.mark.postgres
def test_concurrent_senders_and_ticks_killed_on_postgres(tmp_path: Path, pg_url: str) -> None:
    check(run(1, 12, Warehouses(tmp_path, pg_url), CUSTOMERS, concurrent=True))
