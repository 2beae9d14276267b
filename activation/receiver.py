"""The webhook receiver: a small Starlette app that stores what providers and recipients send.

It does no warehouse work: every accepted request becomes one JSON file in an inbox folder, written
atomically (a hidden temp name, then a rename) under a name that sorts by arrival, and
:func:`flowhouse.activation.engagement.ingest` loads the inbox later. So the receiver answers in
milliseconds and never holds the DuckDB warehouse's single writer lock.

- ``POST /webhooks/sendgrid``: the SendGrid event webhook body (a JSON array), as is, once its
  ECDSA signature checks out (:mod:`flowhouse.activation.providers.sendgrid.signature`) and its
  timestamp is within the tolerance.
- ``POST /webhooks/twilio``: a status callback's fields, the ``message_id`` and ``customer_id`` of
  its query and ``received_at``, once ``X-Twilio-Signature`` checks out.
- ``POST /webhooks/vonage``: a Messages API status webhook (a JSON object) with ``received_at``,
  once its JWT checks out (:mod:`flowhouse.activation.providers.vonage.signature`). Vonage is the
  one provider whose key the receiver starts without: until it is set (or ``--unverified vonage``),
  every Vonage post answers 403.

A provider's webhooks are checked unless it is listed in :attr:`Verification.unverified` (the
documented opt-out, ``flowhouse receive --unverified``); without its key and not listed, every post
is refused. A post without a signature answers 401, a wrong one 403, and neither stores anything;
a body past :data:`MAX_BODY` answers 413, JSON nested deeper than :data:`MAX_DEPTH` or not an
array of objects 400.
- ``GET /unsubscribe?token=``: nothing; a confirmation page (link scanners follow GETs).
- ``POST /unsubscribe?token=``: an unsubscribe, once the signed token checks out (RFC 8058
  one-click, or the confirmation page's button).
- ``GET /c/<token>``: a click on an SMS short link (:class:`flowhouse.activation.links.ShortLinks`):
  once the token's signature checks out and the sender registered it (``<inbox>/links/``), the
  click is stored and the answer is a 302 to the original URL; a forged or unknown token answers
  404 and stores nothing.
- ``GET /onsite/messages?customer=<id>``: the customer's pending onsite messages as JSON (read
  from the warehouse, :mod:`flowhouse.activation.onsite`), with a signed customer token
  (``Authorization: Bearer <token>`` or ``&token=``, see
  :mod:`flowhouse.activation.providers.onsite.token`): missing, malformed or expired 401, forged
  403; 503 with ``Retry-After`` while a DuckDB warehouse is being written.
- ``POST /onsite/messages/<message_id>/seen``, ``/dismissed`` and ``/clicked``, with the same
  token: stored
  for the inbox (``<inbox>/onsite/``) when the message is one of the customer's pending ones
  (else 404). Onsite answers carry ``Access-Control-Allow-Origin: *`` (the token, not a cookie,
  authenticates), so a storefront's own pages can poll.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import html
import json
import os
import time
import uuid
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl

from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import (
    HTMLResponse,
    JSONResponse,
    PlainTextResponse,
    RedirectResponse,
    Response,
)
from starlette.routing import Route

from flowhouse.activation import links
from flowhouse.activation.onsite import Reader, WarehouseBusy
from flowhouse.activation.onsite import reader as onsite_reader
from flowhouse.activation.providers import sendgrid_signature, vonage_signature
from flowhouse.activation.providers.base import Secrets
from flowhouse.activation.providers.delivery import ProviderConfigs
from flowhouse.activation.providers.onsite import token as onsite_token
from flowhouse.core.errors import ConfigError
from flowhouse.core.warehouse import Location
from flowhouse.flows.channels import CHANNELS

SIGNATURE_HEADER = "X-Twilio-Signature"
MAX_BODY = 5 * 1024 * 1024  # bytes: SendGrid batches stay far below this
#: How deep a SendGrid post may nest (the array, its events, their lists and objects).
MAX_DEPTH = 8
PROVIDERS = ("sendgrid", "twilio", "vonage")


@dataclass(frozen=True)
class Verification:
    """How provider webhooks are checked: SendGrid's verification key (base64 DER), Twilio's auth
    token, the public URL Twilio signs (behind a proxy), the replay tolerance of SendGrid's
    timestamps, and the providers whose webhooks are accepted unchecked (the opt-out)."""

    sendgrid_public_key: str | None = None
    twilio_auth_token: str | None = None
    public_url: str | None = None
    tolerance: timedelta = sendgrid_signature.DEFAULT_TOLERANCE
    unverified: frozenset[str] = frozenset()
    vonage_signature_secret: str | None = None
    vonage_tolerance: timedelta = timedelta(minutes=10)


def verification(
    configs: ProviderConfigs,
    environ: Mapping[str, str] | None = None,
    unverified: Iterable[str] = (),
    public_url: str | None = None,
) -> Verification:
    """The keys ``flowhouse receive`` checks webhooks with, read from the environment; one error
    naming each key to set (or the opt-out) when a provider's is missing and not opted out."""
    env = os.environ if environ is None else environ
    secrets = Secrets(env)
    skipped = frozenset(unverified)
    sendgrid_env = configs.sendgrid.webhook_public_key_env
    twilio_env = configs.twilio.auth_token_env
    wanted = {
        "sendgrid": (sendgrid_env, "the SendGrid event webhook verification key"),
        "twilio": (twilio_env, "the Twilio auth token"),
    }
    found: dict[str, str] = {}
    missing = []
    for provider, (variable, what) in wanted.items():
        if env.get(variable):
            found[provider] = secrets.get(variable, what)  # refuses control characters
        elif provider not in skipped:
            missing.append(f"{variable} ({what}) or pass --unverified {provider}")
    if missing:
        raise ConfigError(
            "webhooks cannot be verified; set " + "; set ".join(missing),
            expected="a key for each provider whose webhooks are received",
        )
    if "sendgrid" in found:
        sendgrid_signature.public_key(found["sendgrid"], sendgrid_env)
    vonage_env = configs.vonage.signature_secret_env
    vonage = secrets.get(vonage_env, "the Vonage signature secret") if env.get(vonage_env) else None
    return Verification(
        found.get("sendgrid"),
        found.get("twilio"),
        public_url,
        configs.sendgrid.webhook_tolerance,
        skipped,
        vonage,
        configs.vonage.webhook_tolerance,
    )


_CONFIRM_PAGE = """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>Unsubscribe</title></head>
<body>
<h1>Unsubscribe</h1>
<p>Stop receiving marketing {what} from us?</p>
<form method="post">
<button type="submit">Unsubscribe</button>
</form>
</body></html>
"""

_PREFERENCES_PAGE = """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>Your preferences</title></head>
<body>
<h1>Your preferences</h1>
<p>You are getting marketing {what} from us. Nothing to do to keep them coming.</p>
<form method="post" action="unsubscribe?token={token}">
<button type="submit">Stop marketing {what}</button>
</form>
</body></html>
"""

_DONE_PAGE = """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>Unsubscribed</title></head>
<body><h1>You are unsubscribed</h1><p>You will not receive marketing {what} from us any more.</p>
</body></html>
"""

_CHANNEL_WORDS = {c.name: c.unsubscribe_page for c in CHANNELS.values() if c.unsubscribe_page}


# -- storing ---------------------------------------------------------------------------------------


def received_at() -> str:
    """Now, as the ISO UTC text stored with callbacks that carry no time of their own."""
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def file_name() -> str:
    """A unique name that sorts by arrival: ``<UTC time to the microsecond>-<random>.json``."""
    return f"{datetime.now(UTC):%Y%m%dT%H%M%S%fZ}-{uuid.uuid4().hex[:12]}.json"


def store(inbox: Path, source: str, body: bytes) -> Path:
    """Write ``body`` to ``<inbox>/<source>/`` atomically; returns the file's path."""
    folder = inbox / source
    folder.mkdir(parents=True, exist_ok=True)
    name = file_name()
    temp = folder / f".{name}.tmp"
    with temp.open("wb") as handle:
        handle.write(body)
        handle.flush()
        os.fsync(handle.fileno())
    target = folder / name
    os.replace(temp, target)
    return target


async def _store(inbox: Path, source: str, body: bytes) -> Path:
    return await run_in_threadpool(store, inbox, source, body)


def _json(data: dict[str, Any]) -> bytes:
    return json.dumps(data, sort_keys=True).encode()


# -- Twilio's signature ----------------------------------------------------------------------------


def twilio_signature(auth_token: str, url: str, params: list[tuple[str, str]]) -> str:
    """Twilio's ``X-Twilio-Signature``: base64 HMAC-SHA1 of the full URL followed by every form
    parameter, sorted, as key then value, under the account's auth token."""
    payload = url + "".join(k + v for k, v in sorted(params))
    digest = hmac.new(auth_token.encode(), payload.encode(), hashlib.sha1).digest()
    return base64.b64encode(digest).decode()


def _public_url(request: Request, public_url: str | None) -> str:
    """The URL Twilio called: the public base (behind a proxy) with this path and query."""
    if public_url is None:
        return str(request.url)
    query = f"?{request.url.query}" if request.url.query else ""
    return public_url.rstrip("/") + request.url.path + query


def _form(body: bytes) -> list[tuple[str, str]]:
    return parse_qsl(body.decode("utf-8", "replace"), keep_blank_values=True)


# -- onsite messages -------------------------------------------------------------------------------


@dataclass(frozen=True)
class OnsiteAccess:
    """What the onsite endpoints need: the secret customer tokens are signed with, how far
    ahead a token may expire, how many messages a poll answers, and the reader of pending
    messages (:func:`flowhouse.activation.onsite.reader`)."""

    secret: str = field(repr=False)
    max_token_age: timedelta
    max_messages: int
    read: Reader


def onsite_access(
    configs: ProviderConfigs, location: Location, environ: Mapping[str, str] | None = None
) -> OnsiteAccess | None:
    """The onsite endpoints' access when ``delivery.onsite.secret_env`` is set (None: the
    storefront endpoints answer 404 saying so); a secret holding a control character is refused
    naming the variable."""
    env = os.environ if environ is None else environ
    config = configs.onsite
    if not env.get(config.secret_env):
        return None
    secret = Secrets(env).get(config.secret_env, "the secret customer tokens are signed with")
    return OnsiteAccess(secret, config.max_token_age, config.max_messages, onsite_reader(location))


_CORS = {"Access-Control-Allow-Origin": "*"}
_ONSITE_KINDS = ("seen", "dismissed", "clicked")


def _onsite_routes(
    inbox: Path, access: OnsiteAccess | None, clock: Callable[[], float]
) -> list[Route]:
    """``GET /onsite/messages`` and ``POST /onsite/messages/{id}/{seen|dismissed}``."""

    def refused(request: Request) -> tuple[str, Response | None]:
        customer = request.query_params.get("customer", "").strip()
        if access is None:
            text = "onsite messages are not configured (delivery.onsite.secret_env is not set)"
            return customer, PlainTextResponse(text, status_code=404, headers=_CORS)
        scheme, _, bearer = request.headers.get("authorization", "").partition(" ")
        given = bearer.strip() if scheme.lower() == "bearer" else ""
        given = given or request.query_params.get("token", "")
        max_age = access.max_token_age.total_seconds()
        refusal = onsite_token.check(access.secret, customer, given, clock(), max_age)
        if refusal is None:
            return customer, None
        return customer, PlainTextResponse(refusal.reason, refusal.status_code, headers=_CORS)

    async def read(customer: str) -> list[dict[str, Any]] | Response:
        assert access is not None
        now = datetime.fromtimestamp(clock(), UTC).replace(tzinfo=None)
        try:
            return await run_in_threadpool(access.read, customer, now, access.max_messages)
        except WarehouseBusy as err:
            headers = _CORS | {"Retry-After": "5"}
            return PlainTextResponse(str(err), status_code=503, headers=headers)

    async def messages(request: Request) -> Response:
        customer, no = refused(request)
        if no is not None:
            return no
        found = await read(customer)
        if isinstance(found, Response):
            return found
        return JSONResponse({"customer_id": customer, "messages": found}, headers=_CORS)

    async def engaged(request: Request) -> Response:
        customer, no = refused(request)
        if no is not None:
            return no
        kind, message_id = request.path_params["kind"], request.path_params["message_id"]
        if kind not in _ONSITE_KINDS:
            text = "expected seen, dismissed or clicked"
            return PlainTextResponse(text, status_code=404, headers=_CORS)
        found = await read(customer)
        if isinstance(found, Response):
            return found
        if message_id not in {m["message_id"] for m in found}:
            text = "no such pending onsite message for this customer"
            return PlainTextResponse(text, status_code=404, headers=_CORS)
        record = {
            "kind": kind, "message_id": message_id, "customer_id": customer,
            "received_at": received_at(),
        }  # fmt: skip
        await _store(inbox, "onsite", _json(record))
        return JSONResponse({"stored": kind}, status_code=202, headers=_CORS)

    return [
        Route("/onsite/messages", messages, methods=["GET"]),
        Route("/onsite/messages/{message_id}/{kind}", engaged, methods=["POST"]),
    ]


# -- the app ---------------------------------------------------------------------------------------


_EXPIRED_PAGE = (
    "<!doctype html><html><head><meta charset='utf-8'><title>Link expired</title></head>"
    "<body><p>This link has expired.</p></body></html>"
)


@dataclass(frozen=True)
class ShortLinkAnswers:
    """How the receiver answers SMS short links: they work for ``days`` after they were sent
    (``delivery.sms_link_days``); a click on an older one, or on one erased, is redirected to
    ``home`` (the store's url), or answered 410 with a page saying it expired when there is
    none."""

    days: int = links.DEFAULT_DAYS
    home: str | None = None


def create_app(
    inbox: Path,
    signing_key: str,
    checks: Verification,
    clock: Callable[[], float] = time.time,
    onsite: OnsiteAccess | None = None,
    short_links: ShortLinkAnswers = ShortLinkAnswers(),
) -> Starlette:
    """The receiver, storing into ``inbox``; provider webhooks are checked as ``checks`` says
    (Twilio's against ``checks.public_url``, the address Twilio was given, behind a proxy);
    ``clock`` is the Unix time SendGrid's timestamps and customer tokens are compared with;
    ``onsite`` serves the storefront's onsite messages (None: those endpoints answer 404);
    ``short_links`` says how long SMS short links live and where an expired one leads."""
    sendgrid_key = (
        None
        if checks.sendgrid_public_key is None
        else sendgrid_signature.public_key(checks.sendgrid_public_key, "the configuration")
    )

    async def sendgrid(request: Request) -> Response:
        body = await _body(request)
        if body is None:
            return PlainTextResponse("payload too large", status_code=413)
        refused = _sendgrid_refusal(request, body)
        if refused is not None:
            return refused
        if not _is_event_array(body):
            return PlainTextResponse(
                f"expected a JSON array of event objects, nested {MAX_DEPTH} deep at most",
                status_code=400,
            )
        await _store(inbox, "sendgrid", body)
        return PlainTextResponse("ok")

    def _sendgrid_refusal(request: Request, body: bytes) -> Response | None:
        if "sendgrid" in checks.unverified:
            return None
        if sendgrid_key is None:
            return PlainTextResponse("SendGrid webhooks are not configured", status_code=403)
        refusal = sendgrid_signature.check(
            sendgrid_key,
            body,
            request.headers.get(sendgrid_signature.SIGNATURE_HEADER),
            request.headers.get(sendgrid_signature.TIMESTAMP_HEADER),
            clock(),
            checks.tolerance,
        )
        if refusal is None:
            return None
        return PlainTextResponse(refusal.reason, status_code=refusal.status_code)

    async def twilio(request: Request) -> Response:
        body = await _body(request)
        if body is None:
            return PlainTextResponse("payload too large", status_code=413)
        params = _form(body)
        refused = _twilio_refusal(request, params)
        if refused is not None:
            return refused
        record: dict[str, Any] = dict(params)
        for key in ("message_id", "customer_id"):
            record[key] = request.query_params.get(key)
        if request.query_params.get("channel"):  # WhatsApp; SMS callbacks name none
            record["channel"] = request.query_params["channel"]
        record["received_at"] = received_at()
        await _store(inbox, "twilio", _json(record))
        return PlainTextResponse("ok")

    def _twilio_refusal(request: Request, params: list[tuple[str, str]]) -> Response | None:
        if "twilio" in checks.unverified:
            return None
        token = checks.twilio_auth_token
        if token is None:
            return PlainTextResponse("Twilio webhooks are not configured", status_code=403)
        given = request.headers.get(SIGNATURE_HEADER, "")
        if not given:
            return PlainTextResponse(f"{SIGNATURE_HEADER} is required", status_code=401)
        expected = twilio_signature(token, _public_url(request, checks.public_url), params)
        if not hmac.compare_digest(expected.encode(), given.encode()):
            return PlainTextResponse("the signature does not match", status_code=403)
        return None

    async def vonage(request: Request) -> Response:
        body = await _body(request)
        if body is None:
            return PlainTextResponse("payload too large", status_code=413)
        refused = _vonage_refusal(request, body)
        if refused is not None:
            return refused
        record = _json_object(body)
        if record is None:
            return PlainTextResponse(
                f"expected a JSON object, nested {MAX_DEPTH} deep at most", status_code=400
            )
        record["received_at"] = received_at()
        await _store(inbox, "vonage", _json(record))
        return PlainTextResponse("ok")

    def _vonage_refusal(request: Request, body: bytes) -> Response | None:
        if "vonage" in checks.unverified:
            return None
        secret = checks.vonage_signature_secret
        if secret is None:
            return PlainTextResponse("Vonage webhooks are not configured", status_code=403)
        refusal = vonage_signature.check(
            secret, body, request.headers.get("authorization"), clock(), checks.vonage_tolerance
        )
        if refusal is None:
            return None
        return PlainTextResponse(refusal.reason, status_code=refusal.status_code)

    async def unsubscribe_page(request: Request) -> Response:
        token = request.query_params.get("token", "")
        claims = _claims(token, signing_key)
        if claims is None:
            return _bad_link()
        what = _CHANNEL_WORDS.get(claims.channel, "messages")
        page = _CONFIRM_PAGE.format(what=what)
        return HTMLResponse(page)

    async def preferences_page(request: Request) -> Response:
        token = request.query_params.get("token", "")
        claims = _claims(token, signing_key)
        if claims is None:
            return _bad_link()
        what = _CHANNEL_WORDS.get(claims.channel, "messages")
        return HTMLResponse(_PREFERENCES_PAGE.format(what=what, token=html.escape(token)))

    async def unsubscribe(request: Request) -> Response:
        token = request.query_params.get("token") or await _form_token(request)
        claims = _claims(token, signing_key)
        if claims is None:
            return _bad_link()
        record = {
            "kind": "unsubscribe",
            "message_id": claims.message_id,
            "customer_id": claims.customer_id,
            "channel": claims.channel,
            "received_at": received_at(),
        }
        await _store(inbox, "flowhouse", _json(record))
        return HTMLResponse(_DONE_PAGE.format(what=_CHANNEL_WORDS.get(claims.channel, "messages")))

    registry = links.LinkRegistry(
        inbox / links.LINKS_FOLDER,
        short_links.days,
        lambda: datetime.fromtimestamp(clock(), UTC),
    )

    async def click(request: Request) -> Response:
        token = request.path_params["token"]
        if not links.check_short(token, signing_key):
            return _unknown_link()
        link = await run_in_threadpool(registry.find, token)
        if link is None:
            return await expired_click(token)
        record = {
            "kind": "click",
            "message_id": link.message_id,
            "customer_id": link.customer_id,
            "channel": link.channel,
            "url": link.url,
            "link": link.position,
            "received_at": received_at(),
        }
        await _store(inbox, "flowhouse", _json(record))
        return RedirectResponse(link.url, status_code=302)

    async def expired_click(token: str) -> Response:
        """A token flowhouse signed whose link is no longer on file (past its days, or erased):
        counted (an ``expired_click`` in the inbox, the token only) and sent to the store."""
        record = {
            "kind": "expired_click",
            "token": token,
            "channel": "sms",
            "received_at": received_at(),
        }
        await _store(inbox, "flowhouse", _json(record))
        if short_links.home is None:
            return HTMLResponse(_EXPIRED_PAGE, status_code=410)
        return RedirectResponse(short_links.home, status_code=302)

    return Starlette(
        routes=[
            Route(f"/{links.SHORT_PATH}/{{token}}", click, methods=["GET"]),
            Route("/webhooks/sendgrid", sendgrid, methods=["POST"]),
            Route("/webhooks/twilio", twilio, methods=["POST"]),
            Route("/webhooks/vonage", vonage, methods=["POST"]),
            Route("/unsubscribe", unsubscribe_page, methods=["GET"]),
            Route("/unsubscribe", unsubscribe, methods=["POST"]),
            Route("/preferences", preferences_page, methods=["GET"]),
            *_onsite_routes(inbox, onsite, clock),
        ]
    )


async def _body(request: Request) -> bytes | None:
    """The request body, or None past :data:`MAX_BODY`."""
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > MAX_BODY:
            return None
        chunks.append(chunk)
    return b"".join(chunks)


def _is_event_array(body: bytes) -> bool:
    """Whether ``body`` is a JSON array of objects nested :data:`MAX_DEPTH` deep at most."""
    try:
        events = json.loads(body)
    except (ValueError, RecursionError):
        return False
    if not isinstance(events, list) or not all(isinstance(e, dict) for e in events):
        return False
    return _depth(events) <= MAX_DEPTH


def _json_object(body: bytes) -> dict[str, Any] | None:
    """``body`` as a JSON object nested :data:`MAX_DEPTH` deep at most, or None."""
    try:
        found = json.loads(body)
    except (ValueError, RecursionError):
        return None
    if not isinstance(found, dict) or _depth(found) > MAX_DEPTH:
        return None
    return found


def _depth(value: Any) -> int:
    """How deep lists and objects nest in ``value`` (walked without recursion)."""
    deepest = 0
    stack = [(value, 1)]
    while stack:
        item, level = stack.pop()
        children = item.values() if isinstance(item, dict) else item
        if isinstance(item, dict | list):
            deepest = max(deepest, level)
            if level <= MAX_DEPTH:
                stack += [(c, level + 1) for c in children]
    return deepest


async def _form_token(request: Request) -> str:
    """The token from an url-encoded form body (a page that posts it as a field)."""
    if not request.headers.get("content-type", "").startswith("application/x-www-form-urlencoded"):
        return ""
    body = await _body(request)
    return dict(_form(body or b"")).get("token", "")


def _claims(token: str, key: str) -> links.Claims | None:
    try:
        return links.verify(token, key)
    except links.BadToken:
        return None


def _unknown_link() -> Response:
    return PlainTextResponse("This link is not known.", status_code=404)


def _bad_link() -> Response:
    return PlainTextResponse("This link is not valid.", status_code=400)


def serve(
    host: str,
    port: int,
    inbox: Path,
    signing_key: str,
    checks: Verification,
    onsite: OnsiteAccess | None = None,
    short_links: ShortLinkAnswers = ShortLinkAnswers(),
) -> None:
    """Run the receiver until interrupted."""
    import uvicorn

    app = create_app(inbox, signing_key, checks, onsite=onsite, short_links=short_links)
    # no access log: request lines carry unsubscribe tokens
    uvicorn.run(app, host=host, port=port, log_level="info", access_log=False)
