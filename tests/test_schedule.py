"""Pure time decisions: back-off, crontab lines read as cron reads them, a digest's run."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta

import pytest

from aggregator.schedule import (
    adaptive_interval,
    cron_trigger,
    last_run_time,
    next_fetch_time,
    typical_gap,
)

SUNDAY_NOON = datetime(2026, 11, 22, 12, 3, tzinfo=UTC)


@pytest.mark.parametrize(
    ("weekday", "next_run"),
    [
        pytest.param("1", "Mon 23", id="1-is-monday"),
        pytest.param("0", "Sun 29", id="0-is-sunday"),
        pytest.param("7", "Sun 29", id="7-is-sunday-too"),
        pytest.param("mon", "Mon 23", id="names"),
        pytest.param("1-5", "Mon 23", id="weekdays"),
        pytest.param("5-7", "Fri 27", id="range-to-sunday"),
        pytest.param("*/2", "Tue 24", id="every-second-day-from-sunday"),
        pytest.param("*", "Mon 23", id="every-day"),
    ],
)
def test_weekdays_follow_crontab_not_apscheduler(weekday: str, next_run: str) -> None:
    trigger = cron_trigger(f"0 7 * * {weekday}", "UTC")
    fire = trigger.get_next_fire_time(None, SUNDAY_NOON)
    assert f"{fire:%a %d}" == next_run


@pytest.mark.parametrize(
    ("expression", "next_run"),
    [
        pytest.param("0 7 1 * 1", "Mon 23 07:00", id="day-of-month-or-day-of-week"),
        pytest.param("0 7 25 * 1", "Mon 23 07:00", id="either-comes-first"),
        pytest.param("@daily", "Mon 23 00:00", id="daily"),
        pytest.param("@weekly", "Sun 29 00:00", id="weekly-on-sunday"),
        pytest.param("30 6 * * MON-FRI", "Mon 23 06:30", id="upper-case-names"),
    ],
)
def test_schedules_follow_crontab(expression: str, next_run: str) -> None:
    fire = cron_trigger(expression, "UTC").get_next_fire_time(None, SUNDAY_NOON)
    assert f"{fire:%a %d %H:%M}" == next_run


@pytest.mark.parametrize(
    ("expression", "message"),
    [
        ("0 25 * * *", "hour '25' is not valid: expected 0-23"),
        ("61 * * * *", "minute '61' is not valid: expected 0-59"),
        ("0 7 32 * *", "day of month '32' is not valid"),
        ("0 7 * 13 *", "month '13' is not valid"),
        ("0 7 * * 8", "day of week '8' is not valid: expected 0-7 or sun-sat"),
        ("0 7 * *", "five crontab fields"),
        ("0 7 * * * *", "five crontab fields"),  # no seconds field
        ("0 0 31 2 *", "never runs"),
    ],
)
def test_bad_schedules_say_what_is_wrong(expression: str, message: str) -> None:
    with pytest.raises(ValueError, match=re.escape(message)):
        cron_trigger(expression, "UTC")


@pytest.mark.parametrize(
    ("expression", "timezone", "expected"),
    [
        pytest.param(
            "0 7 * * 1", "Europe/London", datetime(2026, 11, 16, 7, tzinfo=UTC), id="weekly"
        ),
        pytest.param("0 7 * * *", "UTC", datetime(2026, 11, 22, 7, tzinfo=UTC), id="daily"),
        pytest.param("*/5 * * * *", "UTC", datetime(2026, 11, 22, 12, tzinfo=UTC), id="minutes"),
        pytest.param("0 9 * * *", "Asia/Tokyo", datetime(2026, 11, 22, 0, tzinfo=UTC), id="zone"),
        pytest.param("0 0 29 2 *", "UTC", datetime(2024, 2, 29, tzinfo=UTC), id="leap-day"),
        pytest.param("3 12 22 11 *", "UTC", SUNDAY_NOON, id="exactly-now"),
    ],
)
def test_the_run_a_moment_belongs_to(expression: str, timezone: str, expected: datetime) -> None:
    assert last_run_time(cron_trigger(expression, timezone), SUNDAY_NOON) == expected


def test_failing_feeds_back_off_up_to_a_day() -> None:
    hour = timedelta(hours=1)
    assert next_fetch_time(SUNDAY_NOON, hour, 0) == SUNDAY_NOON + hour
    assert next_fetch_time(SUNDAY_NOON, hour, 2) == SUNDAY_NOON + 4 * hour
    assert next_fetch_time(SUNDAY_NOON, hour, 20) == SUNDAY_NOON + timedelta(days=1)


def test_jitter_spreads_feeds_over_a_tenth_of_the_interval() -> None:
    hour = timedelta(hours=1)
    earliest = next_fetch_time(SUNDAY_NOON, hour, 0, jitter=0.0)
    latest = next_fetch_time(SUNDAY_NOON, hour, 0, jitter=0.999)
    assert earliest == SUNDAY_NOON + hour
    assert SUNDAY_NOON + hour < latest < SUNDAY_NOON + hour * 1.1


@pytest.mark.parametrize(
    ("failures", "server_wait", "expected"),
    [
        pytest.param(0, timedelta(hours=3), timedelta(hours=3), id="server-asks-longer"),
        pytest.param(0, timedelta(minutes=5), timedelta(hours=1), id="server-asks-shorter"),
        pytest.param(3, timedelta(hours=2), timedelta(hours=8), id="back-off-longer"),
        pytest.param(3, timedelta(hours=30), timedelta(hours=30), id="retry-after-longer"),
    ],
)
def test_never_sooner_than_the_server_asks(
    failures: int, server_wait: timedelta, expected: timedelta
) -> None:
    next_time = next_fetch_time(SUNDAY_NOON, timedelta(hours=1), failures, server_wait=server_wait)
    assert next_time == SUNDAY_NOON + expected


HOUR = timedelta(hours=1)


@pytest.mark.parametrize(
    ("gaps_in_hours", "expected"),
    [
        pytest.param([], HOUR, id="no-dates-default"),
        pytest.param([6], HOUR, id="too-few-dates-default"),
        pytest.param([6, 6, 6, 6], 3 * HOUR, id="every-six-hours"),
        pytest.param([0.1, 0.1, 0.1], timedelta(minutes=15), id="busy-feed-at-the-minimum"),
        pytest.param([24 * 7] * 4, timedelta(days=1), id="weekly-feed-at-the-maximum"),
        pytest.param([2, 2, 2, 200], 1 * HOUR, id="one-long-silence-does-not-count"),
    ],
)
def test_adaptive_intervals_follow_how_often_a_feed_publishes(
    gaps_in_hours: list[float], expected: timedelta
) -> None:
    times = [SUNDAY_NOON]
    for gap in gaps_in_hours:
        times.append(times[-1] - timedelta(hours=gap))
    interval = adaptive_interval(
        typical_gap(times if gaps_in_hours else []),
        default=HOUR,
        minimum=timedelta(minutes=15),
        maximum=timedelta(days=1),
    )
    assert interval == expected
