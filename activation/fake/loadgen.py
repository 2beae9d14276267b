"""A plain load generator measuring the fake provider's raw capacity (for the benchmark).

:func:`measure` sends valid SendGrid mail-send requests (``batch`` personalizations each) or Twilio
message requests from ``concurrency`` workers over one ``httpx.AsyncClient``. Each request body is
built once as a template; only a per-request serial is substituted, so every message id is unique
and the generator spends almost nothing per request.
"""

from __future__ import annotations

import asyncio
import base64
import itertools
import json
import statistics
import time
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any, Literal
from urllib.parse import urlencode

import httpx

Kind = Literal["sendgrid", "twilio"]
SERIAL = b"@SERIAL@"
ACCOUNT_SID = "AC" + "0" * 32


@dataclass(frozen=True)
class Template:
    """One request, with :data:`SERIAL` where each request's serial goes."""

    path: str
    body: bytes
    headers: dict[str, str]
    messages: int

    def body_for(self, serial: int) -> bytes:
        return self.body.replace(SERIAL, b"%09d" % serial)


def sendgrid_template(batch: int) -> Template:
    """A mail-send request with ``batch`` personalizations (1 to 1,000)."""
    personalizations = [
        {
            "to": [{"email": f"customer{i}@example.com"}],
            "custom_args": {
                "message_id": f"load-@SERIAL@-{i}",
                "customer_id": f"c{i}",
                "flow_id": "load",
                "step_id": "send",
            },
            "substitutions": {"-first_name-": "Alex"},
        }
        for i in range(batch)
    ]
    mail = {
        "from": {"email": "hello@shop.example"},
        "subject": "Hello -first_name-",
        "content": [{"type": "text/plain", "value": "Hi -first_name-, your cart misses you."}],
        "personalizations": personalizations,
    }
    headers = {"Authorization": "Bearer fake-sendgrid_api_key", "Content-Type": "application/json"}
    return Template("/v3/mail/send", json.dumps(mail).encode(), headers, batch)


def twilio_template() -> Template:
    """One SMS through a Messaging Service, with a status callback naming the message."""
    form = {
        "To": "+1555@SERIAL@",
        "Body": "Your cart misses you: https://shop.example/cart",
        "MessagingServiceSid": "MG" + "0" * 32,
        "StatusCallback": "https://hooks.example/twilio?message_id=load-@SERIAL@&customer_id=c",
    }
    body = urlencode(form, safe="@").encode()
    token = base64.b64encode(f"{ACCOUNT_SID}:fake-twilio_auth_token".encode()).decode()
    form_type = "application/x-www-form-urlencoded"
    headers = {"Authorization": f"Basic {token}", "Content-Type": form_type}
    return Template(f"/2010-04-01/Accounts/{ACCOUNT_SID}/Messages.json", body, headers, 1)


def template(kind: Kind, batch: int) -> Template:
    return sendgrid_template(batch) if kind == "sendgrid" else twilio_template()


async def _worker(
    client: httpx.AsyncClient,
    request: Template,
    serials: Iterator[int],
    total: int,
    latencies: list[float],
    statuses: Counter[str],
) -> None:
    for serial in serials:
        if serial >= total:
            return
        started = time.perf_counter()
        try:
            response = await client.post(
                request.path, content=request.body_for(serial), headers=request.headers
            )
            statuses[str(response.status_code)] += 1
        except httpx.HTTPError as err:
            statuses[type(err).__name__] += 1
        latencies.append(time.perf_counter() - started)


def _percentile(values: list[float], share: float) -> float:
    if len(values) < 2:
        return values[0] if values else 0.0
    return statistics.quantiles(values, n=100, method="inclusive")[round(share * 100) - 1]


async def measure(
    url: str, kind: Kind, requests: int, concurrency: int, batch: int = 1000
) -> dict[str, Any]:
    """Send ``requests`` requests with ``concurrency`` in flight; throughput and latency.

    ``batch`` is the personalizations per SendGrid request (Twilio carries one message each).
    Returns requests and messages a second (counting accepted requests only), p50/p95 latency
    in milliseconds, and the count of each status (or error name).
    """
    request = template(kind, batch)
    latencies: list[float] = []
    statuses: Counter[str] = Counter()
    serials = itertools.count()
    limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)
    async with httpx.AsyncClient(base_url=url, limits=limits, timeout=120) as client:
        started = time.perf_counter()
        workers = [
            _worker(client, request, serials, requests, latencies, statuses)
            for _ in range(concurrency)
        ]
        await asyncio.gather(*workers)
        seconds = time.perf_counter() - started
    return _result(request, kind, requests, concurrency, seconds, latencies, statuses)


def _result(
    request: Template,
    kind: Kind,
    requests: int,
    concurrency: int,
    seconds: float,
    latencies: list[float],
    statuses: Counter[str],
) -> dict[str, Any]:
    accepted = sum(n for code, n in statuses.items() if code.startswith("2"))
    rate = accepted / seconds if seconds else 0.0
    return {
        "kind": kind,
        "requests": requests,
        "concurrency": concurrency,
        "batch": request.messages,
        "seconds": seconds,
        "requests_per_second": rate,
        "messages_per_second": rate * request.messages,
        "p50_ms": _percentile(latencies, 0.50) * 1000,
        "p95_ms": _percentile(latencies, 0.95) * 1000,
        "statuses": dict(statuses),
    }
