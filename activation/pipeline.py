"""Rendering beside sending: the claim's rows rendered chunk by chunk, off the sending loop.

The sender (:mod:`flowhouse.activation.deliver`) reads a claim's rows and what their templates
need in a few set-based queries (:func:`flowhouse.activation.render.claim_batch`), splits them
into chunks of :data:`CHUNK` rows in the claim's order, and hands every chunk to a
:class:`RenderPool` at once. It then takes the chunks back in that same order and sends each one
as soon as it is rendered, while the next ones are still rendering: the HTTP requests of one
chunk overlap the rendering of the next.

Where rendering runs:

- ``workers >= 1``: in that many worker processes (started with ``spawn``: a worker shares
  nothing with the sender but the renderer it is given when it starts, and compiles each template
  once). Workers ignore SIGINT: the sender decides when they stop, and stops them when it stops,
  for whatever reason (an error, Ctrl-C, SIGTERM);
- ``workers == 0``: in one thread of the sending process (the requests in flight still overlap
  it, but rendering shares the sender's core).

A render worker renders and nothing else: it reads no table and writes none, so it cannot claim,
mark or record anything; a row is rendered once per run, into at most one send. What it reads from
the warehouse (customers, recommendations, device tokens, shop states) comes in its chunk. The one
thing it writes is the SMS short links it registered, into ``<inbox>/links/`` before it hands the
chunk back (:class:`flowhouse.activation.links.ShortLinks`): a short link is on file before its
message is sent. Each message
renders within the bounds of :mod:`flowhouse.flows.bounds`, in the worker as in the sender; a
message that fails to render fails alone, with its reason. A worker that dies (killed, out of
memory) stops the run with :class:`RenderWorkerDied` once the waves already in flight are settled:
the rows not yet sent stay ``claimed`` and go back to the queue at the next run. A worker whose
sender is gone (killed with SIGKILL) exits at once.

Worker processes start with ``spawn``, which imports the sender's main module in each worker: a
script that sends with workers keeps its work under ``if __name__ == "__main__":``, as
:mod:`multiprocessing` asks (the ``flowhouse`` command and Dagster's runs do).
"""

from __future__ import annotations

import asyncio
import multiprocessing
import os
import signal
import threading
from concurrent.futures import (
    BrokenExecutor,
    Executor,
    Future,
    ProcessPoolExecutor,
    ThreadPoolExecutor,
)
from multiprocessing.connection import wait

from flowhouse.activation.render import Batch, Rendered, Renderer, render_batch
from flowhouse.core.errors import FlowhouseError

#: Rows rendered as one piece of work: a fifth of a claim, and as many as one SendGrid request
#: carries (a chunk's messages are sent together; smaller chunks would make smaller requests).
CHUNK = 1000
#: With ``workers`` left to choose (None), a run whose due rows reach this many starts worker
#: processes; fewer are rendered in the sending process (starting a worker costs about a second).
POOL_MIN_ROWS = 2000
#: The most worker processes chosen automatically.
MAX_AUTO_WORKERS = 4
#: Cores a sender keeps for itself when ``workers`` is chosen automatically: its event loop and
#: its warehouse statements (DuckDB runs them on threads of its own).
SENDER_CORES = 2


class RenderWorkerDied(FlowhouseError):
    """A render worker process stopped before it answered (killed, out of memory)."""


def auto_workers(due: int, cpus: int | None = None) -> int:
    """Worker processes for a run with ``due`` rows: none for a small run, nor on a machine
    with no core beyond the sender's own :data:`SENDER_CORES` (there a worker only competes
    with the sender, and costs the copying of rows and messages between processes: measured in
    BENCHMARKS.md); else one per core beyond those, at most :data:`MAX_AUTO_WORKERS`."""
    if due < POOL_MIN_ROWS:
        return 0
    cores = cpus if cpus is not None else len(os.sched_getaffinity(0))
    return max(0, min(MAX_AUTO_WORKERS, cores - SENDER_CORES))


_RENDERER: Renderer | None = None


def _start_worker(renderer: Renderer) -> None:
    """In a worker process: keep the renderer; leave Ctrl-C to the sender; end with it."""
    global _RENDERER
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    _RENDERER = renderer
    parent = multiprocessing.parent_process()
    if parent is not None:
        threading.Thread(target=_end_with, args=(parent.sentinel,), daemon=True).start()


def _end_with(sentinel: int) -> None:
    """Exit as soon as the sender is gone, however it went (SIGKILL included): a worker left
    behind would wait for work forever."""
    wait([sentinel])
    os._exit(0)


def _render_in_worker(batch: Batch) -> Rendered:
    assert _RENDERER is not None, "the worker was started without a renderer"
    return render_batch(_RENDERER, batch)


class RenderPool:
    """Renders chunks off the sending loop: in ``workers`` processes, or one thread when 0."""

    def __init__(self, renderer: Renderer, workers: int) -> None:
        self.workers = workers
        self.renderer = renderer
        self._executor: Executor
        if workers > 0:
            self._executor = ProcessPoolExecutor(
                max_workers=workers,
                mp_context=multiprocessing.get_context("spawn"),
                initializer=_start_worker,
                initargs=(renderer,),
            )
        else:
            self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="render")

    def submit(self, batch: Batch) -> asyncio.Future[Rendered]:
        """``batch`` rendered, when it is (in the running event loop)."""
        future: Future[Rendered]
        try:
            if self.workers > 0:
                future = self._executor.submit(_render_in_worker, batch)
            else:
                future = self._executor.submit(render_batch, self.renderer, batch)
        except BrokenExecutor as err:  # a worker died before: the chunk fails as it would have
            future = Future()
            future.set_exception(err)
        return asyncio.wrap_future(future)

    def close(self, stop: bool = False) -> None:
        """Shut the pool down: chunks not started are dropped; running ones are awaited, or,
        with ``stop`` (the run ended on an error, SIGTERM or Ctrl-C), their workers ended."""
        if stop and isinstance(self._executor, ProcessPoolExecutor):
            processes = list((self._executor._processes or {}).values())
            self._executor.shutdown(wait=False, cancel_futures=True)
            for process in processes:
                process.terminate()
            for process in processes:
                process.join(timeout=10)
        self._executor.shutdown(wait=True, cancel_futures=True)


async def rendered(future: asyncio.Future[Rendered]) -> Rendered:
    """The chunk, or :class:`RenderWorkerDied` if its worker died."""
    try:
        return await future
    except BrokenExecutor as err:
        raise RenderWorkerDied(
            f"a render worker stopped before it answered ({err}); the messages not yet sent "
            "stay claimed and go back to the queue at the next run"
        ) from err
