"""A first load on PostgreSQL leaves the store's lookups on their indexes.

PostgreSQL only: its planner reads whole tables it has no statistics for, and autovacuum makes
them a minute late; SQLite's planner trusts its indexes when it knows nothing.
"""

from __future__ import annotations

import random
import time
from datetime import UTC, datetime, timedelta

import pytest
from samples import analysed_entries
from sqlalchemy import Engine, text

from aggregator.config import FeedSettings
from aggregator.models import FetchOutcome
from aggregator.sources.entries import RawEntry
from aggregator.store import FeedFetch, Repository, statistics
from aggregator.store.database import create_database_engine
from aggregator.store.statistics import MIN_ROWS
from aggregator.store.upgrade import upgrade_to_head

NOW = datetime(2026, 11, 30, 12, tzinfo=UTC)
WORDS = (
    "patients cells therapy trial relapsing progressive lesions dose remission antibody "
    "infusion cohort neurologist safety fatigue mobility biomarker lymphocyte myelin brain"
).split()


def _summary(n: int) -> str:
    """Thirty words of their own, so no two items share a near-duplicate key."""
    return " ".join(random.Random(n).choices(WORDS, k=30))


def _first_load(database_url: str) -> tuple[Engine, int]:
    """A fresh database given MIN_ROWS + 200 items in two fetches: all but one, then the last
    once PostgreSQL's activity statistics (which the analysis reads, and a server publishes at
    most once a second) count the first ones. Returns how many the fetches called new."""
    engine = create_database_engine(database_url)
    upgrade_to_head(engine)
    repository = Repository(engine)
    repository.sync_feeds([FeedSettings(name="journal", url="https://journal.example/feed")])
    [feed] = repository.feeds_to_fetch(NOW, include_not_due=True)
    raws = [
        RawEntry(
            guid=f"article-{n}",
            link=f"https://journal.example/articles/{n}",
            title=f"CD19 CAR T-cell therapy in multiple sclerosis: case report {n}",
            summary=_summary(n),
        )
        for n in range(MIN_ROWS + 200)
    ]
    entries = analysed_entries("journal", raws, NOW)
    outcome = FetchOutcome(status="ok", fetched_at=NOW, next_fetch_at=NOW + timedelta(hours=1))
    [(first, _)] = repository.record_fetches([FeedFetch(feed.feed_id, outcome, entries[:-1])])
    _wait_until_counted(engine, first)
    [(last, _)] = repository.record_fetches([FeedFetch(feed.feed_id, outcome, entries[-1:])])
    return engine, first + last


def _wait_until_counted(engine: Engine, items: int) -> None:
    deadline = time.monotonic() + 15
    counted = text("SELECT n_live_tup FROM pg_stat_user_tables WHERE relname = 'items'")
    with engine.connect() as connection:
        while (connection.scalar(counted) or 0) < items:
            assert time.monotonic() < deadline, "PostgreSQL's statistics never counted the items"
            connection.rollback()  # a transaction sees one snapshot of the statistics
            time.sleep(0.1)


def test_a_first_load_gives_the_planner_statistics_for_key_lookups(
    postgres_database_url: str,
) -> None:
    engine, new = _first_load(postgres_database_url)

    assert new == MIN_ROWS + 200
    lookup = "SELECT item_id FROM dedupe_keys WHERE key = ANY(:keys)"
    with engine.connect() as connection:
        keys = {"keys": list(connection.scalars(text("SELECT key FROM dedupe_keys LIMIT 50")))}
        [plan] = connection.scalar(text(f"EXPLAIN (FORMAT JSON) {lookup}"), keys)
        found = len(connection.execute(text(lookup), keys).all())
        analysed = set(
            connection.scalars(
                text("SELECT relname FROM pg_stat_user_tables WHERE last_analyze IS NOT NULL")
            )
        )
    engine.dispose()
    assert {"items", "dedupe_keys"} <= analysed
    # What decides between the index and a scan. Without statistics the planner guesses a
    # share of the table for each key (here forty times too many rows), and at scale reads the
    # whole table for every lookup.
    assert found / 2 <= plan["Plan"]["Plan Rows"] <= found * 2, (plan, found)


def test_a_refused_analysis_does_not_fail_the_stored_batch(
    postgres_database_url: str, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    # As a server's statement_timeout or a missing privilege would refuse it.
    monkeypatch.setattr(statistics, "_OUTGROWN", text("SELECT relname FROM no_such_view"))

    engine, new = _first_load(postgres_database_url)

    assert new == MIN_ROWS + 200
    with engine.connect() as connection:
        assert connection.scalar(text("SELECT count(*) FROM items")) == MIN_ROWS + 200
    engine.dispose()
    assert "tables_not_analysed" in caplog.text
