"""The flow file format: pydantic models of one flow, with a discriminated union of step kinds.

A flow file is YAML; `docs/flows.md` documents every field.
Models forbid unknown fields so a typo is an error, never a silently ignored setting.
"""

from __future__ import annotations

import re
from datetime import timedelta
from typing import Annotated, Any, Literal

from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Discriminator,
    Field,
    PlainSerializer,
    Tag,
    field_validator,
    model_validator,
)

from flowhouse.flows.channels import Channel, PacedChannel, names

_DURATION = re.compile(
    r"^\s*(?:(\d+)w)?\s*(?:(\d+)d)?\s*(?:(\d+)h)?\s*(?:(\d+)m)?\s*(?:(\d+)s)?\s*$"
)
_UNITS = ("weeks", "days", "hours", "minutes", "seconds")
STEP_ID = r"^[a-z][a-z0-9_]*$"


def parse_duration(value: Any) -> timedelta:
    """`"1h"`, `"2d"`, `"1w"`, `"1d12h"`, `"90m"` -> timedelta (elapsed: 1d = 24 h)."""
    if isinstance(value, timedelta):
        return value
    match = _DURATION.match(str(value)) if isinstance(value, str) else None
    if not match or not any(match.groups()):
        raise ValueError(f"{value!r} is not a duration; expected e.g. 30m, 1h, 2d, 1w or 1d12h")
    return timedelta(**{u: int(v) for u, v in zip(_UNITS, match.groups(), strict=True) if v})


def format_duration(value: timedelta) -> str:
    seconds = int(value.total_seconds())
    parts = []
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60), ("s", 1)):
        if seconds >= size:
            parts.append(f"{seconds // size}{unit}")
            seconds %= size
    return "".join(parts) or "0s"


Duration = Annotated[
    timedelta,
    BeforeValidator(parse_duration),
    PlainSerializer(format_duration, return_type=str),
    Field(json_schema_extra={"type": "string", "pattern": _DURATION.pattern}),
]


def _share(value: Any) -> float:
    """``10%`` or ``0.1`` -> 0.1."""
    if isinstance(value, str) and value.strip().endswith("%"):
        return float(value.strip()[:-1]) / 100
    return float(value)


Share = Annotated[float, BeforeValidator(_share), Field(ge=0, le=1)]
Sql = Annotated[
    str, Field(min_length=1, description="A SQL boolean expression (see docs/flows.md)")
]
LocalTime = Annotated[str, Field(pattern=r"^([01]\d|2[0-3]):[0-5]\d$", description="HH:MM, 24 h")]
Weekday = Literal["mon", "tue", "wed", "thu", "fri", "sat", "sun"]


class Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


# -- flow-level settings -----------------------------------------------------------------------


class Trigger(Model):
    """What starts the flow: events of one type, optionally filtered."""

    event: Annotated[str, Field(pattern=r"^[a-z][a-z0-9_]*$")]
    where: Sql | None = None
    fan_out_within: Duration = Field(
        timedelta(days=30),
        description=(
            "Catalog events (back_in_stock, price_dropped, low_stock) have no customer: they "
            "enroll each customer who viewed or carted the sku within this long before the event"
        ),
    )


def _unset(value: Any) -> bool:
    """Fields added after flows were versioned are left out of the canonical form while unset
    (``exclude_if=_unset``), so a flow that does not use them keeps its version."""
    return value is None


def _names(value: Any) -> Any:
    """``order_refunded`` -> ``["order_refunded"]`` (one event type or a list of them)."""
    return [value] if isinstance(value, str) else value


EventTypes = Annotated[
    list[Annotated[str, Field(pattern=r"^[a-z][a-z0-9_]*$")]],
    BeforeValidator(_names),
    Field(min_length=1),
]


class Audience(Model):
    """Who may enter, judged once at entry: a SQL predicate over customer attributes, a segment, a
    list, outside a segment or a list, or several (all must hold)."""

    where: Sql | None = None
    segment: str | None = None
    list: str | None = None
    not_segment: str | None = Field(
        default=None, exclude_if=_unset, description="Only customers outside this segment"
    )
    not_list: str | None = Field(
        default=None, exclude_if=_unset, description="Only customers not on this list"
    )


def _within_with_events(events: Any, within: Any, name: str) -> None:
    if (events is None) != (within is None):
        raise ValueError(f"{name} and within go together: e.g. {name}: order_refunded, within: 14d")


class Filter(Audience):
    """The object form of ``filter`` (re-checked before every send; all given must hold): the
    audience's fields, and no event of these types by the customer within ``within`` before the
    message's due time."""

    no_recent_event: EventTypes | None = Field(
        default=None,
        exclude_if=_unset,
        description="Event types the customer must not have had recently",
    )
    within: Duration | None = Field(
        default=None, exclude_if=_unset, description="How recently, before the due time"
    )

    @model_validator(mode="after")
    def _window(self) -> Filter:
        _within_with_events(self.no_recent_event, self.within, "no_recent_event")
        return self


def _form(value: Any) -> str:
    return "sql-form" if isinstance(value, str) else "object-form"


class Suppress(Model):
    """The object form of ``suppress`` (checked when a message is queued; any that holds skips it
    as ``suppressed``): a predicate, or an event of these types by the customer within ``within``
    before the message's due time."""

    where: Sql | None = None
    recent_event: EventTypes | None = Field(
        None, description="Event types that suppress a message when the customer had one recently"
    )
    within: Duration | None = Field(None, description="How recently, before the due time")

    @model_validator(mode="after")
    def _window(self) -> Suppress:
        _within_with_events(self.recent_event, self.within, "recent_event")
        if not (self.where or self.recent_event):
            raise ValueError("suppress needs where or recent_event (with within)")
        return self


ReentryPolicy = Annotated[str, Field(pattern=r"^(once|always|after \S+)$")]


class Entry(Model):
    """Re-entry and concurrency."""

    reentry: ReentryPolicy = "once"
    concurrent: bool = False
    past_triggers: bool = False
    key: str | None = Field(default=None, description="A trigger property: one enrollment per key")

    @field_validator("reentry")
    @classmethod
    def _check_after(cls, value: str) -> str:
        if value.startswith("after "):
            parse_duration(value.removeprefix("after "))
        return value

    @property
    def reentry_after(self) -> timedelta | None:
        if self.reentry.startswith("after "):
            return parse_duration(self.reentry.removeprefix("after "))
        return None


class Exit(Model):
    """Checked before every step; a met exit ends the enrollment with its reason."""

    events: list[str] = Field(default_factory=list)
    where: Sql | None = None


class Cap(Model):
    """At most `limit` marketing messages on `channel` (or `any` channel) per rolling `period`."""

    channel: Literal[PacedChannel, "any"]
    limit: Annotated[int, Field(ge=0)]
    period: Duration


class Goal(Model):
    event: str = "order_placed"
    within: Duration = timedelta(days=5)


class Sender(Model):
    name: str
    email: str | None = None
    reply_to: str | None = None
    postal_address: str | None = None
    sms_from: str | None = None


#: ``filter`` and ``suppress``: a SQL predicate, or the object form (the union's tags end in
#: ``-form``, which error locations leave out).
FilterSpec = Annotated[
    Annotated[Sql, Tag("sql-form")] | Annotated[Filter, Tag("object-form")], Discriminator(_form)
]
SuppressSpec = Annotated[
    Annotated[Sql, Tag("sql-form")] | Annotated[Suppress, Tag("object-form")],
    Discriminator(_form),
]


# -- steps -----------------------------------------------------------------------------------------


class StepBase(Model):
    id: Annotated[str, Field(pattern=STEP_ID, description="Stable id; keep it when editing a flow")]
    note: str | None = None


class Wait(StepBase):
    """Wait a duration from the previous step's effective time."""

    wait: Duration


class UntilTime(Model):
    time: LocalTime | None = None
    weekdays: list[Weekday] | None = None
    date: str | None = Field(default=None, description="A date attribute, e.g. customer.birthday")
    offset: Duration | None = None
    before: bool = Field(False, description="Offset counts back from the date (birthday - 3d)")
    yearly: bool = Field(
        True, description="The date recurs every year (birthdays, anniversaries): the next one"
    )

    @model_validator(mode="after")
    def _something(self) -> UntilTime:
        if not (self.time or self.weekdays or self.date):
            raise ValueError("wait_until needs time, weekdays or date")
        if self.date and self.weekdays:
            raise ValueError(
                "wait_until takes a date (with an optional time) or weekdays, not both"
            )
        if self.date and not self.date.startswith("customer."):
            raise ValueError("wait_until.date names a customer date attribute: customer.<column>")
        if self.offset and self.offset.total_seconds() % 86400:
            raise ValueError("a date offset counts whole days (3d), not hours")
        return self


class WaitUntil(StepBase):
    """Wait until a local time of day, a weekday, or a date attribute with an offset."""

    wait_until: UntilTime


class ForEvent(Model):
    event: str
    timeout: Duration
    where: Sql | None = None
    same_key: bool = False


class WaitFor(StepBase):
    """Wait until an event happens or a time-out passes, then continue on the matching path."""

    wait_for: ForEvent
    on_event: list[Step] = Field(default_factory=list)
    on_timeout: list[Step] = Field(default_factory=list)


class BranchPath(Model):
    when: Sql | None = None
    otherwise: bool = Field(False, alias="else")
    steps: list[Step] = Field(default_factory=list)

    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)


class Branch(StepBase):
    """SQL predicates, first match wins; an ``else`` path takes the rest."""

    branch: list[BranchPath]


class Arm(Model):
    name: Annotated[str, Field(pattern=r"^[A-Za-z0-9_]+$")]
    weight: Annotated[
        float,
        Field(ge=0, description="Relative; 0 ends the arm (nobody new is routed to it)"),
    ]
    steps: list[Step] = Field(default_factory=list)

    @property
    def is_holdout(self) -> bool:
        """An arm without steps is the split's holdout: it receives nothing the split adds, never
        wins an automatic decision, and keeps its weight after one."""
        return not self.steps


#: What an automatic winner is judged on: the flow's goal reached after the split (per
#: enrollment), or opens or clicks of the messages the arm sends (per message sent).
WinnerMetric = Literal["goal", "open_rate", "click_rate"]
#: The channels whose messages count toward each message metric (SMS has clicks, no opens).
METRIC_CHANNELS: dict[str, tuple[str, ...]] = {
    "open_rate": names(opens=True),
    "click_rate": names(clicks=True),
}


class AutoWinner(Model):
    """When every arm has ``min_sample`` and the best beats each other arm with ``confidence``,
    new entrants go to the best arm from then on (a decision made once, journaled)."""

    metric: WinnerMetric = Field(
        "goal", description="goal (conversion), open_rate or click_rate (of the arm's messages)"
    )
    min_sample: Annotated[
        int,
        Field(ge=1, description="Enrollments (goal) or messages sent (rates) per arm, at least"),
    ]
    confidence: Annotated[
        float, Field(gt=0, lt=1, description="e.g. 0.95: the best arm's lead has p < 0.05")
    ]


class Split(StepBase):
    """A random split (A/B/n) by deterministic hash; weights are relative."""

    split: list[Arm]
    auto_winner: AutoWinner | None = Field(
        default=None,
        exclude_if=_unset,
        description="Route new entrants to the best arm once this rule is met",
    )


#: The destinations a message or outbox channel can be routed to (activation/providers/).
Route = Literal[
    "sendgrid", "twilio", "klaviyo", "webhook", "audience", "fcm", "onsite", "vonage", "spree"
]


#: The fields only some channels take, and which.
CHANNEL_FIELDS: dict[str, tuple[str, ...]] = {
    "title": ("push", "onsite"),
    "deep_link": ("push", "onsite"),
    "expires_after": ("onsite",),
}


class Message(Model):
    channel: Channel
    template: str
    subject: str | None = None
    preheader: str | None = None
    destination: Route | None = Field(
        None, description="The provider, instead of delivery.routes' for the channel"
    )
    coupon_pool: str | None = None
    content_sid: str | None = Field(
        default=None,
        exclude_if=_unset,
        pattern=r"^HX[0-9a-fA-F]{32}$",
        description="WhatsApp: the approved template (Twilio Content API SID, HX...) to send; "
        "required for a marketing WhatsApp step",
    )
    content_variables: dict[Annotated[str, Field(min_length=1)], str] | None = Field(
        default=None,
        exclude_if=_unset,
        description="WhatsApp: the template's variables ({1: '{{ customer.first_name }}'}), "
        "each rendered like a subject",
    )
    title: str | None = Field(
        None, description="push and onsite: the notification's title (a template, like subject)"
    )
    deep_link: str | None = Field(
        None,
        description="push and onsite: where a tap or click leads (an app link or an https URL; "
        "a template)",
    )
    expires_after: Duration | None = Field(
        None,
        description="onsite: how long after its due time the message may be shown (default: "
        "the store's onsite.expires_after)",
    )

    @model_validator(mode="after")
    def _channel_fields(self) -> Message:
        for name, channels in CHANNEL_FIELDS.items():
            if getattr(self, name) is not None and self.channel not in channels:
                raise ValueError(
                    f"{name} is for {' and '.join(channels)} messages, not {self.channel}"
                )
        return self


class Send(StepBase):
    send: Message


ActionType = Literal[
    "add_tag", "remove_tag", "add_to_list", "remove_from_list", "set_property", "coupon",
    "loyalty_points", "change_tier", "admin_task", "webhook", "audience_sync",
]  # fmt: skip


class ActionSpec(Model):
    type: ActionType
    tag: str | None = None
    list: str | None = None
    property: str | None = None
    value: str | int | float | bool | None = None
    pool: str | None = None
    points: int | None = None
    tier: str | None = None
    expires_in: Duration | None = Field(
        default=None,
        description="change_tier: how long the override lasts (then the revenue-computed tier "
        "again); unset: until a later change_tier",
    )
    task: str | None = None
    url: str | None = None
    audience: str | None = None


class Action(StepBase):
    action: ActionSpec


STEP_KINDS = ("wait", "wait_until", "wait_for", "branch", "split", "send", "action")


def _kind(value: Any) -> str | None:
    if isinstance(value, dict):
        found = [k for k in STEP_KINDS if k in value]
        return found[0] if len(found) == 1 else None
    return next((k for k in STEP_KINDS if hasattr(value, k)), None)


Step = Annotated[
    Annotated[Wait, Tag("wait")]
    | Annotated[WaitUntil, Tag("wait_until")]
    | Annotated[WaitFor, Tag("wait_for")]
    | Annotated[Branch, Tag("branch")]
    | Annotated[Split, Tag("split")]
    | Annotated[Send, Tag("send")]
    | Annotated[Action, Tag("action")],
    Discriminator(
        _kind,
        custom_error_type="step_kind",
        custom_error_message="a step needs exactly one of: " + ", ".join(STEP_KINDS),
    ),
]


class Flow(Model):
    """One flow file."""

    flow: Annotated[str, Field(pattern=STEP_ID, description="The flow's id")]
    name: str
    #: Not part of the flow's version (excluded from its canonical form): pausing a flow or
    #: resuming it does not make a new version.
    state: Literal["draft", "live", "paused"] = Field(
        default="live",
        exclude=True,
        description="draft: validated, never deployed; live: runs; paused: no new enrollments, "
        "and enrollments in flight hold their steps until the flow is live again",
    )
    description: str | None = None
    trigger: Trigger
    audience: Audience = Audience()
    entry: Entry = Entry()
    exit: Exit = Exit()
    filter: FilterSpec | None = Field(
        default=None,
        description="Re-checked before every send: a predicate, or where, segment, list, "
        "not_segment, not_list and no_recent_event with within (all must hold)",
    )
    goal: Goal = Goal()
    holdout: Share = 0.1
    max_lateness: Duration = timedelta(hours=24)
    transactional: bool = False
    suppress: SuppressSpec | None = Field(
        default=None,
        description="Checked when a message is queued: a predicate, or where and recent_event "
        "with within; when one holds, the message is skipped as `suppressed`",
    )
    smart_sending: Duration | Literal[False] | None = Field(
        default=None,
        description="Skip when a marketing message went out on the channel this recently; "
        "false: off; unset: the store setting",
    )
    caps: list[Cap] | None = Field(
        default=None, description="Frequency caps for this flow; unset: the store setting"
    )
    quiet_hours: bool = Field(True, description="Move sends out of the store's quiet hours")
    priority: int = 0
    sender: Sender | None = None
    steps: Annotated[list[Step], Field(min_length=1)]


for _model in (WaitFor, BranchPath, Branch, Arm, Split, Flow):
    _model.model_rebuild()
