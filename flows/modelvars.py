"""The store settings the dbt models read: one source of truth, passed to dbt as vars.

A store configures flowhouse in ``_settings.yml`` only. The models read the same values as dbt
vars, which every build passes (``flowhouse build``, ``tick``, the demo and the Dagster assets,
through :func:`model_vars`):

- ``store.timezone`` is var ``store_timezone``: the zone of customers without a valid one, and
  the store's days in the marts;
- ``events.raw`` lists derived event types the store sends itself: their derivation is switched
  off (var ``derive_<type>: false``), so a flow keyed on them sees the store's events only;
- ``models`` sets the derivations' windows and thresholds and the attributes' parameters by the
  var's name (``cart_abandon_after_minutes: 30``), each checked against the default
  ``dbt_project.yml`` declares: an unknown name (with the closest known one) or a value of
  another type is a located error.
"""

from __future__ import annotations

import difflib
from functools import cache
from typing import Any

from flowhouse.core.contract import DERIVED_EVENT_TYPES
from flowhouse.core.paths import DBT_PACKAGE
from flowhouse.core.yamlfile import load_yaml

#: Vars flowhouse sets itself: the tick's time, and those with a home of their own in the settings.
RESERVED = {
    "now": "the time of the build (flowhouse sets it)",
    "store_timezone": "set store.timezone",
    "customer_properties": "declare them under customer_properties",
}


@cache
def declared_vars() -> dict[str, Any]:
    """The vars flowhouse's ``dbt_project.yml`` declares, with their defaults."""
    project = load_yaml(DBT_PACKAGE / "dbt_project.yml")
    return dict(project.get("vars") or {})


def _kind(value: Any) -> str:
    if isinstance(value, bool):
        return "true or false"
    if isinstance(value, (int, float)):
        return "a number"
    if isinstance(value, str):
        return "text"
    if isinstance(value, list):
        return "a list"
    if isinstance(value, dict):
        return "a mapping"
    return "a value"


def _fits(value: Any, default: Any) -> bool:
    if default is None:
        return True
    if isinstance(default, bool) or isinstance(value, bool):
        return isinstance(value, bool) and isinstance(default, bool)
    if isinstance(default, (int, float)):
        return isinstance(value, (int, float))
    return isinstance(value, type(default))


def check_model_var(name: str, value: Any) -> str | None:
    """What is wrong with setting dbt var `name` to `value` from the settings, or None."""
    if name in RESERVED:
        return f"cannot be set here: {RESERVED[name]}"
    if name.startswith("derive_"):
        return "cannot be set here: list the event type under events.raw"
    known = declared_vars()
    if name not in known:
        close = difflib.get_close_matches(name, list(known), n=1)
        hint = f"; did you mean {close[0]}?" if close else ""
        return f"no such model setting (a var of dbt_project.yml){hint}"
    if not _fits(value, known[name]):
        return f"takes {_kind(known[name])} (default {known[name]!r})"
    return None


def check_raw_type(event_type: str) -> str | None:
    """What is wrong with declaring `event_type` as sent raw by the store, or None."""
    if event_type in DERIVED_EVENT_TYPES:
        return None
    close = difflib.get_close_matches(event_type, DERIVED_EVENT_TYPES, n=1)
    hint = f" (did you mean {close[0]}?)" if close else ""
    return (
        f"{event_type} is not a derived event type{hint}; only derived types need declaring "
        "when the store sends them raw"
    )


def model_vars(timezone: str, raw: list[str], models: dict[str, Any]) -> dict[str, Any]:
    """The dbt vars of a store's settings, in a stable order (the same settings give the same
    vars, so dbt's partial parsing stays valid from build to build)."""
    out: dict[str, Any] = {"store_timezone": timezone}
    out |= {f"derive_{t}": False for t in sorted(set(raw))}
    out |= {k: models[k] for k in sorted(models)}
    return out
