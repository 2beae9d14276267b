"""Rows posted to a webhook, signed as :mod:`flowhouse.activation.providers.webhook.destination` signs
messages.

Destination block: ``webhook: {url: https://...}`` (``url`` optional: default
``delivery.webhook.base_url``; a ``base_url`` given to the target, the fake provider, wins).
Fields: any names. Each batch (500 rows) is one ``POST`` of compact JSON::

    {"sync": "<sync id>", "operation": "upsert" | "remove",
     "rows": [{"key": "<key>", "fields": {...}}, ...]}

(``sync`` only when the sync's id is known) with the headers ``X-Flowhouse-Timestamp``,
``X-Flowhouse-Signature`` (``v1=`` HMAC-SHA256 of ``{timestamp}.{body}`` under
``delivery.webhook.secret_env``; check it with
:func:`flowhouse.activation.providers.webhook.destination.verify`)
and ``Idempotency-Key``, the SHA-256 of the body, so a batch sent again is recognised. Any 2xx
accepts every row of the batch.
"""

from __future__ import annotations

import hashlib
import time
from collections.abc import Sequence
from typing import Any, ClassVar, Literal

import httpx

from flowhouse.activation.providers.target import (
    HttpTarget,
    answer_rows,
    chunks,
    dumps,
    in_order,
    json_value,
    options_of,
)
from flowhouse.activation.providers.webhook.config import Webhook
from flowhouse.activation.providers.webhook.destination import (
    SIGNATURE_HEADER,
    TIMESTAMP_HEADER,
    WebhookDestination,
    sign,
)
from flowhouse.activation.sync.target import RowResult, SyncRow
from flowhouse.flows.flowfile import Model

Operation = Literal["upsert", "remove"]


class WebhookOptions(Model):
    url: str | None = None
    sync_id: str | None = None


class WebhookTarget(HttpTarget):
    """Rows posted to a webhook (see the module docstring)."""

    name: ClassVar[str] = "webhook"
    batch_size: ClassVar[int] = 500
    provider: Webhook

    def setup(self) -> None:
        super().setup()
        checked = options_of(WebhookOptions, self.options, self.name)
        self.sync_id = checked.sync_id
        default = checked.url or self.provider.base_url or WebhookDestination.default_base_url
        self.url = self.base_url or default
        self._secret = self.secrets.get(self.provider.secret_env, "The webhook signing secret")

    async def upsert(self, client: httpx.AsyncClient, rows: Sequence[SyncRow]) -> list[RowResult]:
        return await self._post(client, "upsert", rows)

    async def remove(self, client: httpx.AsyncClient, rows: Sequence[SyncRow]) -> list[RowResult]:
        return await self._post(client, "remove", rows)

    async def _post(
        self, client: httpx.AsyncClient, operation: Operation, rows: Sequence[SyncRow]
    ) -> list[RowResult]:
        results: dict[str, RowResult] = {}
        for batch in chunks(rows, self.batch_size):
            answer = await self.call(client, self.request(operation, batch))
            results.update(answer_rows(batch, answer))
        return in_order(rows, results)

    def request(self, operation: Operation, rows: Sequence[SyncRow]) -> httpx.Request:
        """The signed post of ``rows``."""
        body = self.body(operation, rows)
        timestamp = int(time.time())
        headers = {
            "content-type": "application/json",
            TIMESTAMP_HEADER: str(timestamp),
            SIGNATURE_HEADER: sign(self._secret, timestamp, body),
            "Idempotency-Key": hashlib.sha256(body).hexdigest(),
        }
        return httpx.Request("POST", self.url, headers=headers, content=body)

    def body(self, operation: Operation, rows: Sequence[SyncRow]) -> bytes:
        """The compact JSON posted (values JSON has no type for as text)."""
        payload: dict[str, Any] = {"sync": self.sync_id} if self.sync_id else {}
        payload["operation"] = operation
        payload["rows"] = [
            {"key": row.key, "fields": {k: json_value(v) for k, v in row.fields.items()}}
            for row in rows
        ]
        return dumps(payload)
