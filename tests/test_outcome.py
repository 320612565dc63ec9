"""What a fetch means for its feed's next state: one row per rule, no database, no clock."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta

import pytest

from aggregator.config import FetchSettings
from aggregator.models import FeedState, FetchOutcome
from aggregator.outcome import (
    Failed,
    FetchEvent,
    NotModified,
    ParsedBody,
    Response,
    Unchanged,
    next_state,
)

NOW = datetime(2026, 12, 2, 9, 0, tzinfo=UTC)
HOUR = timedelta(hours=1)
SETTINGS = FetchSettings(interval="1h", pause_after="7d", adaptive=False, max_interval="1d")
KNOWN = FeedState(
    feed_id=1,
    name="news",
    url="https://news.example/feed",
    etag='"v1"',
    last_modified="Mon, 30 Nov 2026 10:00:00 GMT",
    body_hash="old-hash",
    consecutive_failures=0,
    ttl=timedelta(minutes=90),
    last_success_at=NOW - 2 * HOUR,
    title="News",
)


def failing(failures: int, since: timedelta) -> FeedState:
    """KNOWN, failing `failures` times in a row for `since`."""
    return replace(
        KNOWN,
        consecutive_failures=failures,
        failing_since=NOW - since,
        last_success_at=NOW - since - HOUR,
    )


def decide(feed: FeedState, event: FetchEvent, interval: timedelta | None = HOUR) -> FetchOutcome:
    return next_state(feed, event, NOW, SETTINGS, interval=interval, jitter=0.0)


@pytest.mark.parametrize(
    ("event", "status", "etag", "body_hash", "ttl", "title"),
    [
        pytest.param(
            NotModified(Response(304)),
            "not modified",
            '"v1"',
            "old-hash",
            KNOWN.ttl,
            "News",
            id="304-without-validators-keeps-them-and-the-ttl",
        ),
        pytest.param(
            NotModified(Response(304, etag='"v2"')),
            "not modified",
            '"v2"',
            "old-hash",
            KNOWN.ttl,
            "News",
            id="304-with-a-new-etag-takes-it",
        ),
        pytest.param(
            Unchanged(Response(200, etag='"v3"')),
            "unchanged",
            '"v3"',
            "old-hash",
            KNOWN.ttl,
            "News",
            id="same-body-keeps-the-ttl",
        ),
        pytest.param(
            ParsedBody(Response(200, etag='"v4"'), "new-hash", "News and views", None),
            "ok",
            '"v4"',
            "new-hash",
            None,
            "News and views",
            id="parsed-body-without-ttl-forgets-the-old-one",
        ),
        pytest.param(
            ParsedBody(Response(200), "new-hash", None, timedelta(hours=3)),
            "ok",
            '"v1"',
            "new-hash",
            timedelta(hours=3),
            "News",
            id="parsed-body-with-ttl-and-no-title",
        ),
    ],
)
def test_a_successful_fetch_keeps_what_it_does_not_replace(
    event: FetchEvent,
    status: str,
    etag: str,
    body_hash: str,
    ttl: timedelta | None,
    title: str,
) -> None:
    outcome = decide(failing(3, timedelta(hours=5)), event)
    assert (outcome.status, outcome.etag, outcome.body_hash, outcome.ttl, outcome.title) == (
        status,
        etag,
        body_hash,
        ttl,
        title,
    )
    assert (outcome.error, outcome.consecutive_failures, outcome.failing_since) == (None, 0, None)
    assert outcome.last_success_at == NOW
    assert outcome.last_modified == KNOWN.last_modified


@pytest.mark.parametrize(
    ("event", "next_in"),
    [
        pytest.param(ParsedBody(Response(200), "h"), HOUR, id="interval"),
        pytest.param(ParsedBody(Response(200), "h", ttl=3 * HOUR), 3 * HOUR, id="feed-ttl-wins"),
        pytest.param(NotModified(Response(304)), timedelta(minutes=90), id="stored-ttl-on-304"),
        pytest.param(
            Unchanged(Response(200, server_wait=5 * HOUR)), 5 * HOUR, id="cache-control-max-age"
        ),
        pytest.param(
            NotModified(Response(304, server_wait=timedelta(days=365))),
            timedelta(days=1),
            id="a-year-long-max-age-is-capped",
        ),
    ],
)
def test_the_next_fetch_waits_as_long_as_the_feed_or_server_asks(
    event: FetchEvent, next_in: timedelta
) -> None:
    assert decide(KNOWN, event).next_fetch_at == NOW + next_in


@pytest.mark.parametrize(
    ("feed", "failure", "status", "next_in"),
    [
        pytest.param(
            KNOWN, Failed("HTTP 500", 500), "error", 2 * HOUR, id="first-failure-backs-off"
        ),
        pytest.param(
            failing(2, 5 * HOUR), Failed("timeout"), "error", 8 * HOUR, id="third-failure-doubles"
        ),
        pytest.param(
            failing(10, timedelta(days=3)),
            Failed("timeout"),
            "error",
            timedelta(days=1),
            id="back-off-capped-at-a-day",
        ),
        pytest.param(
            KNOWN,
            Failed("HTTP 429", 429, retry_after=6 * HOUR),
            "error",
            6 * HOUR,
            id="retry-after-honoured",
        ),
        pytest.param(
            failing(30, timedelta(days=7)),
            Failed("timeout"),
            "paused",
            timedelta(days=1),
            id="failing-for-pause-after-pauses",
        ),
        pytest.param(KNOWN, Failed("HTTP 410 Gone", 410), "paused", 2 * HOUR, id="gone-pauses"),
    ],
)
def test_a_failure_backs_off_pauses_and_forgets_nothing(
    feed: FeedState, failure: Failed, status: str, next_in: timedelta
) -> None:
    outcome = decide(feed, failure)
    assert outcome.status == status
    assert outcome.next_fetch_at == NOW + next_in
    assert outcome.error == failure.error
    assert outcome.consecutive_failures == feed.consecutive_failures + 1
    assert outcome.failing_since == (feed.failing_since or NOW)
    assert (outcome.etag, outcome.body_hash, outcome.ttl, outcome.title) == (
        feed.etag,
        feed.body_hash,
        feed.ttl,
        feed.title,
    )
    assert outcome.last_success_at == feed.last_success_at


def test_a_feed_without_its_own_interval_follows_how_often_it_publishes() -> None:
    adaptive = SETTINGS.model_copy(update={"adaptive": True, "min_interval": timedelta(minutes=15)})
    weekly = replace(KNOWN, publish_gap=timedelta(days=7), ttl=None)
    hourly = replace(KNOWN, publish_gap=HOUR, ttl=None)
    event = ParsedBody(Response(200), "h")
    at = {
        name: next_state(feed, event, NOW, adaptive, interval=None, jitter=0.0).next_fetch_at
        for name, feed in (("weekly", weekly), ("hourly", hourly))
    }
    assert at == {"weekly": NOW + timedelta(days=1), "hourly": NOW + HOUR / 2}


def test_jitter_delays_by_up_to_a_tenth_of_the_interval() -> None:
    outcome = next_state(
        KNOWN, ParsedBody(Response(200), "h"), NOW, SETTINGS, interval=HOUR, jitter=0.5
    )
    assert outcome.next_fetch_at == NOW + HOUR * 1.05
