"""The outbox checks find what they look for, and only that, on DuckDB and PostgreSQL; a sync is
due when its schedule has passed since its last successful run."""

from __future__ import annotations

from datetime import datetime, timedelta
from pathlib import Path

import pytest
from dagster import AssetCheckSeverity

from flowhouse.core.paths import FLOWS
from flowhouse.core.state import ensure_state
from flowhouse.core.warehouse import Location, Warehouse
from flowhouse.flows.settings import load_settings
from flowhouse.flows.sync.files import load_syncs
from flowhouse.orchestration.dagster.assets import sync_due_at
from flowhouse.orchestration.dagster.checks import (
    backlog,
    backlog_result,
    backlog_threshold,
    duplicate_message_ids,
    failed_hours,
    failed_messages,
    failed_result,
    quiet_windows,
    sent_after_unsubscribe,
    sent_in_quiet_hours,
    unsubscribe_channels,
)

NOW = datetime(2026, 9, 23, 12, 0)
KEEPS = (
    "welcome"  # keeps quiet hours (flows/library/_settings.yml: email 21:00-08:00, sms 20:00-09:00)
)
FREE = "wholesale_approval"  # quiet_hours: false


@pytest.fixture(params=["duckdb", pytest.param("postgres", marks=pytest.mark.postgres)])
def location(request: pytest.FixtureRequest, tmp_path: Path) -> Location:
    if request.param == "postgres":
        found = Location.parse(request.getfixturevalue("pg_url"))
    else:
        found = Location.parse(str(tmp_path / "store.duckdb"))
    with Warehouse.open(found) as wh:
        wh.ensure_raw_tables()
        ensure_state(wh, "flowhouse")
        wh.ensure_schema("core")
        wh.execute(
            "create table core.customer_attributes (customer_id text, effective_timezone text)"
        )
        wh.execute(
            "insert into core.customer_attributes values ('ny', 'America/New_York'), "
            "('bad_zone', null)"
        )
    return found


def _message(
    wh: Warehouse,
    message_id: str,
    customer: str,
    *,
    flow: str = KEEPS,
    channel: str = "email",
    marketing: bool = True,
    status: str = "sent",
    sent_at: datetime | None = NOW - timedelta(hours=2),
    send_at: datetime | None = None,
    due_at: datetime = NOW - timedelta(hours=3),
    next_attempt_at: datetime | None = None,
) -> None:
    def ts(value: datetime | None) -> str:
        return "null" if value is None else f"timestamp '{value:%Y-%m-%d %H:%M:%S}'"

    wh.execute(
        "insert into flowhouse.messages (message_id, enrollment_id, flow_id, flow_version, "
        "step_id, customer_id, channel, kind, is_marketing, due_at, queued_at, status, "
        "updated_at, in_flight_at, sent_at, send_at, next_attempt_at) values ("
        f"'{message_id}', 'e-{message_id}', '{flow}', 'v1', 'send', '{customer}', '{channel}', "
        f"'message', {str(marketing).lower()}, {ts(due_at)}, {ts(due_at)}, '{status}', "
        f"{ts(NOW)}, {ts(sent_at)}, {ts(sent_at)}, {ts(send_at)}, {ts(next_attempt_at)})"
    )


def _consent(
    wh: Warehouse, event_id: str, customer: str, kind: str, channel: str, at: datetime,
    loaded: datetime | None = None,
) -> None:  # fmt: skip
    loaded_at = loaded or at + timedelta(minutes=5)
    wh.execute(
        "insert into raw.events (event_id, customer_id, event_type, occurred_at, loaded_at, "
        f"properties) values ('{event_id}', '{customer}', '{kind}', "
        f"timestamp '{at:%Y-%m-%d %H:%M:%S}', timestamp '{loaded_at:%Y-%m-%d %H:%M:%S}', "
        f"""'{{"channel": "{channel}"}}')"""
    )


def test_duplicate_message_ids(location: Location) -> None:
    with Warehouse.open(location) as wh:
        _message(wh, "m1", "c1")
        _message(wh, "m2", "c1")
        assert duplicate_message_ids(wh).passed
        _message(wh, "m2", "c1")
        found = duplicate_message_ids(wh)
    assert (found.count, found.examples, found.passed) == (1, ["m2"], False)


def test_sent_after_unsubscribe_as_known_when_it_went_out(location: Location) -> None:
    day = NOW - timedelta(days=1)
    with Warehouse.open(location) as wh:
        _consent(wh, "u1", "unsub", "unsubscribed", "email", day)
        _message(wh, "to_unsub", "unsub")
        _message(wh, "transactional", "unsub", marketing=False)
        _message(wh, "sms_still_allowed", "unsub", channel="sms")
        _consent(wh, "u2", "again", "unsubscribed", "email", day)
        _consent(wh, "o2", "again", "opted_in", "email", day + timedelta(hours=1))
        _message(wh, "after_opt_in", "again")
        _consent(wh, "u3", "late", "unsubscribed", "email", NOW - timedelta(hours=3), NOW)
        _message(wh, "loaded_after_it_went", "late")
        _consent(wh, "u4", "all", "unsubscribed", " ALL ", day)
        _message(wh, "to_all", "all", channel="sms")
        _message(wh, "long_ago", "unsub", sent_at=NOW - timedelta(days=30))
        _message(wh, "not_sent", "unsub", status="skipped", sent_at=None)
        # every channel whose unsubscribes flowhouse keeps, not e-mail and SMS alone
        _consent(wh, "u5", "chat", "unsubscribed", "whatsapp", day)
        _message(wh, "to_whatsapp", "chat", channel="whatsapp")
        _consent(wh, "u6", "site", "unsubscribed", "onsite", day)
        _message(wh, "to_onsite", "site", channel="onsite")
        _consent(wh, "u7", "phone", "unsubscribed", "push", day)
        _message(wh, "to_push", "phone", channel="push")
        settings = load_settings(FLOWS)
        assert settings.delivery.routes["push"] == "fcm"
        to_devices = sent_after_unsubscribe(wh, NOW, unsubscribe_channels(settings))
        own_service = settings.model_copy(
            update={"delivery": settings.delivery.model_copy(update={"routes": {}})}
        )  # push to the store's own service (the webhook), which keeps its own unsubscribes
        found = sent_after_unsubscribe(wh, NOW, unsubscribe_channels(own_service))
    assert found.examples == ["to_all", "to_onsite", "to_unsub", "to_whatsapp"]
    assert found.count == 4 and not found.passed
    assert to_devices.examples == ["to_all", "to_onsite", "to_push", "to_unsub", "to_whatsapp"]


def test_quiet_hours_in_the_customers_zone(location: Location) -> None:
    windows, store_zone = quiet_windows(FLOWS)
    assert store_zone == "UTC"
    assert KEEPS in windows[("email", ("21:00", "08:00"))]
    assert KEEPS in windows[("sms", ("20:00", "09:00"))]
    assert all(FREE not in flows for flows in windows.values())
    with Warehouse.open(location) as wh:
        # 03:00 UTC is 23:00 in New York (EDT): inside; 23:00 UTC is 19:00 there: outside
        _message(wh, "ny_night", "ny", sent_at=datetime(2026, 9, 23, 3))
        _message(wh, "ny_evening", "ny", sent_at=datetime(2026, 9, 22, 23))
        # held by the provider until 12:00 UTC = 08:00 EDT, the window's (excluded) end
        _message(wh, "ny_held", "ny", sent_at=datetime(2026, 9, 23, 3),
                 send_at=datetime(2026, 9, 23, 12))  # fmt: skip
        _message(wh, "opted_out_flow", "ny", flow=FREE, sent_at=datetime(2026, 9, 23, 3))
        # no zone of their own: the store's (UTC)
        _message(wh, "utc_night", "nobody", sent_at=datetime(2026, 9, 22, 22))
        _message(wh, "zone_unknown_morning", "bad_zone", sent_at=datetime(2026, 9, 23, 8))
        _message(wh, "sms_evening", "nobody", channel="sms", sent_at=datetime(2026, 9, 22, 20, 30))
        _message(wh, "email_evening", "nobody", sent_at=datetime(2026, 9, 22, 20, 30))
        _message(wh, "queued", "nobody", status="queued", sent_at=None)
        found = sent_in_quiet_hours(wh, FLOWS, NOW)
    assert found.examples == ["ny_night", "sms_evening", "utc_night"]
    assert found.count == 3


def test_backlog_of_due_messages(location: Location) -> None:
    with Warehouse.open(location) as wh:
        _message(wh, "later", "c1", status="queued", sent_at=None, due_at=NOW + timedelta(hours=1))
        _message(wh, "retry_later", "c1", status="queued", sent_at=None,
                 next_attempt_at=NOW + timedelta(minutes=10))  # fmt: skip
        _message(wh, "sent_long_ago", "c1", due_at=NOW - timedelta(days=2))
        calm = backlog(wh, NOW)
        _message(wh, "stuck", "c1", status="queued", sent_at=None, due_at=NOW - timedelta(hours=2))
        stuck = backlog(wh, NOW)
    assert (calm.due, calm.minutes) == (0, 0.0)
    assert backlog_result(calm, 60).passed
    assert (stuck.due, stuck.minutes) == (1, 120.0)
    result = backlog_result(stuck, 60)
    assert not result.passed and result.severity == AssetCheckSeverity.WARN
    assert backlog_result(stuck, 180).passed


def test_failed_messages_turn_the_check_red_with_their_reasons(location: Location) -> None:
    with Warehouse.open(location) as wh:
        for mid, reason, ago in (
            ("f1", "400 to.email: invalid", 1), ("f2", "400 to.email: invalid", 2),
            ("f3", "twilio: The Twilio auth token is not set", 3), ("old", "old reason", 30),
        ):  # fmt: skip
            _message(wh, mid, "c1", status="failed", sent_at=None)
            wh.execute(
                f"update flowhouse.messages set failure_reason = '{reason}', updated_at = "
                f"timestamp '{NOW - timedelta(hours=ago):%Y-%m-%d %H:%M:%S}' "
                f"where message_id = '{mid}'"
            )
        _message(wh, "ok", "c1")
        failed = failed_messages(wh, NOW, 24)
        none = failed_messages(wh, NOW - timedelta(days=3), 24)
    assert failed.count == 3
    result = failed_result(failed)
    assert not result.passed and result.severity == AssetCheckSeverity.ERROR
    assert result.description is not None and result.description.startswith("3 messages failed")
    assert result.metadata["reasons"].value == {
        "400 to.email: invalid": 2,
        "twilio: The Twilio auth token is not set": 1,
    }
    assert result.metadata["examples"].value == "f1, f3"
    assert failed_result(none).passed


def test_failed_hours_from_the_environment() -> None:
    assert failed_hours({}) == 24
    assert failed_hours({"FLOWHOUSE_FAILED_HOURS": "2"}) == 2


def test_backlog_threshold_from_the_environment() -> None:
    assert backlog_threshold({}) == 60
    assert backlog_threshold({"FLOWHOUSE_BACKLOG_MINUTES": "15"}) == 15


def test_a_sync_is_due_after_its_schedule(location: Location) -> None:
    sync = next(s for s in load_syncs(FLOWS) if s.schedule >= timedelta(hours=1))
    assert sync_due_at(location, sync, NOW) == NOW  # never ran
    with Warehouse.open(location) as wh:
        for run, started, status in (
            ("r1", NOW - sync.schedule - timedelta(hours=5), "succeeded"),
            ("r2", NOW - timedelta(minutes=30), "partial"),
            ("r3", NOW - timedelta(minutes=10), "failed"),
        ):
            wh.execute(
                "insert into flowhouse.sync_runs (run_id, sync_id, destination, mode, "
                f"started_at, status) values ('{run}', '{sync.sync}', 'x', 'mirror', "
                f"timestamp '{started:%Y-%m-%d %H:%M:%S}', '{status}')"
            )
    assert sync_due_at(location, sync, NOW) == NOW - timedelta(minutes=30) + sync.schedule
    assert sync_due_at(location, sync, NOW + sync.schedule) < NOW + sync.schedule
