"""SendGrid Marketing Campaigns: contacts kept in one or more lists.

Destination block: ``sendgrid: {list_ids: ["<list uuid>", ...]}``. Fields: ``email`` (required),
``first_name``, ``last_name``, ``phone_number``, ``address_line_1``, ``address_line_2``,
``city``, ``state_province_region``, ``postal_code``, ``country`` and ``custom_fields.<id>``
(SendGrid's custom field ids; the fields must exist in SendGrid). A field without a value is left
out, so SendGrid keeps what it had.

- **upsert**: ``PUT /v3/marketing/contacts`` with the ``list_ids`` and the contacts (the API
  takes up to 30,000 contacts or 6 MB; batches are 1,000). SendGrid answers 202 with a
  ``job_id`` and processes the contacts later; it keys contacts by their lower-cased e-mail,
  which is the row's ``destination_id``. SendGrid refuses a whole request for one bad contact,
  so rows it is bound to refuse (no valid e-mail, a field longer than the document allows) are
  rejected before sending; when it still refuses contacts it names (``contacts[3].email``),
  those rows are rejected and the others sent again.
- **remove** (from the lists; the contacts stay): the contacts' ids are found with
  ``POST /v3/marketing/contacts/search/emails`` (100 addresses a request, the API's limit; an
  address SendGrid does not know is in no list, so its row is accepted), then
  ``DELETE /v3/marketing/lists/{id}/contacts?contact_ids=...`` for every list.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from typing import Annotated, Any, ClassVar
from urllib.parse import quote

import httpx
from pydantic import Field

from flowhouse.activation.providers.sendgrid.config import SendGrid
from flowhouse.activation.providers.sendgrid.destination import EMAIL, sendgrid_reason
from flowhouse.activation.providers.target import (
    Answer,
    HttpTarget,
    Refused,
    answer_rows,
    chunks,
    dumps,
    in_order,
    json_value,
    options_of,
    rejected,
    text,
)
from flowhouse.activation.sync.target import RowResult, SyncRow
from flowhouse.flows.flowfile import Model

DEFAULT_BASE_URL = "https://api.sendgrid.com"
CONTACTS = "/v3/marketing/contacts"
SEARCH = "/v3/marketing/contacts/search/emails"
LIST_CONTACTS = "/v3/marketing/lists/{list_id}/contacts"
#: Addresses one search takes at most.
SEARCH_LIMIT = 100
#: Reserved contact fields a sync may set, with their maximum length per the document.
FIELDS: dict[str, int | None] = {
    "first_name": 50,
    "last_name": 50,
    "phone_number": None,
    "address_line_1": 100,
    "address_line_2": 100,
    "city": 60,
    "state_province_region": 50,
    "postal_code": None,
    "country": 50,
}
EMAIL_MAX = 254
CUSTOM = "custom_fields."
#: Times SendGrid is asked again after refusing named contacts of a request.
RESENDS = 2
_CONTACT_INDEX = re.compile(r"contacts\s*(?:\[(\d+)\]|\.(\d+))")


class SendGridOptions(Model):
    list_ids: Annotated[list[Annotated[str, Field(min_length=1)]], Field(min_length=1)]
    sync_id: str | None = None


class SendGridTarget(HttpTarget):
    """Contacts in SendGrid lists (see the module docstring)."""

    name: ClassVar[str] = "sendgrid"
    batch_size: ClassVar[int] = 1000
    provider: SendGrid

    def setup(self) -> None:
        super().setup()
        self.list_ids = options_of(SendGridOptions, self.options, self.name).list_ids
        self.url = self.root(DEFAULT_BASE_URL)
        self._key = self.secrets.get(self.provider.api_key_env, "The SendGrid API key")

    def reason(self, response: httpx.Response) -> str:
        return sendgrid_reason(response)

    async def upsert(self, client: httpx.AsyncClient, rows: Sequence[SyncRow]) -> list[RowResult]:
        results: dict[str, RowResult] = {}
        pending: list[tuple[SyncRow, dict[str, Any]]] = []
        for row in rows:
            try:
                pending.append((row, contact(row)))
            except Refused as err:
                results[row.key] = rejected(row, str(err))
        for batch in chunks(pending, self.batch_size):
            results.update(await self._put(client, batch))
        await self._unlist_old_addresses(client, rows, results)
        return in_order(rows, results)

    async def _unlist_old_addresses(
        self, client: httpx.AsyncClient, rows: Sequence[SyncRow], results: dict[str, RowResult]
    ) -> None:
        """SendGrid keys contacts by e-mail: a changed address is a new contact, so the old one
        leaves the lists (else the list would hold the customer twice). Until it has, the row
        is not settled and the next run sends it again."""
        moved = [
            row
            for row in rows
            if results[row.key].status == "accepted"
            and row.destination_id
            and valid_email(row.destination_id)
            and row.destination_id.lower() != results[row.key].destination_id
        ]
        if not moved:
            return
        old = [SyncRow(row.key, {}, row.destination_id) for row in moved]
        for row, outcome in zip(moved, await self.remove(client, old), strict=True):
            if outcome.status != "accepted":
                reason = f"the previous address could not leave the lists: {outcome.reason}"
                results[row.key] = RowResult(row.key, "retry", reason=reason)

    async def _put(
        self, client: httpx.AsyncClient, pending: Sequence[tuple[SyncRow, dict[str, Any]]]
    ) -> dict[str, RowResult]:
        """Upsert ``pending``; contacts SendGrid names in a refusal are rejected and the others
        sent again (:data:`RESENDS` times at most)."""
        results: dict[str, RowResult] = {}
        for resend in range(RESENDS + 1):
            answer = await self.call(client, self._put_request([c for _, c in pending]))
            blamed = blamed_contacts(answer, len(pending)) if resend < RESENDS else {}
            if not blamed:
                ids = {row.key: c["email"].lower() for row, c in pending}
                return {**results, **answer_rows([row for row, _ in pending], answer, ids)}
            for index, reason in blamed.items():
                row = pending[index][0]
                results[row.key] = rejected(row, self.secrets.redact(f"400 {reason}"))
            pending = [p for i, p in enumerate(pending) if i not in blamed]
            if not pending:
                break
        return results

    def _put_request(self, contacts: Sequence[Mapping[str, Any]]) -> httpx.Request:
        body = {"list_ids": self.list_ids, "contacts": list(contacts)}
        return self.request("PUT", CONTACTS, body)

    async def remove(self, client: httpx.AsyncClient, rows: Sequence[SyncRow]) -> list[RowResult]:
        results: dict[str, RowResult] = {}
        emails: dict[str, str] = {}
        for row in rows:
            found = removal_email(row)
            if found is None:
                results[row.key] = RowResult(row.key, "accepted", reason="no valid e-mail")
            else:
                emails[row.key] = found
        held = [row for row in rows if row.key in emails]
        for batch in chunks(held, SEARCH_LIMIT):
            results.update(await self._remove(client, batch, emails))
        return in_order(rows, results)

    async def _remove(
        self, client: httpx.AsyncClient, batch: Sequence[SyncRow], emails: Mapping[str, str]
    ) -> dict[str, RowResult]:
        """Take the contacts of ``batch`` (at most :data:`SEARCH_LIMIT`) out of every list."""
        found = await self._search(client, sorted({emails[row.key] for row in batch}))
        if isinstance(found, Answer):
            return answer_rows(batch, found)
        listed = [row for row in batch if emails[row.key] in found]
        contact_ids = sorted({found[emails[row.key]] for row in listed})
        answer = await self._unlist(client, contact_ids) if contact_ids else Answer("accepted")
        return {**answer_rows(batch, Answer("accepted")), **answer_rows(listed, answer)}

    async def _search(
        self, client: httpx.AsyncClient, emails: Sequence[str]
    ) -> dict[str, str] | Answer:
        """Contact ids by lower-cased e-mail (404: none found), or the failed answer."""
        answer = await self.call(client, self.request("POST", SEARCH, {"emails": list(emails)}))
        if answer.response is not None and answer.response.status_code == 404:
            return {}
        return contact_ids(answer.response) if answer.ok else answer

    async def _unlist(self, client: httpx.AsyncClient, ids: Sequence[str]) -> Answer:
        """Remove contacts ``ids`` from every list; the first failure, if any."""
        for list_id in self.list_ids:
            path = LIST_CONTACTS.format(list_id=quote(list_id, safe=""))
            request = self.request("DELETE", path, params={"contact_ids": ",".join(ids)})
            answer = await self.call(client, request)
            if not answer.ok:
                return answer
        return Answer("accepted")

    def request(
        self,
        method: str,
        path: str,
        body: Mapping[str, Any] | None = None,
        params: Mapping[str, str] | None = None,
    ) -> httpx.Request:
        """One request to SendGrid's v3 API."""
        headers = {"authorization": f"Bearer {self._key}"}
        if body is not None:
            headers["content-type"] = "application/json"
        content = dumps(body) if body is not None else None
        return httpx.Request(
            method, self.url + path, headers=headers, params=params, content=content
        )


def contact(row: SyncRow) -> dict[str, Any]:
    """The SendGrid contact of ``row``; raises :class:`Refused` for what SendGrid would refuse."""
    email = valid_email(row.fields.get("email"))
    if email is None:
        raise Refused(f"no valid e-mail address (got {text(row.fields.get('email'))!r})")
    found: dict[str, Any] = {"email": email}
    custom: dict[str, Any] = {}
    for name, value in row.fields.items():
        if name.startswith(CUSTOM) and len(name) > len(CUSTOM):
            if value is not None:
                custom[name[len(CUSTOM) :]] = json_value(value)
        elif name in FIELDS:
            _put_field(found, name, text(value))
        elif name != "email":
            raise Refused(f"SendGrid contacts have no field {name!r}")
    return {**found, "custom_fields": custom} if custom else found


def _put_field(contact: dict[str, Any], name: str, value: str | None) -> None:
    limit = FIELDS[name]
    if value is None:
        return
    if limit is not None and len(value) > limit:
        raise Refused(f"{name} is longer than SendGrid's {limit} characters")
    contact[name] = value


def valid_email(value: Any) -> str | None:
    """The address trimmed, when SendGrid can take it."""
    found = text(value)
    if found is None or len(found) > EMAIL_MAX or not EMAIL.match(found):
        return None
    return found


def removal_email(row: SyncRow) -> str | None:
    """The lower-cased address the row was upserted with: its ``destination_id``, else its
    ``email`` field."""
    found = valid_email(row.destination_id) or valid_email(row.fields.get("email"))
    return found.lower() if found else None


def blamed_contacts(answer: Answer, count: int) -> dict[int, str]:
    """Contacts (by index) a refusal names, with SendGrid's message for each."""
    if answer.status != "rejected" or answer.response is None:
        return {}
    try:
        errors = answer.response.json().get("errors") or []
    except (ValueError, AttributeError):
        return {}
    blamed: dict[int, str] = {}
    for error in errors:
        index = _index(error)
        if index is not None and index < count:
            message = f"{error.get('field')}: {error.get('message') or 'refused'}"
            blamed[index] = "; ".join(filter(None, [blamed.get(index), message]))[:500]
    return blamed


def _index(error: Any) -> int | None:
    if not isinstance(error, dict):
        return None
    match = _CONTACT_INDEX.search(str(error.get("field") or ""))
    return int(match.group(1) or match.group(2)) if match else None


def contact_ids(response: httpx.Response | None) -> dict[str, str]:
    """``{lower-cased e-mail: contact id}`` from a search by e-mails."""
    try:
        result = response.json().get("result") if response is not None else None
    except (ValueError, AttributeError):
        return {}
    if not isinstance(result, dict):
        return {}
    found: dict[str, str] = {}
    for email, entry in result.items():
        person = entry.get("contact") if isinstance(entry, dict) else None
        if isinstance(person, dict) and person.get("id"):
            found[str(email).lower()] = str(person["id"])
    return found
