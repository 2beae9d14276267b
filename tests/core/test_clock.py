"""The one clock: a time with an offset is converted to UTC, one without is UTC, on every path
(the CLI's ``--now`` and Dagster's ``flowhouse/now`` run tag read it the same way)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import pytest
from dagster import asset, materialize

from flowhouse.core.clock import parse_now, utc
from flowhouse.core.errors import ConfigError
from flowhouse.orchestration.dagster.resources import NOW_TAG, run_time

TEN_UTC = datetime(2026, 10, 1, 10, 0)


@pytest.mark.parametrize(
    "text",
    [
        "2026-10-01T12:00:00+02:00",
        "2026-10-01T10:00:00Z",
        "2026-10-01T10:00:00",
        "2026-10-01 10:00:00",
        "2026-10-01T05:00:00-05:00",
        " 2026-10-01T10:00:00+00:00 ",
    ],
)
def test_parse_now_is_naive_utc(text: str) -> None:
    assert parse_now(text) == TEN_UTC


@pytest.mark.parametrize("text", ["tomorrow", "", "2026-13-01", "10:00"])
def test_a_bad_time_names_what_it_is(text: str) -> None:
    with pytest.raises(ConfigError, match=r"--now is not a time.*expected ISO 8601"):
        parse_now(text, "--now")


def test_utc_converts_aware_and_keeps_naive() -> None:
    assert utc(datetime(2026, 10, 1, 12, tzinfo=timezone(timedelta(hours=2)))) == TEN_UTC
    assert utc(TEN_UTC) == TEN_UTC
    assert utc(datetime(2026, 10, 1, 10, tzinfo=UTC)).tzinfo is None


def test_dagster_reads_an_offset_in_the_run_tag_as_the_cli_does() -> None:
    seen: list[datetime] = []

    @asset
    def clock(context) -> None:  # type: ignore[no-untyped-def]
        seen.append(run_time(context))

    result = materialize([clock], tags={NOW_TAG: "2026-10-01T12:00:00+02:00"})
    assert result.success
    assert seen == [TEN_UTC] == [parse_now("2026-10-01T12:00:00+02:00")]
