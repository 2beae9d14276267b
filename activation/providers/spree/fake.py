"""A Spree store in the fake provider: the Platform API endpoints flowhouse uses, every request
checked against ``specs/spree_platform.yaml`` and the bearer token against the fake's
``spree_token``.

- ``PATCH /api/v2/platform/users/{id}``: the user's metadata replaced as a whole (the user is
  made on first use: the fake store knows every customer);
- ``GET /api/v2/platform/promotions`` (``filter[code_eq]``, ``include=promotion_actions``),
  ``POST /api/v2/platform/promotions`` (422 when the code is taken, as Spree answers) and
  ``POST /api/v2/platform/promotion_actions``;
- ``GET /_fake/spree``: the store's users and promotions; ``POST /_fake/spree/faults``
  ``{"promotion_actions": n}``: the next n action creations answer 500 after the promotion was
  made (a run dying between the two requests).
"""

from __future__ import annotations

import hmac
import json
from dataclasses import dataclass, field
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from flowhouse.activation.fake.common import (
    EXCERPT,
    Fake,
    FakeApi,
    FakeRoute,
    reject,
    validate,
)
from flowhouse.activation.fake.state import Received

JSON_API = "application/vnd.api+json"


def error_body(status: int, message: str, field: str | None, code: int | None) -> dict[str, Any]:
    """Spree's error body: ``{"error": "...", "errors": {field: [...]}}``."""
    body: dict[str, Any] = {"error": message}
    if field:
        body["errors"] = {field: [message]}
    return body


@dataclass
class Store:
    """The fake store's records."""

    users: dict[str, dict[str, Any]] = field(default_factory=dict)
    promotions: dict[str, dict[str, Any]] = field(default_factory=dict)
    actions: dict[str, dict[str, Any]] = field(default_factory=dict)
    fail_actions: int = 0
    next_id: int = 1

    def new_id(self) -> str:
        self.next_id += 1
        return str(self.next_id)


def store(fake: Fake) -> Store:
    found = fake.state.stores.get("spree")
    if not isinstance(found, Store):
        found = fake.state.stores["spree"] = Store()
    return found


def _checked(fake: Fake, request: Request, body: bytes) -> Response | None:
    refused = validate(fake, "spree", request, body)
    if refused:
        return refused
    scheme, _, token = request.headers.get("authorization", "").partition(" ")
    expected = fake.settings.spree_token
    if scheme.lower() != "bearer" or not hmac.compare_digest(token.encode(), expected.encode()):
        return reject(fake, "spree", 401, "unauthorized", "The access token is invalid")
    return None


def _answer(data: Any, status: int = 200, included: list[Any] | None = None) -> Response:
    body: dict[str, Any] = {"data": data}
    if included is not None:
        body["included"] = included
    return Response(json.dumps(body), status_code=status, media_type=JSON_API)


def _accept(fake: Fake, request: Request, what: str, body: bytes, customer: str | None) -> None:
    record = Received(
        provider="spree",
        message_id=None,
        provider_message_id=None,
        address=request.url.path,
        subject=what,
        body=body.decode("utf-8", "replace")[:EXCERPT],
        send_at=None,
        received_at=fake.clock.now(),
        customer_id=customer,
    )
    fake.state.accept("spree", [record])


async def update_user(fake: Fake, request: Request) -> Response:
    """``PATCH /api/v2/platform/users/{id}``: metadata replaced whole."""
    body = await request.body()
    refused = _checked(fake, request, body)
    if refused:
        return refused
    user_id = request.path_params["id"]
    fields = json.loads(body)["user"]
    user = store(fake).users.setdefault(
        user_id, {"email": f"{user_id}@shop.example", "private_metadata": {}, "public_metadata": {}}
    )
    user.update(fields)
    _accept(fake, request, "user", body, user_id)
    return _answer({"id": user_id, "type": "user", "attributes": user})


def _promotion_data(promotion_id: str, shop: Store) -> dict[str, Any]:
    promotion = shop.promotions[promotion_id]
    actions = [a for a, v in shop.actions.items() if v["promotion_id"] == promotion_id]
    return {
        "id": promotion_id,
        "type": "promotion",
        "attributes": promotion,
        "relationships": {
            "promotion_actions": {"data": [{"id": a, "type": "promotion_action"} for a in actions]}
        },
    }


def _action_data(action_id: str, shop: Store) -> dict[str, Any]:
    action = shop.actions[action_id]
    return {
        "id": action_id,
        "type": "promotion_action",
        "attributes": {k: v for k, v in action.items() if k != "promotion_id"},
        "relationships": {
            "promotion": {"data": {"id": action["promotion_id"], "type": "promotion"}}
        },
    }


async def list_promotions(fake: Fake, request: Request) -> Response:
    """``GET /api/v2/platform/promotions``, filtered on ``code_eq``."""
    refused = _checked(fake, request, b"")
    if refused:
        return refused
    shop = store(fake)
    code = request.query_params.get("filter[code_eq]")
    found = [p for p, v in shop.promotions.items() if code is None or v["code"] == code.lower()]
    included = None
    if "promotion_actions" in request.query_params.get("include", "").split(","):
        included = [
            _action_data(a, shop) for a, v in shop.actions.items() if v["promotion_id"] in found
        ]
    return _answer([_promotion_data(p, shop) for p in found], included=included)


async def create_promotion(fake: Fake, request: Request) -> Response:
    """``POST /api/v2/platform/promotions``: 201, or 422 when the code is taken."""
    body = await request.body()
    refused = _checked(fake, request, body)
    if refused:
        return refused
    shop = store(fake)
    fields = dict(json.loads(body)["promotion"])
    code = str(fields.get("code") or "").strip().lower() or None
    if code and any(p["code"] == code for p in shop.promotions.values()):
        message = "Code has already been taken"
        return reject(fake, "spree", 422, "code_taken", message, field="code")
    promotion_id = shop.new_id()
    shop.promotions[promotion_id] = fields | {"code": code}
    _accept(fake, request, "promotion", body, None)
    return _answer(_promotion_data(promotion_id, shop), status=201)


async def create_action(fake: Fake, request: Request) -> Response:
    """``POST /api/v2/platform/promotion_actions``: 201 (404 for an unknown promotion)."""
    body = await request.body()
    refused = _checked(fake, request, body)
    if refused:
        return refused
    shop = store(fake)
    if shop.fail_actions > 0:
        shop.fail_actions -= 1
        fake.state.inject("server_error")
        return JSONResponse({"error": "Internal Server Error"}, status_code=500)
    fields = dict(json.loads(body)["promotion_action"])
    if str(fields["promotion_id"]) not in shop.promotions:
        return reject(
            fake, "spree", 404, "not_found", "The resource you were looking for could not be found."
        )
    action_id = shop.new_id()
    shop.actions[action_id] = fields | {"promotion_id": str(fields["promotion_id"])}
    _accept(fake, request, "promotion_action", body, None)
    return _answer(_action_data(action_id, shop), status=201)


async def inspect(fake: Fake, request: Request) -> Response:
    """``GET /_fake/spree``: the store's records."""
    shop = store(fake)
    return JSONResponse(
        {
            "users": shop.users,
            "promotions": [_promotion_data(p, shop) for p in shop.promotions],
            "promotion_actions": [_action_data(a, shop) for a in shop.actions],
        }
    )


async def faults(fake: Fake, request: Request) -> Response:
    """``POST /_fake/spree/faults`` ``{"promotion_actions": n}``."""
    try:
        n = int(json.loads(await request.body() or b"{}").get("promotion_actions", 0))
    except (ValueError, TypeError, AttributeError):
        return JSONResponse({"error": 'expected {"promotion_actions": n}'}, status_code=400)
    store(fake).fail_actions = max(0, n)
    return JSONResponse({"promotion_actions": store(fake).fail_actions})


FAKE = FakeApi(
    routes=(
        FakeRoute("/api/v2/platform/users/{id}", update_user, "PATCH"),
        FakeRoute("/api/v2/platform/promotions", list_promotions, "GET"),
        FakeRoute("/api/v2/platform/promotions", create_promotion, "POST"),
        FakeRoute("/api/v2/platform/promotion_actions", create_action, "POST"),
        FakeRoute("/_fake/spree", inspect, "GET", injected=False),
        FakeRoute("/_fake/spree/faults", faults, "POST", injected=False),
    ),
    error=error_body,
)
