"""The send-time rules as SQL builders, shared by the engine (when a message is queued) and
activation (when it is about to be sent).

The checks are ordered (condition, reason) pairs, the first that holds giving the skip reason, in
the order of :data:`REASONS`. :func:`early_checks` is consent, unsubscribes, suppression and
staleness; :func:`volume_checks` is caps and smart sending; :func:`reason_of` writes pairs as one
``case``. Both sides describe the row they decide with a :class:`Checked`, and pass what only they
know: the address (at queue time), the flow's suppression predicate, the engagement loaded since
the message was queued (at send time).

Caps and smart sending look back from a message's time over the marketing messages the customer
got on that channel (or on any but ``onsite``, for a cap on ``any``), in any flow.
:func:`window_counts` adds one count per (channel, seconds) window to a grouped query;
:func:`caps_rule` and :func:`smart_rule` are each flow's test over those counts (on the row
``o`` joined to the counts ``r``).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlglot import exp

from flowhouse.core.sql import literal, render, statement
from flowhouse.flows.channels import CHANNELS, ChannelSpec, channels, names
from flowhouse.flows.compile import CompiledFlow
from flowhouse.flows.flowfile import Cap
from flowhouse.flows.settings import Settings
from flowhouse.rules.context import Context

#: Skip reasons, in order of precedence: where several apply, the first is recorded.
REASONS = (
    "no_address", "consent", "unsubscribed", "suppressed", "stale", "frequency_cap",
    "smart_sending", "quiet_hours", "discount_active", "coupon_pool_empty",
)  # fmt: skip

#: The channels with an address on the customer row, and the column holding it (the registry's,
#: :mod:`flowhouse.flows.channels`). A push routed to a store's own push service (the signed
#: webhook) is addressed by the customer id; one routed to FCM by the customer's newest valid
#: device token (:func:`addresses`).
ADDRESSES = {c.name: c.address for c in CHANNELS.values() if c.address is not None}
NATIVE_PUSH_ADDRESS = str(CHANNELS["push"].device_address)

#: The channels with marketing consent and unsubscribes on the customer row whatever their
#: route; a channel with a device address (push) has them too when it goes to devices.
CONSENT_CHANNELS = tuple(c.name for c in channels(consent=True) if c.device_address is None)

Check = tuple[exp.Expr, str]


@dataclass(frozen=True)
class Checked:
    """What the send-time checks read of the row they decide, as expressions of the statement
    they go into (each is copied where it is used)."""

    #: ``'message'`` for a message; ``'warehouse'`` for an action written to the warehouse.
    kind: exp.Expr
    channel: exp.Expr
    is_marketing: exp.Expr
    due_at: exp.Expr
    #: Maximum lateness in seconds.
    lateness: exp.Expr
    #: Alias of ``core.customer_attributes`` joined to the row.
    customer: str = "customer"
    #: Push goes to devices (FCM): addressed by a device token, with push consent.
    native_push: bool = False

    def is_message(self) -> exp.Expr:
        return self.kind.copy().eq(literal("message"))

    def is_marketing_message(self) -> exp.Expr:
        return exp.and_(self.is_message(), self.is_marketing.copy())

    def goes_out(self) -> exp.Expr:
        """A message or an external action (not a warehouse action)."""
        return exp.NEQ(this=self.kind.copy(), expression=literal("warehouse"))

    def on_channel(self, channel: str) -> exp.Expr:
        return self.channel.copy().eq(literal(channel))

    def attribute(self, name: str) -> exp.Column:
        return exp.column(name, self.customer)


def native_push(settings: Settings) -> bool:
    """Whether ``push`` messages go to devices through FCM (else to the store's own push
    service through the signed webhook, addressed by customer id and without push consent, as
    before FCM was supported)."""
    return settings.delivery.routes.get("push", "webhook") == "fcm"


def _on_devices(row: Checked) -> tuple[ChannelSpec, ...]:
    """The channels going to devices for ``row`` (push through FCM)."""
    return tuple(c for c in CHANNELS.values() if c.device_address and row.native_push)


def addresses(row: Checked) -> dict[str, str]:
    """The address column of each channel, for ``row``."""
    return ADDRESSES | {c.name: str(c.device_address) for c in _on_devices(row)}


def consent_channels(row: Checked) -> tuple[str, ...]:
    return CONSENT_CHANNELS + tuple(c.name for c in _on_devices(row) if c.consent)


def address_of(row: Checked) -> exp.Expr:
    """The customer's address on the row's channel (null for other channels)."""
    case = exp.Case(this=row.channel.copy())
    for channel, column in addresses(row).items():
        case = case.when(literal(channel), row.attribute(column))
    return case


def early_checks(
    row: Checked,
    now: datetime,
    *,
    address: bool = False,
    flow_suppressed: exp.Expr | None = None,
    unsubscribed_since: exp.Expr | None = None,
    suppressed_since: exp.Expr | None = None,
) -> list[Check]:
    """Address (with `address`), consent, unsubscribes, suppression and staleness, in order.

    A marketing message without consent is ``unsubscribed`` where a customer who had opted in
    has unsubscribed on that channel, ``consent`` otherwise. `flow_suppressed` is the flow's
    suppression predicate (applies to messages and external actions); `unsubscribed_since` and
    `suppressed_since` are engagement the customer row does not show yet (they apply to
    messages)."""
    checks: list[Check] = []
    if address:
        known = exp.In(this=row.channel.copy(), expressions=[literal(c) for c in addresses(row)])
        missing = exp.Is(this=address_of(row), expression=exp.null())
        checks.append((exp.and_(row.is_message(), known, missing), "no_address"))
    checks += _consent_checks(row)
    if unsubscribed_since is not None:
        since = unsubscribed_since.copy()
        checks.append((exp.and_(row.is_marketing_message(), since), "unsubscribed"))
    for spec in channels(suppression=True):  # a dead device token is retired, not suppressed
        suppressed = exp.Not(
            this=exp.Is(this=row.attribute(spec.suppressed_column), expression=exp.null())
        )
        checks.append(
            (exp.and_(row.is_message(), row.on_channel(spec.name), suppressed), "suppressed")
        )
    if suppressed_since is not None:
        checks.append((exp.and_(row.is_message(), suppressed_since.copy()), "suppressed"))
    if flow_suppressed is not None:
        checks.append((exp.and_(row.goes_out(), _holds(flow_suppressed)), "suppressed"))
    checks.append((exp.and_(row.goes_out(), _stale(row, now)), "stale"))
    return checks


def _consent_checks(row: Checked) -> list[Check]:
    """Marketing messages without the channel's consent: ``consent`` where the customer never
    opted in (even with an unsubscribe on record: consent comes first in :data:`REASONS`) or never
    unsubscribed, ``unsubscribed`` where an opted-in customer unsubscribed since."""
    checks: list[Check] = []
    for spec in (CHANNELS[name] for name in consent_channels(row)):
        consent = exp.func("coalesce", row.attribute(spec.consent_column), exp.false())
        without = exp.and_(row.is_marketing_message(), row.on_channel(spec.name), exp.not_(consent))
        opted_in = exp.func("coalesce", row.attribute(spec.opt_in_column), exp.false())
        never_left = exp.Is(this=row.attribute(spec.unsubscribed_column), expression=exp.null())
        checks.append((exp.and_(without, exp.or_(exp.not_(opted_in), never_left)), "consent"))
        checks.append((without.copy(), "unsubscribed"))
    for spec in channels(opt_out=True):  # no opt-in needed (onsite), only no opt-out
        left = exp.Not(
            this=exp.Is(this=row.attribute(spec.unsubscribed_column), expression=exp.null())
        )
        checks.append(
            (exp.and_(row.is_marketing_message(), row.on_channel(spec.name), left), "unsubscribed")
        )
    return checks


def _stale(row: Checked, now: datetime) -> exp.Expr:
    """Later than the row's maximum lateness after its due time."""
    return statement(
        ":due + :lateness * interval 1 second < :now",
        due=row.due_at.copy(),
        lateness=row.lateness.copy(),
        now=now,
    )


def volume_checks(is_marketing: exp.Expr, capped: exp.Expr, smart: exp.Expr) -> list[Check]:
    """Frequency caps, then smart sending, over a marketing message: `capped` and `smart` are the
    flow's tests over the window counts (:func:`caps_rule`, :func:`smart_rule`)."""
    return [
        (exp.and_(is_marketing.copy(), _holds(capped)), "frequency_cap"),
        (exp.and_(is_marketing.copy(), _holds(smart)), "smart_sending"),
    ]


def _holds(condition: exp.Expr) -> exp.Expr:
    return exp.func("coalesce", condition.copy(), exp.false())


def reason_of(checks: list[Check]) -> exp.Expr:
    """``case when <condition> then '<reason>' ... end``: the first reason that holds."""
    case = exp.Case()
    for condition, reason in checks:
        case = case.when(condition, literal(reason))
    return case


def cap_windows(ctx: Context) -> list[tuple[str, int]]:
    """Every (channel or ``any``, seconds) window a cap or smart sending looks back over."""
    found: set[tuple[str, int]] = set()
    for f in ctx.flows:
        found |= {(c.channel, int(c.period.total_seconds())) for c in flow_caps(ctx.settings, f)}
        found |= set(flow_smart(ctx.settings, f).items())
    return sorted(found)


def recent_column(channel: str, seconds: int) -> str:
    return f"n_{channel}_{seconds}"


def window_counts(
    tree: exp.Select, windows: list[tuple[str, int]], went: exp.Expr, until: exp.Expr
) -> exp.Select:
    """``tree`` (grouped by the message deciding) with one count per (channel, seconds) window:
    the joined messages ``m`` that went out (``went``) within that long before ``until``."""
    for channel, seconds in windows:
        recent: exp.Expr = exp.GT(
            this=went.copy(),
            expression=statement(":due - :n * interval 1 second", due=until.copy(), n=seconds),
        )
        if channel != "any":
            recent = exp.and_(recent, exp.column("channel", "m").eq(literal(channel)))
        else:  # onsite messages (counts_for_any) spend no cross-channel budget
            recent = exp.and_(recent, *_counted_for_any())
        counted = exp.Count(this=exp.Case().when(recent, literal(1)))
        tree = tree.select(exp.alias_(counted, recent_column(channel, seconds)))
    return tree


def _counted_for_any() -> list[exp.Expr]:
    """``m.channel <> '<c>'`` for each channel whose messages spend no cap on ``any``."""
    return [exp.column("channel", "m").neq(literal(c)) for c in names(counts_for_any=False)]


def create_temp(ctx: Context, name: str, tree: exp.Expr) -> None:
    """(Re)create temp table ``name`` as the query ``tree``."""
    ctx.wh.execute(f"drop table if exists {name}")
    create = exp.Create(this=exp.to_table(name), kind="TABLE", expression=tree)
    create.set("properties", exp.Properties(expressions=[exp.TemporaryProperty()]))
    ctx.wh.execute(render(create, ctx.wh.dialect))


def flow_caps(settings: Settings, f: CompiledFlow) -> list[Cap]:
    if f.flow.transactional:
        return []
    return list(f.flow.caps if f.flow.caps is not None else settings.caps)


def flow_smart(settings: Settings, f: CompiledFlow) -> dict[str, int]:
    if f.flow.transactional or f.flow.smart_sending is False:
        return {}
    out = {}
    for spec in channels(paced=True):
        window = settings.smart_sending.get(spec.name)  # type: ignore[call-overload]
        if spec.flow_smart_sending:  # onsite is not interruptive: only the store's own setting
            window = f.flow.smart_sending or window
        if window:
            out[spec.name] = int(window.total_seconds())
    return out


def _count(channel: str, seconds: int) -> exp.Expr:
    return exp.func("coalesce", exp.column(recent_column(channel, seconds), "r"), literal(0))


def caps_rule(settings: Settings, f: CompiledFlow) -> exp.Expr | None:
    checks = []
    for cap in flow_caps(settings, f):
        seconds = int(cap.period.total_seconds())
        over: exp.Expr = exp.GTE(this=_count(cap.channel, seconds), expression=literal(cap.limit))
        if cap.channel != "any":
            over = exp.and_(exp.column("channel", "o").eq(literal(cap.channel)), over)
        checks.append(over)
    return exp.or_(*checks) if checks else None


def smart_rule(settings: Settings, f: CompiledFlow) -> exp.Expr | None:
    checks = [
        exp.and_(
            exp.column("channel", "o").eq(literal(channel)),
            exp.GTE(this=_count(channel, seconds), expression=literal(1)),
        )
        for channel, seconds in flow_smart(settings, f).items()
    ]
    return exp.or_(*checks) if checks else None
