"""Spree's Platform API (``/api/v2/platform``, ``specs/spree_platform.yaml``): flow actions and
coupon codes pushed to the store.

Authentication: ``Authorization: Bearer <token>``, the token read from the environment variable
``delivery.spree.token_env`` (refused when it holds a control character, and redacted from every
reason stored or printed). The store's URL is ``delivery.spree.base_url``, else the environment
variable ``delivery.spree.url_env``.

Actions (``add_tag``, ``remove_tag``, ``loyalty_points``, ``change_tier``): one
``PATCH /api/v2/platform/users/{user_id}`` each (the customer id, or the customer property
``delivery.spree.user_id_property`` names; a customer without it fails, nothing sent), carrying the
customer's whole action state as
the warehouse holds it when the row is claimed (read set-based for the claim by
:func:`flowhouse.activation.render.shop_states`)::

    {"user": {"private_metadata": {"flowhouse": {"tags": [...], "loyalty_points": 75,
                                                 "tier": "gold"}}}}

Spree replaces a user's ``private_metadata`` as a whole, and the document offers no way to change
one key: the store's own keys in a user's ``private_metadata`` are overwritten by each push
(``public_metadata`` is left alone). Sending the whole state makes a push idempotent: sent twice,
or two pushes for one customer in either order, the user ends with the latest state.

Coupons (``coupon``): the code is created in the store before the message that carries it is
sent, in up to three requests, each of which can be repeated without creating anything twice:

1. ``GET /api/v2/platform/promotions?filter[code_eq]=<code>&include=promotion_actions``: is the
   promotion there already (Spree keeps codes in lowercase), and with which actions?
2. when it is not: ``POST /api/v2/platform/promotions`` with its ``name``
   (``flowhouse <pool> <CODE>``), ``code``, ``usage_limit`` 1 and expiry;
3. for each discount action it lacks: ``POST /api/v2/platform/promotion_actions`` — a percentage
   (``Spree::Promotion::Actions::CreateAdjustment`` with a
   ``Spree::Calculator::FlatPercentItemTotal`` of ``preferred_flat_percent``) and free shipping
   (``Spree::Promotion::Actions::FreeShipping``).

A run that dies between two of them, or a retry after a refusal, starts again at 1 and finds what
was made. The first refusal is the row's outcome (``failed`` with the store's reason, or retried
on 429 and 5xx); reconciliation is ``idempotent``.
"""

from __future__ import annotations

import json
import os
from collections.abc import Sequence
from typing import Any, ClassVar
from urllib.parse import quote

import httpx

from flowhouse.activation.message import Outcome, Outgoing
from flowhouse.activation.providers.base import (
    Call,
    Destination,
    MissingSecret,
    Reconcile,
    Secrets,
)
from flowhouse.activation.providers.spree.config import Spree, store_url

PLATFORM = "/api/v2/platform"
#: The action types whose push is the customer's whole action state.
STATE_CHANNELS = ("add_tag", "remove_tag", "loyalty_points", "change_tier")
COUPON = "coupon"
PERCENT_ACTION = "Spree::Promotion::Actions::CreateAdjustment"
PERCENT_CALCULATOR = "Spree::Calculator::FlatPercentItemTotal"
SHIPPING_ACTION = "Spree::Promotion::Actions::FreeShipping"


class BadAnswer(Exception):
    """The store answered 2xx with a body the document does not describe (retried as a 502)."""


class SpreeDestination(Destination):
    """The store's Platform API (see the module docstring)."""

    name: ClassVar[str] = "spree"
    default_base_url: ClassVar[str] = ""
    reconcile: Reconcile = "idempotent"
    config: Spree

    def __init__(self, config: Spree, secrets: Secrets, base_url: str | None = None) -> None:
        super().__init__(config, secrets, base_url or config.base_url or _from_env(config))
        self._token = secrets.get(config.token_env, "The Spree Platform API token")
        self._messages: dict[str, Outgoing] = {}
        self._ids: dict[str, str] = {}

    # -- requests ---------------------------------------------------------------------------

    def calls(self, batch: Sequence[Outgoing]) -> list[Call]:
        self._messages.update({m.message_id: m for m in batch})
        return [Call(self.first_request(m), (m.message_id,)) for m in batch]

    def first_request(self, message: Outgoing) -> httpx.Request:
        """A state push, or the look-up that starts a coupon's creation."""
        if message.channel == COUPON:
            code = str(_coupon(message).get("code") or "")
            return self.lookup_request(code)
        return self.user_request(message)

    def user_request(self, message: Outgoing) -> httpx.Request:
        """``PATCH .../users/{id}`` with the customer's action state."""
        state = message.data.get("shop") or {}
        body = {"user": {"private_metadata": {self.config.metadata_key: state}}}
        path = f"{PLATFORM}/users/{quote(self.user_id(message) or '', safe='')}"
        return self._request("PATCH", path, body)

    def user_id(self, message: Outgoing) -> str | None:
        """The customer's Spree user id: the property ``user_id_property`` names, else the
        customer id; None when that property is missing or blank (nothing is sent)."""
        key = self.config.user_id_property
        if key is None:
            return message.customer_id
        found = message.properties.get(key)
        text = "" if found is None or isinstance(found, dict | list) else str(found).strip()
        return text or None

    def lookup_request(self, code: str) -> httpx.Request:
        """The promotion with ``code`` (as Spree stores it, in lowercase), with its actions."""
        params = {"filter[code_eq]": code.lower(), "include": "promotion_actions"}
        return self._request("GET", f"{PLATFORM}/promotions", params=params)

    def promotion_request(self, message: Outgoing) -> httpx.Request:
        """``POST .../promotions``: the code, used once, until it expires."""
        coupon = _coupon(message)
        code = str(coupon["code"])
        expires = coupon.get("expires_at")
        promotion: dict[str, Any] = {
            "name": f"flowhouse {message.payload.get('pool') or 'coupon'} {code}",
            "code": code,
            "description": f"Issued by flowhouse flow {message.flow_id}, step {message.step_id}",
            "usage_limit": 1,
        }
        if expires:
            # ends_at is the document's name; expires_at the one its answers carry
            promotion |= {"ends_at": str(expires), "expires_at": str(expires)}
        return self._request("POST", f"{PLATFORM}/promotions", {"promotion": promotion})

    def action_requests(
        self, message: Outgoing, promotion_id: str, present: set[str]
    ) -> list[httpx.Request]:
        """``POST .../promotion_actions`` for each discount the promotion lacks."""
        coupon = _coupon(message)
        wanted: list[dict[str, Any]] = []
        discount = coupon.get("discount")
        if discount:
            percent = round(float(discount) * 100, 2)
            calculator = {"type": PERCENT_CALCULATOR, "preferred_flat_percent": percent}
            wanted.append({"type": PERCENT_ACTION, "calculator_attributes": calculator})
        if coupon.get("free_shipping"):
            wanted.append({"type": SHIPPING_ACTION})
        return [
            self._request(
                "POST",
                f"{PLATFORM}/promotion_actions",
                {"promotion_action": {"promotion_id": promotion_id, **action}},
            )
            for action in wanted
            if action["type"] not in present
        ]

    def _request(
        self,
        method: str,
        path: str,
        body: dict[str, Any] | None = None,
        params: dict[str, str] | None = None,
    ) -> httpx.Request:
        headers = {"authorization": f"Bearer {self._token}", "accept": "application/vnd.api+json"}
        content = None
        if body is not None:
            headers["content-type"] = "application/json"
            content = json.dumps(body, separators=(",", ":"), ensure_ascii=False).encode()
        url = self.base_url + path
        return httpx.Request(method, url, params=params, headers=headers, content=content)

    # -- sending ----------------------------------------------------------------------------

    async def exchange(self, client: httpx.AsyncClient, call: Call) -> httpx.Response:
        message = self._messages.pop(call.message_ids[0], None)
        if (
            message is not None
            and message.channel in STATE_CHANNELS
            and self.user_id(message) is None
        ):
            return _refusal(call.request, self._no_user(message))
        if message is None or message.channel in STATE_CHANNELS:
            return await client.send(call.request)
        if message.channel != COUPON:
            takes = ", ".join((*STATE_CHANNELS, COUPON))
            return _refusal(call.request, f"spree cannot push {message.channel}: it takes {takes}")
        if not _coupon(message).get("code"):
            return _refusal(call.request, "the coupon row carries no code")
        try:
            return await self._create_coupon(client, call, message)
        except BadAnswer as err:
            return httpx.Response(502, json={"error": str(err)}, request=call.request)

    def _no_user(self, message: Outgoing) -> str:
        key = self.config.user_id_property
        return (
            f"no Spree user id: customer {message.customer_id} has no property {key!r} "
            f"(delivery.spree.user_id_property); nothing was sent to the store"
        )

    async def _create_coupon(
        self, client: httpx.AsyncClient, call: Call, message: Outgoing
    ) -> httpx.Response:
        found = await client.send(call.request)
        if not found.is_success:
            return found
        data = _data(found)
        if not isinstance(data, list) or not all(isinstance(p, dict) for p in data):
            raise BadAnswer("the store's promotion list is not a list of promotions")
        listed: list[dict[str, Any]] = data
        last = found
        if listed:
            promotion_id = str(listed[0].get("id"))
            present = _action_types(found, listed[0])
        else:
            last = await client.send(self.promotion_request(message))
            if not last.is_success:
                return last
            created = _data(last)
            if not isinstance(created, dict) or created.get("id") is None:
                raise BadAnswer("the created promotion has no id")
            promotion_id, present = str(created["id"]), set()
        for request in self.action_requests(message, promotion_id, present):
            last = await client.send(request)
            if not last.is_success:
                return last
        self._ids[message.message_id] = promotion_id
        return last

    def accepted(self, call: Call, response: httpx.Response) -> list[Outcome]:
        code = response.status_code
        outcomes = []
        for m in call.message_ids:
            found = self._ids.pop(m, None) or _own_id(response) or m
            outcomes.append(Outcome(m, "sent", found, status_code=code))
        return outcomes

    def reason(self, response: httpx.Response) -> str:
        """The request refused and the store's words: ``POST /api/v2/platform/promotions:
        {"error": "Code has already been taken", ...}``."""
        request = response.request
        return f"{request.method} {request.url.path}: {response.text}"


def _from_env(config: Spree) -> str:
    """The store URL from ``url_env``; a missing or malformed one stops the run before anything
    is claimed."""
    value = os.environ.get(config.url_env, "")
    if not value:
        raise MissingSecret(
            "The Spree store URL is not set",
            expected=f"delivery.spree.base_url in _settings.yml, or the environment variable "
            f"{config.url_env}",
        )
    try:
        return store_url(value)
    except ValueError as err:
        raise MissingSecret(f"{config.url_env}: {err}") from None


def _coupon(message: Outgoing) -> dict[str, Any]:
    coupon = message.payload.get("coupon")
    return coupon if isinstance(coupon, dict) else {}


def _refusal(request: httpx.Request, reason: str) -> httpx.Response:
    """A refusal made here, for a row no request to the store could deliver."""
    return httpx.Response(422, json={"error": reason}, request=request)


def _data(response: httpx.Response) -> Any:
    try:
        body = response.json()
    except ValueError:
        raise BadAnswer(
            f"the store's answer to {response.request.method} {response.request.url.path} is "
            "not JSON"
        ) from None
    if not isinstance(body, dict) or "data" not in body:
        raise BadAnswer(
            f"the store's answer to {response.request.method} {response.request.url.path} "
            "has no data"
        )
    return body["data"]


def _action_types(response: httpx.Response, promotion: dict[str, Any]) -> set[str]:
    """The types of the promotion's actions, from the ``included`` resources."""
    relationships = promotion.get("relationships")
    related = relationships.get("promotion_actions") if isinstance(relationships, dict) else None
    linked = related.get("data") if isinstance(related, dict) else None
    ids = {str(r.get("id")) for r in linked or [] if isinstance(r, dict)}
    included = response.json().get("included")
    if not isinstance(included, list):
        included = []
    return {
        str((item.get("attributes") or {}).get("type"))
        for item in included
        if isinstance(item, dict)
        and item.get("type") == "promotion_action"
        and str(item.get("id")) in ids
    }


def _own_id(response: httpx.Response) -> str | None:
    try:
        data = response.json().get("data")
    except (ValueError, AttributeError):
        return None
    return str(data["id"]) if isinstance(data, dict) and data.get("id") is not None else None
