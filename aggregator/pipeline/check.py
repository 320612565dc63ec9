"""`feeds check`: fetch and parse a feed as a pass would, store nothing, say whether it works."""

from __future__ import annotations

import asyncio
from collections.abc import Iterable
from dataclasses import dataclass

from aggregator.clock import Clock, utc_now
from aggregator.config import FeedSettings, Settings
from aggregator.errors import FeedError
from aggregator.fetch import Fetcher
from aggregator.pipeline.fetch_pass import download_request
from aggregator.sources.registry import source_type


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
    source = source_type(feed_type)
    try:
        async with Fetcher(settings.fetch) as fetcher:
            result = await source.download(fetcher, download_request(settings, url, clock()))
        assert result.body is not None  # no validators were sent, so no 304
        parsed = source.parse(result.body, result.final_url, result.content_type, clock())
    except FeedError as exc:
        return CheckReport(name, url, "error", error=exc.reason)
    items = sum(1 for _ in parsed.entries)
    return CheckReport(name, url, f"ok (HTTP {result.status})", items, parsed.title)


def check_feeds(settings: Settings, feeds: Iterable[FeedSettings]) -> list[CheckReport]:
    """`check_feed` for each of `feeds`, all at once."""

    async def check_all() -> list[CheckReport]:
        checks = (check_feed(settings, feed.name, feed.url, feed.type) for feed in feeds)
        return list(await asyncio.gather(*checks))

    return asyncio.run(check_all())
