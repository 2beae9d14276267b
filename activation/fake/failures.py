"""Failure injection: shares of requests answered 429, 500, held until a time-out, or slowed.

The fate of each provider request is drawn when it arrives, before it is validated or recorded,
so an injected failure means nothing was accepted. Draws come from one seeded generator: with a
fixed ``seed`` the same number of requests meets the same number of each failure, whatever the
order in which concurrent requests arrive.
"""

from __future__ import annotations

import random
import threading
from dataclasses import dataclass
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

Share = Annotated[float, Field(ge=0.0, le=1.0)]
Fault = Literal["rate_limited", "server_error", "timeout"]


class Failures(BaseModel):
    """Shares (0 to 1) of provider requests that fail, and how.

    ``rate_limited`` answers 429 with ``Retry-After: retry_after`` (seconds); ``server_error``
    answers 500; ``timeout`` holds the request for ``timeout_seconds`` (long enough for the
    client's time-out to fire) and then answers 504. Of the requests that do not fail, ``slow``
    are answered ``latency_ms`` later. ``seed`` makes the draws reproducible (None: random).
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    rate_limited: Share = 0.0
    retry_after: Annotated[int, Field(ge=0)] = 1
    server_error: Share = 0.0
    timeout: Share = 0.0
    timeout_seconds: Annotated[float, Field(gt=0)] = 30.0
    slow: Share = 0.0
    latency_ms: Annotated[int, Field(ge=0)] = 0
    seed: int | None = 0

    @model_validator(mode="after")
    def _total(self) -> Failures:
        if self.rate_limited + self.server_error + self.timeout > 1.0:
            raise ValueError("rate_limited + server_error + timeout must not exceed 1")
        return self


@dataclass(frozen=True)
class Decision:
    """What happens to one request: a ``fault``, or an added ``delay`` in seconds (or neither)."""

    fault: Fault | None = None
    delay: float = 0.0


class Injector:
    """Draws a :class:`Decision` per request; thread-safe, reconfigurable at run time."""

    def __init__(self, failures: Failures | None = None) -> None:
        self._lock = threading.Lock()
        self.configure(failures or Failures())

    @property
    def failures(self) -> Failures:
        return self._failures

    def configure(self, failures: Failures) -> None:
        """Use ``failures`` from now on (the generator restarts from its seed)."""
        with self._lock:
            self._failures = failures
            self._random = random.Random(failures.seed)

    def decide(self) -> Decision:
        with self._lock:
            f = self._failures
            first, second = self._random.random(), self._random.random()
        return _decision(f, first, second)


def _decision(f: Failures, first: float, second: float) -> Decision:
    """Two uniform draws per request, always, so the sequence does not depend on the outcomes."""
    bounds: tuple[tuple[Fault, float], ...] = (
        ("rate_limited", f.rate_limited),
        ("server_error", f.rate_limited + f.server_error),
        ("timeout", f.rate_limited + f.server_error + f.timeout),
    )
    for fault, bound in bounds:
        if first < bound:
            return Decision(fault=fault)
    if second < f.slow and f.latency_ms:
        return Decision(delay=f.latency_ms / 1000)
    return Decision()
