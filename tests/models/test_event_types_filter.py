"""Every filter of the events by a list of types goes through ``flowhouse.event_types_in`` (a range
DuckDB applies in the scan, then the list), never a bare ``event_type in (...)`` list, which DuckDB
applies after reading every event."""

from __future__ import annotations

import re

from flowhouse.core.paths import DBT_PACKAGE

BARE_LIST = re.compile(r"event_type\s+(?:not\s+)?in\s*\(\s*['\"]", re.IGNORECASE)


def test_no_bare_list_of_event_types() -> None:
    files = [*DBT_PACKAGE.glob("models/**/*.sql"), *DBT_PACKAGE.glob("macros/*.sql")]
    assert len(files) > 50
    found = [
        f"{path.relative_to(DBT_PACKAGE)}:{number}: {line.strip()}"
        for path in files
        if path.name != "event_types.sql"
        for number, line in enumerate(path.read_text().splitlines(), 1)
        if BARE_LIST.search(line)
    ]
    assert not found, "use flowhouse.event_types_in(column, types):\n" + "\n".join(found)
