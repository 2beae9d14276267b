"""A paid-ads customer list (an audience on an ad platform, or a bridge to one).

Destination block: ``audience: {audience: vip_lookalike}``. Fields: ``email`` and ``phone``,
normalised and hashed (SHA-256) as :mod:`flowhouse.activation.providers.identity` does; no raw
address leaves flowhouse. A row with neither is rejected.

- **upsert**: ``POST {base_url}/{audience}/users`` with a bearer token and
  ``{"schema": ["EMAIL_SHA256", "PHONE_SHA256"], "data": [[email hash, phone hash], ...]}``
  (10,000 members a request); the row's ``destination_id`` is its two hashes joined by ``:``.
- **remove**: ``DELETE {base_url}/{audience}/users`` with the same body, built from the
  ``destination_id`` (what was sent, even if the address changed since), else from the fields;
  a row with neither identifier was never sent, so it is accepted.

No published OpenAPI document describes this API (see the destination's module).
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from typing import Annotated, Any, ClassVar
from urllib.parse import quote

import httpx
from pydantic import Field

from flowhouse.activation.providers.audience.config import Audience
from flowhouse.activation.providers.audience.destination import (
    MAX_MEMBERS,
    SCHEMA,
    AudienceDestination,
)
from flowhouse.activation.providers.identity import hashed_row
from flowhouse.activation.providers.target import (
    HttpTarget,
    answer_rows,
    chunks,
    dumps,
    in_order,
    options_of,
    rejected,
)
from flowhouse.activation.sync.target import RowResult, SyncRow
from flowhouse.flows.flowfile import Model

_MEMBER_ID = re.compile(r"^([0-9a-f]{64})?:([0-9a-f]{64})?$")


class AudienceOptions(Model):
    audience: Annotated[str, Field(min_length=1)]
    sync_id: str | None = None


class AudienceTarget(HttpTarget):
    """Members of a paid-ads audience (see the module docstring)."""

    name: ClassVar[str] = "audience"
    batch_size: ClassVar[int] = MAX_MEMBERS
    provider: Audience

    def setup(self) -> None:
        super().setup()
        self.audience = options_of(AudienceOptions, self.options, self.name).audience
        self.url = f"{self.root(AudienceDestination.default_base_url)}/"
        self.url += f"{quote(self.audience, safe='')}/users"
        self._token = self.secrets.get(self.provider.api_key_env, "The audience API token")

    async def upsert(self, client: httpx.AsyncClient, rows: Sequence[SyncRow]) -> list[RowResult]:
        members = {row.key: member(row) for row in rows}
        results = {
            row.key: rejected(row, "no e-mail or phone to match")
            for row in rows
            if members[row.key] is None
        }
        results.update(await self._send(client, "POST", rows, members))
        await self._replace(client, rows, members, results)
        return in_order(rows, results)

    async def _replace(
        self,
        client: httpx.AsyncClient,
        rows: Sequence[SyncRow],
        members: Mapping[str, list[str] | None],
        results: dict[str, RowResult],
    ) -> None:
        """A changed address is a new member: the one sent before is removed, so the audience
        never holds a customer twice. Until that removal succeeds the row is not settled (the
        next run sends it again), so the old member cannot be forgotten."""
        stale = [
            row
            for row in rows
            if results[row.key].status == "accepted"
            and sent_member(row) not in (None, members[row.key])
        ]
        if not stale:
            return
        removed = await self._send(client, "DELETE", stale, {r.key: sent_member(r) for r in stale})
        for row in stale:
            if removed[row.key].status != "accepted":
                reason = f"the previous member could not be removed: {removed[row.key].reason}"
                results[row.key] = RowResult(row.key, "retry", reason=reason)

    async def remove(self, client: httpx.AsyncClient, rows: Sequence[SyncRow]) -> list[RowResult]:
        members = {row.key: sent_member(row) or member(row) for row in rows}
        results = {
            row.key: RowResult(row.key, "accepted", reason="no e-mail or phone: never sent")
            for row in rows
            if members[row.key] is None
        }
        results.update(await self._send(client, "DELETE", rows, members))
        return in_order(rows, results)

    async def _send(
        self,
        client: httpx.AsyncClient,
        method: str,
        rows: Sequence[SyncRow],
        members: Mapping[str, list[str] | None],
    ) -> dict[str, RowResult]:
        """Post (or delete) the members of ``rows`` that have one."""
        sending = [row for row in rows if members[row.key]]
        ids = {key: ":".join(pair) for key, pair in members.items() if pair}
        results: dict[str, RowResult] = {}
        for batch in chunks(sending, MAX_MEMBERS):
            data = [members[row.key] for row in batch]
            answer = await self.call(client, self.request(method, data))
            results.update(answer_rows(batch, answer, ids))
        return results

    def request(self, method: str, data: Sequence[list[str] | None]) -> httpx.Request:
        headers = {"authorization": f"Bearer {self._token}", "content-type": "application/json"}
        body = dumps({"schema": SCHEMA, "data": list(data)})
        return httpx.Request(method, self.url, headers=headers, content=body)


def member(row: SyncRow) -> list[str] | None:
    """``[email hash, phone hash]`` of the row's fields, or None when it has neither."""
    email, phone = row.fields.get("email"), row.fields.get("phone")
    pair = hashed_row(str(email) if email is not None else None, _text(phone))
    return pair if any(pair) else None


def _text(value: Any) -> str | None:
    return str(value) if value is not None else None


def sent_member(row: SyncRow) -> list[str] | None:
    """The hashes the row was sent with (its ``destination_id``), or None."""
    match = _MEMBER_ID.match(row.destination_id or "")
    if match is None or not any(match.groups()):
        return None
    return [group or "" for group in match.groups()]
