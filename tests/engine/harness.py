"""A fast scenario harness for the engine: the warehouse relations the engine reads, as plain tables.

A :class:`Store` opens a fresh warehouse (a DuckDB file or a PostgreSQL database), creates
``core.events``, ``core.customer_attributes``, ``core.product_interest``, ``core.segment_members``
and ``core.list_members`` as ordinary tables (no dbt, so a scenario takes milliseconds), and the
engine's state tables. Tests add customers and events, write flow files, and run ticks at frozen
times::

    store.customer("c1", tz="America/New_York")
    store.event("c1", "cart_abandoned", at="2026-03-01 10:00", cart_id="k1")
    store.flows(flow("cart", steps=[{"id": "reminder", "send": EMAIL}]))
    store.tick("2026-03-01 10:05")
    assert store.trail("c1") == [...]

Customer attributes are what dbt would have computed as of the tick: a test that unsubscribes or
bounces a customer sets the attributes the way ``customer_attributes`` derives them from the event
(see :meth:`Store.unsubscribe` and :meth:`Store.bounce`).
"""

from __future__ import annotations

import itertools
import json
import textwrap
from collections.abc import Mapping, Sequence
from datetime import date, datetime
from pathlib import Path
from typing import Any

import yaml
from sqlglot import exp

from flowhouse.core.contract import ColumnType
from flowhouse.core.paths import FLOWS
from flowhouse.core.sql import STATE_SCHEMA, literal
from flowhouse.core.state import TABLES, ensure_state
from flowhouse.core.warehouse import Location, Warehouse, column_type, create_table
from flowhouse.flows.compile import CompiledFlow
from flowhouse.flows.load import load_flows
from flowhouse.flows.settings import Settings
from flowhouse.orchestration.engine.intent import NO_APPROVAL, Approval
from flowhouse.orchestration.engine.tick import run_tick

Columns = Sequence[tuple[str, ColumnType, bool]]

EVENTS: Columns = (
    ("event_id", "text", True),
    ("customer_id", "text", False),
    ("event_type", "text", True),
    ("occurred_at", "timestamp", True),
    ("loaded_at", "timestamp", True),
    ("properties", "json", False),
    ("visible_at", "timestamp", True),
)

#: ``core.customer_attributes`` as models/customers/customer_attributes.yml documents it.
CUSTOMER_ATTRIBUTES: Columns = (
    ("customer_id", "text", True),
    ("email", "text", False),
    ("phone", "text", False),
    ("first_name", "text", False),
    ("effective_timezone", "text", True),
    ("has_valid_timezone", "boolean", True),
    ("country", "text", False),
    ("birthday", "date", False),
    ("created_at", "timestamp", False),
    ("is_wholesale", "boolean", True),
    ("has_ordered", "boolean", True),
    ("order_count", "integer", True),
    ("first_order_at", "timestamp", False),
    ("first_order_value", "double", False),
    ("last_order_at", "timestamp", False),
    ("last_order_value", "double", False),
    ("gross_revenue", "double", True),
    ("refunded_amount", "double", True),
    ("lifetime_revenue", "double", True),
    ("average_order_value", "double", False),
    ("recency_days", "integer", False),
    ("days_since_first_order", "integer", False),
    ("rfm_recency_score", "integer", False),
    ("rfm_frequency_score", "integer", False),
    ("rfm_monetary_score", "integer", False),
    ("rfm_score", "text", False),
    ("rfm_segment", "text", False),
    ("predicted_ltv", "double", True),
    ("tier", "text", False),
    ("next_tier", "text", False),
    ("revenue_to_next_tier", "double", False),
    ("discounted_order_count", "integer", True),
    ("discount_sensitivity", "double", False),
    ("top_category", "text", False),
    ("top_category_source", "text", False),
    ("top_category_share", "double", False),
    ("promo_pressure_14d", "integer", True),
    ("promo_pressure_30d", "integer", True),
    ("last_activity_at", "timestamp", False),
    ("days_since_last_activity", "integer", False),
    ("has_email_consent", "boolean", True),
    ("has_sms_consent", "boolean", True),
    ("has_email_opt_in", "boolean", True),
    ("has_sms_opt_in", "boolean", True),
    ("email_unsubscribed_at", "timestamp", False),
    ("sms_unsubscribed_at", "timestamp", False),
    ("email_suppressed_at", "timestamp", False),
    ("sms_suppressed_at", "timestamp", False),
    ("has_whatsapp_consent", "boolean", False),
    ("has_whatsapp_opt_in", "boolean", False),
    ("whatsapp_unsubscribed_at", "timestamp", False),
    ("whatsapp_suppressed_at", "timestamp", False),
    ("has_viber_consent", "boolean", False),
    ("has_viber_opt_in", "boolean", False),
    ("viber_unsubscribed_at", "timestamp", False),
    ("viber_suppressed_at", "timestamp", False),
    ("push_token", "text", False),
    ("push_token_count", "integer", False),
    ("has_push_consent", "boolean", False),
    ("has_push_opt_in", "boolean", False),
    ("push_unsubscribed_at", "timestamp", False),
    ("onsite_unsubscribed_at", "timestamp", False),
    ("computed_at", "timestamp", True),
)
_ATTRIBUTE_TYPES = {name: kind for name, kind, _ in CUSTOMER_ATTRIBUTES}

PRODUCT_INTEREST: Columns = (
    ("customer_id", "text", True),
    ("sku", "text", True),
    ("last_viewed_at", "timestamp", False),
    ("last_carted_at", "timestamp", False),
    ("last_ordered_at", "timestamp", False),
    ("last_interest_at", "timestamp", False),
)
SEGMENT_MEMBERS: Columns = (("customer_id", "text", True), ("segment", "text", True))
LIST_MEMBERS: Columns = (("customer_id", "text", True), ("list_name", "text", True))

CORE = {
    "events": EVENTS,
    "customer_attributes": CUSTOMER_ATTRIBUTES,
    "product_interest": PRODUCT_INTEREST,
    "segment_members": SEGMENT_MEMBERS,
    "list_members": LIST_MEMBERS,
}

#: Store settings for scenarios: no quiet hours, smart sending or caps unless a test names them.
NEUTRAL_SETTINGS = """
store: {name: Test, timezone: UTC, postal_address: 1 Main St}
smart_sending: {}
"""
#: What scenario stores declare beside any settings a test gives: the properties scenarios tag
#: their events with (``case_trigger``'s ``case``, a channel, a coupon pool) and the lists they use.
SCENARIO_DECLARATIONS = {
    "events": "events: {properties: {cart_abandoned: {case: text, ch: text, pool: text}}}\n",
    "lists": "lists: [newsletter]\n",
}

EMAIL = {"channel": "email", "template": "t.html.j2", "subject": "Hi"}
SMS = {"channel": "sms", "template": "t.txt.j2"}
PUSH = {"channel": "push", "template": "t.txt.j2"}
WHATSAPP = {"channel": "whatsapp", "template": "t.txt.j2", "content_sid": "HX" + "0" * 32}
VIBER = {"channel": "viber", "template": "t.txt.j2"}


#: Templates the scenarios' send steps name (the tick refuses flows that name a missing one).
SCENARIO_TEMPLATES = ("t", "u", "x")


def write_templates(folder: Path) -> None:
    """``templates/`` beside scenario flows: ``t``, ``u`` and ``x`` as e-mail (on the library's
    layout, which carries the unsubscribe link, address and UTM) and as text."""
    templates = folder / "templates"
    templates.mkdir(exist_ok=True)
    for name in ("_layout.html.j2", "_macros.html.j2"):
        (templates / name).write_text((FLOWS / "templates" / name).read_text())
    for stem in SCENARIO_TEMPLATES:
        (templates / f"{stem}.html.j2").write_text(
            '{% extends "_layout.html.j2" %}{% block body %}<p>Hello</p>{% endblock %}\n'
        )
        (templates / f"{stem}.txt.j2").write_text("Hello\n")


def ts(value: str | datetime | None) -> datetime | None:
    """``"2026-03-01 10:00"`` as a naive UTC datetime (None stays None)."""
    if value is None or isinstance(value, datetime):
        return value
    return datetime.fromisoformat(value)


def hm(value: datetime) -> str:
    """A timestamp as ``YYYY-MM-DD HH:MM`` (``:SS`` only when not whole minutes): short asserts."""
    return f"{value:%Y-%m-%d %H:%M}" + (f":{value:%S}" if value.second else "")


def flow(
    flow_id: str,
    steps: Sequence[Any] | str,
    trigger: str | Mapping[str, Any] = "cart_abandoned",
    **fields: Any,
) -> str:
    """A flow file's YAML text: `steps` (dicts, or YAML text) plus any top-level `fields`.

    Defaults differ from the format's on one point: no holdout unless a test asks for one."""
    data: dict[str, Any] = {
        "flow": flow_id,
        "name": flow_id.replace("_", " "),
        "trigger": {"event": trigger} if isinstance(trigger, str) else dict(trigger),
        "holdout": 0,
    }
    data.update(fields)
    data["steps"] = yaml.safe_load(textwrap.dedent(steps)) if isinstance(steps, str) else steps
    return yaml.safe_dump(data, sort_keys=False)


def case_trigger(case: str, event: str = "cart_abandoned") -> dict[str, str]:
    """A trigger for table-driven scenarios that share one store: the flow of case `case` takes
    only the events whose ``case`` property names it."""
    return {"event": event, "where": f"event.case = '{case}'"}


class Store:
    """A fresh warehouse with the engine's inputs as plain tables, and readers of its state."""

    def __init__(self, location: Location, folder: Path, schema: str = STATE_SCHEMA) -> None:
        self.location = location
        self.folder = folder
        self.schema = schema
        self.wh = Warehouse.open(location)
        self.dialect = self.wh.dialect
        self._ids = itertools.count(1)
        self.compiled: list[CompiledFlow] = []
        self.settings = Settings()
        self.flows_dir = folder  # the folder of the last flows() (what the CLI is given)
        self.last: dict[str, int] = {}
        with self.wh.transaction():  # one commit: a scenario's setup stays in milliseconds
            self.wh.ensure_schema("core")
            for name, columns in CORE.items():
                self.wh.execute(create_table(f"core.{name}", columns, self.dialect))
            ensure_state(self.wh, schema)
        self.flows()

    def close(self) -> None:
        self.wh.close()

    # -- inputs ----------------------------------------------------------------------------------
    def _insert(self, table: str, columns: Columns, row: Mapping[str, Any]) -> None:
        kinds = {name: kind for name, kind, _ in columns}
        names = list(row)
        values = [self._value(row[n], kinds[n]) for n in names]
        self.wh.execute(
            exp.insert(
                exp.values([tuple(values)]),
                exp.to_table(table),
                columns=names,
            )
        )
        self.wh.commit()

    def _value(self, value: Any, kind: ColumnType) -> exp.Expr:
        if value is None:
            return exp.cast(exp.null(), column_type(kind, self.dialect))
        if kind == "json":
            text = value if isinstance(value, str) else json.dumps(value, sort_keys=True)
            return exp.cast(exp.Literal.string(text), column_type(kind, self.dialect))
        if kind == "timestamp":
            value = ts(value)
        if kind == "date" and isinstance(value, str):
            value = date.fromisoformat(value)
        if isinstance(value, date) and not isinstance(value, datetime):
            return exp.cast(exp.Literal.string(value.isoformat()), "date")
        return exp.cast(literal(value), column_type(kind, self.dialect))

    def customer(
        self,
        customer_id: str,
        tz: str = "UTC",
        email: str | None = "",
        phone: str | None = None,
        email_consent: bool = True,
        sms_consent: bool = False,
        birthday: str | date | None = None,
        **attrs: Any,
    ) -> None:
        """A row of ``core.customer_attributes``; ``email=""`` means ``<id>@example.com``."""
        row: dict[str, Any] = {
            "customer_id": customer_id,
            "email": f"{customer_id}@example.com" if email == "" else email,
            "phone": phone,
            "effective_timezone": tz,
            "has_valid_timezone": True,
            "birthday": birthday,
            "is_wholesale": False,
            "has_ordered": False,
            "order_count": 0,
            "gross_revenue": 0,
            "refunded_amount": 0,
            "lifetime_revenue": 0,
            "predicted_ltv": 0,
            "discounted_order_count": 0,
            "promo_pressure_14d": 0,
            "promo_pressure_30d": 0,
            "has_email_consent": email_consent,
            "has_sms_consent": sms_consent,
            # opted in once: a customer without consent here has unsubscribed since
            "has_email_opt_in": True,
            "has_sms_opt_in": True,
            # WhatsApp and Viber: no opt-in unless a test gives one
            "has_whatsapp_consent": False,
            "has_whatsapp_opt_in": False,
            "has_viber_consent": False,
            "has_viber_opt_in": False,
            "computed_at": "2026-01-01 00:00",
        }
        unknown = set(attrs) - set(_ATTRIBUTE_TYPES)
        if unknown:
            raise KeyError(f"not customer attributes: {sorted(unknown)}")
        row.update(attrs)
        self._insert("core.customer_attributes", CUSTOMER_ATTRIBUTES, row)

    def attributes(self, customer_id: str, **attrs: Any) -> None:
        """Change attributes of a customer, as a later dbt build would."""
        update = exp.update(
            "core.customer_attributes",
            {k: self._value(v, _ATTRIBUTE_TYPES[k]) for k, v in attrs.items()},
            where=exp.column("customer_id").eq(literal(customer_id)),
        )
        self.wh.execute(update)
        self.wh.commit()

    def event(
        self,
        customer_id: str | None,
        event_type: str,
        at: str | datetime,
        loaded: str | datetime | None = None,
        event_id: str | None = None,
        visible: str | datetime | None = None,
        **properties: Any,
    ) -> str:
        """An event; loaded when it occurred unless `loaded` says later, and visible to the engine
        when loaded unless `visible` says later (a derived event materialised by a later model
        refresh). Returns its id."""
        event_id = event_id or f"ev{next(self._ids)}"
        loaded_at = loaded if loaded is not None else at
        row = {
            "event_id": event_id,
            "customer_id": customer_id,
            "event_type": event_type,
            "occurred_at": at,
            "loaded_at": loaded_at,
            "properties": properties,
            "visible_at": visible if visible is not None else loaded_at,
        }
        self._insert("core.events", EVENTS, row)
        return event_id

    def unsubscribe(
        self, customer_id: str, channel: str, at: str, loaded: str | None = None
    ) -> None:
        """An ``unsubscribed`` event and the consent attributes dbt derives from it."""
        self.event(customer_id, "unsubscribed", at=at, loaded=loaded, channel=channel)
        for c in ("email", "sms", "whatsapp", "viber") if channel == "all" else (channel,):
            self.attributes(customer_id, **{f"has_{c}_consent": False, f"{c}_unsubscribed_at": at})

    def bounce(self, customer_id: str, channel: str, at: str) -> None:
        """A hard ``message_bounced`` event and the global suppression dbt derives from it."""
        self.event(customer_id, "message_bounced", at=at, channel=channel, bounce_type="hard")
        self.attributes(customer_id, **{f"{channel}_suppressed_at": at})

    def interest(self, customer_id: str, sku: str, **times: str | None) -> None:
        """A row of ``core.product_interest`` (viewed=, carted=, ordered=; interest = latest)."""
        row: dict[str, Any] = {"customer_id": customer_id, "sku": sku}
        row.update({f"last_{k}_at": v for k, v in times.items()})
        seen = [ts(v) for k, v in times.items() if k in ("viewed", "carted") and v]
        row["last_interest_at"] = max(seen) if seen else None  # type: ignore[type-var]
        self._insert("core.product_interest", PRODUCT_INTEREST, row)

    def segment(self, customer_id: str, segment: str) -> None:
        self._insert(
            "core.segment_members",
            SEGMENT_MEMBERS,
            {"customer_id": customer_id, "segment": segment},
        )

    def list_member(self, customer_id: str, list_name: str) -> None:
        self._insert(
            "core.list_members", LIST_MEMBERS, {"customer_id": customer_id, "list_name": list_name}
        )

    def codes(self, pool: str, *codes: str, added: str = "2026-01-01 00:00") -> None:
        """Free codes in a coupon pool (as a code import would add them)."""
        for code in codes:
            self._insert(
                f"{self.schema}.coupon_codes",
                TABLES["coupon_codes"],
                {"pool": pool, "code": code, "added_at": added},
            )

    # -- flows and ticks -------------------------------------------------------------------------
    def flows(self, *texts: str, settings: str = NEUTRAL_SETTINGS) -> list[CompiledFlow]:
        """Deploy these flow files (replacing the previous set) with these store settings."""
        folder = self.folder / f"flows{next(self._ids)}"
        folder.mkdir(parents=True)
        text = textwrap.dedent(settings)
        for key, declared in SCENARIO_DECLARATIONS.items():
            text += "" if f"\n{key}:" in f"\n{text}" else f"\n{declared}"
        (folder / "_settings.yml").write_text(text)
        write_templates(folder)
        for i, text in enumerate(texts):
            (folder / f"flow_{i}.yml").write_text(text)
        self.flows_dir = folder
        self.compiled, self.settings = load_flows(folder)
        return self.compiled

    def tick(
        self, now: str | datetime, allow_removals: bool = False, approval: Approval = NO_APPROVAL
    ) -> dict[str, int]:
        """A tick at `now`; `allow_removals` as ``flowhouse tick --allow-removals``."""
        moment = ts(now)
        assert moment is not None
        if allow_removals:
            approval = Approval(everything=True)
        self.last = run_tick(
            self.wh, self.schema, moment, self.compiled, self.settings, approval=approval
        )
        return self.last

    # -- readers ---------------------------------------------------------------------------------
    def rows(self, table: str, order: str | None = None) -> list[dict[str, Any]]:
        names = [name for name, _, _ in TABLES[table]]
        query = exp.select(*names).from_(f"{self.schema}.{table}")
        found = [dict(zip(names, row, strict=True)) for row in self.wh.query(query)]
        return sorted(
            found, key=lambda r: tuple(_sortable(r[k]) for k in (order or names[0]).split(","))
        )

    def table(self, name: str) -> list[tuple[Any, ...]]:
        """Every row of a state table, sorted: for comparing whole tables."""
        return sorted(
            (tuple(r.values()) for r in self.rows(name)), key=lambda r: tuple(map(_sortable, r))
        )

    def snapshot(self) -> dict[str, list[tuple[Any, ...]]]:
        return {name: self.table(name) for name in TABLES}

    def decisions(
        self, customer_id: str | None = None, flow_id: str | None = None
    ) -> list[dict[str, Any]]:
        """Decisions, in the order they take effect (entry first, end last, else by step)."""
        position = self._positions()
        found = [
            d
            for d in self.rows("decisions")
            if (customer_id is None or d["customer_id"] == customer_id)
            and (flow_id is None or d["flow_id"] == flow_id)
        ]
        return sorted(
            found,
            key=lambda d: (
                d["customer_id"] or "",
                d["flow_id"],
                d["effective_at"],
                d["decided_at"],
                position.get((d["flow_id"], d["step_id"]), 0),
            ),
        )

    def _positions(self) -> dict[tuple[str, str], int]:
        found: dict[tuple[str, str], int] = {}
        for f in self.compiled:
            found[(f.id, "_entry")] = -1
            found[(f.id, "_end")] = 10**6
            for s in f.steps:
                found[(f.id, s.step_id)] = s.position
        return found

    def trail(
        self, customer_id: str, flow_id: str | None = None
    ) -> list[tuple[str, str, str | None, str]]:
        """A customer's decisions as (step, outcome, reason, effective time) — the journal, short."""
        return [
            (d["step_id"], d["outcome"], d["reason"], hm(d["effective_at"]))
            for d in self.decisions(customer_id, flow_id)
        ]

    def entries(
        self, flow_id: str | None = None
    ) -> list[tuple[str | None, str | None, str, str | None]]:
        """Entry decisions as (customer, trigger event, outcome, reason), by trigger time."""
        found = [
            d for d in self.rows("decisions", "effective_at,detail") if d["step_id"] == "_entry"
        ]
        return [
            (d["customer_id"], d["detail"], d["outcome"], d["reason"])
            for d in found
            if flow_id in (None, d["flow_id"])
        ]

    def messages(self, customer_id: str | None = None) -> list[dict[str, Any]]:
        return [
            m
            for m in self.rows("messages", "due_at,flow_id,step_id,customer_id")
            if customer_id in (None, m["customer_id"])
        ]

    def outbox(self, customer_id: str | None = None) -> list[tuple[str, str, str, str | None, str]]:
        """Messages as (step, channel, status, skip reason, due time)."""
        return [
            (m["step_id"], m["channel"], m["status"], m["skip_reason"], hm(m["due_at"]))
            for m in self.messages(customer_id)
        ]

    def enrollments(self, customer_id: str | None = None) -> list[dict[str, Any]]:
        found = self.rows("enrollments", "entered_at,flow_id,customer_id")
        for e in found:
            if isinstance(e["trigger_properties"], str):  # json in DuckDB, jsonb (a dict) in PG
                e["trigger_properties"] = json.loads(e["trigger_properties"])
        return [e for e in found if customer_id in (None, e["customer_id"])]

    def enrollment(self, customer_id: str, flow_id: str | None = None) -> dict[str, Any]:
        found = [e for e in self.enrollments(customer_id) if flow_id in (None, e["flow_id"])]
        assert len(found) == 1, found
        return found[0]


def _sortable(value: Any) -> tuple[int, Any]:
    """A sort key that puts None first and never compares unlike types."""
    if value is None:
        return (0, "")
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return (1, value)
    if isinstance(value, datetime):
        return (2, value)
    return (3, str(value))
