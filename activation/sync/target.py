"""What a sync destination is given and what it answers, row by row.

A :class:`SyncTarget` adds or updates rows (:meth:`SyncTarget.upsert`) and removes them
(:meth:`SyncTarget.remove`) in one destination object (a Klaviyo list, SendGrid contacts and
lists, a paid-ads audience, a webhook), and answers each row with a :class:`RowResult`:

- ``accepted``: the destination holds the row as sent; ``destination_id`` is what it calls it
  (a Klaviyo profile id, a SendGrid contact id), kept in the snapshot for later removals;
- ``rejected``: the destination refused this row for good, with its reason (an invalid e-mail);
- ``retry``: a transient failure (429, 5xx, a time-out) that outlasted the retries of this run.

Rejected and retried rows are not written to the snapshot, so the next run sends them again.
Targets own their HTTP calls (some need two steps: Klaviyo imports a profile, then adds its id to
the list) through the client they are given; every request they build must validate against the
provider's OpenAPI document (:mod:`flowhouse.activation.openapi`).
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, ClassVar, Literal

import httpx

from flowhouse.activation.providers.base import Secrets

RowStatus = Literal["accepted", "rejected", "retry"]


@dataclass(frozen=True)
class SyncRow:
    """One row of the source as the destination will see it.

    ``key`` is the source's key (a customer id); ``fields`` the mapped destination fields (the
    sync file's ``fields``: destination name -> value, e.g. ``email``, ``first_name``,
    ``properties.tier``); ``destination_id`` what the destination called the row when it last
    accepted it (None for a row never sent)."""

    key: str
    fields: Mapping[str, Any] = field(default_factory=dict)
    destination_id: str | None = None


@dataclass(frozen=True)
class RowResult:
    key: str
    status: RowStatus
    destination_id: str | None = None
    reason: str | None = None


class SyncTarget(ABC):
    """One destination object a sync keeps equal to its source.

    ``options`` is the destination block of the sync file (e.g. ``{"list_id": "Xy12Ab"}``);
    ``provider`` the provider's settings from ``delivery`` in the settings file (base URL,
    credentials' environment variables, concurrency, time-out); ``base_url`` overrides it (the
    fake provider)."""

    name: ClassVar[str]
    #: Rows per call of :meth:`upsert` / :meth:`remove` (the API's batch limit).
    batch_size: ClassVar[int] = 1000

    def __init__(
        self,
        options: Mapping[str, Any],
        provider: Any,
        secrets: Secrets,
        base_url: str | None = None,
    ) -> None:
        self.options = dict(options)
        self.provider = provider
        self.secrets = secrets
        self.base_url = base_url
        self.setup()

    def setup(self) -> None:  # noqa: B027 (optional: a target with no options needs none)
        """Check :attr:`options` and take what the target needs from them and the provider
        (called at the end of construction; subclasses extend it)."""

    @abstractmethod
    async def upsert(self, client: httpx.AsyncClient, rows: Sequence[SyncRow]) -> list[RowResult]:
        """Add ``rows`` to the destination object, or update them there; one result per row."""

    @abstractmethod
    async def remove(self, client: httpx.AsyncClient, rows: Sequence[SyncRow]) -> list[RowResult]:
        """Take ``rows`` out of the destination object (``mirror`` mode); one result per row.
        A row the destination no longer holds counts as accepted."""
