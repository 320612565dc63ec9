"""Feeds waiting for the store are written together, and still succeed or fail one by one."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta

import pytest
from samples import analysed_entries
from sqlalchemy import Engine, event, text
from sqlalchemy.exc import DBAPIError

from aggregator.analyse import AnalysedEntry
from aggregator.config import FeedSettings
from aggregator.models import FetchOutcome
from aggregator.pipeline.store_queue import StoreQueue
from aggregator.sources.entries import RawEntry
from aggregator.store import Repository
from aggregator.store.database import create_database_engine
from aggregator.store.upgrade import upgrade_to_head

NOW = datetime(2026, 11, 30, 12, tzinfo=UTC)
FEEDS = ("centre", "society", "journal")

# A database-side refusal of one item, as a constraint or a full disk would refuse it.
REFUSE_POISON = {
    "sqlite": [
        "CREATE TRIGGER refuse_poison BEFORE INSERT ON items WHEN NEW.title LIKE '%poison%' "
        "BEGIN SELECT RAISE(ABORT, 'poisoned item refused'); END"
    ],
    "postgresql": [
        "CREATE FUNCTION refuse_poison() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN "
        "IF NEW.title LIKE '%poison%' THEN RAISE EXCEPTION 'poisoned item refused'; END IF; "
        "RETURN NEW; END $$",
        "CREATE TRIGGER refuse_poison BEFORE INSERT ON items FOR EACH ROW "
        "EXECUTE FUNCTION refuse_poison()",
    ],
}


@pytest.fixture
def engine(database_url: str) -> Iterator[Engine]:
    engine = create_database_engine(database_url)
    upgrade_to_head(engine)
    with engine.begin() as connection:
        for statement in REFUSE_POISON[engine.dialect.name]:
            connection.execute(text(statement))
    yield engine
    engine.dispose()


def _entries(
    feed: str, items: list[tuple[str, str]], every: timedelta | None = None
) -> tuple[AnalysedEntry, ...]:
    """Entries of `feed`, published `every` so long apart (newest first) if given."""
    raws = [
        RawEntry(
            guid=f"{feed}-{link}",
            link=link,
            title=title,
            published=None if every is None else NOW - n * every,
        )
        for n, (link, title) in enumerate(items)
    ]
    return analysed_entries(feed, raws, NOW)


def _outcome() -> FetchOutcome:
    return FetchOutcome(status="ok", fetched_at=NOW, next_fetch_at=NOW + timedelta(hours=1))


async def _store_together(
    repository: Repository, feeds: dict[int, tuple[AnalysedEntry, ...]]
) -> list[tuple[int, int] | BaseException]:
    """Record every feed while the store thread is busy, so they all wait and go as one batch."""
    with ThreadPoolExecutor(max_workers=1) as store_thread:
        busy = threading.Event()
        loop = asyncio.get_running_loop()
        blocker = loop.run_in_executor(store_thread, busy.wait)
        batches = StoreQueue(repository, store_thread)
        records = [
            asyncio.ensure_future(batches.record(feed_id, _outcome(), entries))
            for feed_id, entries in feeds.items()
        ]
        # One turn of the loop: each record has queued its feed (it does so before its first
        # await) and asked for the store thread, behind the blocker.
        await asyncio.sleep(0)
        busy.set()
        await blocker
        return await asyncio.gather(*records, return_exceptions=True)


async def _store_idle(
    repository: Repository, feeds: dict[int, tuple[AnalysedEntry, ...]]
) -> list[tuple[int, int]]:
    """Record every feed on an idle store thread, one right after another, as parse workers
    hand them over; each must be stored within seconds."""
    with ThreadPoolExecutor(max_workers=1) as store_thread:
        batches = StoreQueue(repository, store_thread)
        records = [
            batches.record(feed_id, _outcome(), entries) for feed_id, entries in feeds.items()
        ]
        return await asyncio.wait_for(asyncio.gather(*records), timeout=10)


def _commits(engine: Engine) -> list[None]:
    """A list that grows by one at each commit on `engine`."""
    commits: list[None] = []
    event.listen(engine, "commit", lambda _connection: commits.append(None))
    return commits


def _repository_with_feeds(engine: Engine) -> tuple[Repository, dict[str, int]]:
    repository = Repository(engine)
    repository.sync_feeds(
        [FeedSettings(name=name, url=f"https://{name}.example/feed") for name in FEEDS]
    )
    ids = {feed.name: feed.feed_id for feed in repository.feeds_to_fetch(NOW, include_not_due=True)}
    return repository, ids


def test_feeds_stored_together_keep_their_own_counts_and_share_stories(engine: Engine) -> None:
    repository, ids = _repository_with_feeds(engine)
    trial = ("https://trials.example/NCT0001", "CD19 CAR T-cell therapy in MS: phase 1 opens")
    results = asyncio.run(
        _store_together(
            repository,
            {
                ids["centre"]: _entries("centre", [trial]),
                ids["society"]: _entries(
                    "society", [trial, ("https://ms.example/2", "CAR T in MS: a reader's guide")]
                ),
                ids["journal"]: (),
            },
        )
    )

    assert results == [(1, 0), (2, 0), (0, 0)]
    stories = repository.list_stories(10, matched_only=False)
    assert sorted(len(story.sources) for story in stories) == [1, 2]  # the trial is one story


def test_a_feed_the_database_refuses_fails_alone(engine: Engine) -> None:
    repository, ids = _repository_with_feeds(engine)
    results = asyncio.run(
        _store_together(
            repository,
            {
                ids["centre"]: _entries("centre", [("https://c.example/1", "CAR T in MS")]),
                ids["society"]: _entries("society", [("https://s.example/1", "poison")]),
                ids["journal"]: _entries("journal", [("https://j.example/1", "CD19 in MS")]),
            },
        )
    )

    assert results[0] == (1, 0)
    assert results[2] == (1, 0)
    assert isinstance(results[1], DBAPIError)
    assert "poisoned item refused" in str(results[1])
    titles = {story.title for story in repository.list_stories(10, matched_only=False)}
    assert titles == {"CAR T in MS", "CD19 in MS"}
    fetched = {feed.name: feed.last_fetched_at for feed in repository.list_feeds()}
    assert fetched["society"] is None
    assert fetched["centre"] is not None


def test_feeds_stored_together_each_keep_their_own_publishing_rhythm(engine: Engine) -> None:
    repository, ids = _repository_with_feeds(engine)
    news = [(f"https://n.example/{n}", f"CAR T in MS, part {n}") for n in range(4)]
    results = asyncio.run(
        _store_together(
            repository,
            {
                ids["centre"]: _entries("centre", news, every=timedelta(hours=6)),
                ids["society"]: _entries("society", news, every=timedelta(days=7)),
                ids["journal"]: _entries("journal", news[:1], every=timedelta(days=1)),
            },
        )
    )

    assert results == [(4, 0), (4, 0), (1, 0)]
    gaps = {
        feed.name: feed.publish_gap for feed in repository.feeds_to_fetch(NOW, include_not_due=True)
    }
    assert gaps == {"centre": timedelta(hours=6), "society": timedelta(days=7), "journal": None}


def test_feeds_handed_over_moments_apart_are_stored_in_one_transaction(engine: Engine) -> None:
    """A transaction of one feed costs the store far more per item than one of three (a first
    load of 400 feeds, bench/README.md); an idle store gives the first feed a moment for the
    next ones to join it."""
    repository, ids = _repository_with_feeds(engine)
    feeds = {
        ids[name]: _entries(name, [(f"https://{name}.example/1", f"CAR T in MS, from the {name}")])
        for name in FEEDS
    }
    commits = _commits(engine)

    results = asyncio.run(_store_idle(repository, feeds))

    assert results == [(1, 0), (1, 0), (1, 0)]
    assert len(commits) == 1
    assert len(repository.list_stories(10, matched_only=False)) == 3


def test_a_lone_feed_is_stored_without_company(engine: Engine) -> None:
    """The wait for more feeds is bounded: a poll that finds one changed feed stores it."""
    repository, ids = _repository_with_feeds(engine)
    entries = _entries("centre", [("https://c.example/1", "CD19 CAR T in MS: first results")])

    results = asyncio.run(_store_idle(repository, {ids["centre"]: entries}))

    assert results == [(1, 0)]
    [story] = repository.list_stories(10, matched_only=False)
    assert story.title == "CD19 CAR T in MS: first results"
