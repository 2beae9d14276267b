"""Klaviyo: profiles kept in one list, with their properties.

Destination block: ``klaviyo: {list_id: "Xy12Ab"}``. Fields: ``email``, ``phone_number`` (sent
in E.164), ``first_name``, ``last_name``, ``organization``, ``locale``, ``title``, ``image``,
``external_id`` (default: the row's key) and ``properties.<name>``. A field without a value is
left out, so Klaviyo keeps what it had.

- **upsert**: each row is one ``POST /api/profile-import`` (JSON:API), at most
  ``concurrency`` at once, which answers the profile (200 updated, 201 created); its id is the
  row's ``destination_id``. The profiles accepted are then added to the list with
  ``POST /api/lists/{list_id}/relationships/profiles``, 1,000 a request (the API's limit). A
  profile Klaviyo refuses (an invalid e-mail) rejects its row only, with Klaviyo's words.
- **remove**: ``DELETE /api/lists/{list_id}/relationships/profiles`` with the rows' profile ids.
  A row without one is looked up (``GET /api/profiles`` filtered on its e-mail, else its phone,
  else its external id); a profile Klaviyo does not know is in no list, so the row is accepted.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Awaitable, Callable, Mapping, Sequence
from typing import Annotated, Any, ClassVar

import httpx
from pydantic import Field

from flowhouse.activation.providers.identity import normalize_phone
from flowhouse.activation.providers.klaviyo.config import Klaviyo
from flowhouse.activation.providers.klaviyo.destination import (
    JSON_API,
    PROFILE_IMPORT,
    klaviyo_reason,
)
from flowhouse.activation.providers.target import (
    Answer,
    HttpTarget,
    Refused,
    answer_rows,
    chunks,
    dumps,
    failed,
    in_order,
    json_value,
    options_of,
    rejected,
    text,
)
from flowhouse.activation.sync.target import RowResult, SyncRow
from flowhouse.flows.flowfile import Model

DEFAULT_BASE_URL = "https://a.klaviyo.com"
PROFILES = "/api/profiles"
MEMBERSHIP = "/api/lists/{list_id}/relationships/profiles"
#: Profiles one list membership request takes at most.
LIST_LIMIT = 1000
#: Profile attributes a sync may set (text), besides ``properties.<name>``.
ATTRIBUTES = frozenset(
    {"email", "phone_number", "external_id", "first_name", "last_name"}
    | {"organization", "locale", "title", "image"}
)
PROPERTY = "properties."


class KlaviyoOptions(Model):
    list_id: Annotated[str, Field(min_length=1)]
    sync_id: str | None = None


class KlaviyoTarget(HttpTarget):
    """Profiles in a Klaviyo list (see the module docstring)."""

    name: ClassVar[str] = "klaviyo"
    batch_size: ClassVar[int] = 1000
    provider: Klaviyo

    def setup(self) -> None:
        super().setup()
        self.list_id = options_of(KlaviyoOptions, self.options, self.name).list_id
        self.url = self.root(DEFAULT_BASE_URL)
        self._key = self.secrets.get(self.provider.api_key_env, "The Klaviyo API key")

    def reason(self, response: httpx.Response) -> str:
        return klaviyo_reason(response)

    async def upsert(self, client: httpx.AsyncClient, rows: Sequence[SyncRow]) -> list[RowResult]:
        imported = await self._bounded(rows, lambda row: self._import(client, row))
        ids = {r.key: r.destination_id for r in imported if r.status == "accepted"}
        listed = await self._membership(client, "POST", [r for r in rows if r.key in ids], ids)
        return in_order(rows, {**{r.key: r for r in imported}, **listed})

    async def remove(self, client: httpx.AsyncClient, rows: Sequence[SyncRow]) -> list[RowResult]:
        missing = [row for row in rows if not row.destination_id]
        found = await self._bounded(missing, lambda row: self._lookup(client, row))
        results = {r.key: r for r in found if r.destination_id is None}
        ids = {row.key: row.destination_id for row in rows if row.destination_id}
        ids.update({r.key: r.destination_id for r in found if r.destination_id})
        held = [row for row in rows if row.key in ids]
        results.update(await self._membership(client, "DELETE", held, ids))
        return in_order(rows, results)

    async def _bounded(
        self, rows: Sequence[SyncRow], work: Callable[[SyncRow], Awaitable[RowResult]]
    ) -> list[RowResult]:
        """``work(row)`` for every row, ``concurrency`` at a time."""
        limit = asyncio.Semaphore(self.provider.concurrency)

        async def one(row: SyncRow) -> RowResult:
            async with limit:
                return await work(row)

        return list(await asyncio.gather(*(one(row) for row in rows)))

    async def _import(self, client: httpx.AsyncClient, row: SyncRow) -> RowResult:
        """Create or update the row's profile; accepted with the profile's id."""
        try:
            attributes = profile(row)
        except Refused as err:
            return rejected(row, str(err))
        body = {"data": {"type": "profile", "attributes": attributes}}
        answer = await self.call(client, self.request("POST", PROFILE_IMPORT, body))
        if not answer.ok:
            return failed(row, answer)
        found = profile_ids(answer.response)
        if not found:
            return RowResult(row.key, "retry", reason="Klaviyo answered without the profile's id")
        return RowResult(row.key, "accepted", found[0])

    async def _lookup(self, client: httpx.AsyncClient, row: SyncRow) -> RowResult:
        """The row's profile id (accepted, no id: Klaviyo has no such profile)."""
        query = {"filter": profile_filter(row), "page[size]": "1"}
        answer = await self.call(client, self.request("GET", PROFILES, params=query))
        if not answer.ok:
            return failed(row, answer)
        found = profile_ids(answer.response)
        return RowResult(row.key, "accepted", found[0] if found else None)

    async def _membership(
        self,
        client: httpx.AsyncClient,
        method: str,
        rows: Sequence[SyncRow],
        ids: Mapping[str, str | None],
    ) -> dict[str, RowResult]:
        """Add ``rows``' profiles to the list (POST) or take them out (DELETE)."""
        results: dict[str, RowResult] = {}
        path = MEMBERSHIP.format(list_id=self.list_id)
        for batch in chunks(rows, LIST_LIMIT):
            body = {"data": members([ids[row.key] for row in batch])}
            answer: Answer = await self.call(client, self.request(method, path, body))
            results.update(answer_rows(batch, answer, ids))
        return results

    def request(
        self,
        method: str,
        path: str,
        body: Mapping[str, Any] | None = None,
        params: Mapping[str, str] | None = None,
    ) -> httpx.Request:
        """One JSON:API request to Klaviyo."""
        headers = {
            "authorization": f"Klaviyo-API-Key {self._key}",
            "revision": self.provider.revision,
            "accept": JSON_API,
        }
        if body is not None:
            headers["content-type"] = JSON_API
        content = dumps(body) if body is not None else None
        return httpx.Request(
            method, self.url + path, headers=headers, params=params, content=content
        )


def profile(row: SyncRow) -> dict[str, Any]:
    """The profile attributes of ``row``; raises :class:`Refused` for a field Klaviyo lacks or
    a phone number that is not one."""
    attributes: dict[str, Any] = {"external_id": row.key}
    properties: dict[str, Any] = {}
    for name, value in row.fields.items():
        if name.startswith(PROPERTY) and len(name) > len(PROPERTY):
            if value is not None:
                properties[name[len(PROPERTY) :]] = json_value(value)
        elif name in ATTRIBUTES:
            found = attribute(name, value)
            if found is not None:
                attributes[name] = found
        else:
            raise Refused(f"Klaviyo profiles have no field {name!r}")
    return {**attributes, "properties": properties} if properties else attributes


def attribute(name: str, value: Any) -> str | None:
    """A profile attribute's text (a phone number in E.164)."""
    found = text(value)
    if name != "phone_number" or found is None:
        return found
    digits = normalize_phone(found)
    if digits is None:
        raise Refused(f"phone_number {found!r} is not a phone number with its country code")
    return f"+{digits}"


def profile_filter(row: SyncRow) -> str:
    """Klaviyo's filter for the row's profile: its e-mail, else its phone, else its external
    id."""
    email = text(row.fields.get("email"))
    if email is not None:
        return _equals("email", email)
    digits = normalize_phone(text(row.fields.get("phone_number")))
    if digits is not None:
        return _equals("phone_number", f"+{digits}")
    return _equals("external_id", text(row.fields.get("external_id")) or row.key)


def _equals(name: str, value: str) -> str:
    return f"equals({name},{json.dumps(value, ensure_ascii=False)})"


def members(ids: Sequence[str | None]) -> list[dict[str, str]]:
    """The JSON:API profile identifiers of ``ids`` (each once)."""
    unique = dict.fromkeys(i for i in ids if i)
    return [{"type": "profile", "id": i} for i in unique]


def profile_ids(response: httpx.Response | None) -> list[str]:
    """Profile ids in a response: ``data`` as one resource or a list of them."""
    try:
        data = response.json()["data"] if response is not None else None
    except (ValueError, KeyError, TypeError):
        return []
    items = data if isinstance(data, list) else [data]
    return [str(item["id"]) for item in items if isinstance(item, dict) and item.get("id")]
