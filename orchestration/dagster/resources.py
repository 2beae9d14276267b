"""The Dagster resource that says where flowhouse works, and the time a run works at.

:class:`FlowhouseResource` carries the warehouse, the flows folder, where messages go (a provider
URL such as the fake provider's, or None for the live providers of the settings file), the
webhook inbox, and the provider credentials. :func:`resource_from_env` builds it from the
environment the way the CLI reads it, each value an :class:`dagster.EnvVar` so the Dagster UI shows
the variable's name and never its value:

=========================== ===================================================================
``FLOWHOUSE_WAREHOUSE``     a DuckDB file or a ``postgresql://`` URL (default: the demo store,
                            ``demo/warehouse.duckdb`` in the repository)
``FLOWHOUSE_FLOWS``         the flows folder (default: the shipped ``flows/``)
``FLOWHOUSE_PROVIDER_URL``  send every destination to this server (``flowhouse fake-provider``)
``FLOWHOUSE_INBOX``         where provider webhooks land, ingested before each send
API keys                    the variables ``_settings.yml`` names (``SENDGRID_API_KEY``, ...)
=========================== ===================================================================

Every asset of a run works at one time, :func:`run_time`: the run's ``flowhouse/now`` tag when it
has one (to replay a moment, or to drive a simulated store), else the moment the run started.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from dagster import ConfigurableResource, EnvVar
from pydantic import Field

from flowhouse.activation.deliver import Options
from flowhouse.activation.providers.delivery import provider_configs
from flowhouse.activation.sync.run import SyncOptions
from flowhouse.core.clock import parse_now, utc
from flowhouse.core.paths import FLOWS, ROOT
from flowhouse.core.warehouse import ENV_VAR as WAREHOUSE_ENV
from flowhouse.core.warehouse import Location
from flowhouse.flows.settings import Settings, load_settings

DEMO_WAREHOUSE = ROOT / "demo" / "warehouse.duckdb"
FLOWS_ENV = "FLOWHOUSE_FLOWS"
PROVIDER_URL_ENV = "FLOWHOUSE_PROVIDER_URL"
INBOX_ENV = "FLOWHOUSE_INBOX"
#: The Dagster concurrency pool of every asset and check that opens the warehouse: DuckDB allows
#: one writing process per file (``orchestration/dagster/dagster.yaml`` limits the pool to 1).
POOL = "flowhouse_warehouse"
#: A run tag that sets the time the run works at (ISO 8601, UTC).
NOW_TAG = "flowhouse/now"

#: Credential fields -> the setting that names their environment variable.
SECRETS: dict[str, Callable[[Settings], str]] = {
    "sendgrid_api_key": lambda s: provider_configs(s).sendgrid.api_key_env,
    "twilio_account_sid": lambda s: provider_configs(s).twilio.account_sid_env,
    "twilio_auth_token": lambda s: provider_configs(s).twilio.auth_token_env,
    "klaviyo_api_key": lambda s: provider_configs(s).klaviyo.api_key_env,
    "webhook_secret": lambda s: provider_configs(s).webhook.secret_env,
    "audience_token": lambda s: provider_configs(s).audience.api_key_env,
    "signing_key": lambda s: s.delivery.signing_key_env,
}


def _secret(what: str) -> Any:
    return Field(default=None, repr=False, description=f"{what} (from the environment)")


class FlowhouseResource(ConfigurableResource["FlowhouseResource"]):
    """Where flowhouse works: the warehouse, the flows, the providers and their credentials."""

    warehouse: str = Field(
        default=str(DEMO_WAREHOUSE), description="A DuckDB file or a postgresql:// URL"
    )
    flows_dir: str = Field(default=str(FLOWS), description="The folder of flow and sync files")
    provider_url: str | None = Field(
        default=None,
        description="Send to this server (the fake provider); None: the live providers",
    )
    inbox: str | None = Field(default=None, description="Where provider webhooks land")
    sendgrid_api_key: str | None = _secret("The SendGrid API key")
    twilio_account_sid: str | None = _secret("The Twilio account SID")
    twilio_auth_token: str | None = _secret("The Twilio auth token")
    klaviyo_api_key: str | None = _secret("The Klaviyo API key")
    webhook_secret: str | None = _secret("The webhook signing secret")
    audience_token: str | None = _secret("The audience API token")
    signing_key: str | None = _secret("The key that signs unsubscribe links")

    def location(self) -> Location:
        return Location.parse(self.warehouse)

    def flows(self) -> Path:
        return Path(self.flows_dir)

    def delivery(self) -> Options:
        """How ``flowhouse send`` would be called with these settings."""
        inbox = Path(self.inbox) if self.inbox else None
        return Options(provider_url=self.provider_url, inbox=inbox, environ=self.environ())

    def syncing(self) -> SyncOptions:
        return SyncOptions(provider_url=self.provider_url, environ=self.environ())

    def environ(self) -> dict[str, str]:
        """The credentials given, under the variable names the settings read them from."""
        settings = load_settings(self.flows())
        values = {name(settings): getattr(self, field) for field, name in SECRETS.items()}
        return {k: v for k, v in values.items() if v}


def resource_from_env(environ: Mapping[str, str] | None = None) -> FlowhouseResource:
    """The resource as the environment configures it (see the module's table); a variable that
    is not set leaves its field at the default."""
    env = os.environ if environ is None else environ

    def given(name: str, default: str | None = None) -> Any:
        return EnvVar(name) if env.get(name) else default

    flows_dir = env.get(FLOWS_ENV) or str(FLOWS)
    settings = load_settings(Path(flows_dir))
    secrets = {field: given(name(settings)) for field, name in SECRETS.items()}
    return FlowhouseResource(
        warehouse=given(WAREHOUSE_ENV, str(DEMO_WAREHOUSE)),
        flows_dir=given(FLOWS_ENV, str(FLOWS)),
        provider_url=given(PROVIDER_URL_ENV),
        inbox=given(INBOX_ENV),
        **secrets,
    )


def resolved(value: Any) -> Any:
    """A field's value when the definitions load (an EnvVar read from the environment now)."""
    return value.get_value() if isinstance(value, EnvVar) else value


def run_time(context: Any) -> datetime:
    """The time every asset and check of this run works at (naive UTC, whole seconds): the
    run's ``flowhouse/now`` tag, else when the run started (else when it was created)."""
    run = context.run
    tag = run.tags.get(NOW_TAG)
    if tag:
        return parse_now(tag, f"the run tag {NOW_TAG}")
    record = context.instance.get_run_record_by_id(run.run_id)
    if record is not None and record.start_time is not None:
        moment = datetime.fromtimestamp(record.start_time, UTC)
    elif record is not None:
        moment = record.create_timestamp.astimezone(UTC)
    else:
        moment = datetime.now(UTC)
    return utc(moment).replace(microsecond=0)
