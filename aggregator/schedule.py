"""Pure decisions about time: when a feed is next due, which digest run a moment belongs to."""

from __future__ import annotations

import itertools
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta

from apscheduler.triggers.cron import CronTrigger

MAX_BACKOFF = timedelta(days=1)
JITTER = 0.1  # up to a tenth of the interval later, so feeds added together drift apart
ADAPTIVE_SAMPLE = 3  # publication dates needed before a feed's own rhythm is trusted


def next_fetch_time(
    now: datetime,
    interval: timedelta,
    consecutive_failures: int,
    *,
    server_wait: timedelta | None = None,
    jitter: float = 0.0,
) -> datetime:
    """When to fetch again: after `interval` plus up to 10% jitter (`jitter` in [0, 1)),
    doubled for each failure in a row and capped at a day, and never before the server asked
    (`<ttl>`, Cache-Control max-age, Expires, Retry-After).

    Hammering a broken server helps nobody; a day's cap means a feed that recovers is back within
    a day without anyone touching it.
    """
    wait = interval * (1 + JITTER * jitter)
    if consecutive_failures > 0:
        wait = min(wait * (1 << min(consecutive_failures, 16)), max(MAX_BACKOFF, interval))
    if server_wait is not None:
        wait = max(wait, server_wait)
    return now + wait


def typical_gap(published: Sequence[datetime]) -> timedelta | None:
    """The median time between a feed's publication dates; None until there are enough dates
    to tell (a single long silence does not count for much)."""
    times = sorted(set(published))
    if len(times) < ADAPTIVE_SAMPLE:
        return None
    gaps = sorted(later - earlier for earlier, later in itertools.pairwise(times))
    return gaps[len(gaps) // 2]


def adaptive_interval(
    gap: timedelta | None, *, default: timedelta, minimum: timedelta, maximum: timedelta
) -> timedelta:
    """An interval from how often a feed really publishes: half its typical gap between items,
    within [minimum, maximum]; `default` while the gap is unknown.

    Half the gap catches a new item within half a publishing cycle on average, without polling
    a weekly newsletter every hour or an hourly wire every day.
    """
    return min(max(default if gap is None else gap / 2, minimum), maximum)


_CRON_WEEKDAYS = ("sun", "mon", "tue", "wed", "thu", "fri", "sat")
# Far enough back to find the last run of any schedule that ever runs (29 February included).
_LOOKBACK = tuple(timedelta(days=days) for days in (1 / 24, 1, 8, 32, 367, 8 * 366))


def cron_trigger(expression: str, timezone: str) -> CronTrigger:
    """A trigger for a standard five-field crontab line in `timezone`.

    APScheduler 3 reads a numeric day of week as Monday = 0, so "0 7 * * 1" would run on
    Tuesdays; crontab(5) says Sunday = 0 (and 7) and Monday = 1. The day-of-week field is
    therefore rewritten as day names, which APScheduler reads the same way cron does.
    Raises ValueError naming what is wrong, or if the schedule can never run.
    """
    fields = expression.split()
    if len(fields) != 5:
        raise ValueError(
            f"expected five cron fields (minute hour day month weekday), got {expression!r}"
        )
    minute, hour, day, month, weekday = fields
    trigger = CronTrigger(
        minute=minute,
        hour=hour,
        day=day,
        month=month,
        day_of_week=_weekday_names(weekday),
        timezone=timezone,
    )
    if trigger.get_next_fire_time(None, datetime(2000, 1, 1, tzinfo=UTC)) is None:
        raise ValueError(f"the schedule {expression!r} never runs")
    return trigger


def _weekday_names(field: str) -> str:
    if field in ("*", "?"):
        return "*"
    days: set[int] = set()
    for part in field.lower().split(","):
        span, _, step_text = part.partition("/")
        step = int(step_text) if step_text.isdigit() and int(step_text) > 0 else None
        if step_text and step is None:
            raise ValueError(f"bad step in day of week {field!r}")
        if span == "*":
            first, last = 0, 6
        else:
            start, _, end = span.partition("-")
            first = _weekday_number(start, field)
            last = _weekday_number(end, field) if end else (6 if step else first)
        if last < first:
            raise ValueError(f"day-of-week range runs backwards in {field!r}")
        days.update(day % 7 for day in range(first, last + 1, step or 1))
    return ",".join(_CRON_WEEKDAYS[day] for day in sorted(days))


def _weekday_number(token: str, field: str) -> int:
    if token.isdigit() and int(token) <= 7:
        return int(token)
    if token[:3] in _CRON_WEEKDAYS and len(token) == 3:
        return _CRON_WEEKDAYS.index(token)
    raise ValueError(f"expected a day of week 0-7 or sun-sat, got {token!r} in {field!r}")


def last_run_time(trigger: CronTrigger, now: datetime) -> datetime:
    """The latest time at or before `now` that `trigger` fires: the run a digest belongs to.

    Searching forward from ever earlier starting points finds it without walking a whole year
    of a schedule that runs every minute.
    """
    for lookback in _LOOKBACK:
        latest: datetime | None = None
        fire_time: datetime | None = trigger.get_next_fire_time(None, now - lookback)
        while fire_time is not None and fire_time <= now:
            latest = fire_time
            fire_time = trigger.get_next_fire_time(fire_time, fire_time + timedelta(seconds=1))
        if latest is not None:
            return latest.astimezone(UTC)
    raise ValueError("the schedule has not run in the last eight years")
