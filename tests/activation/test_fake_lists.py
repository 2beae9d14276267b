"""The fake provider's audience-sync endpoints, over real HTTP on a free port.

Request bodies are built by hand from the providers' documents (``specs/``), so these tests
check the fake against the contract: Klaviyo profiles and list memberships, SendGrid marketing
contacts and lists, paid-audience removals, webhook rows, the inspection endpoints and reset.
"""

from __future__ import annotations

import hashlib
import hmac
import json
from collections.abc import Callable, Iterator
from typing import Any

import httpx
import pytest

from flowhouse.activation.fake.server import FakeProvider, running
from flowhouse.activation.fake.settings import FakeSettings

KLAVIYO = {
    "Authorization": "Klaviyo-API-Key pk_test",
    "revision": "2026-07-15",
    "Content-Type": "application/vnd.api+json",
}
SENDGRID = {"Authorization": "Bearer SG.test-key"}
AUDIENCE = {"Authorization": "Bearer audience-token"}
SECRET = "fake-flowhouse_webhook_secret"
LIST_A = "0b5b1e3e-8f0a-4d55-9d0c-6b0c1f0f7a11"
LIST_B = "6f9619ff-8b86-4d01-b42d-00cf4fc964ff"
VIP = "Xy12Ab"
USERS = "/audiences/vip-lookalike/users"


@pytest.fixture
def fake() -> Iterator[FakeProvider]:
    with running(FakeSettings()) as provider:
        yield provider


@pytest.fixture
def client(fake: FakeProvider) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=fake.url, timeout=10) as c:
        yield c


# -- building requests by hand -------------------------------------------------------------


def profile_import(client: httpx.Client, attributes: dict[str, Any], **data: Any) -> httpx.Response:
    body = {"data": {"type": "profile", "attributes": attributes, **data}}
    return client.post("/api/profile-import", content=json.dumps(body), headers=KLAVIYO)


def profile_id(client: httpx.Client, attributes: dict[str, Any]) -> str:
    response = profile_import(client, attributes)
    assert response.status_code in (200, 201), response.text
    return str(response.json()["data"]["id"])


def membership(client: httpx.Client, method: str, list_id: str, ids: list[str]) -> httpx.Response:
    body = {"data": [{"type": "profile", "id": i} for i in ids]}
    url = f"/api/lists/{list_id}/relationships/profiles"
    return client.request(method, url, content=json.dumps(body), headers=KLAVIYO)


def list_members(client: httpx.Client, list_id: str, size: int = 100) -> list[str]:
    """Every profile id of a Klaviyo list, following the ``next`` links."""
    url: str | None = f"/api/lists/{list_id}/relationships/profiles?page[size]={size}"
    found: list[str] = []
    while url:
        response = client.get(url, headers=KLAVIYO)
        assert response.status_code == 200, response.text
        assert response.headers["content-type"].startswith("application/vnd.api+json")
        body = response.json()
        assert all(item["type"] == "profile" for item in body["data"])
        found += [item["id"] for item in body["data"]]
        url = body["links"]["next"]
    return found


def find_profiles(client: httpx.Client, condition: str) -> httpx.Response:
    return client.get("/api/profiles", params={"filter": condition}, headers=KLAVIYO)


def upsert_contacts(
    client: httpx.Client, contacts: list[dict[str, Any]], list_ids: list[str] | None = None
) -> httpx.Response:
    body: dict[str, Any] = {"contacts": contacts}
    if list_ids is not None:
        body["list_ids"] = list_ids
    return client.put("/v3/marketing/contacts", json=body, headers=SENDGRID)


def search(client: httpx.Client, emails: list[str]) -> httpx.Response:
    body = {"emails": emails}
    return client.post("/v3/marketing/contacts/search/emails", json=body, headers=SENDGRID)


def unlist(client: httpx.Client, list_id: str, contact_ids: list[str]) -> httpx.Response:
    params = {"contact_ids": ",".join(contact_ids)}
    url = f"/v3/marketing/lists/{list_id}/contacts"
    return client.delete(url, params=params, headers=SENDGRID)


def digest(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


def audience(client: httpx.Client, method: str, rows: list[list[str]]) -> httpx.Response:
    body = {"schema": ["EMAIL_SHA256", "PHONE_SHA256"], "data": rows}
    return client.request(method, USERS, content=json.dumps(body), headers=AUDIENCE)


def signed(body: bytes, key: str) -> dict[str, str]:
    timestamp = "1767225600"
    mac = hmac.new(SECRET.encode(), f"{timestamp}.".encode() + body, hashlib.sha256)
    return {
        "Content-Type": "application/json",
        "Idempotency-Key": key,
        "X-Flowhouse-Timestamp": timestamp,
        "X-Flowhouse-Signature": "v1=" + mac.hexdigest(),
    }


def klaviyo_error(response: httpx.Response, status: int) -> dict[str, Any]:
    """The single error of a Klaviyo refusal, checked against Klaviyo's error shape."""
    assert response.status_code == status, response.text
    [item] = response.json()["errors"]
    assert {"id", "code", "title", "detail", "source"} <= set(item)
    assert item["status"] == status
    return dict(item)


# -- Klaviyo profiles ----------------------------------------------------------------------


def test_klaviyo_profiles_are_upserted_by_identifier(
    fake: FakeProvider, client: httpx.Client
) -> None:
    first = profile_import(client, {"email": "ada@example.com", "properties": {"tier": "vip"}})
    again = profile_import(
        client, {"email": "ADA@example.com", "first_name": "Ada", "properties": {"ltv": 310}}
    )
    assert (first.status_code, again.status_code) == (201, 200)
    ada = first.json()["data"]["id"]
    assert again.json()["data"]["id"] == ada
    attributes = again.json()["data"]["attributes"]
    assert attributes["properties"] == {"tier": "vip", "ltv": 310}, "properties merge"
    assert attributes["email"] == "ADA@example.com", "the last value sent is kept"
    assert attributes["created"] <= attributes["updated"]

    bob = profile_id(client, {"external_id": "cust-2", "email": "bob@example.com"})
    moved = profile_import(client, {"external_id": "cust-2", "email": "robert@example.com"})
    assert (moved.status_code, moved.json()["data"]["id"]) == (200, bob)
    assert profile_id(client, {"email": "bob@example.com"}) != bob, "the old e-mail is free"
    cleared = profile_import(
        client,
        {"email": "ada@example.com", "first_name": None},
        meta={"patch_properties": {"unset": "ltv"}},
    )
    assert cleared.json()["data"]["attributes"]["properties"] == {"tier": "vip"}
    assert "first_name" not in cleared.json()["data"]["attributes"]
    assert len(fake.state.klaviyo_profiles()) == 3
    stored = fake.state.klaviyo_profiles()[ada].attributes
    assert stored == {"email": "ada@example.com", "properties": {"tier": "vip"}}


@pytest.mark.parametrize(
    ("attributes", "pointer"),
    [
        ({"email": "not-an-email"}, "/data/attributes/email"),
        ({"email": "ada@localhost"}, "/data/attributes/email"),
        ({"email": "ada lovelace@example.com"}, "/data/attributes/email"),
        (
            {"email": "ok@example.com", "phone_number": "0415 555 0100"},
            "/data/attributes/phone_number",
        ),
        ({"first_name": "Nobody"}, "/data/"),
    ],
)
def test_klaviyo_refuses_an_invalid_profile_in_its_error_shape(
    fake: FakeProvider, client: httpx.Client, attributes: dict[str, Any], pointer: str
) -> None:
    item = klaviyo_error(profile_import(client, attributes), 400)
    assert item["source"] == {"pointer": pointer}
    assert item["code"] == "invalid"
    assert fake.state.klaviyo_profiles() == {}
    assert fake.state.sync_log() == []
    assert sum(fake.state.stats()["rejected_by_provider"].values()) == 1
    assert profile_import(client, {"email": "ok@example.com"}).status_code == 201


# -- Klaviyo lists -------------------------------------------------------------------------


def test_klaviyo_list_membership(fake: FakeProvider, client: httpx.Client) -> None:
    ada, bob, cy = (profile_id(client, {"email": f"{n}@example.com"}) for n in ("ada", "bob", "cy"))
    assert membership(client, "POST", VIP, [ada, bob]).status_code == 204
    assert membership(client, "POST", VIP, [bob]).status_code == 204, "adding twice is harmless"
    assert list_members(client, VIP) == [ada, bob]
    assert membership(client, "DELETE", VIP, [ada, cy]).status_code == 204, "cy is no member"
    assert list_members(client, VIP) == [bob]
    assert fake.state.klaviyo_list(VIP) == {bob: {"email": "bob@example.com"}}
    assert list_members(client, "never-used") == []

    item = klaviyo_error(membership(client, "POST", VIP, [cy, "01UNKNOWNPROFILE"]), 400)
    assert item["source"] == {"pointer": "/data/1/id"}
    assert list_members(client, VIP) == [bob], "a refused request changes nothing"
    klaviyo_error(membership(client, "DELETE", VIP, ["01UNKNOWNPROFILE"]), 400)
    assert list_members(client, VIP) == [bob]


def test_klaviyo_list_relationships_are_paged(fake: FakeProvider, client: httpx.Client) -> None:
    ids = [profile_id(client, {"email": f"p{i}@example.com"}) for i in range(25)]
    assert membership(client, "POST", VIP, ids).status_code == 204
    for size in (5, 10, 12, 24, 25, 100):
        assert list_members(client, VIP, size=size) == ids
    first = client.get(f"/api/lists/{VIP}/relationships/profiles", headers=KLAVIYO).json()
    assert len(first["data"]) == 20, "Klaviyo's default page size"
    assert first["links"]["next"].startswith("http")
    too_big = client.get(f"/api/lists/{VIP}/relationships/profiles?page[size]=101", headers=KLAVIYO)
    klaviyo_error(too_big, 400)
    by_email = client.get(
        f"/api/lists/{VIP}/relationships/profiles",
        params={"filter": 'equals(email,"p3@example.com")'},
        headers=KLAVIYO,
    )
    assert [p["id"] for p in by_email.json()["data"]] == [ids[3]]


def test_klaviyo_finds_a_profile_by_email(fake: FakeProvider, client: httpx.Client) -> None:
    ada = profile_id(client, {"email": "ada@example.com", "properties": {"tier": "vip"}})
    bob = profile_id(client, {"email": "bob@example.com", "external_id": "cust-2"})
    found = find_profiles(client, 'equals(email,"Ada@Example.com")')
    assert found.status_code == 200
    [profile] = found.json()["data"]
    assert (profile["type"], profile["id"]) == ("profile", ada)
    assert profile["attributes"]["properties"] == {"tier": "vip"}
    assert find_profiles(client, "equals(email,'nobody@example.com')").json()["data"] == []
    both = find_profiles(client, 'any(email,["bob@example.com","ada@example.com"])').json()
    assert {p["id"] for p in both["data"]} == {ada, bob}
    by_key = find_profiles(client, 'equals(external_id,"cust-2")').json()["data"]
    assert [p["id"] for p in by_key] == [bob]
    item = klaviyo_error(find_profiles(client, 'contains(email,"ada")'), 400)
    assert item["source"] == {"parameter": "filter"}
    assert client.get("/api/profiles", headers={"revision": "2026-07-15"}).status_code == 401


# -- SendGrid marketing contacts -----------------------------------------------------------


def test_sendgrid_contacts_upsert_and_search(fake: FakeProvider, client: httpx.Client) -> None:
    first = upsert_contacts(
        client,
        [
            {"email": "Ada@Example.com", "first_name": "Ada", "custom_fields": {"e1": "vip"}},
            {"email": "bob@example.com", "first_name": "Bob"},
        ],
        [LIST_A],
    )
    assert first.status_code == 202, first.text
    assert isinstance(first.json()["job_id"], str)
    again = upsert_contacts(
        client,
        [{"email": "ada@example.com", "last_name": "Lovelace", "custom_fields": {"e2": "7"}}],
        [LIST_B],
    )
    assert again.status_code == 202
    listed = fake.state.sendgrid_list(LIST_A)
    assert set(listed) == {"ada@example.com", "bob@example.com"}
    ada = listed["ada@example.com"]
    assert fake.state.sendgrid_list(LIST_B) == {"ada@example.com": ada}, "the same contact"
    assert ada["first_name"] == "Ada" and ada["last_name"] == "Lovelace"
    assert ada["custom_fields"] == {"e1": "vip", "e2": "7"}
    assert ada["list_ids"] == sorted([LIST_A, LIST_B])

    response = search(client, ["ADA@example.com", "nobody@example.com"])
    assert response.status_code == 200
    result = response.json()["result"]
    assert result["nobody@example.com"] == {"error": "contact not found"}
    contact = result["ada@example.com"]["contact"]
    assert contact["id"] == ada["id"]
    assert sorted(contact["list_ids"]) == sorted([LIST_A, LIST_B])
    assert {"segment_ids", "created_at", "updated_at"} <= set(contact)
    none = search(client, ["nobody@example.com"])
    assert none.status_code == 404
    assert none.json()["errors"][0]["message"]
    assert search(client, ["not-an-email"]).status_code == 400


def test_sendgrid_refuses_invalid_contacts(fake: FakeProvider, client: httpx.Client) -> None:
    response = upsert_contacts(
        client,
        [{"email": "ok@example.com"}, {"email": "broken"}, {"first_name": "Nameless"}],
        [LIST_A],
    )
    assert response.status_code == 400
    fields = [e["field"] for e in response.json()["errors"]]
    assert fields == ["contacts[1].email", "contacts[2]"]
    assert fake.state.sendgrid_contacts() == {}, "one bad contact refuses the request"
    not_uuid = upsert_contacts(client, [{"email": "ok@example.com"}], ["vip"])
    assert not_uuid.status_code == 400, "the document types list ids as UUIDs"
    assert not_uuid.json()["errors"][0]["field"] == "list_ids.0"
    assert upsert_contacts(client, [], [LIST_A]).status_code == 400
    unsigned = client.put("/v3/marketing/contacts", json={"contacts": [{"email": "a@b.co"}]})
    assert unsigned.status_code == 401
    assert fake.state.sendgrid_contacts() == {}
    assert fake.state.stats()["sync_requests"] == {}


def test_sendgrid_list_removal(fake: FakeProvider, client: httpx.Client) -> None:
    contacts = [{"email": "ada@example.com"}, {"email": "bob@example.com"}]
    upsert_contacts(client, contacts, [LIST_A, LIST_B])
    ada = fake.state.sendgrid_list(LIST_A)["ada@example.com"]["id"]
    removed = unlist(client, LIST_A, [ada])
    assert removed.status_code == 202 and removed.json()["job_id"]
    assert set(fake.state.sendgrid_list(LIST_A)) == {"bob@example.com"}
    assert set(fake.state.sendgrid_list(LIST_B)) == {"ada@example.com", "bob@example.com"}
    assert search(client, ["ada@example.com"]).json()["result"]["ada@example.com"]["contact"][
        "list_ids"
    ] == [LIST_B], "the contact stays, off the list"
    assert unlist(client, LIST_A, [ada]).status_code == 202, "not on the list: no error"
    assert unlist(client, LIST_A, [ada, "00000000-0000-4000-8000-000000000000"]).status_code == 404
    assert unlist(client, "11111111-2222-4333-8444-555555555555", [ada]).status_code == 404
    assert set(fake.state.sendgrid_list(LIST_B)) == {"ada@example.com", "bob@example.com"}
    missing = client.delete(f"/v3/marketing/lists/{LIST_A}/contacts", headers=SENDGRID)
    assert missing.status_code == 400, "contact_ids is required by the document"
    assert "contact_ids" in missing.json()["errors"][0]["message"]


# -- paid audience and webhook rows --------------------------------------------------------


def test_audience_members_are_added_and_removed_as_a_set(
    fake: FakeProvider, client: httpx.Client
) -> None:
    ada, bob, cy = (digest(f"{n}@example.com") for n in ("ada", "bob", "cy"))
    phone = digest("14155550100")
    added = audience(client, "POST", [[ada, phone], [bob, ""], [cy, ""]]).json()
    assert (added["added"], added["size"]) == (3, 3)
    removed = audience(client, "DELETE", [[bob, ""], [ada, ""]]).json()
    assert (removed["removed"], removed["size"]) == (1, 2), "members match exactly as added"
    assert audience(client, "DELETE", [[ada, phone], [ada, phone]]).json()["removed"] == 1
    assert audience(client, "DELETE", [[bob, ""]]).json()["removed"] == 0
    assert fake.state.members("vip-lookalike") == {(("EMAIL_SHA256", cy),)}
    bad = audience(client, "DELETE", [["ada@example.com", ""]])
    assert bad.status_code == 400
    unsigned = client.request("DELETE", USERS, json={"schema": ["EMAIL_SHA256"], "data": []})
    assert unsigned.status_code == 401
    assert fake.state.stats()["sync_requests"] == {"audience.add": 1, "audience.remove": 3}


def test_webhook_rows_are_kept_and_deduplicated(fake: FakeProvider, client: httpx.Client) -> None:
    rows = {
        "sync": "vip_to_erp",
        "operation": "upsert",
        "rows": [{"key": "c-1", "fields": {"tier": "vip"}}, {"key": "c-2", "fields": {}}],
    }
    body = json.dumps(rows).encode()
    for _ in range(2):
        response = client.post("/hooks/erp/vip", content=body, headers=signed(body, "run-1/0"))
        assert response.status_code == 200
    assert fake.state.hook_payloads("erp/vip") == [rows]
    entries = fake.state.sync_log("webhook")
    assert [(e.operation, e.target, e.key) for e in entries] == [
        ("upsert", "erp/vip", "c-1"),
        ("upsert", "erp/vip", "c-2"),
    ]
    stats = fake.state.stats()
    assert stats["deduplicated"] == {"webhook": 1}
    assert stats["sync_requests"] == {"webhook.post": 2}
    assert stats["sync_items"] == {"webhook.post": 2}


# -- inspection, repeats, failures and reset -----------------------------------------------


def fill(client: httpx.Client) -> tuple[str, str]:
    """A Klaviyo list, a SendGrid list and an audience with one member each."""
    ada = profile_id(client, {"email": "ada@example.com", "properties": {"tier": "vip"}})
    assert membership(client, "POST", VIP, [ada]).status_code == 204
    assert upsert_contacts(client, [{"email": "bob@example.com"}], [LIST_A]).status_code == 202
    assert audience(client, "POST", [[digest("cy@example.com"), ""]]).status_code == 200
    return ada, fake_contact(client)


def fake_contact(client: httpx.Client) -> str:
    lists = client.get("/_fake/lists").json()
    return str(lists["sendgrid"][LIST_A][0]["id"])


def test_inspection_shows_every_destination(fake: FakeProvider, client: httpx.Client) -> None:
    ada, bob = fill(client)
    lists = client.get("/_fake/lists").json()
    assert lists["klaviyo"] == {
        VIP: [{"id": ada, "email": "ada@example.com", "properties": {"tier": "vip"}}]
    }
    assert lists["sendgrid"] == {
        LIST_A: [{"id": bob, "email": "bob@example.com", "list_ids": [LIST_A]}]
    }
    assert lists["audiences"] == {"vip-lookalike": [[digest("cy@example.com"), ""]]}
    assert fake.state.lists() == lists
    stats = client.get("/_fake/stats").json()
    assert stats["sync_requests"] == {
        "klaviyo.profile_import": 1,
        "klaviyo.list_add": 1,
        "sendgrid.contacts_upsert": 1,
        "audience.add": 1,
    }
    assert stats["sync_repeats"] == 0
    logged = [(e.destination, e.operation, e.target, e.key) for e in fake.state.sync_log()]
    assert logged == [
        ("klaviyo", "upsert", None, ada),
        ("klaviyo", "add", VIP, ada),
        ("sendgrid", "upsert", LIST_A, "bob@example.com"),
        ("audience", "add", "vip-lookalike", f"EMAIL_SHA256={digest('cy@example.com')}"),
    ]
    assert fake.state.sync_log("klaviyo")[0].attributes == {
        "email": "ada@example.com",
        "properties": {"tier": "vip"},
    }


def test_rows_sent_again_unchanged_are_repeats(fake: FakeProvider, client: httpx.Client) -> None:
    ada = profile_id(client, {"email": "ada@example.com", "properties": {"tier": "vip"}})
    profile_id(client, {"email": "ada@example.com", "properties": {"tier": "gold"}})
    membership(client, "POST", VIP, [ada])
    membership(client, "DELETE", VIP, [ada])
    membership(client, "POST", VIP, [ada])
    assert fake.state.sync_repeats() == [], "changed rows and re-adds after removal are new"
    profile_id(client, {"email": "ada@example.com", "properties": {"tier": "gold"}})
    upsert_contacts(client, [{"email": "bob@example.com"}], [LIST_A])
    upsert_contacts(client, [{"email": "BOB@example.com"}], [LIST_A])
    repeats = fake.state.sync_repeats()
    assert [(e.destination, e.key) for e in repeats] == [
        ("klaviyo", ada),
        ("sendgrid", "bob@example.com"),
    ]
    assert client.get("/_fake/stats").json()["sync_repeats"] == 2
    shown = client.get("/_fake/sync", params={"destination": "sendgrid"}).json()
    assert [e["key"] for e in shown["repeats"]] == ["bob@example.com"]
    assert len(shown["entries"]) == 2


Send = Callable[[httpx.Client], httpx.Response]
Shaped = Callable[[dict[str, Any]], bool]
SENDS: list[tuple[str, Send, Shaped]] = [
    (
        "klaviyo import",
        lambda c: profile_import(c, {"email": "a@example.com"}),
        lambda b: b["errors"][0]["code"] == "throttled",
    ),
    (
        "klaviyo add",
        lambda c: membership(c, "POST", VIP, ["X"]),
        lambda b: b["errors"][0]["status"] == 429,
    ),
    (
        "sendgrid upsert",
        lambda c: upsert_contacts(c, [{"email": "a@example.com"}]),
        lambda b: bool(b["errors"][0]["message"]),
    ),
    (
        "sendgrid unlist",
        lambda c: unlist(c, LIST_A, ["X"]),
        lambda b: bool(b["errors"][0]["message"]),
    ),
    (
        "audience remove",
        lambda c: audience(c, "DELETE", [[digest("a"), ""]]),
        lambda b: b["error"]["status"] == 429,
    ),
]


@pytest.mark.parametrize(("case", "send", "shaped"), SENDS, ids=[s[0] for s in SENDS])
def test_injected_failures_apply_to_sync_endpoints(
    fake: FakeProvider, client: httpx.Client, case: str, send: Send, shaped: Shaped
) -> None:
    fake.set_failures(rate_limited=1.0, retry_after=4)
    response = send(client)
    assert (response.status_code, response.headers["Retry-After"]) == (429, "4")
    assert shaped(response.json()), response.text
    assert fake.state.stats()["injected"] == {"rate_limited": 1}
    assert fake.state.sync_log() == []
    assert fake.state.lists() == {"klaviyo": {}, "sendgrid": {}, "audiences": {}}


def test_reset_clears_every_list(fake: FakeProvider, client: httpx.Client) -> None:
    ada, bob = fill(client)
    assert client.post("/_fake/reset").status_code == 200
    assert client.get("/_fake/lists").json() == {"klaviyo": {}, "sendgrid": {}, "audiences": {}}
    assert fake.state.sync_log() == []
    stats = client.get("/_fake/stats").json()
    assert (stats["sync_requests"], stats["profiles"], stats["sendgrid_contacts"]) == ({}, 0, 0)
    klaviyo_error(membership(client, "POST", VIP, [ada]), 400)
    assert unlist(client, LIST_A, [bob]).status_code == 404
    assert profile_import(client, {"email": "ada@example.com"}).status_code == 201


REFUSALS: list[tuple[str, Send, int]] = [
    (
        "klaviyo membership of another type",
        lambda c: c.post(
            f"/api/lists/{VIP}/relationships/profiles",
            content=json.dumps({"data": [{"type": "list", "id": "X"}]}),
            headers=KLAVIYO,
        ),
        400,
    ),
    (
        "klaviyo membership without revision",
        lambda c: c.post(
            f"/api/lists/{VIP}/relationships/profiles",
            content=json.dumps({"data": []}),
            headers={k: v for k, v in KLAVIYO.items() if k != "revision"},
        ),
        400,
    ),
    (
        "klaviyo membership without a key",
        lambda c: c.delete(
            f"/api/lists/{VIP}/relationships/profiles",
            headers={k: v for k, v in KLAVIYO.items() if k != "Authorization"},
        ),
        401,
    ),
    (
        "sendgrid search without emails",
        lambda c: c.post("/v3/marketing/contacts/search/emails", json={}, headers=SENDGRID),
        400,
    ),
    (
        "sendgrid contact with a non-string custom field",
        lambda c: upsert_contacts(c, [{"email": "a@example.com", "custom_fields": {"w1": 3}}]),
        400,
    ),
    (
        "sendgrid search of more than 100 addresses",
        lambda c: search(c, [f"p{i}@example.com" for i in range(101)]),
        400,
    ),
]


@pytest.mark.parametrize(("case", "send", "status"), REFUSALS, ids=[r[0] for r in REFUSALS])
def test_invalid_sync_requests_are_refused(
    fake: FakeProvider, client: httpx.Client, case: str, send: Send, status: int
) -> None:
    response = send(client)
    assert response.status_code == status, response.text
    assert response.json()["errors"][0]
    assert fake.state.sync_log() == []
    assert sum(fake.state.stats()["rejected"].values()) == 1
