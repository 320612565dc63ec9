"""Pure decisions about when a feed is next due."""

from __future__ import annotations

from datetime import datetime, timedelta

MAX_BACKOFF = timedelta(days=1)


def next_fetch_time(now: datetime, interval: timedelta, consecutive_failures: int) -> datetime:
    """When to fetch again: after `interval`, doubled for each failure in a row, capped at a day.

    Hammering a broken server helps nobody; a day's cap means a feed that recovers is back within
    a day without anyone touching it.
    """
    if consecutive_failures <= 0:
        return now + interval
    backoff: timedelta = interval * 2 ** min(consecutive_failures, 16)
    return now + min(backoff, max(MAX_BACKOFF, interval))
