"""The one small interface every destination implements.

A destination turns a batch of :class:`~flowhouse.activation.message.Outgoing` into HTTP requests
(:meth:`Destination.calls`), reads each response into one
:class:`~flowhouse.activation.message.Outcome` per message (:meth:`Destination.outcomes`), and —
where the provider's API allows — looks a message up in the provider's own records after a crash
(:meth:`Destination.lookup`).

Destinations build requests and read responses; they never send. The sender owns the HTTP client,
concurrency, rate limits, retries and the outbox, so a destination is a pure function of its input
and is tested by validating what it builds against the provider's OpenAPI document.

How a message left in flight by a crash is settled (``reconcile``):

- ``lookup``: the provider's records are asked (:meth:`Destination.lookup` lists the provider's
  messages that may be the one in flight); :func:`match` then pairs them with the rows one to one:
  a provider message confirms at most one row, and never one a row already recorded as its own.
  Found means sent (the row records the provider's id), absent means send it; rows the records
  cannot tell apart (three identical texts in flight, two listed) end ``unconfirmed`` with the
  reason, never ``sent``.
- ``idempotent``: resent with the same idempotency key; the provider drops the duplicate.
- ``none``: the provider can neither be asked nor deduplicates; the message is marked
  ``unconfirmed`` and not resent (at most once).
"""

from __future__ import annotations

import base64
import email.utils
import json
import os
import unicodedata
import urllib.parse
from abc import ABC, abstractmethod
from collections import defaultdict
from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, ClassVar, Literal

import httpx

from flowhouse.activation.message import Outcome, Outgoing
from flowhouse.activation.providers.config import ProviderConfig
from flowhouse.core.errors import ConfigError

Reconcile = Literal["lookup", "idempotent", "none"]


@dataclass(frozen=True)
class Call:
    """One request and the messages it carries."""

    request: httpx.Request
    message_ids: tuple[str, ...]


@dataclass(frozen=True)
class Listed:
    """A message the provider's records hold that may be the one looked up.

    ``key`` names it among all the provider's messages (compared with the ids rows recorded: a
    listed message a row already holds as its ``provider_message_id`` is that row's, and confirms
    no other); ``provider_message_id`` is what a row it confirms records; ``created`` is when the
    provider created it (None: not said), the order in which it is paired with identical rows.
    """

    key: str
    provider_message_id: str | None = None
    created: datetime | None = None


@dataclass(frozen=True)
class Listing:
    """What one lookup found: the provider's messages that match, and whether that is all of them
    (``complete`` False: more pages were not read, so an empty listing proves nothing)."""

    items: tuple[Listed, ...] = ()
    complete: bool = True


#: Where a lookup leaves a row in flight: ``sent`` (confirmed, with the provider's id),
#: ``absent`` (send it), ``unknown`` (ask again later) or ``unconfirmed`` (settled, with a reason:
#: the provider's records cannot tell which of identical rows went out).
Settled = Literal["sent", "absent", "unknown", "unconfirmed"]


@dataclass(frozen=True)
class Match:
    """Where :func:`match` settles one row."""

    message_id: str
    found: Settled
    provider_message_id: str | None = None
    reason: str | None = None
    #: The key of the provider's message that confirmed it (``sent``).
    key: str | None = None


def match(
    message_ids: Sequence[str],
    listings: Sequence[Listing | None],
    taken: Collection[str],
    same: Sequence[str] | None = None,
) -> list[Match]:
    """Pair the rows in flight (``message_ids``, in their order of creation; ``listings[i]`` what
    the lookup of the i-th found, None when it could not tell; ``same[i]`` what the provider's
    records know the i-th by, its id when not given) with the provider's messages, one to one,
    leaving out those whose key is in ``taken`` (held by other rows already).

    Rows known by the same thing (the same text to the same number) cannot be told apart: the
    i-th of them in order of creation takes the i-th of the messages listed for them in the
    provider's order of creation; when fewer were listed than rows wait for them, the rows left
    over are ``unconfirmed``, or ``unknown`` if a listing was not complete. While the lookup of
    one of them could not tell, none is settled (``unknown``): the provider's message it would
    have taken might be another's. A provider message listed for rows known by different things
    pairs with none of them: they are all ``unconfirmed``. A row with nothing listed is
    ``absent`` when its listing was complete."""
    keys = list(same) if same is not None else list(message_ids)
    groups: dict[str, list[int]] = defaultdict(list)
    for i, key in enumerate(keys):
        groups[key].append(i)
    listed: dict[str, list[Listed]] = {}
    owners: dict[str, set[str]] = defaultdict(set)
    for key, members in groups.items():
        found = [listings[i] for i in members]
        items = {i.key: i for f in found if f for i in f.items if i.key not in taken}
        listed[key] = sorted(items.values(), key=lambda i: (i.created or datetime.min, i.key))
        for item in items:
            owners[item].add(key)
    result: dict[str, Match] = {}
    for key, members in groups.items():
        ids = [message_ids[i] for i in members]
        found = [listings[i] for i in members]
        pairs = listed[key]
        if any(f is None for f in found):
            result.update({m: Match(m, "unknown") for m in ids})
            continue
        if any(len(owners[i.key]) > 1 for i in pairs):
            reason = (
                "in flight when a run died; the provider's records list a message that matches "
                "several rows, so which went out cannot be told"
            )
            result.update({m: Match(m, "unconfirmed", reason=reason) for m in ids})
            continue
        complete = all(f.complete for f in found if f)
        for n, m in enumerate(ids):
            if n < len(pairs):
                result[m] = Match(m, "sent", pairs[n].provider_message_id, key=pairs[n].key)
            elif not complete:
                result[m] = Match(m, "unknown")
            elif not pairs:
                result[m] = Match(m, "absent")
            else:
                reason = (
                    f"in flight when a run died, with {len(ids) - 1} identical message(s) to the "
                    f"same recipient; the provider holds {len(pairs)} of the {len(ids)}, and "
                    "which went out cannot be told"
                )
                result[m] = Match(m, "unconfirmed", reason=reason)
    return [result[m] for m in message_ids]


@dataclass(frozen=True)
class DeadAddress:
    """An address the provider says can never be reached again (FCM: an unregistered or invalid
    device token): recorded, and not used again."""

    address: str
    customer_id: str
    message_id: str
    reason: str


class MissingSecret(ConfigError):
    """A credential a destination needs is not in the environment (names the variable)."""


class BadSecret(MissingSecret):
    """A credential holds what no key does (a control character: a CRLF ``.env`` file); the
    error names the variable, never the value."""


#: How long a stored or printed provider reason may be (cut after redaction, never before).
REASON_LIMIT = 500
REDACTED = "[redacted]"


class Secrets:
    """API keys read from the environment. ``fake`` fills missing ones with placeholders (only for
    the local fake provider). Values never appear in ``repr``; a value holding a control character
    is refused when read (:class:`BadSecret`). :meth:`redact` scrubs every value read, in each form
    an error text may carry it (:func:`forms`), from any text before it is logged or stored, and
    only then cuts it to its limit."""

    def __init__(self, environ: Mapping[str, str] | None = None, fake: bool = False) -> None:
        self._environ = dict(os.environ if environ is None else environ)
        self._fake = fake
        self._used: set[str] = set()
        self._forms: list[str] = []

    def __repr__(self) -> str:
        return f"Secrets(fake={self._fake})"

    @property
    def fake(self) -> bool:
        """Whether missing credentials are placeholders (the local fake provider)."""
        return self._fake

    def has(self, name: str) -> bool:
        """Whether the environment sets ``name`` (a placeholder does not count)."""
        return bool(self._environ.get(name))

    def remember(self, value: str) -> None:
        """Redact ``value`` too from now on (a credential obtained at run time: an access
        token a key was exchanged for)."""
        if value:
            self._remember(value)

    def get(self, name: str, what: str) -> str:
        value = self._environ.get(name)
        if not value and self._fake:
            value = _placeholder(name)
        if not value:
            raise MissingSecret(f"{what} is not set", expected=f"the environment variable {name}")
        self._remember(value)
        check_secret(name, what, value)
        return value

    def _remember(self, value: str) -> None:
        if value not in self._used:
            self._used.add(value)
            found = {f for v in self._used for f in forms(v)}
            self._forms = sorted(found, key=len, reverse=True)

    def redact(self, text: str, limit: int | None = REASON_LIMIT) -> str:
        """``text`` without any secret read so far, then cut to ``limit`` characters."""
        for form in self._forms:
            text = text.replace(form, REDACTED)
        return text if limit is None else text[:limit]


def check_secret(name: str, what: str, value: str) -> None:
    """Refuse a value holding a control character (naming ``name``, never showing the value)."""
    bad = sorted({c for c in value if unicodedata.category(c) == "Cc"})
    if not bad:
        return
    hint = " (a carriage return: was it read from a .env file with CRLF line endings?)"
    shown = ", ".join(repr(c) for c in bad)
    raise BadSecret(
        f"{what} in the environment variable {name} holds a control character ({shown})"
        + (hint if "\r" in bad else ""),
        expected="the key exactly as the provider issued it, on one line",
    )


#: Derived forms shorter than this are not redacted (they would blank unrelated words); the value
#: itself always is.
MIN_FORM = 6


def forms(value: str) -> set[str]:
    """Every way an error text may carry ``value``: as is and stripped, escaped as Python
    (``repr``) and JSON write it, URL-encoded, and base64-encoded inside a longer text (the
    ``user:key`` of HTTP Basic authentication) at each of base64's three alignments."""
    found = {value, value.strip()}
    found |= {repr(value)[1:-1], value.encode("unicode_escape").decode("ascii")}
    found |= {json.dumps(value)[1:-1], json.dumps(value, ensure_ascii=False)[1:-1]}
    found |= {urllib.parse.quote(value, safe=""), urllib.parse.quote_plus(value)}
    found |= {urllib.parse.quote(value)}
    raw = value.encode()
    for skip in range(3):
        aligned = raw[skip : skip + (len(raw) - skip) // 3 * 3]
        found |= {base64.b64encode(aligned).decode(), base64.urlsafe_b64encode(aligned).decode()}
    return {f for f in found if len(f) >= MIN_FORM} | ({value} if value else set())


def _placeholder(name: str) -> str:
    """Fake-provider credentials that satisfy the documents' formats (Twilio's AC + 32 hex)."""
    if name.endswith("ACCOUNT_SID"):
        return "AC" + "0" * 32
    return f"fake-{name.lower()}"


class Destination(ABC):
    """One provider. ``max_batch`` messages at most go to :meth:`calls` at once."""

    name: ClassVar[str]
    default_base_url: ClassVar[str]
    max_batch: ClassVar[int] = 1
    reconcile: Reconcile = "none"
    #: How long after a request the provider's records may still miss it (lookups sooner than
    #: this cannot prove a message absent).
    lookup_delay: timedelta = timedelta(0)

    def __init__(
        self, config: ProviderConfig, secrets: Secrets, base_url: str | None = None
    ) -> None:
        self.config = config
        self.secrets = secrets
        self.base_url = (base_url or config.base_url or self.default_base_url).rstrip("/")

    @abstractmethod
    def calls(self, batch: Sequence[Outgoing]) -> list[Call]:
        """The requests that deliver ``batch`` (each message in exactly one)."""

    def outcomes(self, call: Call, response: httpx.Response) -> list[Outcome]:
        """One outcome per message of ``call``: 2xx is :meth:`accepted`; 429, 5xx and 408 retry
        (honouring ``Retry-After``); any other status fails with the provider's reason."""
        code = response.status_code
        if 200 <= code < 300:
            return self.accepted(call, response)
        reason = self.secrets.redact(f"{code} {self.reason(response)}".strip(), REASON_LIMIT)
        status: Literal["retry", "failed"] = (
            "retry" if code in (408, 429) or code >= 500 else "failed"
        )
        wait = retry_after(response) if status == "retry" else None
        return [
            Outcome(m, status, reason=reason, retry_after=wait, status_code=code)
            for m in call.message_ids
        ]

    async def send(self, client: httpx.AsyncClient, call: Call) -> list[Outcome]:
        """Send ``call`` and read one outcome per message (a destination that needs more than
        one request per message, or credentials obtained at run time, overrides this)."""
        return self.outcomes(call, await self.exchange(client, call))

    async def exchange(self, client: httpx.AsyncClient, call: Call) -> httpx.Response:
        """Send ``call`` and answer the response its outcomes are read from: its one request by
        default. A destination whose delivery takes several dependent requests (look up, then
        create) overrides this and answers the first refusal, or the last response."""
        return await client.send(call.request)

    def dead_addresses(self) -> list[DeadAddress]:
        """The addresses found dead since the last call (each returned once)."""
        return []

    @abstractmethod
    def accepted(self, call: Call, response: httpx.Response) -> list[Outcome]:
        """Outcomes of a 2xx response (per message, with the provider's id for each)."""

    def reason(self, response: httpx.Response) -> str:
        """The provider's own words for a refusal (its error body, whole: :meth:`outcomes`
        redacts it, then cuts it)."""
        return response.text

    def identity(self, message: Outgoing) -> str:
        """What the provider's records know ``message`` by: messages with the same identity
        cannot be told apart by a lookup (see :func:`match`); by default its own id."""
        return message.message_id

    async def lookup(
        self, client: httpx.AsyncClient, message: Outgoing, since: datetime
    ) -> Listing | None:
        """The provider's messages that may be ``message`` (sent on or after ``since``), or None
        when the provider cannot tell; destinations with ``reconcile = "lookup"`` override this
        (:func:`match` pairs the listings with the rows)."""
        return None


class PerMessage(Destination):
    """A destination that sends each message in a request of its own (:meth:`message_request`)."""

    def calls(self, batch: Sequence[Outgoing]) -> list[Call]:
        return [Call(self.message_request(m), (m.message_id,)) for m in batch]

    @abstractmethod
    def message_request(self, message: Outgoing) -> httpx.Request:
        """The one request that delivers ``message``."""


def basic_auth(user: str, password: str) -> str:
    """The ``authorization`` header of HTTP Basic authentication."""
    return "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()


def json_object(response: httpx.Response) -> dict[str, Any]:
    """The response's JSON object; ``{}`` for any other body (not JSON, or not an object)."""
    try:
        body = response.json()
    except ValueError:
        return {}
    return body if isinstance(body, dict) else {}


def retry_after(response: httpx.Response) -> float | None:
    """Seconds to wait per ``Retry-After`` (seconds or an HTTP date), or None."""
    value: str | None = response.headers.get("retry-after")
    if not value:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return max(0.0, (when - datetime.now(UTC)).total_seconds())
