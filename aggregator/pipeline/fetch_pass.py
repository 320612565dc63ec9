"""One fetch pass: fetch feeds concurrently, parse what changed, and store it (the feeds waiting
for the store several to a transaction, `store_queue.py`; the fetches that brought nothing,
304s and identical bodies, many to a transaction). A feed is stored whole or not at all.

A failing feed is a result, not a crash: its error is recorded and logged and every other feed
carries on. Bodies are stored on one thread and, once a pass has megabytes of them, parsed and
analysed in worker processes (`parse_pool.py`), so the event loop keeps downloading, both cores
work, and writes to the database never compete with each other. A bounded number of feeds is
between download and store at any time, so a pass's memory does not grow with its feeds.
"""

from __future__ import annotations

import asyncio
import hashlib
import random
import threading
import time
from collections import defaultdict, deque
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from functools import partial
from http import HTTPStatus
from itertools import zip_longest
from urllib.parse import urlsplit

from aggregator import free_pages, logs
from aggregator.analyse import analyse
from aggregator.clock import Clock, utc_now
from aggregator.config import FetchSettings, Settings
from aggregator.errors import FeedError, FetchError, StoreUnavailableError
from aggregator.fetch import Fetcher, FetchResult
from aggregator.match import Matcher
from aggregator.models import (
    PAUSED,
    FeedState,
    FetchOutcome,
    ParsedFeed,
)
from aggregator.outcome import (
    Failed,
    FetchEvent,
    NotModified,
    ParsedBody,
    Response,
    Unchanged,
    next_state,
)
from aggregator.pipeline.parse_pool import Parsed, ParsePool
from aggregator.pipeline.store_queue import StoreQueue
from aggregator.sources.base import Download
from aggregator.sources.registry import source_type
from aggregator.store import Repository

log = logs.get_logger(__name__)

# Fetches that bring nothing to store (304s, identical bodies) are recorded this many at a time.
QUIET_BATCH = 100
# Feeds between the start of their download and the end of their store, per connection the
# fetcher may open: enough to keep the parse workers and the store busy, few enough that the
# bodies and parsed entries waiting for the store stay the same however many feeds a pass has.
# Four held 8 MB more of a cold ingest's peak than two, and fetched no faster.
IN_FLIGHT_PER_CONNECTION = 2


def fetch_lease(fetch: FetchSettings, feeds: int) -> timedelta:
    """How long a process may hold `feeds` feeds it claimed: their requests, `concurrency` at
    a time and each bounded by the timeout, and storing what they brought. Past it, another
    process may take a feed over."""
    rounds = -(-max(feeds, 1) // fetch.concurrency)
    return (fetch.timeout * 2 + timedelta(seconds=30)) * rounds


@dataclass(frozen=True, slots=True)
class FeedReport:
    """How one feed's fetch went, for the summary table and the log."""

    name: str
    url: str
    status: str
    new: int = 0
    updated: int = 0
    error: str | None = None
    seconds: float = 0.0  # from the request to the commit


async def fetch_feeds(
    settings: Settings,
    repository: Repository,
    matcher: Matcher,
    feeds: Sequence[FeedState],
    *,
    clock: Clock = utc_now,
    on_feed_done: Callable[[FeedReport], None] | None = None,
    stop: threading.Event | None = None,
    jitter: Callable[[], float] = random.random,
    top_up: TopUp | None = None,
) -> list[FeedReport]:
    """Fetch `feeds` concurrently and store what they bring; reports come back in name order.

    With `top_up`, the pass takes more feeds while it runs: every `top_up.every` seconds it
    asks `top_up.more` (on a worker thread, given how many feeds are still under way) and
    fetches what that returns, so a feed that hangs until its timeout holds its own place and
    no other feed's. The pass ends when no feed is under way.

    Once `stop` is set no further feed is started (those are reported "skipped", unrecorded),
    nor taken; feeds already under way finish and are stored whole.
    """
    with (
        ThreadPoolExecutor(max_workers=1, thread_name_prefix="store") as store_thread,
        ParsePool(matcher) as parsers,
    ):
        async with Fetcher(settings.fetch) as fetcher:
            run = _FetchRun(
                settings,
                repository,
                matcher,
                fetcher,
                parsers,
                store_thread,
                IN_FLIGHT_PER_CONNECTION * settings.fetch.concurrency,
                StoreQueue(repository, store_thread),
                clock,
                stop,
                jitter,
            )
            run.add(feeds)
            reports = []
            next_top_up = time.monotonic() + (top_up.every if top_up else 0)
            while run.under_way:
                wait = None if top_up is None else max(0.0, next_top_up - time.monotonic())
                for report in await run.finished(wait):
                    reports.append(report)
                    if on_feed_done is not None:
                        on_feed_done(report)
                stopping = stop is not None and stop.is_set()
                if top_up is not None and not stopping and time.monotonic() >= next_top_up:
                    run.add(await run.more(top_up, run.under_way))
                    next_top_up = time.monotonic() + top_up.every
            await run.flush_quiet()
    # The pass's bodies and entries are gone: what they freed goes back now, not at the next
    # pass (an idle service would hold it until then, and `fetch` would export on top of it).
    free_pages.return_to_system()
    return sorted(reports, key=lambda report: report.name)


@dataclass(frozen=True, slots=True)
class TopUp:
    """How a long-running pass takes more feeds: `more(under_way)` claims those now due."""

    more: Callable[[int], Sequence[FeedState]]
    every: float  # seconds


def interleaved_by_host(feeds: Sequence[FeedState]) -> list[FeedState]:
    """`feeds` taking turns by host: a host with many feeds, which its per-host limit fetches
    a few at a time, must not fill every in-flight place while other hosts' feeds wait."""
    by_host: defaultdict[str, list[FeedState]] = defaultdict(list)
    for feed in feeds:
        by_host[urlsplit(feed.url).hostname or ""].append(feed)
    return [feed for turn in zip_longest(*by_host.values()) for feed in turn if feed is not None]


@dataclass
class _FetchRun:
    settings: Settings
    repository: Repository
    matcher: Matcher
    fetcher: Fetcher
    parsers: ParsePool
    store_thread: ThreadPoolExecutor
    places: int  # feeds in flight at most: from the start of their download to their store
    store_queue: StoreQueue
    clock: Clock
    stop: threading.Event | None
    jitter: Callable[[], float]
    quiet: list[tuple[int, FetchOutcome]] = field(default_factory=list)  # not yet recorded
    waiting: deque[FeedState] = field(default_factory=deque)  # for an in-flight place
    running: set[asyncio.Task[FeedReport]] = field(default_factory=set)
    done: asyncio.Queue[asyncio.Task[FeedReport]] = field(default_factory=asyncio.Queue)
    # Each feed's own interval by name: `Settings.feed` reads the feeds in turn, and asked for
    # every feed of a pass it cost the pass time growing with the square of its feeds.
    intervals: dict[str, timedelta | None] = field(init=False)

    def __post_init__(self) -> None:
        self.intervals = {feed.name: feed.interval for feed in self.settings.feeds}

    @property
    def under_way(self) -> int:
        """Feeds taken and not yet reported: in flight, or waiting for a place."""
        return len(self.waiting) + len(self.running) + self.done.qsize()

    def add(self, feeds: Sequence[FeedState]) -> None:
        """Fetch `feeds` after those already waiting, in turns by host.

        A feed's task is created only when it takes an in-flight place: a task waiting for
        one held 1.7 KB, so a pass of 5,000 feeds held 8 MB of them from its start."""
        self.waiting.extend(interleaved_by_host(feeds))
        self._start_waiting()

    def _start_waiting(self) -> None:
        if self.stop is not None and self.stop.is_set():
            return  # `finished` reports the waiting feeds skipped
        while self.waiting and len(self.running) < self.places:
            task = asyncio.create_task(self._fetch_and_store(self.waiting.popleft()))
            task.add_done_callback(self._finish)
            self.running.add(task)

    def _finish(self, task: asyncio.Task[FeedReport]) -> None:
        self.running.discard(task)
        self.done.put_nowait(task)
        self._start_waiting()

    async def finished(self, timeout: float | None) -> list[FeedReport]:
        """The reports of feeds done since the last call, waiting up to `timeout` seconds for
        the first. Once `stop` is set, every feed still waiting for a place is reported
        "skipped", unrecorded, and never started.

        Each task hands itself to a queue as it ends: `asyncio.wait` would hang a callback on
        every task under way at each call, and a pass's calls grow with its feeds, so the
        pass's cost grew with their square (a tenth of a 400-feed pass of 304s)."""
        if self.stop is not None and self.stop.is_set() and self.waiting:
            skipped = [FeedReport(feed.name, feed.url, "skipped") for feed in self.waiting]
            self.waiting.clear()
            return skipped
        try:
            async with asyncio.timeout(timeout):
                tasks = [await self.done.get()]
        except TimeoutError:
            return []
        while not self.done.empty():
            tasks.append(self.done.get_nowait())
        return [task.result() for task in tasks]

    async def more(self, top_up: TopUp, under_way: int) -> Sequence[FeedState]:
        """What `top_up` takes now, after recording the quiet fetches (until then their feeds
        are not due again). Nothing if that fails: the feeds under way still finish, and the
        next top-up tries again."""
        await self.flush_quiet()
        try:
            return await asyncio.to_thread(top_up.more, under_way)
        except StoreUnavailableError as error:  # locked, unreachable, full
            log.warning("feeds_not_taken", under_way=under_way, error=str(error))
        except Exception:  # a bug must not cost the feeds under way
            log.exception("feeds_not_taken", under_way=under_way)
        return []

    async def _fetch_and_store(self, feed: FeedState) -> FeedReport:
        started = time.monotonic()
        store = partial(asyncio.get_running_loop().run_in_executor, self.store_thread)
        request = download_request(
            self.settings,
            feed.url,
            self.clock(),
            etag=feed.etag,
            last_modified=feed.last_modified,
            since=feed.last_success_at,
        )
        try:
            result = await source_type(feed.type).download(self.fetcher, request)
            now = self.clock()
            body_hash = None if result.body is None else hashlib.sha256(result.body).hexdigest()
            parsed = await self._parse_if_new(feed, result, body_hash, now)
            if parsed is None:
                report = await store(self._store, feed, result, now, body_hash)
            else:
                report = await self._store_parsed(feed, result, now, body_hash, parsed)
        except FetchError as exc:
            failure = Failed(exc.reason, exc.status, exc.retry_after)
            report = await store(self._record_failure, feed, failure)
        except FeedError as exc:
            report = await store(self._record_failure, feed, Failed(exc.reason))
        except StoreUnavailableError as exc:  # locked, unreachable or full: this feed is retried
            reason = f"database unavailable: {exc}"
            log.warning("feed_not_stored", feed=feed.name, url=feed.url, error=reason)
            report = await store(self._record_failure, feed, Failed(reason))
        except Exception as exc:  # a bug must not stop the other feeds
            log.exception("feed_failed_unexpectedly", feed=feed.name, url=feed.url)
            report = await store(self._record_failure, feed, Failed(f"internal error: {exc!r}"))
        report = replace(report, seconds=time.monotonic() - started)
        _log_report(report)
        return report

    async def _parse_if_new(
        self, feed: FeedState, result: FetchResult, body_hash: str | None, now: datetime
    ) -> Parsed | None:
        """A body not seen last time, parsed and analysed in a worker process; None for a 304,
        the same body again, or a body the pool leaves to the store."""
        if result.body is None or body_hash == feed.body_hash:
            return None
        return await self.parsers.parse(
            feed.type, feed.name, result.body, result.final_url, result.content_type, now
        )

    async def _store_parsed(
        self,
        feed: FeedState,
        result: FetchResult,
        now: datetime,
        body_hash: str | None,
        parsed: Parsed,
    ) -> FeedReport:
        """Store a body the pool parsed, in a transaction with whichever feeds are waiting."""
        head, entries = parsed
        assert body_hash is not None  # a parsed body
        outcome = self._decide(feed, _parsed(result, body_hash, head), now)
        new, updated = await self.store_queue.record(feed.feed_id, outcome, entries)
        return _stored_report(feed, outcome, new, updated)

    def _store(
        self, feed: FeedState, result: FetchResult, now: datetime, body_hash: str | None
    ) -> FeedReport:
        """Record a fetch that brought nothing new, or parse, analyse and store a body the pool
        handed back (a large body streams: its entries are stored as they are read)."""
        if result.body is None or body_hash == feed.body_hash:  # 304, or the same bytes again
            response = _response(result)
            quiet = NotModified(response) if result.body is None else Unchanged(response)
            outcome = self._decide(feed, quiet, now)
            self.quiet.append((feed.feed_id, outcome))
            if len(self.quiet) >= QUIET_BATCH:
                self.record_quiet()
            return FeedReport(feed.name, feed.url, outcome.status)
        assert body_hash is not None
        head = source_type(feed.type).parse(result.body, result.final_url, result.content_type, now)
        outcome = self._decide(feed, _parsed(result, body_hash, head), now)
        new, updated = self.repository.record_fetch(
            feed.feed_id, outcome, analyse(head.entries, feed.name, self.matcher)
        )
        return _stored_report(feed, outcome, new, updated)

    def _decide(self, feed: FeedState, event: FetchEvent, now: datetime) -> FetchOutcome:
        # A feed another process's config added to the database has the default interval.
        interval = self.intervals.get(feed.name)
        return next_state(
            feed, event, now, self.settings.fetch, interval=interval, jitter=self.jitter()
        )

    async def flush_quiet(self) -> None:
        """`record_quiet` on the store thread, which does all the writing."""
        await asyncio.get_running_loop().run_in_executor(self.store_thread, self.record_quiet)

    def record_quiet(self) -> None:
        """Record the quiet fetches collected so far, in one transaction. If the database
        refuses, they stay unrecorded and their feeds are simply fetched again."""
        if not self.quiet:
            return
        batch, self.quiet = self.quiet, []
        try:
            self.repository.record_quiet_fetches(batch)
        except StoreUnavailableError as error:
            log.warning("quiet_fetches_not_recorded", feeds=len(batch), error=str(error))

    def _record_failure(self, feed: FeedState, failure: Failed) -> FeedReport:
        outcome = self._decide(feed, failure, self.clock())
        if outcome.status == PAUSED:
            gone = failure.http_status == HTTPStatus.GONE
            why = "gone (HTTP 410)" if gone else f"failing since {outcome.failing_since:%Y-%m-%d}"
            log.warning("feed_paused", feed=feed.name, url=feed.url, reason=why)
        try:
            self.repository.record_fetch(feed.feed_id, outcome)
        except StoreUnavailableError as error:  # the feed stays due, so the next run tries again
            log.warning("failure_not_recorded", feed=feed.name, error=str(error))
        except Exception:
            log.exception("failure_not_recorded", feed=feed.name, url=feed.url)
        return FeedReport(feed.name, feed.url, outcome.status, error=failure.error)


def _stored_report(feed: FeedState, outcome: FetchOutcome, new: int, updated: int) -> FeedReport:
    return FeedReport(feed.name, feed.url, outcome.status, new, updated, outcome.error)


def _response(result: FetchResult) -> Response:
    return Response(result.status, result.etag, result.last_modified, result.server_wait)


def _parsed(result: FetchResult, body_hash: str, head: ParsedFeed) -> ParsedBody:
    return ParsedBody(_response(result), body_hash, head.title or None, head.ttl, result.incomplete)


def download_request(
    settings: Settings,
    url: str,
    now: datetime,
    *,
    etag: str | None = None,
    last_modified: str | None = None,
    since: datetime | None = None,
) -> Download:
    """What a source needs to download `url`: validators, the last success, who is asking."""
    return Download(
        url=url,
        now=now,
        etag=etag,
        last_modified=last_modified,
        since=since,
        contact_email=settings.fetch.contact_email,
        api_key=settings.fetch.ncbi_api_key,
    )


def _log_report(report: FeedReport) -> None:
    fields = {"feed": report.name, "url": report.url, "status": report.status}
    if report.error is not None:
        log.warning("feed_failed", **fields, error=report.error)
    else:
        log.info("feed_fetched", **fields, new=report.new, updated=report.updated)
