"""Every action of the shipped flow library pushed to the shop end to end, through the command line:
a copy of the library whose `_settings.yml` routes the actions the way a store would (tags to the
shop's signed webhook, loyalty points and coupons to a Spree store), a small generated store, and
the customers the library's action flows enroll: one whose order makes them VIP (vip_upgrade: the
vip tag and the vip20 coupon) and who then has a birthday (birthday: 500 points for a VIP), and a
wholesale account (wholesale_approval: the wholesale tag). `flowhouse tick` and `flowhouse send`
go to the fake provider, which checks every request against the vendored documents. The first push
to Spree is refused (a wrong token): the coupon fails with Spree's reason and the e-mail that
carries it fails with `coupon_not_created`, never sent; `send --retry-failed` with the right token
creates the code before the e-mail goes. The warehouse shows the tags and points after a refresh."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "activation"))

from sending import fake_provider_running

from flowhouse.core.sql import render, statement
from flowhouse.core.warehouse import Location, Warehouse

pytestmark = pytest.mark.slow

LIBRARY = Path(__file__).resolve().parents[2] / "flows" / "library"
START = datetime(2026, 2, 1)
LAUNCH = datetime(2026, 2, 15)  # a Sunday
BAD_TOKEN = "not-the-stores-token-K3p9"
ROUTES = "           webhook: webhook, admin_task: webhook, audience_sync: audience}"
SHOP_ROUTES = (
    "           webhook: webhook, admin_task: webhook, audience_sync: audience,\n"
    "           add_tag: webhook, loyalty_points: spree, coupon: spree}"
)

_CUSTOMER = """
insert into raw.customers (customer_id, email, phone, first_name, created_at, timezone, country,
    birthday, email_opt_in, sms_opt_in, properties, updated_at)
values (:id, :email, null, :name, cast(:at as timestamp), 'UTC', 'US', cast(:birthday as date),
    true, false, cast(:properties as json), cast(:at as timestamp))
"""
_EVENT = """
insert into raw.events (event_id, customer_id, event_type, occurred_at, loaded_at, properties)
values (:id, :customer, :type, cast(:at as timestamp), cast(:at as timestamp),
    cast(:properties as json))
"""


def ts(moment: datetime) -> str:
    return moment.strftime("%Y-%m-%d %H:%M:%S")


def cli(*args: str, code: int = 0, **env: str) -> str:
    """A command in its own process, as a scheduler runs it, exiting ``code``."""
    environ = {**os.environ, **env}
    done = subprocess.run([sys.executable, "-m", "flowhouse.cli", *args], capture_output=True,
                          text=True, timeout=600, check=False, env=environ)  # fmt: skip
    assert done.returncode == code, done.stdout + done.stderr
    return done.stdout


def library_routed_to_the_shop(folder: Path) -> Path:
    """The shipped library, its `_settings.yml` edited to push the actions to the shop."""
    flows = folder / "flows"
    shutil.copytree(LIBRARY, flows)
    settings = flows / "_settings.yml"
    text = settings.read_text()
    assert ROUTES in text, "the library's routes changed: update this test"
    settings.write_text(text.replace(ROUTES, SHOP_ROUTES))
    return flows


def our_customers(location: Location) -> None:
    """xvip orders enough for the vip tier after launch and has a birthday two days later; xtrade
    signs up as a wholesale account."""
    with Warehouse.open(location) as wh:

        def run(text: str, **values: Any) -> None:
            wh.execute(render(statement(text, **values), wh.dialect))

        joined = LAUNCH - timedelta(days=40)
        birthday = (LAUNCH + timedelta(days=2)).replace(year=1990).date().isoformat()
        run(_CUSTOMER, id="xvip", email="xvip@example.com", name="Vera", at=ts(joined),
            birthday=birthday, properties="{}")  # fmt: skip
        signed_up = LAUNCH + timedelta(hours=1)
        run(_CUSTOMER, id="xtrade", email="xtrade@example.com", name="Trent", at=ts(signed_up),
            birthday=None, properties=json.dumps({"wholesale": True}))  # fmt: skip
        order = {"order_id": "xo-1", "subtotal": 2500.0, "value": 2500.0, "currency": "USD"}
        run(_EVENT, id="x-1", customer="xvip", type="order_placed",
            at=ts(LAUNCH + timedelta(hours=1)), properties=json.dumps(order))  # fmt: skip
        run(_EVENT, id="x-2", customer="xtrade", type="customer_created", at=ts(signed_up),
            properties=json.dumps({"source": "web", "wholesale": True}))  # fmt: skip
        wh.commit()


@dataclass
class Run:
    location: Location
    url: str
    outputs: dict[str, str]


@pytest.fixture(scope="module")
def store(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Run]:
    folder = tmp_path_factory.mktemp("actions")
    flows = library_routed_to_the_shop(folder)
    warehouse = str(folder / "store.duckdb")
    location = Location.parse(warehouse)
    cli("generate", "--warehouse", warehouse, "--customers", "300", "--days", "14",
        "--start", START.isoformat())  # fmt: skip
    outputs: dict[str, str] = {}
    with fake_provider_running("--inbox", str(folder / "inbox")) as url:
        base = ["--warehouse", warehouse, "--flows", str(flows), "--inbox", str(folder / "inbox"),
                "--provider-url", url]  # fmt: skip

        def tick(hours: int, *extra: str, code: int = 0, **env: str) -> None:
            now = (LAUNCH + timedelta(hours=hours)).isoformat()
            outputs[f"tick {hours}"] = cli("tick", *base, "--now", now, *extra, code=code, **env)

        tick(0)  # the library goes live
        for pool, prefix in (("vip20", "VIP-"), ("birthday15", "BDAY-")):  # the store's codes
            cli("coupons", "add", pool, "--warehouse", warehouse, "--generate", "3",
                "--prefix", prefix)  # fmt: skip
        our_customers(location)
        # xvip turns VIP and xtrade wholesale at this build; the store's token is wrong
        tick(4, code=3, FLOWHOUSE_SPREE_TOKEN=BAD_TOKEN)
        # the congratulations e-mail is due at 08:00 (quiet hours): its coupon failed
        tick(10, "--no-build", code=3, FLOWHOUSE_SPREE_TOKEN=BAD_TOKEN)
        outputs["failed"] = _outbox(location)
        # the store's token is fixed: the failed rows are requeued and pushed
        now = (LAUNCH + timedelta(hours=11)).isoformat()
        outputs["retry"] = cli("send", *base, "--now", now, "--retry-failed")
        tick(58)  # xvip's birthday (day 2, 00:00 UTC; greeted from 09:00)
        tick(59, "--no-build")
        tick(60)  # a refresh shows the points
        yield Run(location, url, outputs)


def _outbox(location: Location) -> str:
    with Warehouse.open(location) as wh:
        rows = wh.query(
            "select customer_id, flow_id, step_id, channel, status, "
            "coalesce(failure_reason, skip_reason, '') from flowhouse.messages "
            "where customer_id in ('xvip', 'xtrade') order by flow_id, step_id"
        )
    return json.dumps([list(map(str, r)) for r in rows])


def _messages(location: Location) -> dict[tuple[str, str], tuple[str, str]]:
    """Our customers' outbox: (flow, step) -> (status, failure reason)."""
    return {(f, s): (st, r) for _, f, s, _, st, r in json.loads(_outbox(location))}


def test_a_refused_push_fails_the_coupon_and_its_mail_with_the_reason(store: Run) -> None:
    failed = {(f, s): (st, r) for _, f, s, _, st, r in json.loads(store.outputs["failed"])}
    status, reason = failed[("vip_upgrade", "vip_discount")]
    assert status == "failed" and reason.startswith("401 GET /api/v2/platform/promotions: "), failed
    assert BAD_TOKEN not in reason
    assert failed[("vip_upgrade", "congratulations")] == ("failed", "coupon_not_created: " + reason)
    # the webhook took the tags meanwhile
    assert failed[("vip_upgrade", "tag_vip")][0] == "sent", failed
    assert failed[("wholesale_approval", "tag_wholesale")][0] == "sent", failed
    assert "spree: failed" in store.outputs["tick 4"], store.outputs["tick 4"]


def test_each_library_action_reaches_the_shop_after_the_retry(store: Run) -> None:
    found = _messages(store.location)
    for step in (("vip_upgrade", "tag_vip"), ("vip_upgrade", "vip_discount"),
                 ("wholesale_approval", "tag_wholesale"), ("birthday", "vip_points")):  # fmt: skip
        assert found.get(step, ("missing", ""))[0] == "sent", (step, found)
    assert found[("vip_upgrade", "congratulations")][0] in ("sent", "delivered"), found
    # the birthday's 15% waits for another year: the vip20 code is still unused
    assert found[("birthday", "vip_greeting")] == ("skipped", "discount_active"), found

    stats = httpx.get(f"{store.url}/_fake/stats").json()
    # only the wrong token was refused (the coupon's look-up): every request was valid
    assert stats["rejected"] == {"unauthorized": 1}, stats
    assert stats["rejected_by_provider"] == {"spree": 1}, stats
    received = httpx.get(f"{store.url}/_fake/messages").json()["messages"]
    entries = httpx.get(f"{store.url}/_fake/sync?destination=webhook").json()["entries"]
    tags = {
        (e["attributes"]["customer_id"], e["attributes"]["payload"]["tag"])
        for e in entries
        if e["attributes"]["channel"] == "add_tag"
    }
    assert {("xvip", "vip"), ("xtrade", "wholesale")} <= tags, entries

    shop = httpx.get(f"{store.url}/_fake/spree").json()
    metadata = shop["users"]["xvip"]["private_metadata"]["flowhouse"]
    assert metadata["loyalty_points"] == 500 and "vip" in metadata["tags"], shop["users"]
    promotions = {p["attributes"]["code"]: p["id"] for p in shop["promotions"]}
    percents = {
        a["relationships"]["promotion"]["data"]["id"]: a["attributes"]["calculator_attributes"][
            "preferred_flat_percent"
        ]
        for a in shop["promotion_actions"]
    }
    # each code with its pool's discount (other customers' birthday15 codes too)
    assert all(percents[p] == (20.0 if c.startswith("vip-") else 15.0)
               for c, p in promotions.items()), shop  # fmt: skip
    with Warehouse.open(store.location) as wh:
        [(issued,)] = wh.query(
            "select lower(code) from flowhouse.coupon_codes where customer_id = 'xvip' "
            "and pool = 'vip20'"
        )
    code = str(issued)
    assert code in promotions, shop
    # the promotion was made before the e-mail that carries its code went
    [made] = [i for i, m in enumerate(received) if m["provider"] == "spree"
              and m["subject"] == "promotion" and code in m["body"].lower()]  # fmt: skip
    [mail] = [i for i, m in enumerate(received) if m["provider"] == "sendgrid"
              and m["address"] == "xvip@example.com" and m["subject"] == "Welcome to VIP"]  # fmt: skip
    assert made < mail, [(m["provider"], m["address"], m["subject"]) for m in received]


def test_the_warehouse_shows_the_tags_and_points_after_a_refresh(store: Run) -> None:
    with Warehouse.open(store.location) as wh:
        rows = wh.query(
            "select customer_id, tags, loyalty_points, tier from core.customer_attributes "
            "where customer_id in ('xvip', 'xtrade') order by customer_id"
        )
    found = {r[0]: (sorted(r[1]), int(r[2]), r[3]) for r in rows}
    assert found["xvip"] == (["vip"], 500, "vip"), found
    assert found["xtrade"][0] == ["wholesale"], found
