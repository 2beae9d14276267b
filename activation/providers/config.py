"""What every provider's section under ``delivery`` in ``_settings.yml`` takes: where to send,
how hard, for how long. Each provider's own model (``<provider>/config.py``) extends it."""

from __future__ import annotations

from datetime import timedelta
from typing import Annotated

from pydantic import Field

from flowhouse.flows.flowfile import Duration, Model


class ProviderConfig(Model):
    """What every destination takes: where to send, how hard, for how long."""

    base_url: str | None = Field(
        default=None, description="The API's root; default: the provider's"
    )
    concurrency: Annotated[int, Field(ge=1, le=64)] = 4
    rate_per_second: Annotated[float, Field(gt=0)] | None = Field(
        default=None, description="Requests a second at most; default: unbounded"
    )
    timeout: Duration = timedelta(seconds=15)
    max_attempts: Annotated[int, Field(ge=1, le=20)] = 5
