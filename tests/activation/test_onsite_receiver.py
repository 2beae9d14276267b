"""The storefront's side of `flowhouse receive`: customer tokens (missing, malformed, expired,
forged, another customer's, too long-lived), what a poll answers, what a seen, dismissed or
clicked post stores, a busy DuckDB warehouse, and the endpoints off without a secret."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from starlette.testclient import TestClient

from flowhouse.activation.onsite import WarehouseBusy
from flowhouse.activation.providers.onsite.token import check, sign
from flowhouse.activation.receiver import OnsiteAccess, Verification, create_app

SECRET = "shared-secret"
NOW = 1_800_000_000.0
MESSAGE = {"message_id": "m1", "flow_id": "f", "step_id": "s", "title": "Hi", "body": "<p>Hi</p>",
           "body_format": "html", "deep_link": "/cart", "created_at": "2027-01-15T08:00:00Z",
           "expires_at": "2027-01-22T08:00:00Z", "status": "pending"}  # fmt: skip
CHECKS = Verification(unverified=frozenset({"sendgrid", "twilio"}))


@pytest.mark.parametrize(
    ("customer", "token", "status", "reason"),
    [
        ("c1", sign(SECRET, "c1", int(NOW) + 60), None, None),
        ("c1", "", 401, "required"),
        ("c1", "v2.123.abc", 401, "malformed"),
        ("c1", "v1.soon.abc", 401, "malformed"),
        ("c1", sign(SECRET, "c1", int(NOW) - 1), 401, "expired"),
        ("c1", sign("guess", "c1", int(NOW) + 60), 403, "does not match"),
        ("c2", sign(SECRET, "c1", int(NOW) + 60), 403, "does not match"),
        ("c1", sign(SECRET, "c1", int(NOW) + 2 * 86400), 403, "further ahead"),
        ("", sign(SECRET, "", int(NOW) + 60), 400, "customer is required"),
    ],
)
def test_customer_tokens(customer: str, token: str, status: int | None, reason: str | None) -> None:
    found = check(SECRET, customer, token, NOW, 86400)
    assert (found.status_code if found else None) == status
    assert reason is None or (found is not None and reason in found.reason)


def client(inbox: Path, read: Any, secret: str | None = SECRET) -> TestClient:
    access = None
    if secret is not None:
        access = OnsiteAccess(secret, timedelta(days=1), 20, read)
    return TestClient(create_app(inbox, "k", CHECKS, clock=lambda: NOW, onsite=access))


def test_a_poll_answers_the_pending_messages(tmp_path: Path) -> None:
    asked: list[tuple[str, datetime, int]] = []

    def read(customer: str, now: datetime, limit: int) -> list[dict[str, Any]]:
        asked.append((customer, now, limit))
        return [MESSAGE]

    token = sign(SECRET, "c1", int(NOW) + 60)
    with client(tmp_path, read) as c:
        answer = c.get("/onsite/messages", params={"customer": "c1"},
                       headers={"Authorization": f"Bearer {token}"})  # fmt: skip
    assert answer.status_code == 200
    assert answer.json() == {"customer_id": "c1", "messages": [MESSAGE]}
    assert answer.headers["access-control-allow-origin"] == "*"
    assert asked == [("c1", datetime.fromtimestamp(NOW, UTC).replace(tzinfo=None), 20)]


@pytest.mark.parametrize("kind", ["seen", "dismissed", "clicked"])
def test_engagement_is_stored_for_the_inbox(tmp_path: Path, kind: str) -> None:
    params = {"customer": "c1", "token": sign(SECRET, "c1", int(NOW) + 60)}
    with client(tmp_path, lambda *_: [MESSAGE]) as c:
        assert c.post(f"/onsite/messages/m1/{kind}", params=params).status_code == 202
        assert c.post("/onsite/messages/m9/seen", params=params).status_code == 404
        assert c.post("/onsite/messages/m1/liked", params=params).status_code == 404
    [stored] = list((tmp_path / "onsite").glob("*.json"))
    record = json.loads(stored.read_text())
    assert {k: record[k] for k in ("kind", "message_id", "customer_id")} == {
        "kind": kind, "message_id": "m1", "customer_id": "c1",
    }  # fmt: skip


def test_a_busy_warehouse_answers_503_with_retry_after(tmp_path: Path) -> None:
    def read(*_: Any) -> list[dict[str, Any]]:
        raise WarehouseBusy("the warehouse is being written; ask again shortly")

    params = {"customer": "c1", "token": sign(SECRET, "c1", int(NOW) + 60)}
    with client(tmp_path, read) as c:
        answer = c.get("/onsite/messages", params=params)
    assert (answer.status_code, answer.headers["retry-after"]) == (503, "5")


def test_without_a_secret_the_endpoints_say_they_are_off(tmp_path: Path) -> None:
    with client(tmp_path, lambda *_: [], secret=None) as c:
        answer = c.get("/onsite/messages", params={"customer": "c1", "token": "x"})
    assert answer.status_code == 404 and "not configured" in answer.text
    assert not (tmp_path / "onsite").exists()
