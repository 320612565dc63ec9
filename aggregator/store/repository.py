"""The storage operations the pipeline and commands need, one unit of work per method.

Callers get and give plain values (`FeedState`, `FetchOutcome`, `Entry`); sessions and rows stay
inside this module, so each method is one transaction that either happens whole or not at all.
"""

from __future__ import annotations

from collections.abc import Collection, Iterator, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Engine, func, insert, or_, select, update
from sqlalchemy.orm import Session, sessionmaker

from aggregator.config import FeedSettings
from aggregator.models import Entry
from aggregator.store.schema import Feed, Item

# Bound parameter lists: SQLite allows 32,766 per statement, and smaller batches keep memory flat.
BATCH_SIZE = 500


@dataclass(frozen=True, slots=True)
class FeedState:
    """What the fetcher needs to know about a feed before requesting it."""

    feed_id: int
    name: str
    url: str
    etag: str | None
    last_modified: str | None
    body_hash: str | None
    consecutive_failures: int


@dataclass(frozen=True, slots=True)
class FetchOutcome:
    """How one fetch of one feed ended, as it should be recorded."""

    status: str
    fetched_at: datetime
    next_fetch_at: datetime
    http_status: int | None = None
    error: str | None = None
    etag: str | None = None
    last_modified: str | None = None
    body_hash: str | None = None
    title: str | None = None

    @property
    def failed(self) -> bool:
        return self.error is not None


@dataclass(frozen=True, slots=True)
class FeedRow:
    """A feed with its fetch state, for `feeds list`."""

    name: str
    url: str
    type: str
    title: str | None
    status: str
    last_error: str | None
    consecutive_failures: int
    last_fetched_at: datetime | None
    next_fetch_at: datetime | None
    items: int


@dataclass(frozen=True, slots=True)
class StoryRow:
    """An item as listed by `stories list` (until stories group items across feeds)."""

    id: int
    title: str
    link: str | None
    published: datetime
    first_seen: datetime
    source: str
    summary: str


class Repository:
    """Storage for feeds and items on one engine (SQLite or PostgreSQL)."""

    def __init__(self, engine: Engine) -> None:
        self._sessions = sessionmaker(engine, expire_on_commit=False)

    def sync_feeds(self, feeds: Sequence[FeedSettings]) -> None:
        """Make feed rows follow the config: add new names, follow new URLs, deactivate gone ones.

        A changed URL is a different resource, so its validators and body hash are forgotten.
        """
        by_name = {feed.name: feed for feed in feeds}
        with self._sessions.begin() as session:
            rows = {row.name: row for row in session.scalars(select(Feed))}
            for name, feed in by_name.items():
                row = rows.get(name)
                if row is None:
                    session.add(Feed(name=name, url=feed.url, type=feed.type))
                    continue
                if row.url != feed.url:
                    row.url = feed.url
                    row.etag = row.last_modified = row.body_hash = None
                    row.next_fetch_at = None
                row.type = feed.type
                row.active = True
            for name, row in rows.items():
                if name not in by_name:
                    row.active = False

    def feeds_to_fetch(
        self, now: datetime, *, names: Collection[str] | None = None, include_not_due: bool = False
    ) -> list[FeedState]:
        """Active feeds due at `now` (all of them with `include_not_due`), or those named."""
        query = select(Feed).where(Feed.active).order_by(Feed.name)
        if names is not None:
            query = query.where(Feed.name.in_(names))
        elif not include_not_due:
            query = query.where(or_(Feed.next_fetch_at.is_(None), Feed.next_fetch_at <= now))
        with self._sessions() as session:
            return [
                FeedState(
                    feed_id=row.id,
                    name=row.name,
                    url=row.url,
                    etag=row.etag,
                    last_modified=row.last_modified,
                    body_hash=row.body_hash,
                    consecutive_failures=row.consecutive_failures,
                )
                for row in session.scalars(query)
            ]

    def record_fetch(
        self, feed_id: int, outcome: FetchOutcome, entries: Sequence[Entry] = ()
    ) -> tuple[int, int]:
        """Store a fetch's entries and the feed's new state in one transaction.

        Returns (new, updated) item counts. A failed fetch changes only the feed's state: what was
        stored before stays.
        """
        with self._sessions.begin() as session:
            feed = session.get_one(Feed, feed_id)
            counts = self._upsert_items(session, feed_id, entries, outcome.fetched_at)
            _apply_outcome(feed, outcome)
            return counts

    def _upsert_items(
        self, session: Session, feed_id: int, entries: Sequence[Entry], now: datetime
    ) -> tuple[int, int]:
        new = updated = 0
        for batch in _batches(entries, BATCH_SIZE):
            known = {
                identity: (item_id, content_hash)
                for identity, item_id, content_hash in session.execute(
                    select(Item.identity, Item.id, Item.content_hash).where(
                        Item.feed_id == feed_id,
                        Item.identity.in_([entry.identity for entry in batch]),
                    )
                )
            }
            inserts = [
                _item_values(entry)
                | {"feed_id": feed_id, "first_seen_at": now, "last_seen_at": now}
                for entry in batch
                if entry.identity not in known
            ]
            changes = [
                _item_values(entry) | {"id": known[entry.identity][0], "last_seen_at": now}
                for entry in batch
                if entry.identity in known and known[entry.identity][1] != entry.content_hash
            ]
            unchanged_ids = [
                known[entry.identity][0]
                for entry in batch
                if entry.identity in known and known[entry.identity][1] == entry.content_hash
            ]
            if inserts:
                session.execute(insert(Item), inserts)
            if changes:
                session.execute(update(Item), changes)
            if unchanged_ids:
                session.execute(
                    update(Item).where(Item.id.in_(unchanged_ids)).values(last_seen_at=now)
                )
            new += len(inserts)
            updated += len(changes)
        return new, updated

    def list_feeds(self) -> list[FeedRow]:
        """Every active feed with its fetch state and item count, by name."""
        item_counts = (
            select(Item.feed_id, func.count().label("item_count")).group_by(Item.feed_id).subquery()
        )
        query = (
            select(Feed, func.coalesce(item_counts.c.item_count, 0))
            .outerjoin(item_counts, item_counts.c.feed_id == Feed.id)
            .where(Feed.active)
            .order_by(Feed.name)
        )
        with self._sessions() as session:
            return [
                FeedRow(
                    name=feed.name,
                    url=feed.url,
                    type=feed.type,
                    title=feed.title,
                    status=feed.status,
                    last_error=feed.last_error,
                    consecutive_failures=feed.consecutive_failures,
                    last_fetched_at=feed.last_fetched_at,
                    next_fetch_at=feed.next_fetch_at,
                    items=count,
                )
                for feed, count in session.execute(query)
            ]

    def list_stories(self, limit: int) -> list[StoryRow]:
        """The newest items first (by first seen, then published)."""
        query = (
            select(Item, Feed.name)
            .join(Feed)
            .order_by(Item.first_seen_at.desc(), Item.published_at.desc(), Item.id.desc())
            .limit(limit)
        )
        with self._sessions() as session:
            return [
                StoryRow(
                    id=item.id,
                    title=item.title,
                    link=item.link,
                    published=item.published_at,
                    first_seen=item.first_seen_at,
                    source=feed_name,
                    summary=item.summary,
                )
                for item, feed_name in session.execute(query)
            ]


def _apply_outcome(feed: Feed, outcome: FetchOutcome) -> None:
    feed.status = outcome.status
    feed.last_fetched_at = outcome.fetched_at
    feed.next_fetch_at = outcome.next_fetch_at
    feed.last_http_status = outcome.http_status
    if outcome.failed:
        feed.last_error = outcome.error
        feed.consecutive_failures += 1
        return
    feed.last_error = None
    feed.consecutive_failures = 0
    feed.last_success_at = outcome.fetched_at
    # A 304 may omit validators; keep the ones we have rather than forget them.
    feed.etag = outcome.etag or feed.etag
    feed.last_modified = outcome.last_modified or feed.last_modified
    feed.body_hash = outcome.body_hash or feed.body_hash
    feed.title = outcome.title or feed.title


def _item_values(entry: Entry) -> dict[str, Any]:
    return {
        "identity": entry.identity,
        "guid": entry.guid,
        "link": entry.link,
        "title": entry.title,
        "summary": entry.summary,
        "content_html": entry.content_html,
        "authors": list(entry.authors),
        "categories": list(entry.categories),
        "published_at": entry.published_at,
        "updated_at": entry.updated_at,
        "date_estimated": entry.date_estimated,
        "content_hash": entry.content_hash,
    }


def _batches(values: Sequence[Entry], size: int) -> Iterator[Sequence[Entry]]:
    for start in range(0, len(values), size):
        yield values[start : start + size]
