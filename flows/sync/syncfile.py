"""The sync file format: pydantic models of one audience sync (``flows/library/syncs/*.yml``).

A sync keeps a source (a segment, a list, or any relation with a key) mirrored in one destination
object, mapping source columns to destination fields. ``docs/syncs.md`` documents every field.
Models forbid unknown fields so a typo is an error, never a silently ignored setting; what needs
the project's models (columns, segment names) is checked in :mod:`flowhouse.flows.sync.files`.
"""

from __future__ import annotations

import json
import re
from datetime import timedelta
from typing import Annotated, Any, ClassVar, Literal

from pydantic import Discriminator, Field, Tag, field_validator, model_validator

from flowhouse.flows.flowfile import STEP_ID, Duration, Model

SOURCE_KINDS = ("segment", "list", "model")
TARGETS = ("klaviyo", "sendgrid", "audience", "webhook")
#: The relation segment and list sources read their columns from (keyed by ``customer_id``).
CUSTOMER_RELATION = "core.customer_attributes"
MIN_SCHEDULE = timedelta(minutes=1)

_NAME = re.compile(r"^[a-z][a-z0-9_]*$")
_RELATION = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*\.[A-Za-z_][A-Za-z0-9_]*$")
_UUID = r"^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$"

Column = Annotated[str, Field(min_length=1, description="A column of the source")]
Mode = Literal["upsert", "mirror", "add_only"]


class Source(Model):
    """What to sync: members of a segment or a list (their customer attributes), or the rows of
    any relation (``schema.name``) with a key column."""

    segment: str | None = Field(default=None, description="A segment (its model's meta.segment)")
    list: str | None = Field(default=None, description="A list, lower case (core.list_members)")
    model: str | None = Field(default=None, description="A relation: core.product_interest")
    key: Column = Field(default="customer_id", description="The column that identifies a row")
    where: str | None = Field(
        default=None,
        min_length=1,
        description="A SQL predicate on the source's columns, without a table",
    )

    @field_validator("segment")
    @classmethod
    def _segment_name(cls, value: str | None) -> str | None:
        if value is not None and not _NAME.match(value):
            raise ValueError("a segment name is lower_snake_case, e.g. vip or lapsed_customers")
        return value

    @field_validator("list")
    @classmethod
    def _list_name(cls, value: str | None) -> str | None:
        if value is not None and (not value.strip() or value != value.strip().lower()):
            raise ValueError("a list name is lower case without surrounding spaces (newsletter)")
        return value

    @field_validator("model")
    @classmethod
    def _relation(cls, value: str | None) -> str | None:
        if value is not None and not _RELATION.match(value):
            raise ValueError("a model is named schema.name, e.g. core.customer_attributes")
        return value

    @model_validator(mode="after")
    def _exactly_one(self) -> Source:
        if len(self.kinds) != 1:
            given = f" (got {', '.join(self.kinds)})" if self.kinds else ""
            raise ValueError(f"a source needs exactly one of: {', '.join(SOURCE_KINDS)}{given}")
        return self

    @property
    def kinds(self) -> tuple[str, ...]:
        return tuple(k for k in SOURCE_KINDS if getattr(self, k) is not None)

    @property
    def kind(self) -> str:
        """``segment``, ``list`` or ``model``."""
        return self.kinds[0]

    @property
    def name(self) -> str:
        """The segment's, list's or model's name as written."""
        return str(getattr(self, self.kind))

    @property
    def relation(self) -> str:
        """The relation the rows are read from: the customer attributes for a segment or a list
        (joined to its members by the runner), the model itself otherwise."""
        return self.model if self.model is not None else CUSTOMER_RELATION


# -- destinations -----------------------------------------------------------------------------


class KlaviyoOptions(Model):
    list_id: Annotated[str, Field(pattern=r"^[A-Za-z0-9_-]+$", description="A Klaviyo list id")]


class SendGridOptions(Model):
    list_ids: Annotated[
        list[Annotated[str, Field(pattern=_UUID)]],
        Field(min_length=1, description="SendGrid Marketing list ids (UUIDs)"),
    ]


class AudienceOptions(Model):
    audience: Annotated[
        str,
        Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9_.-]*$", description="The ad platform audience"),
    ]


class WebhookOptions(Model):
    url: Annotated[str, Field(pattern=r"^https?://\S+$")] | None = Field(
        default=None, description="Where rows are posted; default: delivery.webhook.base_url"
    )


class ToKlaviyo(Model):
    """Profiles in a Klaviyo list, with profile properties."""

    target: ClassVar[str] = "klaviyo"
    klaviyo: KlaviyoOptions


class ToSendGrid(Model):
    """SendGrid Marketing contacts, in one or more lists."""

    target: ClassVar[str] = "sendgrid"
    sendgrid: SendGridOptions


class ToAudience(Model):
    """Members of a paid-ads customer list (identifiers hashed)."""

    target: ClassVar[str] = "audience"
    audience: AudienceOptions


class ToWebhook(Model):
    """Rows posted to a webhook."""

    target: ClassVar[str] = "webhook"
    webhook: WebhookOptions = WebhookOptions()

    @field_validator("webhook", mode="before")
    @classmethod
    def _empty(cls, value: Any) -> Any:
        return {} if value is None else value


def _target(value: Any) -> str | None:
    if isinstance(value, dict):
        found = [t for t in TARGETS if t in value]
        return found[0] if len(found) == 1 else None
    return getattr(value, "target", None)


Destination = Annotated[
    Annotated[ToKlaviyo, Tag("klaviyo")]
    | Annotated[ToSendGrid, Tag("sendgrid")]
    | Annotated[ToAudience, Tag("audience")]
    | Annotated[ToWebhook, Tag("webhook")],
    Discriminator(
        _target,
        custom_error_type="destination_kind",
        custom_error_message="a destination needs exactly one of: " + ", ".join(TARGETS),
    ),
]


class Sync(Model):
    """One sync file."""

    sync: Annotated[str, Field(pattern=STEP_ID, description="The sync's id (lower_snake_case)")]
    name: str
    description: str | None = None
    source: Source
    fields: Annotated[
        dict[Annotated[str, Field(min_length=1)], Column],
        Field(min_length=1, description="Destination field -> source column"),
    ]
    destination: Destination
    mode: Mode = Field(
        default="mirror",
        description="mirror: add, change and remove; upsert: add and change; add_only: add",
    )
    schedule: Duration = Field(default=timedelta(hours=1), description="How often the sync runs")
    enabled: bool = True

    @field_validator("schedule")
    @classmethod
    def _often_enough(cls, value: timedelta) -> timedelta:
        if value < MIN_SCHEDULE:
            raise ValueError("a schedule is at least 1m")
        return value

    @property
    def target_name(self) -> str:
        """The destination's kind: ``klaviyo``, ``sendgrid``, ``audience`` or ``webhook``."""
        return self.destination.target

    @property
    def target_options(self) -> dict[str, Any]:
        """The destination's block as written, e.g. ``{"list_id": "Xy12Ab"}`` (unset fields left
        out: a webhook without ``url`` gives ``{}``)."""
        options: Model = getattr(self.destination, self.target_name)
        return options.model_dump(mode="json", exclude_none=True)


def json_schema() -> str:
    """The JSON Schema of sync files, for editor completion and checks."""
    schema = Sync.model_json_schema(by_alias=True)
    schema["$schema"] = "https://json-schema.org/draft/2020-12/schema"
    schema["title"] = "flowhouse sync file"
    return json.dumps(schema, indent=2, sort_keys=True)
