"""How the fake provider behaves: failures, engagement, where it writes, its clock."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field

from flowhouse.activation.fake.engagement import Rates
from flowhouse.activation.fake.failures import Failures

#: The key webhook signatures are checked with, unless set otherwise.
WEBHOOK_SECRET = "fake-flowhouse_webhook_secret"
#: The Spree Platform API token the fake store accepts, unless set otherwise.
SPREE_TOKEN = "fake-flowhouse_spree_token"


class FakeSettings(BaseModel):
    """How the fake provider behaves.

    ``inbox``: where simulated engagement webhooks are written (none without it); ``webhook_url``:
    a receiver (``flowhouse receive``) they are posted to instead, signed (SendGrid's with the
    fake's own key pair, Twilio's with ``twilio_auth_token``, Vonage's with
    ``vonage_signature_secret``); ``record_dir``:
    where ``received.jsonl`` is appended; ``webhook_secret``: the key webhook signatures are
    checked with; ``spree_token``: the Platform API token the fake Spree store accepts;
    ``engagement``: the simulated rates; ``clock``: an offset added to the real time
    (the demo pins the time instead, with :meth:`FakeProvider.set_now`).
    """

    model_config = ConfigDict(extra="forbid")

    failures: Failures = Failures()
    inbox: Path | None = None
    webhook_url: str | None = None
    twilio_auth_token: str = Field(default="fake-twilio_auth_token", repr=False)
    vonage_signature_secret: str = Field(default="fake-vonage_signature_secret", repr=False)
    record_dir: Path | None = None
    webhook_secret: str = Field(default=WEBHOOK_SECRET, repr=False)
    spree_token: str = Field(default=SPREE_TOKEN, repr=False)
    engagement: Rates = Rates()
    clock: timedelta = timedelta(0)
