"""Syncs end to end over HTTP: the real targets against the fake provider, and the CLI."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path
from typing import Any

from click.testing import CliRunner
from sending import Store

from flowhouse.activation.fake.server import FakeProvider
from flowhouse.activation.sync.compare import fake_identities, in_sync
from flowhouse.activation.sync.run import SyncOptions, run_sync
from flowhouse.cli import cli
from flowhouse.flows.settings import Settings
from flowhouse.flows.sync.syncfile import Sync

NOW = datetime(2026, 3, 1, 12, 0)


def make(destination: dict[str, Any], fields: dict[str, str], mode: str = "mirror") -> Sync:
    return Sync.model_validate(
        {
            "sync": f"vip_to_{next(iter(destination))}",
            "name": "VIP",
            "source": {"segment": "vip"},
            "fields": fields,
            "destination": destination,
            "mode": mode,
        }
    )


KLAVIYO = make({"klaviyo": {"list_id": "L1"}}, {"email": "email", "properties.tier": "tier"})
AUDIENCE = make({"audience": {"audience": "vip_ads"}}, {"email": "email", "phone": "phone"})
SENDGRID = make(
    {"sendgrid": {"list_ids": ["6f1b2c3d-4e5f-4a6b-8c7d-9e0f1a2b3c4d"]}},
    {"email": "email", "first_name": "first_name"},
    mode="upsert",
)


def sync(store: Store, fake: FakeProvider, which: Sync) -> Any:
    options = SyncOptions(provider_url=fake.url)
    return run_sync(store.wh, store.schema, which, Settings(), NOW, options)


def vip(store: Store, key: str, **attrs: Any) -> None:
    digits = sum(ord(c) * 31**i for i, c in enumerate(key)) % 10_000
    store.customer(key, tier="vip", phone=f"+1555000{digits:04d}", **attrs)
    store.segment(key, "vip")


def test_klaviyo_list_follows_the_segment(store: Store, fake: FakeProvider) -> None:
    for key in ("a", "b", "c"):
        vip(store, key)
    vip(store, "bad", email="not-an-address")
    first = sync(store, fake, KLAVIYO)
    assert first.sent["add"] == 3 and sum(first.rejected.values()) == 1
    assert in_sync(store.wh, fake.state, KLAVIYO)[0]
    reason = next(r["reason"] for r in store.rows("sync_rows") if r["status"] == "rejected")
    assert "email" in reason.lower()
    store.wh.execute("delete from core.segment_members where customer_id = 'b'")
    store.wh.commit()
    store.attributes("a", tier="gold")
    second = sync(store, fake, KLAVIYO)
    assert (second.sent["change"], second.sent["remove"]) == (1, 1)
    assert fake_identities(fake.state, KLAVIYO) == {("a@example.com",), ("c@example.com",)}
    assert in_sync(store.wh, fake.state, KLAVIYO)[0]
    held = fake.state.klaviyo_list("L1")
    assert {m["properties"]["tier"] for m in held.values()} == {"gold", "vip"}
    # profiles are imported only when they change; a changed profile is added to the list again
    # (an idempotent membership add), which is not a repeat of an unchanged row
    assert [e for e in fake.state.sync_repeats("klaviyo") if e.operation != "add"] == []


def test_audience_and_sendgrid(store: Store, fake: FakeProvider) -> None:
    for key in ("a", "b"):
        vip(store, key)
    sync(store, fake, AUDIENCE)
    sync(store, fake, SENDGRID)
    assert in_sync(store.wh, fake.state, AUDIENCE)[0]
    assert in_sync(store.wh, fake.state, SENDGRID)[0]
    store.wh.execute("delete from core.segment_members where customer_id = 'a'")
    store.wh.commit()
    sync(store, fake, AUDIENCE)
    sync(store, fake, SENDGRID)
    assert len(fake.state.members("vip_ads")) == 1
    assert len(fake_identities(fake.state, SENDGRID)) == 2, "upsert mode removes nobody"
    assert fake.state.sync_repeats() == []
    # a changed address is a new member: the old one leaves, the customer is held once
    store.attributes("b", phone="+15559990000", email="b.new@example.com")
    sync(store, fake, AUDIENCE)
    sync(store, fake, SENDGRID)
    assert in_sync(store.wh, fake.state, AUDIENCE)[0]
    assert len(fake.state.members("vip_ads")) == 1
    held = fake_identities(fake.state, SENDGRID)
    assert ("b.new@example.com",) in held and ("b@example.com",) not in held


def test_the_cli_runs_and_dry_runs_the_library_syncs(store: Store, fake: FakeProvider) -> None:
    if store.dialect != "duckdb":
        return
    store.customer("v1", tier="vip", has_email_consent=True)
    store.segment("v1", "vip")
    store.close()
    flows = Path(__file__).resolve().parents[2] / "flows" / "library"
    args = ["sync", "vip_to_klaviyo", "--warehouse", str(store.location.path), "--flows",
            str(flows), "--now", "2026-03-01T12:00:00", "--provider-url", fake.url]  # fmt: skip
    dry = CliRunner().invoke(cli, [*args, "--dry-run"])
    assert dry.exit_code == 0, dry.output
    assert "1 to add" in dry.output and "dry run" in dry.output
    assert fake.state.sync_log() == []
    real = CliRunner().invoke(cli, args)
    assert real.exit_code == 0, real.output
    assert "sent: add 1" in real.output
    assert "vip_to_klaviyo: 1 of 1 rows sent" in real.output  # progress after each batch
    again = CliRunner().invoke(cli, args)
    assert "0 to add" in again.output
    unknown = CliRunner().invoke(cli, ["sync", "nope", "--warehouse", str(store.location.path)])
    assert unknown.exit_code == 1 and "no such sync" in unknown.output
