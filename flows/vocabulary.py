"""The store's names a flow may use: event types and their properties, segments and lists.

``flowhouse validate`` checks every name a flow file uses against these, so a typo
(``first_purchse``, ``segment: viip``, ``event.valeu``) is an error with a suggestion rather than
a flow that silently never enrolls:

- **event types**: flowhouse's raw and derived vocabulary (:mod:`flowhouse.core.contract`) and the
  store's own (``events.custom`` in ``_settings.yml``);
- **event properties**: per type, the event contract
  (:data:`flowhouse.core.contract.EVENT_PROPERTIES`) plus what the store declares it also sends
  (``events.properties``); a store's own types take any property;
- **segments**: the dbt models whose config has ``meta: {segment: <name>}`` (``models/segments/``),
  read from their YAML without a warehouse;
- **lists**: those the store declares (``lists`` in ``_settings.yml``) and those its flows add
  customers to (``add_to_list`` actions).
"""

from __future__ import annotations

import difflib
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

from flowhouse.core.contract import EVENT_PROPERTIES, EVENT_TYPES
from flowhouse.flows.dbtmodels import segment_models

SETTINGS_FILE = "_settings.yml"


def suggest(name: str, known: Iterable[str]) -> str:
    """``"; did you mean a, b?"`` for the close matches of ``name``, or nothing."""
    close = difflib.get_close_matches(name, sorted(known), n=3, cutoff=0.6)
    return f"; did you mean {', '.join(close)}?" if close else ""


def _contract() -> dict[str, dict[str, str] | None]:
    return {name: {p.name: p.type for p in EVENT_PROPERTIES[name]} for name in EVENT_TYPES}


@dataclass(frozen=True)
class Vocabulary:
    """The names a folder's flows may use. ``events`` maps each event type to its properties and
    their types (None: a store's own type, any property); ``lists`` None: not checked."""

    events: Mapping[str, Mapping[str, str] | None] = field(default_factory=_contract)
    segments: frozenset[str] = field(default_factory=lambda: frozenset(segment_models()))
    lists: frozenset[str] | None = None
    #: The store's declared customer properties and their types (``customer_properties``).
    customer_properties: Mapping[str, str] = field(default_factory=dict)

    @classmethod
    def of(
        cls,
        custom: Iterable[str] = (),
        properties: Mapping[str, Mapping[str, str]] | None = None,
        lists: Iterable[str] | None = None,
        customer_properties: Mapping[str, str] | None = None,
    ) -> Vocabulary:
        """flowhouse's vocabulary with the store's own types, extra properties and lists."""
        events = _contract()
        for name, extra in (properties or {}).items():
            events[name] = {**(events.get(name) or {}), **extra}
        events |= dict.fromkeys(custom)
        return cls(
            events,
            frozenset(segment_models()),
            None if lists is None else frozenset(lists),
            dict(customer_properties or {}),
        )

    def with_lists(self, lists: Iterable[str]) -> Vocabulary:
        return Vocabulary(self.events, self.segments, frozenset(lists), self.customer_properties)

    def check_event_type(self, name: str, *, trigger: bool = False) -> str | None:
        """The problem with ``name`` as an event type, or None."""
        if name in self.events:
            return None
        never = ": nothing produces it, so the flow would never enroll" if trigger else ""
        return (
            f"unknown event type{never}{suggest(name, self.events)} (a store's own types are "
            f"declared in events.custom in {SETTINGS_FILE})"
        )

    def properties(self, event_type: str) -> Mapping[str, str] | None:
        """The properties of ``event_type`` and their types (None: any, or an unknown type)."""
        return self.events.get(event_type)

    def check_segment(self, name: str) -> str | None:
        if name in self.segments:
            return None
        known = ", ".join(sorted(self.segments)) or "none"
        return (
            f"no such segment{suggest(name, self.segments)} (segments are the dbt models with "
            f"meta: {{segment: <name>}}: {known})"
        )

    def check_list(self, name: str) -> str | None:
        if self.lists is None or name in self.lists:
            return None
        known = ", ".join(sorted(self.lists)) or "none"
        return (
            f"no such list{suggest(name, self.lists)} (lists: {known}; declare the lists "
            f"customers join in lists: in {SETTINGS_FILE})"
        )
