"""Parsing in worker processes: the same entries as parsing here, and no feed lost to a worker
that dies."""

from __future__ import annotations

import asyncio
import multiprocessing
from dataclasses import replace
from datetime import UTC, datetime

from conftest import FEEDS_DIR

from aggregator.models import ParsedFeed
from aggregator.parse_pool import ParsePool
from aggregator.sources.rss import parse_feed

BODY = (FEEDS_DIR / "rss20.xml").read_bytes()
URL = "https://news.example.org/feed.xml"
NOW = datetime(2026, 11, 30, tzinfo=UTC)


def test_a_worker_parses_what_this_process_would() -> None:
    async def go() -> ParsedFeed | None:
        with ParsePool(workers=1) as pool:
            return await pool.parse("rss", BODY, URL, None, NOW)

    here = parse_feed(BODY, url=URL, content_type=None, fetched_at=NOW)
    assert asyncio.run(go()) == replace(here, entries=tuple(here.entries))


def test_a_worker_that_dies_costs_no_feed_and_is_replaced() -> None:
    async def go() -> list[ParsedFeed | None]:
        with ParsePool(workers=1) as pool:
            first = await pool.parse("rss", BODY, URL, None, NOW)
            [worker] = multiprocessing.active_children()
            worker.kill()  # as the kernel's OOM killer would
            worker.join()
            handed_back = await pool.parse("rss", BODY, URL, None, NOW)
            replaced = await pool.parse("rss", BODY, URL, None, NOW)
            return [first, handed_back, replaced]

    first, handed_back, replaced = asyncio.run(go())
    assert first is not None
    assert handed_back is None  # the caller parses this one itself: the feed is not lost
    assert replaced == first  # a new worker took over
