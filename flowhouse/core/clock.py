"""The one clock: every time flowhouse works with is naive UTC.

:func:`parse_now` reads a time a person typed (the CLI's ``--now``, Dagster's ``flowhouse/now``
run tag, a benchmark's argument): an offset (``+02:00``, ``Z``) is converted to UTC, a time
without one is read as UTC. :func:`utc` turns any moment into naive UTC; :func:`utcnow` is the
wall clock.
"""

from __future__ import annotations

from datetime import UTC, datetime

from flowhouse.core.errors import ConfigError


def utc(moment: datetime) -> datetime:
    """`moment` as naive UTC: an aware moment is converted, a naive one is taken as UTC."""
    return moment.astimezone(UTC).replace(tzinfo=None) if moment.tzinfo else moment


def utcnow() -> datetime:
    """The wall clock, naive UTC."""
    return datetime.now(UTC).replace(tzinfo=None)


def parse_now(text: str, what: str = "the time") -> datetime:
    """An ISO 8601 time as naive UTC (``2026-10-01T12:00:00+02:00`` is 10:00 UTC; no offset means
    UTC). A malformed text is a :class:`ConfigError` naming `what`."""
    try:
        value = datetime.fromisoformat(text.strip().replace("Z", "+00:00"))
    except ValueError as err:
        raise ConfigError(
            f"{what} is not a time",
            value=text,
            expected="ISO 8601 such as 2026-09-01T12:00:00 (UTC) or 2026-09-01T14:00:00+02:00",
        ) from err
    return utc(value)
