"""Running the fake provider: a blocking server, and a background one for tests.

:func:`serve` blocks (``python -m flowhouse.activation.fake.server --port 8025``); :func:`running` starts the
server in a background thread on a free port and yields a :class:`FakeProvider` to talk to it.
"""

from __future__ import annotations

import argparse
import os
import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime
from pathlib import Path
from typing import Any

import uvicorn
from starlette.applications import Starlette

from flowhouse.activation.fake.app import create_app
from flowhouse.activation.fake.common import Fake
from flowhouse.activation.fake.failures import Failures
from flowhouse.activation.fake.settings import WEBHOOK_SECRET, FakeSettings
from flowhouse.activation.fake.state import Recording

DEFAULT_PORT = 8025
#: Read by :func:`main`: the same variable the webhook destination signs with.
SECRET_ENV = "FLOWHOUSE_WEBHOOK_SECRET"


class FakeProvider:
    """A running fake provider: its base ``url`` and live recording ``state``."""

    def __init__(self, url: str, fake: Fake) -> None:
        self.url = url
        self.fake = fake

    @property
    def state(self) -> Recording:
        return self.fake.state

    @property
    def settings(self) -> FakeSettings:
        return self.fake.settings

    def set_failures(self, failures: Failures | None = None, **fields: Any) -> Failures:
        """Replace the failure settings (a :class:`Failures`, or its fields; none: no failures)."""
        chosen = failures if failures is not None else Failures(**fields)
        self.fake.injector.configure(chosen)
        return chosen

    def set_now(self, now: datetime | None) -> None:
        """Pin the simulated time (naive UTC, or aware) used for engagement timestamps, Twilio's
        dates and ``received_at``; None goes back to the real time plus the offset."""
        self.fake.clock.set_now(now)
        self.fake.engagement.release()

    def now(self) -> datetime:
        return self.fake.clock.now()


def _server(app: Starlette, log_level: str) -> uvicorn.Server:
    config = uvicorn.Config(
        app,
        log_level=log_level,
        access_log=False,
        timeout_graceful_shutdown=2,
    )
    return uvicorn.Server(config)


def serve(
    host: str = "127.0.0.1", port: int = DEFAULT_PORT, settings: FakeSettings | None = None
) -> None:
    """Serve until interrupted."""
    # no access log: one line per request would cost more than answering it
    uvicorn.run(
        create_app(settings or FakeSettings()),
        host=host,
        port=port,
        log_level="info",
        access_log=False,
    )


@contextmanager
def running(
    settings: FakeSettings | None = None, port: int = 0, host: str = "127.0.0.1"
) -> Iterator[FakeProvider]:
    """A fake provider serving in a background thread (``port`` 0: a free one), stopped on
    exit (requests still held by an injected time-out are answered at once)."""
    app = create_app(settings or FakeSettings())
    fake: Fake = app.state.fake
    server = _server(app, "warning")
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind((host, port))
    thread = threading.Thread(
        target=server.run, kwargs={"sockets": [sock]}, name="fake-provider", daemon=True
    )
    thread.start()
    try:
        _wait_started(server, thread)
        yield FakeProvider(f"http://{host}:{sock.getsockname()[1]}", fake)
    finally:
        fake.stopping.set()
        server.should_exit = True
        thread.join(timeout=10)
        sock.close()
        fake.state.close()


def _wait_started(server: uvicorn.Server, thread: threading.Thread) -> None:
    deadline = time.monotonic() + 10
    while not server.started:
        if not thread.is_alive() or time.monotonic() > deadline:
            raise RuntimeError("the fake provider did not start")
        time.sleep(0.01)


def main(argv: list[str] | None = None) -> None:
    """``python -m flowhouse.activation.fake.server [--host H] [--port P] [--inbox DIR] [--record DIR]``
    (the webhook secret is ``FLOWHOUSE_WEBHOOK_SECRET`` when set)."""
    parser = argparse.ArgumentParser(description="flowhouse's local fake provider")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=DEFAULT_PORT)
    parser.add_argument("--inbox", type=Path, help="write simulated engagement webhooks here")
    parser.add_argument("--record", type=Path, help="append received.jsonl here")
    args = parser.parse_args(argv)
    secret = os.environ.get(SECRET_ENV) or WEBHOOK_SECRET
    settings = FakeSettings(inbox=args.inbox, record_dir=args.record, webhook_secret=secret)
    serve(args.host, args.port, settings)


if __name__ == "__main__":
    main()
