"""The checks a row must pass, as SQL conditions over ``_incoming``.

A failed check on a required field (or the row as a whole) rejects the row (action ``rejected``); on
an optional customer field (a contact, the time zone, the birthday...) it drops only that field
(action ``field_dropped``): the customer is kept with the field null. Event properties are checked
against the event contract (``flowhouse.core.contract.EVENT_PROPERTIES``) for the raw event types:
a missing required property or a value of the wrong JSON type rejects the event. Types a store
declares itself (``events.custom``, or a derived type it sends) pass unchecked, as do properties the
contract does not declare. A timestamp more than :data:`FUTURE_TOLERANCE` after the load's own clock
rejects the row: a time from the future would otherwise stand for "now" in every later build.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlglot import exp

from flowhouse.core.contract import (
    CATALOG_EVENT_TYPES,
    EVENT_PROPERTIES,
    PLATFORMS,
    RAW_EVENT_TYPES,
    Column,
    Input,
    Property,
)

EMAIL_PATTERN = r"^[^@\s]+@[^@\s]+\.[^@\s.]{2,}$"
PHONE_PATTERN = r"^\+[1-9][0-9]{6,14}$"
COUNTRY_PATTERN = r"^[A-Za-z]{2}$"
EVENT_TYPE_PATTERN = r"^[a-z][a-z0-9_]*$"
BOOLEAN_WORDS = ("true", "false", "t", "f", "1", "0", "yes", "no", "y", "n")
TRUE_WORDS = ("true", "t", "1", "yes", "y")
FUTURE_TOLERANCE = timedelta(hours=24)  # past the load's clock: clocks a little ahead still load
REJECTED = "rejected"
FIELD_DROPPED = "field_dropped"
#: Customer fields a bad value drops (the customer is kept); other bad fields reject the row.
DROPPABLE = frozenset(
    {"email", "phone", "first_name", "timezone", "country", "birthday", "email_opt_in",
     "sms_opt_in", "properties"}
)  # fmt: skip
JSON_TYPES: dict[str, tuple[str, ...]] = {
    "text": ("VARCHAR",),
    "timestamp": ("VARCHAR",),
    "number": ("BIGINT", "UBIGINT", "DOUBLE"),
    "boolean": ("BOOLEAN",),
    "list": ("ARRAY",),
    "object": ("OBJECT",),
}
EXPECTED = {
    "text": "text",
    "timestamp": "an ISO 8601 timestamp text like 2026-09-01T12:00:00Z",
    "number": "a JSON number like 12.5",
    "boolean": "true or false",
    "list": "a JSON array",
    "object": "a JSON object",
}


@dataclass(frozen=True)
class Check:
    field: str | None
    failed: exp.Expr  # true for a bad row
    reason: str
    action: str = REJECTED
    value: exp.Expr | None = None  # the value shown; the field's own by default
    event_type: str | None = None  # checked only on events of this type


def present(col: exp.Expr) -> exp.Expr:
    return exp.func("nullif", exp.func("trim", col), exp.Literal.string("")).is_(exp.null()).not_()


def missing(col: exp.Expr) -> exp.Expr:
    return exp.func("nullif", exp.func("trim", col), exp.Literal.string("")).is_(exp.null())


def _type_check(c: Column) -> Check | None:
    col = exp.column(c.name)
    bad_cast: dict[str, tuple[str, str]] = {
        "timestamp": (
            "timestamptz",
            "unparsable timestamp; expected ISO 8601 like 2026-09-01T12:00:00Z",
        ),
        "date": ("date", "unparsable date; expected YYYY-MM-DD"),
        "decimal": ("decimal(12, 2)", "not a number"),
        "integer": ("integer", "not a whole number"),
        "bigint": ("bigint", "not a whole number"),
    }
    if c.type in bad_cast:
        to, reason = bad_cast[c.type]
        failed = exp.and_(
            present(col), exp.TryCast(this=col, to=exp.DataType.build(to)).is_(exp.null())
        )
        return Check(c.name, failed, reason)
    if c.type == "boolean":
        words = [exp.Literal.string(w) for w in BOOLEAN_WORDS]
        failed = exp.and_(
            present(col), exp.func("lower", exp.func("trim", col)).isin(*words).not_()
        )
        return Check(c.name, failed, "not a boolean; expected true/false, yes/no or 1/0")
    if c.type == "json":
        return Check(c.name, exp.and_(present(col), exp.func("json_valid", col).not_()), "bad JSON")
    return None


def _json_object_check(name: str) -> Check:
    col = exp.column(name)
    failed = exp.and_(
        present(col),
        exp.func("json_valid", col),
        exp.func("json_type", col).neq(exp.Literal.string("OBJECT")),
    )
    return Check(name, failed, "not a JSON object; expected {...}")


def _pattern_check(name: str, pattern: str, reason: str) -> Check:
    col = exp.func("trim", exp.column(name))
    failed = exp.and_(
        present(exp.column(name)),
        exp.RegexpLike(this=col, expression=exp.Literal.string(pattern)).not_(),
    )
    return Check(name, failed, reason)


def _future_check(c: Column, now: datetime) -> Check:
    """A timestamp later than the load's clock plus :data:`FUTURE_TOLERANCE` rejects the row."""
    latest = now + FUTURE_TOLERANCE
    stamp = latest.strftime("%Y-%m-%d %H:%M:%S")
    when = exp.TryCast(this=exp.column(c.name), to=exp.DataType.build("timestamptz"))
    utc = exp.cast(exp.AtTimeZone(this=when, zone=exp.Literal.string("UTC")), "timestamp")
    failed = utc > exp.cast(exp.Literal.string(stamp), "timestamp")
    reason = (
        f"in the future: later than {stamp} UTC, {FUTURE_TOLERANCE.total_seconds() / 3600:g} "
        f"hours past the load's clock ({now:%Y-%m-%d %H:%M:%S} UTC); expected a time that has "
        "already happened"
    )
    return Check(c.name, failed, reason)


def checks_for(
    spec: Input,
    provided: Sequence[str],
    customers_table: str | None,
    zones_table: str | None,
    now: datetime,
) -> list[Check]:
    """Every check a row of ``spec`` must pass (the first: the record was readable at all);
    ``now`` is the load's clock, naive UTC."""
    record = exp.column("_record")
    nul = exp.or_(
        exp.func("contains", record, exp.func("chr", exp.Literal.number(0))),
        exp.func("contains", record, exp.Literal.string("\\u0000")),
    )
    out: list[Check] = [
        Check(None, present(exp.column("_extra")), "more fields than the header names"),
        Check(
            None, nul, "a NUL character in the record (0x00 or \\u0000); expected text without NUL"
        ),
    ]
    for c in spec.columns:
        if c.required and not (spec.name == "events" and c.name in ("customer_id", "loaded_at")):
            out.append(Check(c.name, missing(exp.column(c.name)), f"missing {c.name}"))
        typed = _type_check(c)
        if typed:
            out.append(typed)
        if c.type == "timestamp":
            out.append(_future_check(c, now))
        if c.type == "json":
            out.append(_json_object_check(c.name))
    if spec.name == "events":
        out += _event_checks(customers_table) + property_checks()
    if spec.name == "customers":
        out += _customer_checks(zones_table)
        out = [
            Check(c.field, c.failed, c.reason, FIELD_DROPPED, c.value)
            if c.field in DROPPABLE
            else c
            for c in out
        ]
    if spec.name == "device_tokens":
        platform = exp.func("lower", exp.func("trim", exp.column("platform")))
        known = platform.isin(*(exp.Literal.string(p) for p in PLATFORMS))
        out.append(
            Check(
                "platform",
                exp.and_(present(exp.column("platform")), exp.not_(known)),
                "unknown platform; expected ios, android or web",
            )
        )
    if spec.name == "products":
        for money in ("price", "cost"):
            col = exp.TryCast(this=exp.column(money), to=exp.DataType.build("decimal(12, 2)"))
            out.append(Check(money, col < 0, f"negative {money}"))
    return out


def _customer_checks(zones_table: str | None) -> list[Check]:
    out = [
        _pattern_check("email", EMAIL_PATTERN, "invalid e-mail address"),
        _pattern_check("phone", PHONE_PATTERN, "invalid phone; expected E.164 like +14155550100"),
        _pattern_check(
            "country", COUNTRY_PATTERN, "invalid country; expected ISO 3166-1 alpha-2 like DE"
        ),
    ]
    if zones_table:
        zone = exp.func("trim", exp.column("timezone"))
        known = (
            exp.select("1")
            .from_(exp.to_table(zones_table).as_("z"))
            .where(exp.column("name", "z").eq(zone))
        )
        failed = exp.and_(present(exp.column("timezone")), exp.Exists(this=known).not_())
        out.append(
            Check("timezone", failed, "unknown time zone; expected an IANA name like Europe/Berlin")
        )
    return out


def _event_checks(customers_table: str | None) -> list[Check]:
    kind = exp.func("lower", exp.func("trim", exp.column("event_type")))
    catalog = kind.isin(*[exp.Literal.string(t) for t in sorted(CATALOG_EVENT_TYPES)])
    customer = exp.func("trim", exp.column("customer_id", "_incoming"))
    out = [
        _pattern_check("event_type", EVENT_TYPE_PATTERN, "invalid event_type; expected snake_case"),
        Check("customer_id", exp.and_(missing(exp.column("customer_id")), catalog.not_()),
              "missing customer_id"),
    ]  # fmt: skip
    if customers_table:
        known = (
            exp.select("1")
            .from_(exp.to_table(customers_table).as_("k"))
            .where(exp.column("customer_id", "k").eq(customer))
        )
        unknown = exp.and_(present(exp.column("customer_id")), exp.Exists(this=known).not_())
        out.append(Check("customer_id", unknown, "unknown customer; load customers first"))
    return out


def _props() -> exp.Expr:
    """The row's properties as JSON text ({} when empty), or null when they are not an object."""
    own = exp.func(
        "coalesce",
        exp.func("nullif", exp.func("trim", exp.column("properties")), exp.Literal.string("")),
        exp.Literal.string("{}"),
    )
    is_object = exp.and_(
        exp.func("json_valid", own), exp.func("json_type", own).eq(exp.Literal.string("OBJECT"))
    )
    return exp.If(this=is_object, true=own)


def _property_check(event_type: str, p: Property) -> list[Check]:
    path = exp.Literal.string("$." + '"' + p.name + '"')
    props = exp.column("_props")
    json_type = exp.func("json_type", props, path)
    field = f"properties.{p.name}"
    this_type = props.is_(exp.null()).not_()
    absent = exp.or_(json_type.is_(exp.null()), json_type.eq(exp.Literal.string("NULL")))
    wrong = exp.and_(
        absent.not_(), json_type.isin(*[exp.Literal.string(t) for t in JSON_TYPES[p.type]]).not_()
    )
    if p.type == "timestamp":
        text = exp.func("json_extract_string", props, path)
        unparsable = exp.TryCast(this=text, to=exp.DataType.build("timestamptz")).is_(exp.null())
        wrong = exp.and_(absent.not_(), exp.or_(wrong, unparsable))
    value = exp.cast(exp.func("json_extract", props, path), "varchar")
    out = [
        Check(field, exp.and_(this_type, wrong),
              f"{event_type}.{p.name} is not {p.type}; expected {EXPECTED[p.type]}", value=value,
              event_type=event_type),
    ]  # fmt: skip
    if p.required:
        reason = f"missing required property {p.name} ({p.type}) of {event_type}"
        missing_ = exp.and_(this_type, absent)
        out.append(Check(field, missing_, reason, value=exp.null(), event_type=event_type))
    return out


def property_checks() -> list[Check]:
    """Checks for the raw event types; a derived type a store sends itself (settings
    ``events.raw_types``) is its own and passes like a custom type."""
    return [
        check
        for event_type, properties in EVENT_PROPERTIES.items()
        if event_type in RAW_EVENT_TYPES
        for p in properties
        for check in _property_check(event_type, p)
    ]


def property_source() -> exp.Expr:
    """``_props``, the column the property checks read (computed once per row)."""
    return _props().as_("_props")
