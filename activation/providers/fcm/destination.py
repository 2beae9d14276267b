"""Native mobile and web push through Firebase Cloud Messaging HTTP v1.

A push message goes to every valid device token of its customer (``Outgoing.devices``, newest
first: tokens not revoked in ``raw.device_tokens`` and not found dead by FCM before), one
``POST /v1/projects/{project}/messages:send`` per token, since FCM HTTP v1 takes one token a
request. The body is a ``SendMessageRequest`` (validated against Google's discovery document,
:mod:`flowhouse.activation.discovery`)::

    {"message": {"token", "notification": {"title", "body"},
                 "data": {"message_id", "flow_id", "step_id", "deep_link"},
                 "android": {"ttl", ["notification": {"channelId"}]},
                 "apns": {"headers": {"apns-expiration"}},
                 "webpush": {"headers": {"TTL"}, ["fcmOptions": {"link"}]}}}

The title is the step's ``subject``, the body its rendered text, the deep link its ``deep_link``
(rendered; for web push, an ``https`` link opens on a click).

What each token's answer means for the message:

- any token accepted (200, ``name`` = FCM's message id): ``sent``;
- ``UNREGISTERED`` (404), or ``INVALID_ARGUMENT`` (400) on ``message.token``: the token is dead;
  it is recorded (:meth:`FcmDestination.dead_addresses`, written to
  ``flowhouse.invalid_device_tokens``) and never used again;
- 429 and 5xx (``QUOTA_EXCEEDED``, ``UNAVAILABLE``, ``INTERNAL``): transient;
- anything else: permanent, with FCM's words.

A message with no token accepted retries when one token's failure was transient (the tokens
already answered dead are not retried), else fails with every token's reason (all tokens dead:
``no valid device token``). A token accepted while another failed transiently is ``sent``: the
customer got it on one device, and resending would repeat it there.

Credentials: a service account's JSON key (``delivery.fcm.service_account_env``) is checked when
the destination is built (a missing field or an unreadable private key is an error naming the
variable, never the value) and exchanged, on first use, for an OAuth 2.0 access token (a JWT
signed with the key, ``grant_type=urn:ietf:params:oauth:grant-type:jwt-bearer``), renewed a minute
before it expires and after a 401; or an access token is read as is
(``delivery.fcm.credentials: access_token``). Every credential is redacted from stored reasons.

FCM offers no idempotency key and no lookup: ``reconcile`` is ``none`` (a push in flight when a
run died is ``unconfirmed``, never resent).
"""

from __future__ import annotations

import asyncio
import base64
import json
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, ClassVar, Literal

import httpx
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa

from flowhouse.activation.message import Device, Outcome, Outgoing
from flowhouse.activation.providers.base import (
    REASON_LIMIT,
    BadSecret,
    Call,
    DeadAddress,
    Destination,
    Reconcile,
    Secrets,
    json_object,
    retry_after,
)
from flowhouse.activation.providers.fcm.config import Fcm
from flowhouse.core.errors import ConfigError

SCOPE = "https://www.googleapis.com/auth/firebase.messaging"
GRANT = "urn:ietf:params:oauth:grant-type:jwt-bearer"
#: FCM's answers that mean the token can never be used again.
DEAD = ("UNREGISTERED", "INVALID_ARGUMENT")
#: The fields a service account's key must hold.
KEY_FIELDS = ("client_email", "private_key", "token_uri")
#: Renew an access token this long before FCM would refuse it.
RENEW_SECONDS = 60


@dataclass(frozen=True)
class PushCall(Call):
    """One message and the request for each of its devices (built without credentials: they
    are added when sent)."""

    devices: tuple[tuple[Device, httpx.Request], ...] = ()
    customer_id: str = ""


@dataclass(frozen=True)
class _Answer:
    """One token's answer: ``accepted``, ``dead``, ``retry`` or ``failed``."""

    device: Device
    kind: Literal["accepted", "dead", "retry", "failed"]
    text: str
    name: str | None = None
    code: int | None = None
    wait: float | None = None


@dataclass(frozen=True)
class ServiceAccount:
    """The parts of a service account's key flowhouse uses."""

    client_email: str
    token_uri: str
    project_id: str | None
    key_id: str | None
    key: rsa.RSAPrivateKey


def service_account(variable: str, text: str) -> ServiceAccount:
    """The key in ``text`` (the variable's value), or an error naming the variable."""
    what = f"The FCM service account key in the environment variable {variable}"
    try:
        data = json.loads(text)
    except ValueError:
        data = None
    if not isinstance(data, dict):
        raise BadSecret(f"{what} is not JSON", expected="the service account's JSON key file")
    missing = [k for k in KEY_FIELDS if not isinstance(data.get(k), str) or not data[k]]
    if missing:
        raise BadSecret(
            f"{what} lacks {', '.join(missing)}",
            expected="a service account key (type service_account) as Google issues it",
        )
    try:
        key = serialization.load_pem_private_key(data["private_key"].encode(), password=None)
    except (ValueError, TypeError):
        key = None
    if not isinstance(key, rsa.RSAPrivateKey):
        raise BadSecret(f"{what} holds no readable RSA private_key", expected="a PEM RSA key")
    return ServiceAccount(
        data["client_email"], data["token_uri"], data.get("project_id"),
        data.get("private_key_id"), key,
    )  # fmt: skip


def assertion(account: ServiceAccount, audience: str, now: float) -> str:
    """The signed JWT a service account trades for an access token (RS256, one hour)."""
    header = {"alg": "RS256", "typ": "JWT"} | ({"kid": account.key_id} if account.key_id else {})
    claims = {
        "iss": account.client_email, "scope": SCOPE, "aud": audience,
        "iat": int(now), "exp": int(now) + 3600,
    }  # fmt: skip
    signing = f"{_b64(header)}.{_b64(claims)}".encode()
    signature = account.key.sign(signing, padding.PKCS1v15(), hashes.SHA256())
    return signing.decode() + "." + base64.urlsafe_b64encode(signature).rstrip(b"=").decode()


def _b64(value: dict[str, Any]) -> str:
    raw = json.dumps(value, separators=(",", ":")).encode()
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


class FcmDestination(Destination):
    """FCM HTTP v1 (see the module docstring)."""

    name: ClassVar[str] = "fcm"
    default_base_url: ClassVar[str] = "https://fcm.googleapis.com"
    reconcile: Reconcile = "none"
    config: Fcm

    def __init__(self, config: Fcm, secrets: Secrets, base_url: str | None = None) -> None:
        super().__init__(config, secrets, base_url)
        self._pinned = base_url is not None
        self._account: ServiceAccount | None = None
        self._token: str | None = None
        self._expires = 0.0
        self._lock = asyncio.Lock()
        self._dead: list[DeadAddress] = []
        placeholder = secrets.fake and not secrets.has(config.service_account_env)
        if config.credentials == "access_token" or placeholder:
            what = "The FCM OAuth access token"
            self._token = secrets.get(config.access_token_env, what)
            self._expires = float("inf")
        else:
            text = secrets.get(config.service_account_env, "The FCM service account key")
            self._account = service_account(config.service_account_env, text)
        project = config.project_id or (self._account.project_id if self._account else None)
        if not project:
            raise ConfigError(
                "delivery.fcm.project_id is not set and the credentials name no project",
                expected="the Firebase project id (delivery.fcm.project_id)",
            )
        self.project = project

    @property
    def send_url(self) -> str:
        return f"{self.base_url}/v1/projects/{self.project}/messages:send"

    @property
    def token_url(self) -> str:
        """Where the key is exchanged: the key's ``token_uri`` (the fake's when pinned)."""
        if self._pinned or self._account is None:
            return f"{self.base_url}/token"
        return self._account.token_uri

    # -- requests --------------------------------------------------------------------------

    def calls(self, batch: Sequence[Outgoing]) -> list[Call]:
        return [self._call(m) for m in batch]

    def _call(self, message: Outgoing) -> PushCall:
        devices = tuple((d, self.request(message, d)) for d in message.devices)
        first = devices[0][1] if devices else httpx.Request("POST", self.send_url)
        return PushCall(first, (message.message_id,), devices, message.customer_id)

    def request(self, message: Outgoing, device: Device, token: str | None = None) -> httpx.Request:
        """The ``messages:send`` request of ``message`` to ``device`` (``token``: the bearer)."""
        headers = {"content-type": "application/json"}
        if token:
            headers["authorization"] = f"Bearer {token}"
        body = {"message": self.body(message, device)}
        content = json.dumps(body, separators=(",", ":"), ensure_ascii=False).encode()
        return httpx.Request("POST", self.send_url, headers=headers, content=content)

    def body(self, message: Outgoing, device: Device) -> dict[str, Any]:
        """The ``Message`` of ``message`` to ``device``."""
        link = str(message.payload.get("deep_link") or "")
        data = {
            "message_id": message.message_id, "flow_id": message.flow_id,
            "step_id": message.step_id,
        } | ({"deep_link": link} if link else {})  # fmt: skip
        seconds = int(self.config.ttl.total_seconds())
        notification = {"title": message.subject or "", "body": message.text or ""}
        android: dict[str, Any] = {"ttl": f"{seconds}s"}
        if self.config.android_channel_id:
            android["notification"] = {"channelId": self.config.android_channel_id}
        webpush: dict[str, Any] = {"headers": {"TTL": str(seconds)}}
        if link.startswith("https://"):
            webpush["fcmOptions"] = {"link": link}
        expires = str(int(time.time()) + seconds)
        return {
            "token": device.token, "notification": notification, "data": data,
            "android": android, "apns": {"headers": {"apns-expiration": expires}},
            "webpush": webpush,
        }  # fmt: skip

    # -- sending ---------------------------------------------------------------------------

    async def send(self, client: httpx.AsyncClient, call: Call) -> list[Outcome]:
        assert isinstance(call, PushCall)
        (message_id,) = call.message_ids
        if not call.devices:
            return [Outcome(message_id, "failed", reason="no_address: no valid device token")]
        try:
            token = await self._access_token(client)
        except _TokenRefused as err:
            return [Outcome(message_id, err.status, reason=self.secrets.redact(str(err)))]
        answers = list(
            await asyncio.gather(*(self._one(client, d, r, token) for d, r in call.devices))
        )
        return [self._outcome(message_id, call, answers)]

    async def _one(
        self, client: httpx.AsyncClient, device: Device, request: httpx.Request, token: str
    ) -> _Answer | BaseException:
        """One token's answer (a transport error is returned, to be weighed with the others)."""
        try:
            response = await client.send(_with_token(request, token))
            if response.status_code == 401 and self._account is not None:
                self._expires = 0.0  # expired early: renew once and try again
                response = await client.send(_with_token(request, await self._access_token(client)))
        except (httpx.TransportError, _TokenRefused) as err:
            return err
        return self.answer(device, response)

    def answer(self, device: Device, response: httpx.Response) -> _Answer:
        """What FCM's answer for one token means."""
        code = response.status_code
        body = json_object(response)
        if 200 <= code < 300:
            name = body.get("name")
            return _Answer(device, "accepted", "", name if isinstance(name, str) else None, code)
        found = body.get("error")
        error: dict[str, Any] = found if isinstance(found, dict) else {}
        kind = fcm_error_code(error)
        text = (
            f"{code} {kind or error.get('status') or ''}: {error.get('message') or response.text}"
        )
        if _is_dead(kind, error):
            return _Answer(device, "dead", text.strip(), code=code)
        if code in (408, 429) or code >= 500:
            return _Answer(device, "retry", text.strip(), code=code, wait=retry_after(response))
        return _Answer(device, "failed", text.strip(), code=code)

    def _outcome(
        self, message_id: str, call: PushCall, answers: list[_Answer | BaseException]
    ) -> Outcome:
        found = [a for a in answers if isinstance(a, _Answer)]
        for a in found:
            if a.kind == "dead":
                reason = self.secrets.redact(a.text, REASON_LIMIT)
                self._dead.append(DeadAddress(a.device.token, call.customer_id, message_id, reason))
        accepted = [a for a in found if a.kind == "accepted"]
        if accepted:
            return Outcome(message_id, "sent", accepted[0].name, status_code=accepted[0].code)
        errors = [a for a in answers if isinstance(a, BaseException)]
        if errors and not any(a.kind == "retry" for a in found):
            raise errors[0]  # the sender settles a request that may have arrived
        reason = self.secrets.redact(_reason(found, errors), REASON_LIMIT)
        retry = [a for a in found if a.kind == "retry"]
        if retry or errors:
            wait = max((a.wait or 0.0 for a in retry), default=0.0) or None
            return Outcome(message_id, "retry", reason=reason, retry_after=wait)
        return Outcome(message_id, "failed", reason=reason, status_code=found[-1].code)

    def accepted(self, call: Call, response: httpx.Response) -> list[Outcome]:
        body = json_object(response)
        name = body.get("name") if isinstance(body.get("name"), str) else None
        return [
            Outcome(m, "sent", name, status_code=response.status_code) for m in call.message_ids
        ]

    def dead_addresses(self) -> list[DeadAddress]:
        found, self._dead = self._dead, []
        return found

    # -- credentials -----------------------------------------------------------------------

    async def _access_token(self, client: httpx.AsyncClient) -> str:
        async with self._lock:
            if self._token is None or time.time() >= self._expires - RENEW_SECONDS:
                self._token, self._expires = await self._exchange(client)
            return self._token

    async def _exchange(self, client: httpx.AsyncClient) -> tuple[str, float]:
        """Trade the service account's signed assertion for an access token."""
        assert self._account is not None
        now = time.time()
        form = {"grant_type": GRANT, "assertion": assertion(self._account, self.token_url, now)}
        try:
            response = await client.post(self.token_url, data=form)
        except httpx.TransportError as err:
            raise _TokenRefused(
                f"token endpoint unreachable: {type(err).__name__}", "retry"
            ) from err
        body = json_object(response)
        token = body.get("access_token")
        if response.status_code != 200 or not isinstance(token, str) or not token:
            status: Literal["retry", "failed"] = (
                "retry" if response.status_code == 429 or response.status_code >= 500 else "failed"
            )
            words = body.get("error_description") or body.get("error") or response.text
            raise _TokenRefused(
                f"the FCM service account was refused a token ({response.status_code}): {words}",
                status,
            )
        self.secrets.remember(token)
        lifetime = body.get("expires_in")
        return token, now + (float(lifetime) if isinstance(lifetime, (int, float)) else 3600.0)


class _TokenRefused(Exception):
    """No access token: ``status`` is what the messages waiting for it become."""

    def __init__(self, text: str, status: Literal["retry", "failed"]) -> None:
        super().__init__(text)
        self.status: Literal["retry", "failed"] = status


def fcm_error_code(error: dict[str, Any]) -> str | None:
    """FCM's own error code (``UNREGISTERED``, ...) from an error's ``details``, else its
    ``status``."""
    for detail in error.get("details") or []:
        if isinstance(detail, dict) and str(detail.get("@type", "")).endswith("FcmError"):
            code = detail.get("errorCode")
            if isinstance(code, str):
                return code
    status = error.get("status")
    return status if isinstance(status, str) else None


def _is_dead(kind: str | None, error: dict[str, Any]) -> bool:
    """``UNREGISTERED``, or ``INVALID_ARGUMENT`` about the token (not about the payload)."""
    if kind == "UNREGISTERED":
        return True
    if kind != "INVALID_ARGUMENT":
        return False
    fields = [
        v.get("field")
        for d in error.get("details") or []
        if isinstance(d, dict)
        for v in d.get("fieldViolations") or []
        if isinstance(v, dict)
    ]
    return "message.token" in fields or "registration token" in str(error.get("message", ""))


def _with_token(request: httpx.Request, token: str) -> httpx.Request:
    headers = dict(request.headers) | {"authorization": f"Bearer {token}"}
    return httpx.Request(request.method, request.url, headers=headers, content=request.content)


def _reason(found: list[_Answer], errors: list[BaseException]) -> str:
    if found and all(a.kind == "dead" for a in found) and not errors:
        return "no valid device token: " + "; ".join(a.text for a in found)
    parts = [a.text for a in found if a.kind != "dead"] + [
        f"no answer: {type(e).__name__}" for e in errors
    ]
    return "; ".join(parts)
