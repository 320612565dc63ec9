"""Parsing in worker processes, so that one core stores while the others parse.

feedparser is pure Python and holds the GIL, so parsing on a thread beside the store would take
turns with it on one core. Worker processes parse ordinary feeds and send back their entries
analysed (topics matched, fingerprints made: `analyse.py`); a body large enough to be parsed a
part at a time stays with the store, which streams it.

Starting a worker costs about 0.15 s of CPU (a fresh interpreter imports the parser and the
matcher, nothing of the store, the config or the fetcher), so a pass parses its first few
hundred kilobytes on the store thread and starts workers only when there is more to parse than
that: a poll that finds a handful of changed feeds never starts one.
"""

from __future__ import annotations

import asyncio
from concurrent.futures import ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from dataclasses import replace
from datetime import datetime
from types import TracebackType

from aggregator import logs
from aggregator.analyse import AnalysedEntry, analyse
from aggregator.match import Matcher
from aggregator.models import ParsedFeed
from aggregator.sources.registry import source_type
from aggregator.sources.rss import SPLIT_BYTES
from aggregator.worker_processes import default_workers, spawn_pool

log = logs.get_logger(__name__)
# About 0.15 s of feedparser's work: what a pass parses on the store thread before workers,
# which cost as much to start, pay off.
POOL_AFTER_BYTES = 300_000
# A parsed feed (its entries left out) and its entries, analysed.
Parsed = tuple[ParsedFeed, tuple[AnalysedEntry, ...]]
_matcher: Matcher | None = None  # a worker's, given once when it starts


def parse_body(
    feed_type: str, feed: str, body: bytes, url: str, content_type: str | None, now: datetime
) -> Parsed:
    """Parse and analyse in a worker: every entry read, since an iterator cannot cross
    processes."""
    assert _matcher is not None, "parse_body runs in a worker started by ParsePool"
    parsed = source_type(feed_type).parse(body, url, content_type, now)
    return replace(parsed, entries=()), tuple(analyse(parsed.entries, feed, _matcher))


class ParsePool:
    """Worker processes, started once a pass has more to parse than POOL_AFTER_BYTES and
    stopped on exit. Use as `with ParsePool(matcher) as pool`."""

    def __init__(self, matcher: Matcher, workers: int | None = None) -> None:
        self._matcher = matcher
        # The main process needs a core of its own: storing costs more than parsing.
        self._workers = workers or default_workers()
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
        self,
        feed_type: str,
        feed: str,
        body: bytes,
        url: str,
        content_type: str | None,
        now: datetime,
    ) -> Parsed | None:
        """`feed`'s body parsed and analysed, or None when the caller should do it: one of a
        pass's first few hundred kilobytes, a body big enough to stream, or one whose worker
        died (the pool is replaced for the next feed)."""
        if len(body) > SPLIT_BYTES:
            return None
        if self._executor is None and self._left_to_store < POOL_AFTER_BYTES:
            self._left_to_store += len(body)
            return None
        executor = self._pool()
        try:
            return await asyncio.get_running_loop().run_in_executor(
                executor, parse_body, feed_type, feed, body, url, content_type, now
            )
        except BrokenProcessPool:
            if self._executor is executor:  # not one a later call has started since
                log.warning("parse_worker_died", url=url, then="parsing in the main process")
                self._executor = None
                executor.shutdown(wait=False, cancel_futures=True)
            return None

    def _pool(self) -> ProcessPoolExecutor:
        if self._executor is None:
            self._executor = spawn_pool(self._workers, _start_worker, self._matcher)
            log.info("parse_workers_started", workers=self._workers)
        return self._executor


def _start_worker(matcher: Matcher) -> None:
    global _matcher
    _matcher = matcher
