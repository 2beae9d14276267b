"""The one small interface every destination implements.

A destination turns a batch of :class:`~flowhouse.activation.message.Outgoing` into HTTP requests
(:meth:`Destination.calls`), reads each response into one :class:`~flowhouse.activation.message.Outcome`
per message (:meth:`Destination.outcomes`), and — where the provider's API allows — looks a message
up in the provider's own records after a crash (:meth:`Destination.lookup`).

Destinations build requests and read responses; they never send. The sender owns the HTTP client,
concurrency, rate limits, retries and the outbox, so a destination is a pure function of its input
and is tested by validating what it builds against the provider's OpenAPI document.

How a message left in flight by a crash is settled (``reconcile``):

- ``lookup``: the provider's records are asked; found means sent, absent means send it.
- ``idempotent``: resent with the same idempotency key; the provider drops the duplicate.
- ``none``: the provider can neither be asked nor deduplicates; the message is marked
  ``unconfirmed`` and not resent (at most once).
"""

from __future__ import annotations

import email.utils
import os
from abc import ABC, abstractmethod
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import ClassVar, Literal

import httpx

from flowhouse.activation.message import Found, Outcome, Outgoing
from flowhouse.activation.providers.config import ProviderConfig
from flowhouse.core.errors import ConfigError

Reconcile = Literal["lookup", "idempotent", "none"]


@dataclass(frozen=True)
class Call:
    """One request and the messages it carries."""

    request: httpx.Request
    message_ids: tuple[str, ...]


class MissingSecret(ConfigError):
    """A credential a destination needs is not in the environment (names the variable)."""


class Secrets:
    """API keys read from the environment. ``fake`` fills missing ones with placeholders (only for
    the local fake provider). Values never appear in ``repr``; :meth:`redact` scrubs them from any
    text (a provider's error message) before it is logged or stored."""

    def __init__(self, environ: Mapping[str, str] | None = None, fake: bool = False) -> None:
        self._environ = dict(os.environ if environ is None else environ)
        self._fake = fake
        self._used: set[str] = set()

    def __repr__(self) -> str:
        return f"Secrets(fake={self._fake})"

    def get(self, name: str, what: str) -> str:
        value = self._environ.get(name)
        if not value and self._fake:
            value = _placeholder(name)
        if not value:
            raise MissingSecret(f"{what} is not set", expected=f"the environment variable {name}")
        self._used.add(value)
        return value

    def redact(self, text: str) -> str:
        for value in self._used:
            if value:
                text = text.replace(value, "[redacted]")
        return text


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
        reason = self.secrets.redact(f"{code} {self.reason(response)}".strip())
        status: Literal["retry", "failed"] = (
            "retry" if code in (408, 429) or code >= 500 else "failed"
        )
        wait = retry_after(response) if status == "retry" else None
        return [
            Outcome(m, status, reason=reason, retry_after=wait, status_code=code)
            for m in call.message_ids
        ]

    @abstractmethod
    def accepted(self, call: Call, response: httpx.Response) -> list[Outcome]:
        """Outcomes of a 2xx response (per message, with the provider's id for each)."""

    def reason(self, response: httpx.Response) -> str:
        """The provider's own words for a refusal (its error body, shortened)."""
        return response.text[:500]

    async def lookup(self, client: httpx.AsyncClient, message: Outgoing, since: datetime) -> Found:
        """Whether the provider holds ``message`` (sent on or after ``since``); destinations
        with ``reconcile = "lookup"`` override this."""
        return "unknown"


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
