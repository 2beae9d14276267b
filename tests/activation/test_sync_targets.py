"""The sync targets: every request they build is checked against the provider's published
OpenAPI document (``flowhouse.activation.openapi``) where one exists, and every row is answered.

Responses come from ``httpx.MockTransport`` handlers that record what they receive; nothing leaves
the machine.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import random
from collections.abc import Callable, Coroutine, Sequence
from dataclasses import dataclass, field
from typing import Any

import httpx
import pytest

from flowhouse.activation import openapi as specs
from flowhouse.activation.providers import TARGETS
from flowhouse.activation.providers.audience.config import Audience
from flowhouse.activation.providers.audience.sync import AudienceTarget
from flowhouse.activation.providers.base import Secrets
from flowhouse.activation.providers.klaviyo.config import Klaviyo
from flowhouse.activation.providers.klaviyo.sync import KlaviyoTarget
from flowhouse.activation.providers.sendgrid.config import SendGrid
from flowhouse.activation.providers.sendgrid.sync import SendGridTarget
from flowhouse.activation.providers.target import Retry
from flowhouse.activation.providers.webhook.config import Webhook
from flowhouse.activation.providers.webhook.destination import (
    SIGNATURE_HEADER,
    TIMESTAMP_HEADER,
    verify,
)
from flowhouse.activation.providers.webhook.sync import WebhookTarget
from flowhouse.activation.sync.target import RowResult, SyncRow, SyncTarget
from flowhouse.core.errors import ConfigError

ENV = {
    "SENDGRID_API_KEY": "SG.sync-test-key",
    "KLAVIYO_API_KEY": "pk_sync_test_key",
    "FLOWHOUSE_WEBHOOK_SECRET": "whsec-sync-secret",
    "FLOWHOUSE_AUDIENCE_TOKEN": "audience-sync-token",
}
LIST_A = "2f0c8f5e-9d4a-4b7e-8a51-1c2d3e4f5a6b"
LIST_B = "7a6b5c4d-3e2f-4a1b-9c8d-0e1f2a3b4c5d"
Handler = Callable[[httpx.Request], httpx.Response]


@dataclass
class Provider:
    """A mock provider: routes ``(method, path)`` to handlers and records every request."""

    routes: dict[tuple[str, str], Handler]
    requests: list[httpx.Request] = field(default_factory=list)

    def __call__(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        return self.routes[(request.method, request.url.path)](request)

    def sent(self, method: str, path: str) -> list[httpx.Request]:
        return [r for r in self.requests if (r.method, r.url.path) == (method, path)]


@dataclass
class Sleeps:
    """Stands in for ``asyncio.sleep``: records the waits, waits for nothing."""

    waits: list[float] = field(default_factory=list)

    async def __call__(self, seconds: float) -> None:
        self.waits.append(seconds)


def run(
    target: SyncTarget,
    provider: Provider,
    call: Callable[[httpx.AsyncClient], Coroutine[Any, Any, list[RowResult]]],
) -> list[RowResult]:
    async def go() -> list[RowResult]:
        async with httpx.AsyncClient(transport=httpx.MockTransport(provider)) as client:
            return await call(client)

    return asyncio.run(go())


def upsert(target: SyncTarget, provider: Provider, rows: Sequence[SyncRow]) -> list[RowResult]:
    return run(target, provider, lambda client: target.upsert(client, rows))


def remove(target: SyncTarget, provider: Provider, rows: Sequence[SyncRow]) -> list[RowResult]:
    return run(target, provider, lambda client: target.remove(client, rows))


def secrets() -> Secrets:
    return Secrets(dict(ENV))


def by_key(results: Sequence[RowResult]) -> dict[str, RowResult]:
    return {r.key: r for r in results}


def body(request: httpx.Request) -> Any:
    return json.loads(request.content)


def route(spelled: str) -> tuple[str, str]:
    """``"POST /path"`` as ``("POST", "/path")``."""
    method, path = spelled.split(" ", 1)
    return method, path


def assert_valid(requests: Sequence[httpx.Request]) -> None:
    assert requests
    for request in requests:
        assert specs.problems(request) == [], (request.method, request.url)


def broken(request: httpx.Request, content: Any) -> httpx.Request:
    """``request`` with another JSON body (for the validator's negative checks)."""
    data = json.dumps(content).encode()
    headers = {k: v for k, v in request.headers.items() if k.lower() != "content-length"}
    return httpx.Request(request.method, request.url, headers=headers, content=data)


def test_every_destination_is_registered_with_its_batch_limit() -> None:
    assert {name: cls.batch_size for name, cls in TARGETS.items()} == {
        "klaviyo": 1000,
        "sendgrid": 1000,
        "audience": 10_000,
        "webhook": 500,
    }
    assert all(cls.name == name for name, cls in TARGETS.items())


# -- Klaviyo --------------------------------------------------------------------------------


def klaviyo(concurrency: int = 4, base_url: str | None = None) -> KlaviyoTarget:
    return KlaviyoTarget(
        {"list_id": "Xy12Ab"}, Klaviyo(concurrency=concurrency), secrets(), base_url
    )


MEMBERSHIP = "/api/lists/Xy12Ab/relationships/profiles"


def profile_import(request: httpx.Request) -> httpx.Response:
    """Klaviyo's profile import: 400 for an address without a dot in its domain, else the
    profile (its id made from the external id)."""
    attributes = body(request)["data"]["attributes"]
    email = attributes.get("email", "")
    if email and "." not in email.split("@")[-1]:
        error = {
            "id": "e1",
            "status": 400,
            "code": "invalid",
            "title": "Invalid input.",
            "detail": "Invalid email address",
            "source": {"pointer": "/data/attributes/email"},
        }
        return httpx.Response(400, json={"errors": [error]})
    profile_id = "01P" + attributes["external_id"].upper()
    return httpx.Response(201, json={"data": {"type": "profile", "id": profile_id}})


def klaviyo_provider(**extra: Handler) -> Provider:
    routes: dict[tuple[str, str], Handler] = {
        ("POST", "/api/profile-import"): profile_import,
        ("POST", MEMBERSHIP): lambda r: httpx.Response(204),
        ("DELETE", MEMBERSHIP): lambda r: httpx.Response(204),
    }
    routes.update({route(k): v for k, v in extra.items()})
    return Provider(routes)


def test_klaviyo_rejects_only_the_profile_klaviyo_refuses() -> None:
    rows = [
        SyncRow(
            "c1",
            {
                "email": "ada@example.com",
                "first_name": "Ada",
                "phone_number": "+44 20 7946 0958",
                "properties.tier": "vip",
                "properties.orders": 3,
            },
        ),
        SyncRow("c2", {"email": "bob@localhost", "first_name": "Bob"}),
        SyncRow("c3", {"email": "cy@example.com", "last_name": None}),
    ]
    provider = klaviyo_provider()
    results = by_key(upsert(klaviyo(), provider, rows))

    assert results["c1"] == RowResult("c1", "accepted", "01PC1")
    assert results["c3"] == RowResult("c3", "accepted", "01PC3")
    assert results["c2"].status == "rejected"
    assert "Invalid email address" in (results["c2"].reason or "")
    assert_valid(provider.requests)
    imports = {body(r)["data"]["attributes"]["external_id"]: r for r in provider.requests[:3]}
    assert body(imports["c1"])["data"]["attributes"] == {
        "external_id": "c1",
        "email": "ada@example.com",
        "first_name": "Ada",
        "phone_number": "+442079460958",
        "properties": {"tier": "vip", "orders": 3},
    }
    assert "last_name" not in body(imports["c3"])["data"]["attributes"]
    (listed,) = provider.sent("POST", MEMBERSHIP)
    assert sorted(m["id"] for m in body(listed)["data"]) == ["01PC1", "01PC3"]
    headers = listed.headers
    assert headers["authorization"] == "Klaviyo-API-Key pk_sync_test_key"
    assert headers["revision"] == Klaviyo().revision
    assert headers["content-type"] == "application/vnd.api+json"


def test_klaviyo_documents_catch_broken_bodies() -> None:
    provider = klaviyo_provider()
    upsert(klaviyo(), provider, [SyncRow("c1", {"email": "ada@example.com"})])
    imported, listed = provider.requests
    assert specs.problems(broken(imported, {"data": {"type": "profile", "attributes": []}}))
    assert specs.problems(broken(listed, {"data": [{"type": "profile"}]}))
    assert specs.problems(broken(listed, {"data": [{"type": "list", "id": "01PC1"}]}))


def test_klaviyo_imports_at_most_concurrency_profiles_at_once() -> None:
    in_flight = 0
    most = 0

    async def slow_import(request: httpx.Request) -> httpx.Response:
        nonlocal in_flight, most
        in_flight += 1
        most = max(most, in_flight)
        await asyncio.sleep(0.01)
        in_flight -= 1
        return profile_import(request)

    async def handler(request: httpx.Request) -> httpx.Response:
        if request.url.path == "/api/profile-import":
            return await slow_import(request)
        return httpx.Response(204)

    rows = [SyncRow(f"c{i}", {"email": f"p{i}@example.com"}) for i in range(9)]

    async def go() -> list[RowResult]:
        async with httpx.AsyncClient(transport=httpx.MockTransport(handler)) as client:
            return await klaviyo(concurrency=3).upsert(client, rows)

    results = asyncio.run(go())
    assert [r.status for r in results] == ["accepted"] * 9
    assert [r.key for r in results] == [row.key for row in rows]
    assert most == 3


def test_klaviyo_removes_by_profile_id_and_looks_up_the_others() -> None:
    def profiles(request: httpx.Request) -> httpx.Response:
        wanted = request.url.params["filter"]
        if wanted == 'equals(email,"bob@example.com")':
            return httpx.Response(200, json={"data": [{"type": "profile", "id": "01BOB"}]})
        return httpx.Response(200, json={"data": []})

    provider = klaviyo_provider(**{"GET /api/profiles": profiles})
    rows = [
        SyncRow("c1", {"email": "ada@example.com"}, "01PC1"),
        SyncRow("c2", {"email": "bob@example.com"}),
        SyncRow("c3", {"email": "gone@example.com"}),
    ]
    results = remove(klaviyo(), provider, rows)

    assert [r.status for r in results] == ["accepted"] * 3
    assert_valid(provider.requests)
    lookups = provider.sent("GET", "/api/profiles")
    assert sorted(r.url.params["filter"] for r in lookups) == [
        'equals(email,"bob@example.com")',
        'equals(email,"gone@example.com")',
    ]
    (deleted,) = provider.sent("DELETE", MEMBERSHIP)
    assert body(deleted) == {
        "data": [{"type": "profile", "id": "01PC1"}, {"type": "profile", "id": "01BOB"}]
    }


def test_klaviyo_removal_with_ids_only_sends_no_lookup() -> None:
    provider = klaviyo_provider()
    rows = [SyncRow(f"c{i}", {}, f"01P{i}") for i in range(3)]
    results = remove(klaviyo(), provider, rows)
    assert [r.status for r in results] == ["accepted"] * 3
    assert [r.method for r in provider.requests] == ["DELETE"]
    assert specs.problems(broken(provider.requests[0], {"data": "01P1"}))


def test_klaviyo_lookup_failure_answers_its_row_only() -> None:
    def profiles(request: httpx.Request) -> httpx.Response:
        error = {"code": "invalid_filter", "detail": "bad filter"}
        return httpx.Response(400, json={"errors": [error]})

    provider = klaviyo_provider(**{"GET /api/profiles": profiles})
    rows = [SyncRow("c1", {}, "01PC1"), SyncRow("c2", {"phone_number": "+1 415 555 0100"})]
    results = by_key(remove(klaviyo(), provider, rows))
    assert results["c1"].status == "accepted"
    assert results["c2"] == RowResult("c2", "rejected", reason="400 invalid_filter: bad filter")
    (lookup,) = provider.sent("GET", "/api/profiles")
    assert lookup.url.params["filter"] == 'equals(phone_number,"+14155550100")'
    assert body(provider.sent("DELETE", MEMBERSHIP)[0])["data"] == [
        {"type": "profile", "id": "01PC1"}
    ]


def test_klaviyo_rejects_fields_it_has_not_before_sending() -> None:
    provider = klaviyo_provider()
    rows = [
        SyncRow("c1", {"email": "a@example.com", "tier": "vip"}),
        SyncRow("c2", {"phone_number": "12"}),
    ]
    results = upsert(klaviyo(), provider, rows)
    assert [r.status for r in results] == ["rejected", "rejected"]
    assert "'tier'" in (results[0].reason or "")
    assert "phone_number" in (results[1].reason or "")
    assert provider.requests == []


def test_klaviyo_list_failure_answers_every_imported_row() -> None:
    def full(request: httpx.Request) -> httpx.Response:
        error = {"code": "not_found", "detail": "List Xy12Ab does not exist."}
        return httpx.Response(404, json={"errors": [error]})

    provider = klaviyo_provider(**{f"POST {MEMBERSHIP}": full})
    rows = [SyncRow("c1", {"email": "a@example.com"}), SyncRow("c2", {"email": "b@example.com"})]
    results = upsert(klaviyo(), provider, rows)
    assert {r.status for r in results} == {"rejected"}
    assert all(r.destination_id is None for r in results)
    assert "List Xy12Ab does not exist." in (results[0].reason or "")


def test_klaviyo_base_url_points_at_another_host() -> None:
    provider = klaviyo_provider()
    upsert(klaviyo(base_url="http://127.0.0.1:8765/"), provider, [SyncRow("c1", {})])
    assert {str(r.url.host) for r in provider.requests} == {"127.0.0.1"}
    assert_valid(provider.requests)


# -- SendGrid -------------------------------------------------------------------------------


def sendgrid() -> SendGridTarget:
    return SendGridTarget({"list_ids": [LIST_A, LIST_B]}, SendGrid(), secrets())


CONTACTS = "/v3/marketing/contacts"
SEARCH = "/v3/marketing/contacts/search/emails"


def sendgrid_provider(**extra: Handler) -> Provider:
    routes: dict[tuple[str, str], Handler] = {
        ("PUT", CONTACTS): lambda r: httpx.Response(202, json={"job_id": "job-1"}),
    }
    for list_id in (LIST_A, LIST_B):
        routes[("DELETE", f"/v3/marketing/lists/{list_id}/contacts")] = lambda r: httpx.Response(
            202, json={"job_id": "job-2"}
        )
    routes.update({route(k): v for k, v in extra.items()})
    return Provider(routes)


def test_sendgrid_upserts_contacts_into_the_lists() -> None:
    rows = [
        SyncRow(
            "c1",
            {
                "email": " Ada@Example.com ",
                "first_name": "Ada",
                "city": "London",
                "custom_fields.e1_T": "vip",
                "custom_fields.e2_N": 3,
            },
        ),
        SyncRow("c2", {"email": "not-an-address", "first_name": "Bob"}),
        SyncRow("c3", {"email": None}),
        SyncRow("c4", {"email": "cy@example.com", "last_name": None}),
    ]
    provider = sendgrid_provider()
    results = by_key(upsert(sendgrid(), provider, rows))

    assert results["c1"] == RowResult("c1", "accepted", "ada@example.com")
    assert results["c4"] == RowResult("c4", "accepted", "cy@example.com")
    assert results["c2"].status == results["c3"].status == "rejected"
    assert "e-mail" in (results["c2"].reason or "")
    (put,) = provider.requests
    assert_valid([put])
    assert body(put) == {
        "list_ids": [LIST_A, LIST_B],
        "contacts": [
            {
                "email": "Ada@Example.com",
                "first_name": "Ada",
                "city": "London",
                "custom_fields": {"e1_T": "vip", "e2_N": 3},
            },
            {"email": "cy@example.com"},
        ],
    }
    assert put.headers["authorization"] == "Bearer SG.sync-test-key"


def test_sendgrid_documents_catch_broken_bodies() -> None:
    provider = sendgrid_provider()
    upsert(sendgrid(), provider, [SyncRow("c1", {"email": "a@example.com"})])
    (put,) = provider.requests
    assert specs.problems(broken(put, {"list_ids": [LIST_A], "contacts": []}))
    assert specs.problems(broken(put, {"list_ids": ["vip"], "contacts": [{"email": "a@b.co"}]}))
    assert specs.problems(broken(put, {"contacts": [{"first_name": "x" * 51}]}))


def test_sendgrid_rejects_what_the_document_forbids_before_sending() -> None:
    provider = sendgrid_provider()
    rows = [
        SyncRow("c1", {"email": "a@example.com", "first_name": "x" * 51}),
        SyncRow("c2", {"email": "b@example.com", "properties.tier": "vip"}),
    ]
    results = upsert(sendgrid(), provider, rows)
    assert [r.status for r in results] == ["rejected", "rejected"]
    assert "first_name" in (results[0].reason or "")
    assert provider.requests == []


def test_sendgrid_refusal_naming_contacts_rejects_them_and_resends_the_others() -> None:
    def put(request: httpx.Request) -> httpx.Response:
        contacts = body(request)["contacts"]
        bad = [i for i, c in enumerate(contacts) if c["email"].endswith(".invalid")]
        if bad:
            errors = [{"field": f"contacts[{i}].email", "message": "invalid email"} for i in bad]
            return httpx.Response(400, json={"errors": errors})
        return httpx.Response(202, json={"job_id": "job-1"})

    provider = sendgrid_provider(**{f"PUT {CONTACTS}": put})
    rows = [
        SyncRow("c1", {"email": "a@example.com"}),
        SyncRow("c2", {"email": "b@shop.invalid"}),
        SyncRow("c3", {"email": "c@example.com"}),
    ]
    results = by_key(upsert(sendgrid(), provider, rows))
    assert results["c1"].status == results["c3"].status == "accepted"
    assert results["c2"] == RowResult(
        "c2", "rejected", reason="400 contacts[1].email: invalid email"
    )
    first, second = provider.requests
    assert [c["email"] for c in body(second)["contacts"]] == ["a@example.com", "c@example.com"]
    assert_valid([first, second])


def test_sendgrid_refusal_without_names_rejects_the_batch() -> None:
    def put(request: httpx.Request) -> httpx.Response:
        return httpx.Response(400, json={"errors": [{"field": "list_ids", "message": "unknown"}]})

    provider = sendgrid_provider(**{f"PUT {CONTACTS}": put})
    rows = [SyncRow("c1", {"email": "a@example.com"}), SyncRow("c2", {"email": "b@example.com"})]
    results = upsert(sendgrid(), provider, rows)
    assert results == [
        RowResult("c1", "rejected", reason="400 list_ids: unknown"),
        RowResult("c2", "rejected", reason="400 list_ids: unknown"),
    ]
    assert len(provider.requests) == 1


def test_sendgrid_removes_found_contacts_from_every_list() -> None:
    def search(request: httpx.Request) -> httpx.Response:
        result: dict[str, Any] = {}
        for email in body(request)["emails"]:
            known = {"ada@example.com": "id-ada", "bob@example.com": "id-bob"}
            found = known.get(email)
            result[email] = {"contact": {"id": found}} if found else {"error": "not found"}
        return httpx.Response(200, json={"result": result})

    provider = sendgrid_provider(**{f"POST {SEARCH}": search})
    rows = [
        SyncRow("c1", {"email": "old@example.com"}, "ada@example.com"),
        SyncRow("c2", {"email": "Bob@Example.com"}),
        SyncRow("c3", {"email": "gone@example.com"}),
        SyncRow("c4", {}),
    ]
    results = remove(sendgrid(), provider, rows)

    assert [r.status for r in results] == ["accepted"] * 4
    assert_valid(provider.requests)
    (searched,) = provider.sent("POST", SEARCH)
    assert body(searched) == {"emails": ["ada@example.com", "bob@example.com", "gone@example.com"]}
    deletes = [r for r in provider.requests if r.method == "DELETE"]
    assert [r.url.path for r in deletes] == [
        f"/v3/marketing/lists/{LIST_A}/contacts",
        f"/v3/marketing/lists/{LIST_B}/contacts",
    ]
    assert {r.url.params["contact_ids"] for r in deletes} == {"id-ada,id-bob"}


def test_sendgrid_removal_of_unknown_contacts_deletes_nothing() -> None:
    def search(request: httpx.Request) -> httpx.Response:
        return httpx.Response(404, json={"errors": [{"message": "contacts not found"}]})

    provider = sendgrid_provider(**{f"POST {SEARCH}": search})
    results = remove(sendgrid(), provider, [SyncRow("c1", {}, "gone@example.com")])
    assert results == [RowResult("c1", "accepted")]
    assert [r.method for r in provider.requests] == ["POST"]


def test_sendgrid_removal_failure_on_a_list_answers_the_found_rows() -> None:
    def search(request: httpx.Request) -> httpx.Response:
        return httpx.Response(200, json={"result": {"a@example.com": {"contact": {"id": "i"}}}})

    def missing(request: httpx.Request) -> httpx.Response:
        return httpx.Response(404, json={"errors": [{"message": "list not found"}]})

    provider = sendgrid_provider(
        **{f"POST {SEARCH}": search, f"DELETE /v3/marketing/lists/{LIST_B}/contacts": missing}
    )
    rows = [SyncRow("c1", {}, "a@example.com"), SyncRow("c2", {}, "b@example.com")]
    results = remove(sendgrid(), provider, rows)
    assert results == [
        RowResult("c1", "rejected", reason="404 list not found"),
        RowResult("c2", "accepted"),
    ]


def test_sendgrid_search_is_split_at_its_limit() -> None:
    def search(request: httpx.Request) -> httpx.Response:
        return httpx.Response(404, json={"errors": [{"message": "not found"}]})

    provider = sendgrid_provider(**{f"POST {SEARCH}": search})
    rows = [SyncRow(f"c{i}", {}, f"p{i}@example.com") for i in range(250)]
    results = remove(sendgrid(), provider, rows)
    assert len(results) == 250
    assert [len(body(r)["emails"]) for r in provider.requests] == [100, 100, 50]


# -- retries --------------------------------------------------------------------------------


def test_a_429_is_retried_after_what_the_provider_asks() -> None:
    answers = iter(
        [
            httpx.Response(429, headers={"retry-after": "0"}, json={"errors": []}),
            httpx.Response(202, json={"job_id": "job-1"}),
        ]
    )
    provider = sendgrid_provider(**{f"PUT {CONTACTS}": lambda r: next(answers)})
    target = sendgrid()
    sleeps = Sleeps()
    target.retry = Retry(sleep=sleeps)
    results = upsert(target, provider, [SyncRow("c1", {"email": "a@example.com"})])
    assert results == [RowResult("c1", "accepted", "a@example.com")]
    assert len(provider.requests) == 2
    assert sleeps.waits == [0.0]


def test_exhausted_retries_leave_the_rows_for_next_run() -> None:
    provider = klaviyo_provider(
        **{
            "POST /api/profile-import": lambda r: httpx.Response(
                503, json={"errors": [{"detail": "Service unavailable"}]}
            )
        }
    )
    target = klaviyo()
    sleeps = Sleeps()
    target.retry = Retry(sleep=sleeps, rng=random.Random(7))
    results = upsert(target, provider, [SyncRow("c1", {"email": "a@example.com"})])
    assert results == [RowResult("c1", "retry", reason="503 Service unavailable")]
    assert len(provider.requests) == 4
    assert len(sleeps.waits) == 3
    assert all(0 <= wait <= 0.2 * 2**i for i, wait in enumerate(sleeps.waits))
    assert provider.sent("POST", MEMBERSHIP) == []


def test_a_long_retry_after_is_not_waited_for() -> None:
    provider = sendgrid_provider(
        **{f"PUT {CONTACTS}": lambda r: httpx.Response(429, headers={"retry-after": "120"})}
    )
    target = sendgrid()
    sleeps = Sleeps()
    target.retry = Retry(sleep=sleeps)
    (result,) = upsert(target, provider, [SyncRow("c1", {"email": "a@example.com"})])
    assert result.status == "retry"
    assert "120" in (result.reason or "")
    assert sleeps.waits == []
    assert len(provider.requests) == 1


def test_connection_errors_and_time_outs_are_retried() -> None:
    failures: list[Exception] = [
        httpx.ConnectError("connection refused"),
        httpx.ReadTimeout("timed out"),
    ]

    def flaky(request: httpx.Request) -> httpx.Response:
        if failures:
            raise failures.pop(0)
        return httpx.Response(200)

    provider = Provider({("POST", "/hooks/sync"): flaky})
    target = webhook(base_url="http://127.0.0.1:8765/hooks/sync")
    target.retry = Retry(sleep=Sleeps())
    assert upsert(target, provider, [SyncRow("c1", {})]) == [RowResult("c1", "accepted")]
    assert len(provider.requests) == 3

    failures[:] = [httpx.ConnectError("connection refused")] * 4
    (result,) = upsert(target, provider, [SyncRow("c1", {})])
    assert result.status == "retry"
    assert "ConnectError" in (result.reason or "")


def test_other_refusals_are_not_retried_and_secrets_are_redacted() -> None:
    def echo(request: httpx.Request) -> httpx.Response:
        text = f"Invalid key {request.headers['authorization']}"
        return httpx.Response(401, json={"errors": [{"message": text}]})

    provider = sendgrid_provider(**{f"PUT {CONTACTS}": echo})
    target = sendgrid()
    sleeps = Sleeps()
    target.retry = Retry(sleep=sleeps)
    (result,) = upsert(target, provider, [SyncRow("c1", {"email": "a@example.com"})])
    assert result.status == "rejected"
    assert result.reason == "401 Invalid key Bearer [redacted]"
    assert ENV["SENDGRID_API_KEY"] not in repr(result)
    assert len(provider.requests) == 1
    assert sleeps.waits == []


# -- audience -------------------------------------------------------------------------------


def sha(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


def audience(base_url: str | None = None) -> AudienceTarget:
    return AudienceTarget({"audience": "vip lookalike"}, Audience(), secrets(), base_url)


def test_audience_members_are_hashed_and_keyed_by_their_hashes() -> None:
    provider = Provider({("POST", "/audiences/vip lookalike/users"): lambda r: httpx.Response(200)})
    rows = [
        SyncRow("c1", {"email": " Ada@Example.COM ", "phone": "+44 (20) 7946-0958"}),
        SyncRow("c2", {"email": None, "phone": "0044 20 7946 0959"}),
        SyncRow("c3", {"email": None, "phone": None}),
    ]
    results = upsert(audience("http://127.0.0.1:8765/audiences"), provider, rows)

    ada, phone = sha("ada@example.com"), sha("442079460958")
    assert results == [
        RowResult("c1", "accepted", f"{ada}:{phone}"),
        RowResult("c2", "accepted", f":{sha('442079460959')}"),
        RowResult("c3", "rejected", reason="no e-mail or phone to match"),
    ]
    (request,) = provider.requests
    assert request.url.raw_path == b"/audiences/vip%20lookalike/users"
    assert request.headers["authorization"] == "Bearer audience-sync-token"
    assert body(request) == {
        "schema": ["EMAIL_SHA256", "PHONE_SHA256"],
        "data": [[ada, phone], ["", sha("442079460959")]],
    }
    assert b"example" not in request.content.lower()


def test_audience_removal_sends_what_was_sent() -> None:
    path = "/audiences/vip lookalike/users"
    provider = Provider({("DELETE", path): lambda r: httpx.Response(204)})
    old = f"{sha('old@example.com')}:"
    rows = [
        SyncRow("c1", {"email": "new@example.com"}, old),
        SyncRow("c2", {"email": "cy@example.com"}),
        SyncRow("c3", {}),
    ]
    results = remove(audience("http://127.0.0.1:8765/audiences"), provider, rows)
    assert [r.status for r in results] == ["accepted"] * 3
    (request,) = provider.requests
    assert request.method == "DELETE"
    assert body(request)["data"] == [[sha("old@example.com"), ""], [sha("cy@example.com"), ""]]


# -- webhook --------------------------------------------------------------------------------


def webhook(options: dict[str, Any] | None = None, base_url: str | None = None) -> WebhookTarget:
    return WebhookTarget(options or {}, Webhook(), secrets(), base_url)


def test_webhook_posts_signed_batches() -> None:
    provider = Provider({("POST", "/crm/sync"): lambda r: httpx.Response(202)})
    target = webhook({"url": "https://crm.example/crm/sync", "sync_id": "vip_to_crm"})
    rows = [SyncRow("c1", {"email": "a@example.com", "ltv": 12}), SyncRow("c2", {"email": None})]
    assert upsert(target, provider, rows) == [
        RowResult("c1", "accepted"),
        RowResult("c2", "accepted"),
    ]
    (request,) = provider.requests
    assert str(request.url) == "https://crm.example/crm/sync"
    assert body(request) == {
        "sync": "vip_to_crm",
        "operation": "upsert",
        "rows": [
            {"key": "c1", "fields": {"email": "a@example.com", "ltv": 12}},
            {"key": "c2", "fields": {"email": None}},
        ],
    }
    secret = ENV["FLOWHOUSE_WEBHOOK_SECRET"]
    timestamp = request.headers[TIMESTAMP_HEADER]
    assert verify(secret, timestamp, request.content, request.headers[SIGNATURE_HEADER])
    assert not verify(secret, timestamp, request.content + b" ", request.headers[SIGNATURE_HEADER])
    assert request.headers["idempotency-key"] == hashlib.sha256(request.content).hexdigest()


def test_webhook_removal_batches_and_pinned_url() -> None:
    provider = Provider({("POST", "/hooks/sync"): lambda r: httpx.Response(200)})
    target = webhook({"url": "https://crm.example/crm/sync"}, "http://127.0.0.1:8765/hooks/sync")
    rows = [SyncRow(f"c{i}", {"n": i}) for i in range(1001)]
    results = remove(target, provider, rows)
    assert [r.key for r in results] == [row.key for row in rows]
    assert {r.status for r in results} == {"accepted"}
    assert [len(body(r)["rows"]) for r in provider.requests] == [500, 500, 1]
    assert {body(r)["operation"] for r in provider.requests} == {"remove"}
    assert all("sync" not in body(r) for r in provider.requests)
    keys = {r.headers["idempotency-key"] for r in provider.requests}
    assert len(keys) == 3


# -- configuration --------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "options", "provider"),
    [
        ("klaviyo", {}, Klaviyo()),
        ("sendgrid", {"list_ids": []}, SendGrid()),
        ("audience", {"audience": ""}, Audience()),
        ("webhook", {"url": "x", "colour": "red"}, Webhook()),
    ],
)
def test_bad_options_are_config_errors(name: str, options: dict[str, Any], provider: Any) -> None:
    with pytest.raises(ConfigError, match=name):
        TARGETS[name](options, provider, secrets())


def test_a_missing_key_is_a_config_error_that_names_the_variable() -> None:
    with pytest.raises(ConfigError, match="KLAVIYO_API_KEY"):
        KlaviyoTarget({"list_id": "L"}, Klaviyo(), Secrets({}))
