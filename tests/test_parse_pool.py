"""Parsing in worker processes: the same entries as parsing here, workers only when a pass has
enough to parse, and no feed lost to a worker that dies."""

from __future__ import annotations

import asyncio
import json
import multiprocessing
import pickle
import subprocess
import sys
from dataclasses import replace
from datetime import UTC, datetime

import pytest
from conftest import FEEDS_DIR, CliRunnerFunction, ConfigFactory
from feed_server import FeedServer
from samples import SHIPPED_MATCHER

from aggregator.analyse import analyse
from aggregator.pipeline import parse_pool
from aggregator.pipeline.parse_pool import Parsed, ParsePool
from aggregator.sources.rss import parse_feed

BODY = (FEEDS_DIR / "rss20.xml").read_bytes()
URL = "https://news.example.org/feed.xml"
NOW = datetime(2026, 11, 30, tzinfo=UTC)


@pytest.fixture
def workers_at_once(monkeypatch: pytest.MonkeyPatch) -> None:
    """Start workers with the first body, as a pass with megabytes to parse would."""
    monkeypatch.setattr(parse_pool, "POOL_AFTER_BYTES", 0)


@pytest.mark.usefixtures("workers_at_once")
def test_a_worker_parses_and_analyses_what_this_process_would() -> None:
    async def go() -> Parsed | None:
        with ParsePool(SHIPPED_MATCHER, workers=1) as pool:
            return await pool.parse("rss", "news", BODY, URL, None, NOW)

    here = parse_feed(BODY, url=URL, content_type=None, fetched_at=NOW)
    analysed = tuple(analyse(here.entries, "news", SHIPPED_MATCHER))
    assert any(entry.matches for entry in analysed)  # topics matched in the worker too
    assert asyncio.run(go()) == (replace(here, entries=()), analysed)


def test_a_pass_with_little_to_parse_starts_no_worker() -> None:
    # Another test's worker may still be on its way out: only this pool's would be new.
    already = set(multiprocessing.active_children())

    async def go() -> list[Parsed | None]:
        with ParsePool(SHIPPED_MATCHER, workers=1) as pool:
            handed_back = [await pool.parse("rss", "news", BODY, URL, None, NOW) for _ in range(10)]
            assert set(multiprocessing.active_children()) <= already
            return handed_back

    assert asyncio.run(go()) == [None] * 10  # each parsed by the store thread instead


def test_a_worker_parses_without_the_database_the_config_or_the_http_client() -> None:
    """What a spawned worker runs, in a fresh interpreter: importing the store's, the config's
    and the fetcher's libraries tripled a worker's start (0.15 -> 0.45 s) and its memory, and a
    pass parses on the store thread until its workers are up."""
    probe = (
        "import pickle, sys\n"
        "from datetime import datetime, UTC\n"
        "from aggregator import worker_processes\n"
        "from aggregator.pipeline import parse_pool\n"
        "parse_pool._start_worker(pickle.load(sys.stdin.buffer))\n"
        f"parsed = parse_pool.parse_body('rss', 'news', {BODY!r}, {URL!r}, None, "
        "datetime.now(UTC))\n"
        "print(len(parsed[1]))\n"
        "heavy = {'sqlalchemy', 'pydantic', 'httpx', 'uvicorn', 'jinja2'}\n"
        "print(sorted(heavy & set(sys.modules)))\n"
    )
    shown = subprocess.run(
        [sys.executable, "-c", probe],
        input=pickle.dumps(SHIPPED_MATCHER),
        capture_output=True,
        check=True,
    ).stdout.decode()
    entries, loaded = shown.strip().splitlines()
    here = parse_feed(BODY, url=URL, content_type=None, fetched_at=NOW)
    assert int(entries) == len(list(here.entries)) > 0
    assert loaded == "[]"


@pytest.mark.usefixtures("workers_at_once")
def test_a_worker_that_dies_costs_no_feed_and_is_replaced() -> None:
    async def go() -> list[Parsed | None]:
        with ParsePool(SHIPPED_MATCHER, workers=1) as pool:
            first = await pool.parse("rss", "news", BODY, URL, None, NOW)
            [worker] = multiprocessing.active_children()
            worker.kill()  # as the kernel's OOM killer would
            worker.join()
            handed_back = await pool.parse("rss", "news", BODY, URL, None, NOW)
            replaced = await pool.parse("rss", "news", BODY, URL, None, NOW)
            return [first, handed_back, replaced]

    first, handed_back, replaced = asyncio.run(go())
    assert first is not None
    assert handed_back is None  # the caller parses this one itself: the feed is not lost
    assert replaced == first  # a new worker took over


@pytest.mark.usefixtures("workers_at_once")
def test_a_pass_parsed_by_workers_stores_every_format_and_reports_errors(
    database_url: str,
    make_config: ConfigFactory,
    run_cli: CliRunnerFunction,
    feed_server: FeedServer,
) -> None:
    feeds = [("rss20", "rss20.xml"), ("atom10", "atom10.xml"), ("jsonfeed", "feed.json")]
    feeds += [("malformed", "malformed.xml")]
    config = make_config(database_url, [(name, feed_server.url(path)) for name, path in feeds])
    assert run_cli(config, "init").exit_code == 0
    result = run_cli(config, "fetch", "--all")
    assert result.exit_code == 0, result.output
    assert "event=parse_workers_started workers=" in result.output
    listed = json.loads(run_cli(config, "feeds", "list", "--json").stdout)
    by_name = {feed["name"]: feed for feed in listed}
    assert {name: by_name[name]["items"] for name, _ in feeds} == {
        "rss20": 2,
        "atom10": 1,
        "jsonfeed": 1,
        "malformed": 0,
    }
    assert by_name["malformed"]["last_error"].startswith("not a feed")  # raised in a worker
