"""One fetch pass: fetch feeds concurrently, parse what changed, and store it (the feeds waiting
for the store several to a transaction, `store_batches.py`; the fetches that brought nothing,
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
import logging
import random
import threading
import time
from collections import defaultdict
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from functools import partial
from http import HTTPStatus
from itertools import zip_longest
from urllib.parse import urlsplit

from aggregator.analyse import analyse
from aggregator.config import Settings
from aggregator.errors import FeedError, FetchError, StoreUnavailableError
from aggregator.fetch import Fetcher, FetchResult
from aggregator.match import Matcher, item_fields
from aggregator.models import (
    PAUSED,
    FeedState,
    FetchOutcome,
    ItemText,
    MatchChange,
    ParsedFeed,
    TopicMatch,
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
from aggregator.parse_pool import Parsed, ParsePool
from aggregator.sources import Download
from aggregator.sources.registry import SOURCE_TYPES
from aggregator.store import Repository
from aggregator.store_batches import StoreBatches

log = logging.getLogger(__name__)

Clock = Callable[[], datetime]
# Fetches that bring nothing to store (304s, identical bodies) are recorded this many at a time.
QUIET_BATCH = 100
# Feeds between the start of their download and the end of their store, per connection the
# fetcher may open: enough to keep the parse workers and the store busy, few enough that the
# bodies and parsed entries waiting for the store stay the same however many feeds a pass has.
IN_FLIGHT_PER_CONNECTION = 4


def utc_now() -> datetime:
    return datetime.now(UTC)


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


def match_item(matcher: Matcher, item: ItemText) -> tuple[TopicMatch, ...]:
    """The topics a stored item is about under `matcher`'s rules."""
    fields = item_fields(item.title, item.summary, item.content_html)
    return matcher.match(fields, feed=item.feed)


def apply_rule_changes(repository: Repository, matcher: Matcher) -> list[MatchChange] | None:
    """Re-match every stored item if the matching rules changed since they were matched.

    Returns the changes, or None when the stored matches already follow these rules.
    """
    if repository.rules_fingerprint() == matcher.fingerprint:
        return None
    changes = repository.rematch(matcher.fingerprint, partial(match_item, matcher))
    added = sum(change.added for change in changes)
    log.info(
        "matching rules applied to stored items added=%d removed=%d", added, len(changes) - added
    )
    return changes


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
) -> list[FeedReport]:
    """Fetch `feeds` concurrently and store what they bring; reports come back in name order.

    Once `stop` is set no further feed is started (those are reported "skipped", unrecorded);
    feeds already under way finish and are stored whole.
    """
    with (
        ThreadPoolExecutor(max_workers=1, thread_name_prefix="store") as store_thread,
        ParsePool(matcher) as parsers,
    ):
        async with Fetcher(settings.fetch) as fetcher:
            in_flight = asyncio.Semaphore(IN_FLIGHT_PER_CONNECTION * settings.fetch.concurrency)
            run = _FetchRun(
                settings,
                repository,
                matcher,
                fetcher,
                parsers,
                store_thread,
                in_flight,
                StoreBatches(repository, store_thread),
                clock,
                stop,
                jitter,
            )
            pending = [run.fetch_one(feed) for feed in interleaved_by_host(feeds)]
            reports = []
            for next_done in asyncio.as_completed(pending):
                report = await next_done
                reports.append(report)
                if on_feed_done is not None:
                    on_feed_done(report)
            await asyncio.get_running_loop().run_in_executor(store_thread, run.record_quiet)
    return sorted(reports, key=lambda report: report.name)


def interleaved_by_host(feeds: Sequence[FeedState]) -> list[FeedState]:
    """`feeds` taking turns by host: a host with many feeds, which its per-host limit fetches
    a few at a time, must not fill every in-flight place while other hosts' feeds wait."""
    by_host: defaultdict[str, list[FeedState]] = defaultdict(list)
    for feed in feeds:
        by_host[urlsplit(feed.url).hostname or ""].append(feed)
    return [feed for turn in zip_longest(*by_host.values()) for feed in turn if feed is not None]


@dataclass(frozen=True, slots=True)
class CheckReport:
    """What `feeds check` found at a feed's URL."""

    name: str
    url: str
    status: str
    items: int = 0
    title: str = ""
    error: str | None = None


async def check_feed(
    settings: Settings, name: str, url: str, feed_type: str = "rss", *, clock: Clock = utc_now
) -> CheckReport:
    """Fetch and parse one feed unconditionally, storing nothing: does it work right now?"""
    source = SOURCE_TYPES[feed_type]
    try:
        async with Fetcher(settings.fetch) as fetcher:
            result = await source.download(fetcher, _download(settings, url, clock()))
        assert result.body is not None  # no validators were sent, so no 304
        parsed = source.parse(result.body, result.final_url, result.content_type, clock())
    except FeedError as exc:
        return CheckReport(name, url, "error", error=exc.reason)
    items = sum(1 for _ in parsed.entries)
    return CheckReport(name, url, f"ok (HTTP {result.status})", items, parsed.title)


@dataclass
class _FetchRun:
    settings: Settings
    repository: Repository
    matcher: Matcher
    fetcher: Fetcher
    parsers: ParsePool
    store_thread: ThreadPoolExecutor
    in_flight: asyncio.Semaphore
    batches: StoreBatches
    clock: Clock
    stop: threading.Event | None
    jitter: Callable[[], float]
    quiet: list[tuple[int, FetchOutcome]] = field(default_factory=list)  # not yet recorded

    async def fetch_one(self, feed: FeedState) -> FeedReport:
        async with self.in_flight:
            if self.stop is not None and self.stop.is_set():
                return FeedReport(feed.name, feed.url, "skipped")
            return await self._fetch_and_store(feed)

    async def _fetch_and_store(self, feed: FeedState) -> FeedReport:
        started = time.monotonic()
        store = partial(asyncio.get_running_loop().run_in_executor, self.store_thread)
        request = _download(
            self.settings,
            feed.url,
            self.clock(),
            etag=feed.etag,
            last_modified=feed.last_modified,
            since=feed.last_success_at,
        )
        try:
            result = await SOURCE_TYPES[feed.type].download(self.fetcher, request)
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
            log.warning("feed not stored feed=%s url=%s error=%r", feed.name, feed.url, reason)
            report = await store(self._record_failure, feed, Failed(reason))
        except Exception as exc:  # a bug must not stop the other feeds
            log.exception("feed failed unexpectedly feed=%s url=%s", feed.name, feed.url)
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
        new, updated = await self.batches.record(feed.feed_id, outcome, entries)
        return FeedReport(feed.name, feed.url, "ok", new=new, updated=updated)

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
        head = SOURCE_TYPES[feed.type].parse(
            result.body, result.final_url, result.content_type, now
        )
        new, updated = self.repository.record_fetch(
            feed.feed_id,
            self._decide(feed, _parsed(result, body_hash, head), now),
            analyse(head.entries, feed.name, self.matcher),
        )
        return FeedReport(feed.name, feed.url, "ok", new=new, updated=updated)

    def _decide(self, feed: FeedState, event: FetchEvent, now: datetime) -> FetchOutcome:
        interval = self.settings.feed(feed.name).interval
        return next_state(
            feed, event, now, self.settings.fetch, interval=interval, jitter=self.jitter()
        )

    def record_quiet(self) -> None:
        """Record the quiet fetches collected so far, in one transaction. If the database
        refuses, they stay unrecorded and their feeds are simply fetched again."""
        if not self.quiet:
            return
        batch, self.quiet = self.quiet, []
        try:
            self.repository.record_quiet_fetches(batch)
        except StoreUnavailableError as error:
            log.warning("quiet fetches not recorded feeds=%d error=%r", len(batch), str(error))

    def _record_failure(self, feed: FeedState, failure: Failed) -> FeedReport:
        outcome = self._decide(feed, failure, self.clock())
        if outcome.status == PAUSED:
            gone = failure.http_status == HTTPStatus.GONE
            why = "gone (HTTP 410)" if gone else f"failing since {outcome.failing_since:%Y-%m-%d}"
            log.warning("feed paused feed=%s url=%s reason=%r", feed.name, feed.url, why)
        try:
            self.repository.record_fetch(feed.feed_id, outcome)
        except StoreUnavailableError as error:  # the feed stays due, so the next run tries again
            log.warning("cannot record failure feed=%s error=%r", feed.name, str(error))
        except Exception:
            log.exception("cannot record failure feed=%s url=%s", feed.name, feed.url)
        return FeedReport(feed.name, feed.url, outcome.status, error=failure.error)


def _response(result: FetchResult) -> Response:
    return Response(result.status, result.etag, result.last_modified, result.server_wait)


def _parsed(result: FetchResult, body_hash: str, head: ParsedFeed) -> ParsedBody:
    return ParsedBody(_response(result), body_hash, head.title or None, head.ttl)


def _download(
    settings: Settings,
    url: str,
    now: datetime,
    *,
    etag: str | None = None,
    last_modified: str | None = None,
    since: datetime | None = None,
) -> Download:
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
    if report.error is not None:
        log.warning(
            "feed failed feed=%s url=%s status=%s error=%r",
            report.name,
            report.url,
            report.status,
            report.error,
        )
    else:
        log.info(
            "feed fetched feed=%s url=%s status=%s new=%d updated=%d",
            report.name,
            report.url,
            report.status,
            report.new,
            report.updated,
        )
