"""Pure decisions about time: when a feed is next due, which digest run a moment belongs to."""

from __future__ import annotations

import itertools
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

from apscheduler.triggers.base import BaseTrigger
from croniter import CroniterBadDateError, croniter

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


# What each crontab field may hold, to name the field in an error (croniter reads them).
_CRON_FIELDS = (
    ("minute", "0-59"),
    ("hour", "0-23"),
    ("day of month", "1-31"),
    ("month", "1-12 or jan-dec"),
    ("day of week", "0-7 or sun-sat (0 and 7 are Sunday)"),
)
_MACROS = ("@yearly", "@annually", "@monthly", "@weekly", "@daily", "@midnight", "@hourly")
_WILD = ("*",) * len(_CRON_FIELDS)


class CrontabTrigger(BaseTrigger):  # type: ignore[misc]  # APScheduler 3 has no types
    """An APScheduler trigger that runs when a crontab(5) line says, in a time zone.

    croniter reads the line as cron does, which APScheduler's own CronTrigger does not: a day
    of week is Sunday = 0 (and 7), Monday = 1; a day of month and a day of week both given
    mean either (`0 7 1 * 1`: the 1st and every Monday); `@daily`, `@weekly` and the other
    macros work.
    """

    def __init__(self, expression: str, timezone: str) -> None:
        self.expression = expression
        self.timezone = ZoneInfo(timezone)

    def get_next_fire_time(
        self, previous_fire_time: datetime | None, now: datetime
    ) -> datetime | None:
        """The first run at or after `now` (APScheduler's contract)."""
        start = now.astimezone(self.timezone) - timedelta(microseconds=1)
        try:
            fire: datetime = croniter(self.expression, start).get_next(datetime)
        except CroniterBadDateError:
            return None
        return fire

    def last_run(self, now: datetime) -> datetime:
        """The latest run at or before `now`, in UTC: the run a digest belongs to."""
        minute = now.astimezone(self.timezone).replace(second=0, microsecond=0)
        try:
            fire: datetime = croniter(self.expression, minute + timedelta(minutes=1)).get_prev(
                datetime
            )
        except CroniterBadDateError as error:
            raise ValueError(f"the schedule {self.expression!r} has never run") from error
        return fire.astimezone(UTC)

    def __str__(self) -> str:
        return f"crontab[{self.expression!r}, {self.timezone.key}]"


def cron_trigger(expression: str, timezone: str) -> CrontabTrigger:
    """A trigger for a five-field crontab line (or a macro such as `@daily`) in `timezone`.
    Raises ValueError naming the field that is wrong, or saying the schedule never runs."""
    expression = " ".join(expression.split())
    fields = expression.split(" ")
    if expression.lower() not in _MACROS and len(fields) != len(_CRON_FIELDS):
        raise ValueError(
            "expected five crontab fields (minute hour day-of-month month day-of-week) or "
            f"a macro such as @daily, got {expression!r}"
        )
    if not croniter.is_valid(expression):
        for index, ((name, allowed), value) in enumerate(zip(_CRON_FIELDS, fields, strict=True)):
            alone = " ".join((*_WILD[:index], value, *_WILD[index + 1 :]))
            if not croniter.is_valid(alone):
                raise ValueError(f"{name} {value!r} is not valid: expected {allowed}")
        raise ValueError(f"not a crontab schedule: {expression!r}")
    trigger = CrontabTrigger(expression, timezone)
    if trigger.get_next_fire_time(None, datetime(2000, 1, 1, tzinfo=UTC)) is None:
        raise ValueError(f"the schedule {expression!r} never runs")
    return trigger


def last_run_time(trigger: CrontabTrigger, now: datetime) -> datetime:
    """The latest time at or before `now` that `trigger` fires: the run a digest belongs to."""
    return trigger.last_run(now)
