"""Recording fetches: a feed's new state and the items its body brought, in one transaction.

New and changed items are written with their topic matches and grouped into stories
(`stories.py`); unchanged ones only mark that they were seen. Fetches that brought nothing
(304s, identical bodies) are recorded many to a transaction.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import datetime
from typing import TYPE_CHECKING, Any

from sqlalchemy import bindparam, insert, select, text, update
from sqlalchemy.orm import Session

from aggregator.models import FetchOutcome
from aggregator.normalise import fallback_title
from aggregator.schedule import typical_gap
from aggregator.store.batches import batches
from aggregator.store.matches import store_matches
from aggregator.store.meta import new_content_version
from aggregator.store.schema import Feed, Item, RecordStatus, feed_title, table_of, update_by_id
from aggregator.store.search import fill_search_text, search_text
from aggregator.store.sessions import Sessions
from aggregator.store.statistics import analyse_outgrown_tables
from aggregator.store.stories import (
    NewItem,
    assign_stories,
    assign_unassigned,
    refresh_stories,
)

if TYPE_CHECKING:  # every command opens the store; only fetching needs the matcher
    from aggregator.analyse import AnalysedEntry


@dataclass(frozen=True, slots=True)
class FeedFetch:
    """One feed's fetch to record: how it ended and the entries its body brought."""

    feed_id: int
    outcome: FetchOutcome
    entries: Iterable[AnalysedEntry] = ()


class FetchRecorder:
    """Recording fetches and the items they brought; part of `Repository`."""

    _db: Sessions

    def record_fetch(
        self, feed_id: int, outcome: FetchOutcome, entries: Iterable[AnalysedEntry] = ()
    ) -> tuple[int, int]:
        """Store a fetch's entries (new and changed ones with their topic matches, grouped into
        stories) and the feed's new state, in one transaction.

        `entries` is read once, BATCH_SIZE at a time, so a feed parsed as it is read is stored
        in flat memory.

        Returns (new, updated) item counts. A failed fetch changes only the feed's state: what was
        stored before stays.
        """
        return self.record_fetches([FeedFetch(feed_id, outcome, entries)])[0]

    def record_fetches(self, fetches: Sequence[FeedFetch]) -> list[tuple[int, int]]:
        """`record_fetch` for several feeds in one transaction: their items are looked up,
        inserted and grouped into stories together, a few statements for them all, where
        each feed on its own paid its own (a third of the store's time at 50 items a feed).

        All or nothing: if one feed cannot be stored, none is. Items' first and last seen
        times are the latest fetch time of the batch. Returns counts in the order given.
        """
        if not fetches:
            return []
        feed_ids = [fetch.feed_id for fetch in fetches]
        with self._db.transaction() as session:
            feeds = {f.id: f for f in session.scalars(select(Feed).where(Feed.id.in_(feed_ids)))}
            now = max(fetch.outcome.fetched_at for fetch in fetches)
            # A feed's first successful fetch brings its backlog: stored, but news only for
            # what was published within a digest's period.
            backlog = {feed.id for feed in feeds.values() if feed.last_success_at is None}
            counts = self._upsert_items(session, fetches, now, backlog)
            grown = {feed_id for feed_id in feed_ids if any(counts[feed_id])}
            # Read before any feed changes, so the feeds' rows are written in one flush.
            published = _recent_publish_times(session, grown) if grown else {}
            for fetch in fetches:
                feed = feeds[fetch.feed_id]
                _apply_outcome(feed, fetch.outcome)
                if fetch.feed_id in grown:
                    gap = typical_gap(published.get(fetch.feed_id, []))
                    feed.publish_gap_seconds = int(gap.total_seconds()) if gap else None
            if grown:
                new_content_version(session)
        if grown and self._db.dialect == "postgresql":
            analyse_outgrown_tables(self._db.engine)
        return [counts[feed_id] for feed_id in feed_ids]

    def record_quiet_fetches(self, outcomes: Sequence[tuple[int, FetchOutcome]]) -> None:
        """Record fetches that brought nothing to store (a 304, the same body again), many in
        one transaction: a refresh of a thousand quiet feeds is a few commits, not a thousand.

        They carry no data, so losing them to a crash costs only a fetch made again.
        """
        with self._db.transaction() as session:
            feeds: dict[int, Feed] = {}
            for batch in batches([feed_id for feed_id, _ in outcomes]):
                feeds |= {
                    feed.id: feed
                    for feed in session.scalars(select(Feed).where(Feed.id.in_(batch)))
                }
            for feed_id, outcome in outcomes:
                _apply_outcome(feeds[feed_id], outcome)

    def _upsert_items(
        self,
        session: Session,
        fetches: Sequence[FeedFetch],
        now: datetime,
        backlog: Collection[int],
    ) -> dict[int, tuple[int, int]]:
        new: Counter[int] = Counter()
        updated: Counter[int] = Counter()
        sources = {
            feed_id: f"{name} {title or ''}"
            for feed_id, name, title in session.execute(
                select(Feed.id, Feed.name, feed_title()).where(
                    Feed.id.in_({fetch.feed_id for fetch in fetches})
                )
            )
        }
        stream = ((fetch.feed_id, analysed) for fetch in fetches for analysed in fetch.entries)
        for batch in batches(stream):
            stored = {
                "feed_ids": list({feed_id for feed_id, _ in batch}),
                "identities": list({analysed.entry.identity for _, analysed in batch}),
            }
            known = {
                (feed_id, identity): (item_id, content_hash, status)
                for feed_id, identity, item_id, content_hash, status in session.execute(
                    _STORED_VERSIONS, stored
                )
            }
            fresh: dict[tuple[int, str], AnalysedEntry] = {}
            changed: dict[int, AnalysedEntry] = {}
            new_status: dict[int, AnalysedEntry] = {}
            feed_of: dict[int, int] = {}
            unchanged_ids: list[int] = []
            for feed_id, analysed in batch:
                key = (feed_id, analysed.entry.identity)
                item_id, content_hash, status = known.get(key, (None, None, None))
                if item_id is None:
                    fresh[key] = analysed
                    new[feed_id] += 1
                elif content_hash != analysed.entry.content_hash:
                    changed[item_id] = analysed
                    feed_of[item_id] = feed_id
                    updated[feed_id] += 1
                    if analysed.entry.status not in (None, status):
                        new_status[item_id] = analysed
                else:
                    unchanged_ids.append(item_id)
            if changed:
                session.execute(
                    update_by_id(Item),
                    [
                        _item_values(a, sources[feed_of[item_id]])
                        | {"row_id": item_id, "last_seen_at": now}
                        for item_id, a in changed.items()
                    ],
                )
            new_items = [
                NewItem(
                    _item_values(a, sources[feed_id])
                    | {"feed_id": feed_id, "first_seen_at": now, "last_seen_at": now},
                    a.fingerprint,
                    backlog=feed_id in backlog,
                )
                for (feed_id, _), a in fresh.items()
            ]
            fingerprints = {
                item_id: replace(a.fingerprint, item=str(item_id)) for item_id, a in changed.items()
            }
            added_ids = assign_stories(session, new_items, list(changed), now, fingerprints)
            added = dict(zip(added_ids, fresh.values(), strict=True))
            _record_statuses(
                session, {i: a for i, a in added.items() if a.entry.status} | new_status, now
            )
            touched = added | changed
            store_matches(
                session, {item_id: a.matches for item_id, a in touched.items()}, replaced=changed
            )
            if unchanged_ids:
                session.execute(
                    update(Item).where(Item.id.in_(unchanged_ids)).values(last_seen_at=now)
                )
        return {fetch.feed_id: (new[fetch.feed_id], updated[fetch.feed_id]) for fetch in fetches}

    def group_unassigned_items(self, now: datetime) -> int:
        """Put items stored before stories existed into stories; returns how many."""
        with self._db.transaction() as session:
            assigned = assign_unassigned(session, now)
            if assigned:
                new_content_version(session)
            return assigned

    def title_untitled_items(self, now: datetime) -> int:
        """Give items stored without a title (before titles were made from text) one, and
        their stories with them; returns how many. An empty title stopped the Atom export."""
        with self._db.transaction() as session:
            untitled = session.execute(
                select(Item.id, Item.content_html, Item.summary, Item.link, Item.story_id).where(
                    Item.title == ""
                )
            ).all()
            if not untitled:
                return 0
            session.execute(
                update_by_id(Item),
                [
                    {"row_id": item_id, "title": fallback_title(content or summary, link)}
                    for item_id, content, summary, link, _ in untitled
                ],
            )
            refresh_stories(session, {story for *_, story in untitled if story is not None}, now)
            new_content_version(session)
            return len(untitled)

    def index_unindexed_items(self) -> int:
        """Fill the search words of items stored before search read them; returns how many."""
        with self._db.transaction() as session:
            return fill_search_text(session)


# What is stored of a batch's items, to tell new, changed and unchanged ones apart. Written
# once: built per batch, the query cost SQLAlchemy more than the database answering it.
_STORED_VERSIONS = text(
    "SELECT feed_id, identity, id, content_hash, status FROM items"
    " WHERE feed_id IN :feed_ids AND identity IN :identities"
).bindparams(bindparam("feed_ids", expanding=True), bindparam("identities", expanding=True))

# Each feed's latest publication times (estimated dates left out), for all a batch's feeds in
# one query. Written once: built per transaction as a select with a window function, it cost
# SQLAlchemy more than the database answering it.
_RECENT_PUBLISH_TIMES = (
    text(
        "SELECT feed_id, published_at FROM ("
        " SELECT feed_id, published_at,"
        " row_number() OVER (PARTITION BY feed_id ORDER BY published_at DESC) AS newest_first"
        " FROM items WHERE feed_id IN :feed_ids AND date_estimated = false"
        ") AS ranked WHERE newest_first <= :limit"
    )
    .bindparams(bindparam("feed_ids", expanding=True))
    .columns(table_of(Item).c.feed_id, table_of(Item).c.published_at)
)


def _recent_publish_times(
    session: Session, feed_ids: Collection[int], limit: int = 20
) -> dict[int, list[datetime]]:
    """When each feed's latest `limit` items were published (estimated dates left out)."""
    published: defaultdict[int, list[datetime]] = defaultdict(list)
    query = {"feed_ids": list(feed_ids), "limit": limit}
    for feed_id, published_at in session.execute(_RECENT_PUBLISH_TIMES, query):
        published[feed_id].append(published_at)
    return published


def _apply_outcome(feed: Feed, outcome: FetchOutcome) -> None:
    """Write the feed's next state, as `outcome.next_state` decided it."""
    feed.status = outcome.status
    feed.last_fetched_at = outcome.fetched_at
    feed.next_fetch_at = outcome.next_fetch_at
    feed.lease_owner = None
    feed.last_http_status = outcome.http_status
    feed.last_error = outcome.error
    feed.consecutive_failures = outcome.consecutive_failures
    feed.failing_since = outcome.failing_since
    feed.last_success_at = outcome.last_success_at
    feed.etag = outcome.etag
    feed.last_modified = outcome.last_modified
    feed.body_hash = outcome.body_hash
    feed.title = outcome.title
    feed.ttl_seconds = int(outcome.ttl.total_seconds()) if outcome.ttl else None


def _record_statuses(session: Session, items: Mapping[int, AnalysedEntry], now: datetime) -> None:
    """A registry record's status, as of its own date, each time an item first shows it."""
    rows = [
        {
            "item_id": item_id,
            "status": analysed.entry.status,
            "as_of": analysed.entry.updated_at or analysed.entry.published_at,
            "seen_at": now,
        }
        for item_id, analysed in items.items()
    ]
    if rows:
        session.execute(insert(table_of(RecordStatus)), rows)


def _item_values(analysed: AnalysedEntry, source: str) -> dict[str, Any]:
    entry = analysed.entry
    return {
        "search_text": search_text(
            entry.title, entry.summary, entry.content_html, entry.identifiers, source
        ),
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
        "kind": entry.kind,
        "canonical_url": analysed.canonical_url,
        "identifiers": list(entry.identifiers),
        "status": entry.status,
    }
