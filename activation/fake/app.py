"""The fake provider's HTTP application (Starlette): the app shell that mounts every provider's
endpoints (``activation/providers/<name>/fake.py``, listed by :mod:`flowhouse.activation.providers`)
behind the failure injector, plus the ``/_fake`` inspection endpoints.

Every request to a path a provider document covers is checked against that document
(:func:`flowhouse.activation.openapi.check`) once, as a whole; what fails is refused as the real API
would (401 for a security failure, else 400 in the provider's own error shape) and is not recorded.
Before anything else, each provider request draws its fate from the failure injector.
Engagement files are written in a worker thread (the response still waits for them, so a file
exists once its request was answered), keeping the event loop free for other requests.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager

from pydantic import ValidationError
from starlette.applications import Starlette
from starlette.requests import ClientDisconnect, Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from flowhouse.activation.fake.common import Fake, FakeRoute, Handler, error, parse_time
from flowhouse.activation.fake.engagement import Engagement
from flowhouse.activation.fake.failures import Failures, Fault, Injector
from flowhouse.activation.fake.settings import FakeSettings
from flowhouse.activation.fake.state import Clock, Recording
from flowhouse.activation.fake.webhooks import Poster
from flowhouse.activation.providers import FAKES

Endpoint = Callable[[Request], Awaitable[Response]]


def create_app(settings: FakeSettings) -> Starlette:
    """The fake provider for ``settings``; its live :class:`Fake` is ``app.state.fake``."""
    clock = Clock(settings.clock)
    fake = Fake(
        settings=settings,
        state=Recording(settings.record_dir),
        injector=Injector(settings.failures),
        clock=clock,
        engagement=Engagement(settings.engagement, settings.inbox, clock.now, _poster(settings)),
        shapes={name: api.error for name, api in FAKES.items()},
    )
    app = Starlette(routes=_routes(), lifespan=_lifespan)
    app.state.fake = fake
    return app


def _poster(settings: FakeSettings) -> Poster | None:
    """Where engagement is posted, when the fake is given a receiver's URL."""
    if settings.webhook_url is None:
        return None
    return Poster(
        settings.webhook_url,
        settings.twilio_auth_token,
        vonage_signature_secret=settings.vonage_signature_secret,
    )


@asynccontextmanager
async def _lifespan(app: Starlette) -> AsyncIterator[None]:
    yield
    app.state.fake.stopping.set()
    app.state.fake.state.close()


def _routes() -> list[Route]:
    """Every provider's endpoints, then the inspection endpoints."""
    found = [_route(name, r) for name, api in FAKES.items() for r in api.routes]
    return found + [_route("", FakeRoute(*spec, injected=False)) for spec in _INSPECTION]


def _route(provider: str, route: FakeRoute) -> Route:
    handler = _provider(provider, route.handler) if route.injected else _inspect(route.handler)
    return Route(route.path, handler, methods=[route.method])


def _inspect(handler: Handler) -> Endpoint:
    async def endpoint(request: Request) -> Response:
        return await handler(request.app.state.fake, request)

    return endpoint


def _provider(provider: str, handler: Handler) -> Endpoint:
    """``handler`` behind the failure injector: a drawn fault answers instead of it."""

    async def endpoint(request: Request) -> Response:
        fake: Fake = request.app.state.fake
        decision = fake.injector.decide()
        if decision.fault is not None:
            return await _fault(fake, provider, decision.fault)
        if decision.delay:
            fake.state.inject("slow")
            await asyncio.sleep(decision.delay)
        try:
            return await handler(fake, request)
        except ClientDisconnect:
            # The client hung up (killed mid-request) before its body arrived: nothing was read,
            # so nothing was applied, and there is no one to answer.
            return Response(status_code=499)

    return endpoint


async def _fault(fake: Fake, provider: str, fault: Fault) -> Response:
    fake.state.inject(fault)
    failures = fake.injector.failures
    if fault == "rate_limited":
        headers = {"Retry-After": str(failures.retry_after)}
        return error(fake, provider, 429, "Too many requests", headers=headers)
    if fault == "server_error":
        return error(fake, provider, 500, "Internal server error")
    await _hold(fake, failures.timeout_seconds)
    return error(fake, provider, 504, "Gateway time-out")


async def _hold(fake: Fake, seconds: float) -> None:
    """Wait ``seconds``, or less when the server stops."""
    deadline = time.monotonic() + seconds
    while not fake.stopping.is_set() and (left := deadline - time.monotonic()) > 0:
        await asyncio.sleep(min(0.05, left))


# -- inspection ----------------------------------------------------------------------------


async def fake_messages(fake: Fake, request: Request) -> Response:
    """``GET /_fake/messages[?provider=...&message_id=...]``."""
    wanted = request.query_params.get("message_id")
    found = fake.state.messages(request.query_params.get("provider"))
    chosen = [r.to_json() for r in found if wanted is None or r.message_id == wanted]
    return JSONResponse({"messages": chosen})


async def fake_lists(fake: Fake, request: Request) -> Response:
    """``GET /_fake/lists``: every Klaviyo list, SendGrid list and audience the fake holds."""
    return JSONResponse(fake.state.lists())


async def fake_sync(fake: Fake, request: Request) -> Response:
    """``GET /_fake/sync[?destination=...]``: the rows sync endpoints accepted, and those sent
    again unchanged."""
    wanted = request.query_params.get("destination")
    entries = [e.to_json() for e in fake.state.sync_log(wanted)]
    repeats = [e.to_json() for e in fake.state.sync_repeats(wanted)]
    return JSONResponse({"entries": entries, "repeats": repeats})


async def fake_stats(fake: Fake, request: Request) -> Response:
    """``GET /_fake/stats``: the counts, the failure settings and the clock."""
    stats = fake.state.stats()
    stats["failures"] = fake.injector.failures.model_dump()
    stats["now"] = fake.clock.now().isoformat()
    return JSONResponse(stats)


async def fake_failures(fake: Fake, request: Request) -> Response:
    """``POST /_fake/failures``: replace the failure settings (a :class:`Failures` as JSON)."""
    try:
        failures = Failures.model_validate_json(await request.body() or b"{}")
    except ValidationError as err:
        return JSONResponse({"error": str(err)}, status_code=400)
    fake.injector.configure(failures)
    return JSONResponse({"failures": failures.model_dump()})


async def fake_clock(fake: Fake, request: Request) -> Response:
    """``POST /_fake/clock`` ``{"now": iso or null}``: pin the simulated time, or release it."""
    try:
        payload = json.loads(await request.body() or b"{}")
    except ValueError:
        payload = {"now": "not JSON"}
    text = payload.get("now") if isinstance(payload, dict) else None
    now = parse_time(text) if isinstance(text, str) else None
    if text is not None and now is None:
        return JSONResponse({"error": "now must be an ISO 8601 time or null"}, status_code=400)
    fake.clock.set_now(now)
    fake.engagement.release()
    return JSONResponse({"now": fake.clock.now().isoformat()})


async def fake_reset(fake: Fake, request: Request) -> Response:
    """``POST /_fake/reset``: forget every message, count, list, profile, contact and audience
    (failures and clock stay)."""
    fake.state.reset()
    return JSONResponse({"reset": True})


_INSPECTION: tuple[tuple[str, Handler, str], ...] = (
    ("/_fake/messages", fake_messages, "GET"),
    ("/_fake/lists", fake_lists, "GET"),
    ("/_fake/sync", fake_sync, "GET"),
    ("/_fake/stats", fake_stats, "GET"),
    ("/_fake/failures", fake_failures, "POST"),
    ("/_fake/clock", fake_clock, "POST"),
    ("/_fake/reset", fake_reset, "POST"),
)
