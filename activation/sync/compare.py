"""Whether a sync's destination holds what its source says, seen from both sides.

:func:`source_identities` reads the source as the destination identifies its members (the
e-mail for Klaviyo and SendGrid, the hashed e-mail and phone for an audience);
:func:`fake_identities` reads the same from the fake provider's destination objects. The demo
and the tests compare them after syncing: in ``mirror`` mode they must be equal, in the other
modes the source must be contained in the destination.
"""

from __future__ import annotations

from typing import Any

from flowhouse.activation.fake.state import Recording
from flowhouse.activation.providers.identity import hashed_row
from flowhouse.activation.sync.diff import source_query
from flowhouse.core.sql import render
from flowhouse.core.warehouse import Warehouse
from flowhouse.flows.sync.syncfile import Sync

Identity = tuple[str, ...]


def _identity(sync: Sync, fields: dict[str, Any]) -> Identity | None:
    if sync.target_name == "audience":
        pair = hashed_row(fields.get("email"), fields.get("phone"))
        return tuple(pair) if any(pair) else None
    email = fields.get("email")
    return (str(email).strip().lower(),) if email and "@" in str(email) else None


def source_identities(wh: Warehouse, sync: Sync) -> set[Identity]:
    """The source's rows, as the destination tells its members apart."""
    names = list(sync.fields)
    found = set()
    for row in wh.query(render(source_query(sync), wh.dialect)):
        identity = _identity(sync, dict(zip(names, row[1 : 1 + len(names)], strict=True)))
        if identity is not None:
            found.add(identity)
    return found


def fake_identities(state: Recording, sync: Sync) -> set[Identity]:
    """The members of the sync's destination object at the fake provider."""
    options = sync.target_options
    if sync.target_name == "klaviyo":
        members = state.klaviyo_list(options["list_id"]).values()
        return {(str(m.get("email", "")).lower(),) for m in members}
    if sync.target_name == "sendgrid":
        found: set[Identity] = set()
        for list_id in options["list_ids"]:
            found |= {(email.lower(),) for email in state.sendgrid_list(list_id)}
        return found
    if sync.target_name == "audience":
        return {tuple(_pair(m)) for m in state.members(options["audience"])}
    raise ValueError(f"no destination object to compare for {sync.target_name}")


def _pair(member: Any) -> list[str]:
    values = dict(member)
    return [values.get("EMAIL_SHA256", ""), values.get("PHONE_SHA256", "")]


def in_sync(wh: Warehouse, state: Recording, sync: Sync) -> tuple[bool, int, int]:
    """(whether the destination matches the source for the sync's mode, source size,
    destination size)."""
    source = source_identities(wh, sync)
    held = fake_identities(state, sync)
    ok = source == held if sync.mode == "mirror" else source <= held
    return ok, len(source), len(held)
