"""The one reader of the wall clock. Stages take `now` (or a `Clock`) from their callers, so
every rule about time is tested with the time a test chooses."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime

Clock = Callable[[], datetime]


def utc_now() -> datetime:
    """The current time, timezone-aware UTC."""
    return datetime.now(UTC)
