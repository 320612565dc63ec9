"""What one fetch means for its feed: the whole next state, decided in one pure function.

A feed's state after a fetch (status, next due time, failure count, failing-since, validators,
ttl, title, error) follows rules that were spread over the pipeline, the store and the
schedule; here they are one decision, `next_state`, that takes the feed's state, what the fetch
brought, `now`, the settings and the jitter, and touches no clock, network or database. The
store only writes what it returns.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from http import HTTPStatus

from aggregator.config import FetchSettings
from aggregator.models import PAUSED, FeedState, FeedStatus, FetchOutcome
from aggregator.schedule import adaptive_interval, next_fetch_time


@dataclass(frozen=True, slots=True)
class Response:
    """What the server said besides the body: its status, validators, and how long it asked
    us to wait (Cache-Control, Expires)."""

    http_status: int
    etag: str | None = None
    last_modified: str | None = None
    server_wait: timedelta | None = None


@dataclass(frozen=True, slots=True)
class NotModified:
    """A 304: the feed is as it was."""

    response: Response


@dataclass(frozen=True, slots=True)
class Unchanged:
    """The same body as last time (a server that ignores conditional requests)."""

    response: Response


@dataclass(frozen=True, slots=True)
class ParsedBody:
    """A new body, parsed: its hash, and what the feed says of itself."""

    response: Response
    body_hash: str
    title: str | None = None
    ttl: timedelta | None = None  # RSS <ttl>
    incomplete: str | None = None  # an API answer that stopped short, and why


@dataclass(frozen=True, slots=True)
class Failed:
    """The fetch failed: why, and what the server said if it answered."""

    error: str
    http_status: int | None = None
    retry_after: timedelta | None = None


FetchEvent = NotModified | Unchanged | ParsedBody | Failed


def next_state(
    feed: FeedState,
    event: FetchEvent,
    now: datetime,
    settings: FetchSettings,
    *,
    interval: timedelta | None,
    jitter: float,
) -> FetchOutcome:
    """The feed's whole state after `event` at `now`.

    `interval` is the feed's own (None: `settings.interval`, or how often it publishes when
    `settings.adaptive`); `jitter` in [0, 1) spreads feeds added together.
    """
    if isinstance(event, Failed):
        return _failed(feed, event, now, settings, interval, jitter)
    response = event.response
    parsed = event if isinstance(event, ParsedBody) else None
    # A feed's <ttl> is known only from a parsed body; a 304 or the same body keeps it.
    ttl = parsed.ttl if parsed else feed.ttl
    status: FeedStatus = (
        "ok" if parsed else "not modified" if isinstance(event, NotModified) else "unchanged"
    )
    complete = not (parsed and parsed.incomplete)
    return FetchOutcome(
        status=status if complete else "partial",
        fetched_at=now,
        next_fetch_at=_next_fetch(
            feed, now, 0, (response.server_wait, ttl), settings, interval, jitter
        ),
        http_status=response.http_status,
        # What an incomplete answer left out is asked for again: the last success (where the
        # next fetch of an API starts) stays, and so does the body hash, so the same short
        # answer is not taken for "unchanged".
        error=None if complete else f"incomplete: {parsed.incomplete}" if parsed else None,
        last_success_at=now if complete else feed.last_success_at,
        # A 304 may omit validators: keep the ones we have rather than forget them.
        etag=response.etag or feed.etag,
        last_modified=response.last_modified or feed.last_modified,
        body_hash=parsed.body_hash if parsed and complete else feed.body_hash,
        title=(parsed.title if parsed else None) or feed.title,
        ttl=ttl,
    )


def _failed(
    feed: FeedState,
    event: Failed,
    now: datetime,
    settings: FetchSettings,
    interval: timedelta | None,
    jitter: float,
) -> FetchOutcome:
    """Back off, and pause a feed that is gone (410) or has failed for `pause_after`; what was
    known of it (validators, title, ttl, last success) stays."""
    failing_since = feed.failing_since or now
    gone = event.http_status == HTTPStatus.GONE
    failures = feed.consecutive_failures + 1
    return FetchOutcome(
        status=PAUSED if gone or now - failing_since >= settings.pause_after else "error",
        fetched_at=now,
        next_fetch_at=_next_fetch(
            feed, now, failures, (event.retry_after,), settings, interval, jitter
        ),
        http_status=event.http_status,
        error=event.error,
        consecutive_failures=failures,
        failing_since=failing_since,
        last_success_at=feed.last_success_at,
        etag=feed.etag,
        last_modified=feed.last_modified,
        body_hash=feed.body_hash,
        title=feed.title,
        ttl=feed.ttl,
    )


def _next_fetch(
    feed: FeedState,
    now: datetime,
    failures: int,
    waits: tuple[timedelta | None, ...],
    settings: FetchSettings,
    interval: timedelta | None,
    jitter: float,
) -> datetime:
    """The next due time: the feed's interval (its own, else how often it publishes), with
    jitter and back-off, and never before the server or the feed itself asked (`waits`)."""
    if interval is None:
        interval = settings.interval
        if settings.adaptive:
            interval = adaptive_interval(
                feed.publish_gap,
                default=settings.interval,
                minimum=settings.min_interval,
                maximum=settings.max_interval,
            )
    asked = max((wait for wait in waits if wait is not None), default=None)
    if asked is not None:
        asked = min(asked, settings.max_interval)  # a year-long max-age is no reason to stop
    return next_fetch_time(now, interval, failures, server_wait=asked, jitter=jitter)
