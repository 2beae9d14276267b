"""What every sync target shares: one request sent with retries, and rows answered in bulk.

:func:`send` sends one request and retries what is transient — 408, 429, 5xx, time-outs and
connection errors — up to :attr:`Retry.attempts` times in all, waiting an exponential step with
full jitter (``Retry.base`` seconds, doubled each attempt), or what ``Retry-After`` asks when the
provider says. A provider that asks for more than :attr:`Retry.max_wait` seconds is not waited
for: the rows are answered ``retry`` and go again next run. Any other 4xx is a refusal, answered
``rejected`` with the provider's reason. Reasons are redacted of every secret.
"""

from __future__ import annotations

import asyncio
import json
import random
from collections.abc import Awaitable, Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, time
from decimal import Decimal
from typing import Any, TypeVar

import httpx
from pydantic import BaseModel, ValidationError

from flowhouse.activation.providers.base import Secrets, retry_after
from flowhouse.activation.sync.target import RowResult, RowStatus, SyncRow, SyncTarget
from flowhouse.core.errors import ConfigError

Reason = Callable[[httpx.Response], str]
T = TypeVar("T")
M = TypeVar("M", bound=BaseModel)


class Refused(Exception):
    """A row the destination is bound to refuse, found before sending; the message is why."""


@dataclass
class Retry:
    """How hard one request is tried (``sleep`` and ``rng`` are replaceable in tests)."""

    attempts: int = 4
    base: float = 0.2
    max_wait: float = 30.0
    sleep: Callable[[float], Awaitable[None]] = asyncio.sleep
    rng: random.Random = field(default_factory=random.Random)

    def wait(self, attempt: int, asked: float | None) -> float:
        """Seconds before attempt ``attempt + 1``: what the provider asked, else full jitter."""
        if asked is not None:
            return asked
        return self.rng.uniform(0, self.base * 2 ** (attempt - 1))


@dataclass(frozen=True)
class Answer:
    """How one request ended: ``accepted`` (2xx, with its response), ``rejected`` or ``retry``
    (with the reason, redacted)."""

    status: RowStatus
    response: httpx.Response | None = None
    reason: str | None = None

    @property
    def ok(self) -> bool:
        return self.status == "accepted"


class HttpTarget(SyncTarget):
    """A target that speaks HTTP: :meth:`call` sends one request with :attr:`retry`."""

    def setup(self) -> None:
        super().setup()
        self.retry = Retry()

    def reason(self, response: httpx.Response) -> str:
        """The provider's own words for a refusal."""
        return text_reason(response)

    async def call(self, client: httpx.AsyncClient, request: httpx.Request) -> Answer:
        return await send(client, request, self.secrets, self.retry, self.reason)

    def root(self, default: str) -> str:
        """Where the API is: ``base_url`` given to the target, else the provider's, else
        ``default``."""
        return str(self.base_url or self.provider.base_url or default).rstrip("/")


def options_of(model: type[M], options: Mapping[str, Any], target: str) -> M:
    """The destination block of a sync file, checked against ``model``."""
    try:
        return model.model_validate(dict(options))
    except ValidationError as err:
        first = err.errors(include_url=False)[0]
        where = ".".join(str(part) for part in first["loc"])
        raise ConfigError(
            f"{first['msg']} in the {target} destination" + (f" ({where})" if where else ""),
            expected=f"the options of a {target} destination",
        ) from err


def text_reason(response: httpx.Response) -> str:
    return response.text[:500]


async def send(
    client: httpx.AsyncClient,
    request: httpx.Request,
    secrets: Secrets,
    retry: Retry,
    reason: Reason = text_reason,
) -> Answer:
    """Send ``request``, retrying what is transient (see the module docstring)."""
    answer = Answer("retry", reason="not sent")
    for attempt in range(1, retry.attempts + 1):
        answer, asked = await _attempt(client, request, secrets, reason)
        if answer.status != "retry" or attempt == retry.attempts:
            return answer
        if asked is not None and asked > retry.max_wait:
            return Answer("retry", reason=f"{answer.reason} (Retry-After {asked:g} s)")
        await retry.sleep(retry.wait(attempt, asked))
    return answer


async def _attempt(
    client: httpx.AsyncClient, request: httpx.Request, secrets: Secrets, reason: Reason
) -> tuple[Answer, float | None]:
    try:
        response = await client.send(request)
    except httpx.TransportError as err:
        return Answer("retry", reason=secrets.redact(f"{type(err).__name__}: {err}")), None
    code = response.status_code
    if 200 <= code < 300:
        return Answer("accepted", response), None
    text = secrets.redact(f"{code} {reason(response)}".strip())
    if code in (408, 429) or code >= 500:
        return Answer("retry", response, text), retry_after(response)
    return Answer("rejected", response, text), None


def answer_rows(
    rows: Iterable[SyncRow], answer: Answer, ids: Mapping[str, str | None] | None = None
) -> dict[str, RowResult]:
    """Every row of ``rows`` answered as ``answer`` says (accepted rows with their id)."""
    return {
        row.key: RowResult(
            row.key,
            answer.status,
            (ids or {}).get(row.key) if answer.ok else None,
            None if answer.ok else answer.reason,
        )
        for row in rows
    }


def in_order(rows: Sequence[SyncRow], results: Mapping[str, RowResult]) -> list[RowResult]:
    """One result per row, in the rows' order."""
    return [results[row.key] for row in rows]


def rejected(row: SyncRow, reason: str) -> RowResult:
    return RowResult(row.key, "rejected", reason=reason)


def failed(row: SyncRow, answer: Answer) -> RowResult:
    """``row`` answered as a request that did not succeed."""
    return RowResult(row.key, answer.status, reason=answer.reason)


def chunks(items: Sequence[T], size: int) -> list[Sequence[T]]:
    return [items[start : start + size] for start in range(0, len(items), size)]


def json_value(value: Any) -> Any:
    """``value`` as JSON carries it: decimals as numbers, dates and times as ISO 8601 text."""
    if isinstance(value, Decimal):
        return int(value) if value == value.to_integral_value() else float(value)
    if isinstance(value, datetime | date | time):
        return value.isoformat()
    return value


def dumps(body: Any) -> bytes:
    """Compact JSON (anything JSON has no type for as text)."""
    return json.dumps(body, separators=(",", ":"), ensure_ascii=False, default=str).encode()


def text(value: Any) -> str | None:
    """A field's value as text, or None when it has none (None or blank)."""
    if value is None:
        return None
    found = str(json_value(value)).strip()
    return found or None
