"""Parsing in worker processes, so that one core stores while the others parse.

feedparser is pure Python and holds the GIL, so parsing on a thread beside the store would take
turns with it on one core. Worker processes parse ordinary feeds and send back plain entries;
a body large enough to be parsed a part at a time stays with the store, which streams it.

Starting a worker costs about a second of CPU (a fresh interpreter imports the aggregator), so
a pass parses its first few megabytes on the store thread and starts workers only when there
is more to parse than that: a poll that finds a handful of changed feeds never starts one.
"""

from __future__ import annotations

import asyncio
import logging
import multiprocessing
import os
import threading
from concurrent.futures import ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from dataclasses import replace
from datetime import datetime
from types import TracebackType

from aggregator.models import ParsedFeed
from aggregator.sources.registry import SOURCE_TYPES
from aggregator.sources.rss import SPLIT_BYTES

log = logging.getLogger(__name__)
# About a second of feedparser's work: what a pass parses on the store thread before workers,
# which cost as much to start, pay off.
POOL_AFTER_BYTES = 2_000_000


def parse_body(
    feed_type: str, body: bytes, url: str, content_type: str | None, fetched_at: datetime
) -> ParsedFeed:
    """Parse in a worker: every entry read, since an iterator cannot cross processes."""
    parsed = SOURCE_TYPES[feed_type].parse(body, url, content_type, fetched_at)
    return replace(parsed, entries=tuple(parsed.entries))


class ParsePool:
    """Worker processes, started once a pass has more to parse than POOL_AFTER_BYTES and
    stopped on exit. Use as `with ParsePool() as pool`."""

    def __init__(self, workers: int | None = None) -> None:
        # The main process needs a core of its own: storing costs more than parsing.
        self._workers = workers or max(1, (os.cpu_count() or 1) - 1)
        self._executor: ProcessPoolExecutor | None = None
        self._left_to_store = 0  # bytes handed back to be parsed on the store thread

    def __enter__(self) -> ParsePool:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        if self._executor is not None:
            self._executor.shutdown(cancel_futures=True)

    async def parse(
        self, feed_type: str, body: bytes, url: str, content_type: str | None, now: datetime
    ) -> ParsedFeed | None:
        """The parsed feed, or None when the caller should parse it itself: one of a pass's
        first few megabytes, a body big enough to stream, or one whose worker died (the pool
        is replaced for the next feed)."""
        if len(body) > SPLIT_BYTES:
            return None
        if self._executor is None and self._left_to_store < POOL_AFTER_BYTES:
            self._left_to_store += len(body)
            return None
        executor = self._pool()
        try:
            return await asyncio.get_running_loop().run_in_executor(
                executor, parse_body, feed_type, body, url, content_type, now
            )
        except BrokenProcessPool:
            if self._executor is executor:  # not one a later call has started since
                log.warning("parse worker died; parsing in the main process url=%s", url)
                self._executor = None
                executor.shutdown(wait=False, cancel_futures=True)
            return None

    def _pool(self) -> ProcessPoolExecutor:
        if self._executor is None:
            # spawn, not fork: the service has threads (scheduler, server, store), and a child
            # forked from a threaded process can inherit a lock held mid-operation. Spawned
            # children also get their parent's sentinel, which `_exit_with_parent` watches.
            self._executor = ProcessPoolExecutor(
                self._workers,
                mp_context=multiprocessing.get_context("spawn"),
                initializer=_exit_with_parent,
            )
            log.info("parse workers started workers=%d", self._workers)
        return self._executor


def _exit_with_parent() -> None:
    """End this worker when the process that started it is gone, even by `kill -9`: a worker
    waits on a queue it holds both ends of, so it would never notice, and it would keep the
    service's log pipe (and its memory) forever."""
    parent = multiprocessing.parent_process()
    if parent is None:
        return

    def watch() -> None:
        parent.join()
        os._exit(1)

    threading.Thread(target=watch, name="exit-with-parent", daemon=True).start()
