"""The event contract (``flowhouse.core.contract.EVENT_PROPERTIES``) and ``docs/events.md`` agree:
the generated table is current, and the properties each prose table lists are the contract's."""

from __future__ import annotations

import re

from flowhouse.core.contract import EVENT_PROPERTIES, EVENT_TYPES, contract_table
from flowhouse.core.paths import CHECKOUT

DOC = CHECKOUT / "docs" / "events.md"
MARKER = "<!-- contract:"


def _without_parentheses(cell: str) -> str:
    """A properties cell without its remarks: ``(`web`, `pos`)`` lists values, not properties."""
    previous = None
    while previous != cell:
        previous, cell = cell, re.sub(r"\([^()]*\)", "", cell)
    return cell.split(" — ")[0]


def _documented() -> dict[str, set[str]]:
    """Event type -> the properties the prose tables of docs/events.md list."""
    prose = DOC.read_text().split(MARKER)[0]
    found: dict[str, set[str]] = {}
    for line in prose.splitlines():
        if line.startswith("| `"):
            cells = [c.strip() for c in line.strip("|").split("|")]
            names = set(re.findall(r"`(\w+)`", _without_parentheses(cells[-1])))
            found |= dict.fromkeys(re.findall(r"`(\w+)`", cells[0]), names)
    return found


def test_every_event_type_has_a_contract() -> None:
    assert list(EVENT_PROPERTIES) == list(EVENT_TYPES)


def test_the_prose_tables_list_the_contracts_properties() -> None:
    documented = _documented()
    contract = {t: {p.name for p in props} for t, props in EVENT_PROPERTIES.items()}
    assert documented == contract


def test_the_generated_table_is_current() -> None:
    generated = DOC.read_text().split(MARKER)[1].split("\n", 1)[1]
    assert generated.strip() == contract_table(), "regenerate it from contract_table()"
