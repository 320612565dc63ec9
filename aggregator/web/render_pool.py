"""Pages rendered in worker processes, so the server's own interpreter is left to its event loop.

A page no cache holds (a new search, any page after new content) costs a few milliseconds of
Python: rows read and a template rendered. In threads those milliseconds held the interpreter
lock the event loop needs to answer anything, /healthz included, and the server rendered on one
core however many the machine had. Worker processes render on every core and leave the lock
to the loop.

Each worker builds its own `Site` from the settings, with its own database connections. Starting
one costs about a second of CPU (a fresh interpreter imports the aggregator), so a server that
starts them with itself (`start`), and pages are rendered in threads until its workers answer
(and again while a pool replaces one whose worker died).
"""

from __future__ import annotations

import asyncio
import os
from concurrent.futures import ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool

from anyio import CapacityLimiter, to_thread

from aggregator import logs
from aggregator.config import Settings
from aggregator.store import Outbox, Repository
from aggregator.store.database import create_database_engine
from aggregator.web.cache import Rendered
from aggregator.web.pages import Page, Site
from aggregator.worker_processes import spawn_pool

log = logs.get_logger(__name__)
# Rendering is throughput; answering (a cached page, /healthz) is latency: when both want a
# core, the server's own process goes first.
NICENESS = 10
_site: Site | None = None  # a worker's, built once when it starts


class PageRenderer:
    """Renders pages in `[server] render_workers` processes (one per core by default: the
    server's own mostly waits) once they are up, until then (or with none) in `threads`."""

    def __init__(self, site: Site, settings: Settings, threads: CapacityLimiter) -> None:
        self._site = site
        self._settings = settings
        self._threads = threads
        workers = settings.server.render_workers
        self._workers = (os.cpu_count() or 1) if workers is None else workers
        self._executor: ProcessPoolExecutor | None = None
        self._ready = False  # the executor's workers have answered
        self._failed = False  # they could not start: threads from now on

    @property
    def state(self) -> str:
        """For /healthz: "ready", "starting", "threads" (they could not start) or "off"."""
        if self._failed or not self._workers:
            return "threads"
        if self._executor is None:
            return "off"
        return "ready" if self._ready else "starting"

    def start(self) -> None:
        """Start the workers, unless they are running or could not start; called from the
        event loop. Pages are rendered in threads until the workers answer."""
        if self._executor is not None or self._failed or not self._workers:
            return
        executor = spawn_pool(self._workers, _start_worker, self._settings)
        self._executor = executor
        answers = [asyncio.wrap_future(executor.submit(_answer)) for _ in range(self._workers)]
        gathered = asyncio.gather(*answers)
        gathered.add_done_callback(lambda done: self._started(executor, done))
        log.info("render_workers_starting", workers=self._workers)

    async def render(self, page: Page) -> Rendered:
        executor = self._executor
        if executor is not None and self._ready:
            try:
                return await asyncio.get_running_loop().run_in_executor(
                    executor, _render_in_worker, page
                )
            except BrokenProcessPool:
                if self._executor is executor:  # not one a later call has started since
                    log.warning("render_worker_died", then="rendering in threads meanwhile")
                    self.close()
        self.start()
        return await to_thread.run_sync(self._site.render, page, limiter=self._threads)

    def close(self) -> None:
        """Let the workers finish the pages they were given, then end."""
        executor, self._executor, self._ready = self._executor, None, False
        if executor is not None:
            executor.shutdown(wait=False)

    def _started(self, executor: ProcessPoolExecutor, done: asyncio.Future[list[None]]) -> None:
        if executor is not self._executor:
            return  # closed meanwhile
        if done.cancelled() or done.exception() is not None:
            error = "cancelled" if done.cancelled() else repr(done.exception())
            log.warning("render_workers_failed", error=error, then="rendering in threads")
            self._failed = True
            self.close()
            return
        self._ready = True
        log.info("render_workers_ready", workers=self._workers)


def _start_worker(settings: Settings) -> None:
    global _site
    os.nice(NICENESS)
    engine = create_database_engine(settings.database.url)
    _site = Site(Repository(engine), Outbox(engine), settings)


def _answer() -> None:
    """A task that returns once a worker has started: the pool is ready when they all have."""


def _render_in_worker(page: Page) -> Rendered:
    assert _site is not None, "_render_in_worker runs in a worker started by PageRenderer"
    return _site.render(page)
