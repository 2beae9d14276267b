"""The engine's tables, in the state schema (``flowhouse`` unless a backtest uses its own).

| table | one row per |
|---|---|
| ``flows`` | flow: its current version, when it went live, was paused, was removed |
| ``flow_versions`` | version of a flow ever deployed, with its canonical spec |
| ``steps`` | step of a deployed flow version (the flattened graph) |
| ``enrollments`` | customer walking a flow: where they are, when that step is due, how it ended |
| ``decisions`` | decision, journaled once: enrolled, refused, step executed, branch taken, exited |
| ``messages`` | message or external action in the outbox: queued, held out or skipped and why,
  then how it was delivered (claimed, in flight, sent, delivered, bounced, failed) |
| ``send_attempts`` | request attempt: destination, timing, HTTP status, outcome, reason |
| ``test_sends`` | test send (``flowhouse test-send``): step, seed address, what the provider said;
  never in ``messages``, so never in the marts or the caps |
| ``coupon_codes`` | code in a coupon pool: to whom it was issued, until when, whether redeemed |
| ``profile_updates`` | warehouse action applied to a customer: tag, list, property, points, tier
  (the models read it into the customer's tags, loyalty points and tier override, which ends at
  its ``expires_at`` when the action gave ``expires_in``) |
| ``ticks`` | tick: its time, how long it took, what it did |
| ``lane_runs`` | run of a refresh lane (:mod:`flowhouse.core.lanes`): the lane, the ``now`` it
  ran as of, when it started and finished, succeeded or failed and why, who ran it |
| ``split_winners`` | split decided by its ``auto_winner`` rule: the winner, the metric, the figures
  it was decided on, when; final (a later tick never recomputes it) |
| ``split_units`` | unit an undecided ``auto_winner`` rule counts (a treatment enrollment past the
  split, or a message of an arm's send step): its arm, its start, whether it succeeded |
| ``split_unit_marks`` | ``auto_winner`` rule: what its units depend on, and the visibility time
  its units were checked through |
| ``sync_state`` | row a sync's destination holds: key, hash and values of the fields it was told |
| ``sync_runs`` | sync run: when, mode, how many rows added, changed, removed, rejected |
| ``sync_rows`` | row a sync run sent: the operation, accepted or rejected, and why |
| ``erased_customers`` | customer erased (``flowhouse erase``): the md5 of their id, never the id |
| ``onsite_messages`` | onsite message posted for a storefront: its content, until when it may
  show, pending, seen, dismissed or expired (with the reason) |
| ``invalid_device_tokens`` | device token the push provider answered dead (FCM ``UNREGISTERED``, or
  ``INVALID_ARGUMENT`` on the token): never used again |

Beside them, in ``raw``: ``retracted_events`` (:data:`RETRACTED_EVENTS`), one row per event taken
out of ``raw.events`` by ``flowhouse events retract``: the row as it was, why and when.
"""

from __future__ import annotations

from collections.abc import Sequence

from sqlglot import exp

from flowhouse.core.contract import EVENTS, RAW_SCHEMA, ColumnType
from flowhouse.core.paths import DBT_PACKAGE
from flowhouse.core.sql import STATE_SCHEMA
from flowhouse.core.warehouse import Dialect, Warehouse, column_type, create_table

Columns = Sequence[tuple[str, ColumnType, bool]]

TABLES: dict[str, Columns] = {
    "flows": (
        ("flow_id", "text", True),
        ("version", "text", True),
        ("name", "text", True),
        ("transactional", "boolean", True),
        ("holdout", "double", True),
        ("priority", "integer", True),
        ("goal_event", "text", True),
        ("goal_within_seconds", "bigint", True),
        ("went_live_at", "timestamp", True),
        ("considered_until", "timestamp", False),
        ("updated_at", "timestamp", True),
        ("removed_at", "timestamp", False),
        ("paused_at", "timestamp", False),
    ),
    "flow_versions": (
        ("flow_id", "text", True),
        ("version", "text", True),
        ("deployed_at", "timestamp", True),
        ("spec", "text", True),
    ),
    "steps": (
        ("flow_id", "text", True),
        ("step_id", "text", True),
        ("kind", "text", True),
        ("position", "integer", True),
        ("next_step", "text", False),
        ("params", "text", True),
    ),
    "enrollments": (
        ("enrollment_id", "text", True),
        ("flow_id", "text", True),
        ("flow_version", "text", True),
        ("customer_id", "text", True),
        ("trigger_event_id", "text", True),
        ("trigger_type", "text", True),
        ("trigger_properties", "json", False),
        ("entry_key", "text", False),
        ("entered_at", "timestamp", True),
        ("enrolled_at_tick", "timestamp", True),
        ("is_holdout", "boolean", True),
        ("variant", "text", False),
        ("status", "text", True),
        ("step_id", "text", False),
        ("step_started_at", "timestamp", False),
        ("due_at", "timestamp", False),
        ("arrived_at_tick", "timestamp", False),
        ("checked_at_tick", "timestamp", False),
        ("ended_at", "timestamp", False),
        ("end_reason", "text", False),
        ("updated_at_tick", "timestamp", True),
    ),
    "decisions": (
        ("decision_id", "text", True),
        ("enrollment_id", "text", True),
        ("flow_id", "text", True),
        ("flow_version", "text", True),
        ("customer_id", "text", False),
        ("step_id", "text", True),
        ("step_kind", "text", True),
        ("effective_at", "timestamp", True),
        ("decided_at", "timestamp", True),
        ("outcome", "text", True),
        ("reason", "text", False),
        ("detail", "text", False),
    ),
    "messages": (
        ("message_id", "text", True),
        ("enrollment_id", "text", True),
        ("flow_id", "text", True),
        ("flow_version", "text", True),
        ("step_id", "text", True),
        ("customer_id", "text", True),
        ("channel", "text", True),
        ("kind", "text", True),
        ("is_marketing", "boolean", True),
        ("variant", "text", False),
        ("address", "text", False),
        ("template", "text", False),
        ("subject", "text", False),
        ("preheader", "text", False),
        ("destination", "text", False),
        ("coupon_code", "text", False),
        ("payload", "text", False),
        ("due_at", "timestamp", True),
        ("queued_at", "timestamp", True),
        ("status", "text", True),
        ("skip_reason", "text", False),
        ("updated_at", "timestamp", True),
        # delivery (activation/): who claimed it, when it went out, what the provider said
        ("claim_id", "text", False),
        ("claimed_at", "timestamp", False),
        ("attempts", "integer", False),
        ("in_flight_at", "timestamp", False),
        ("next_attempt_at", "timestamp", False),
        ("send_at", "timestamp", False),
        ("provider", "text", False),
        ("provider_message_id", "text", False),
        ("sent_at", "timestamp", False),
        ("delivered_at", "timestamp", False),
        ("failure_reason", "text", False),
    ),
    "send_attempts": (
        ("message_id", "text", True),
        ("attempt", "integer", True),
        ("claim_id", "text", True),
        ("provider", "text", True),
        ("started_at", "timestamp", True),
        ("milliseconds", "double", True),
        ("status_code", "integer", False),
        ("outcome", "text", True),
        ("reason", "text", False),
        ("provider_message_id", "text", False),
    ),
    "test_sends": (
        ("test_id", "text", True),
        ("flow_id", "text", True),
        ("flow_version", "text", True),
        ("step_id", "text", True),
        ("customer_id", "text", False),
        ("channel", "text", True),
        ("address", "text", True),
        ("subject", "text", False),
        ("provider", "text", True),
        ("sent_at", "timestamp", True),
        ("status", "text", True),
        ("status_code", "integer", False),
        ("provider_message_id", "text", False),
        ("reason", "text", False),
    ),
    "coupon_codes": (
        ("pool", "text", True),
        ("code", "text", True),
        ("added_at", "timestamp", True),
        ("customer_id", "text", False),
        ("message_id", "text", False),
        ("issued_at", "timestamp", False),
        ("expires_at", "timestamp", False),
        ("redeemed_at", "timestamp", False),
    ),
    "profile_updates": (
        ("update_id", "text", True),
        ("enrollment_id", "text", True),
        ("flow_id", "text", True),
        ("step_id", "text", True),
        ("customer_id", "text", True),
        ("action", "text", True),
        ("name", "text", False),
        ("value", "text", False),
        ("updated_at", "timestamp", True),
        # when the update stops counting (a change_tier with expires_in); null: never
        ("expires_at", "timestamp", False),
    ),
    "sync_state": (
        ("sync_id", "text", True),
        ("sync_key", "text", True),
        ("row_hash", "text", True),
        ("fields", "text", True),
        ("destination_id", "text", False),
        ("synced_at", "timestamp", True),
    ),
    "sync_runs": (
        ("run_id", "text", True),
        ("sync_id", "text", True),
        ("destination", "text", True),
        ("mode", "text", True),
        ("started_at", "timestamp", True),
        ("finished_at", "timestamp", False),
        ("status", "text", True),
        ("source_rows", "bigint", False),
        ("added", "bigint", False),
        ("changed", "bigint", False),
        ("removed", "bigint", False),
        ("rejected", "bigint", False),
        ("retried", "bigint", False),
        ("error", "text", False),
    ),
    "sync_rows": (
        ("run_id", "text", True),
        ("sync_id", "text", True),
        ("sync_key", "text", True),
        ("operation", "text", True),
        ("status", "text", True),
        ("reason", "text", False),
        ("destination_id", "text", False),
        ("logged_at", "timestamp", True),
    ),
    "erased_customers": (
        ("customer_hash", "text", True),
        ("erased_at", "timestamp", True),
    ),
    "onsite_messages": (
        ("message_id", "text", True),
        ("customer_id", "text", True),
        ("flow_id", "text", True),
        ("step_id", "text", True),
        ("title", "text", False),
        ("body", "text", False),
        ("body_format", "text", False),
        ("deep_link", "text", False),
        ("created_at", "timestamp", True),
        ("expires_at", "timestamp", True),
        ("status", "text", True),
        ("seen_at", "timestamp", False),
        ("dismissed_at", "timestamp", False),
        ("ended_at", "timestamp", False),
        ("end_reason", "text", False),
    ),
    "invalid_device_tokens": (
        ("token", "text", True),
        ("customer_id", "text", True),
        ("provider", "text", True),
        ("reason", "text", True),
        ("message_id", "text", False),
        ("invalidated_at", "timestamp", True),
    ),
    "flow_skips": (
        ("tick_at", "timestamp", True),
        ("flow_id", "text", True),
        ("file", "text", False),
        ("line", "integer", False),
        ("field", "text", False),
        ("error", "text", True),
    ),
    "split_winners": (
        ("flow_id", "text", True),
        ("step_id", "text", True),
        ("flow_version", "text", True),
        ("winner", "text", True),
        ("metric", "text", True),
        ("min_sample", "bigint", True),
        ("confidence", "double", True),
        ("units", "bigint", True),
        ("successes", "bigint", True),
        ("rate", "double", True),
        ("p_value", "double", True),
        ("figures", "text", True),
        ("decided_at", "timestamp", True),
    ),
    "split_units": (
        ("flow_id", "text", True),
        ("step_id", "text", True),
        ("arm", "text", True),
        ("unit_id", "text", True),
        ("enrollment_id", "text", True),
        ("metric", "text", True),
        ("since", "timestamp", True),
        ("until", "timestamp", False),
        ("success", "boolean", True),
    ),
    "split_unit_marks": (
        ("flow_id", "text", True),
        ("step_id", "text", True),
        ("rule_key", "text", True),
        ("checked_through", "timestamp", True),
    ),
    "lane_runs": (
        ("lane", "text", True),
        ("now_at", "timestamp", True),
        ("started_at", "timestamp", True),
        ("finished_at", "timestamp", True),
        ("status", "text", True),
        ("models", "bigint", True),
        ("error", "text", False),
        ("ran_by", "text", True),
    ),
    "ticks": (
        ("tick_at", "timestamp", True),
        ("started_at", "timestamp", True),
        ("finished_at", "timestamp", True),
        ("seconds", "double", True),
        ("triggers", "bigint", True),
        ("enrolled", "bigint", True),
        ("refused", "bigint", True),
        ("decisions", "bigint", True),
        ("messages", "bigint", True),
    ),
}


#: ``raw.retracted_events``: an event's columns as loaded, then why and when it was retracted.
RETRACTED_EVENTS: Columns = (
    *((c.name, c.type, c.required) for c in EVENTS.columns),
    ("reason", "text", True),
    ("retracted_at", "timestamp", True),
)


def ensure_retracted(wh: Warehouse) -> None:
    """Create ``raw.retracted_events`` when missing (idempotent; the caller commits)."""
    wh.ensure_schema(RAW_SCHEMA)
    wh.execute(create_table(f"{RAW_SCHEMA}.retracted_events", RETRACTED_EVENTS, wh.dialect))


#: The dbt macro that creates the state tables when missing (``dbt_project/macros/state.sql``, run
#: by the project's ``on-run-start`` hook), so a bare ``dbt build`` on a warehouse flowhouse never
#: prepared finds the sources it reads. Generated from :data:`TABLES` by :func:`state_macro`
#: (``python -m flowhouse.core.state``); a test keeps the file equal to it.
STATE_MACRO = "state.sql"
#: The warehouses the macro has DDL of; any other target gets PostgreSQL's.
_MACRO_DIALECTS: tuple[Dialect, ...] = ("duckdb", "postgres")


def state_macro() -> str:
    """The text of :data:`STATE_MACRO`: ``create ... if not exists`` of the state schema and of
    every table of :data:`TABLES`, per warehouse (never edited by hand: one source of truth)."""
    lines = [
        "{#- Generated from flowhouse/core/state.py (TABLES) by `python -m flowhouse.core.state`:",
        "    do not edit. The state tables flowhouse writes, created when missing, so that the",
        "    models' sources (source('flowhouse', ...)) exist on a warehouse flowhouse never",
        "    prepared (a bare `dbt build`), and the nullable columns a later release added.",
        "-#}",
        "{% macro flowhouse_state_tables() -%}",
    ]
    for number, dialect in enumerate(_MACRO_DIALECTS):
        test = f"target.type == '{dialect}'" if dialect != "postgres" else ""
        lines.append(
            "{%- " + ("if " if number == 0 else "elif " if test else "else") + test + " %}"
        )
        lines += [f"{text};" for text in _state_ddl(dialect)]
    lines += ["{%- endif %}", "{%- endmacro %}", ""]
    return "\n".join(lines)


def _state_ddl(dialect: Dialect) -> list[str]:
    """The schema and the tables, then each nullable column added when missing: a table created
    by an earlier release gains the columns a later one added (as :func:`ensure_state` does)."""
    schema = exp.Create(this=exp.to_identifier(STATE_SCHEMA), kind="SCHEMA", exists=True)
    tables = [create_table(f"{STATE_SCHEMA}.{n}", c, dialect) for n, c in TABLES.items()]
    added = [
        exp.Alter(
            this=exp.to_table(f"{STATE_SCHEMA}.{name}"),
            kind="TABLE",
            actions=[
                exp.ColumnDef(
                    this=exp.to_identifier(column), kind=column_type(kind, dialect), exists=True
                )
            ],
        )
        for name, columns in TABLES.items()
        for column, kind, required in columns
        if not required
    ]
    return [s.sql(dialect=dialect) for s in (schema, *tables, *added)]


def ensure_state(wh: Warehouse, schema: str) -> None:
    """Create the state schema and its tables when missing (idempotent)."""
    wh.ensure_schema(schema)
    for name, columns in TABLES.items():
        wh.execute(create_table(f"{schema}.{name}", columns, wh.dialect))
        _add_missing_columns(wh, schema, name, columns)
    wh.commit()


def _add_missing_columns(wh: Warehouse, schema: str, name: str, columns: Columns) -> None:
    """Columns added in a later release, added to a state schema created before it (nullable:
    rows written before have no value for them)."""
    present = set(wh.columns(schema, name))
    for column, kind, _ in columns:
        if column not in present:
            add = exp.Alter(
                this=exp.to_table(f"{schema}.{name}"),
                kind="TABLE",
                actions=[
                    exp.ColumnDef(
                        this=exp.to_identifier(column), kind=column_type(kind, wh.dialect)
                    )
                ],
            )
            wh.execute(add)


if __name__ == "__main__":
    (DBT_PACKAGE / "macros" / STATE_MACRO).write_text(state_macro())
