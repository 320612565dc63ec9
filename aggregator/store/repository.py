"""The storage operations the pipeline and commands need, one unit of work per method.

Callers get and give plain values (`FeedState`, `FetchOutcome`, `AnalysedEntry`); sessions and
rows stay inside this module, so each method is one transaction that either happens whole or
not at all.
"""

from __future__ import annotations

import re
import uuid
from collections import Counter, defaultdict
from collections.abc import Callable, Collection, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from itertools import islice
from typing import Any, TypeVar

from sqlalchemy import (
    ColumnElement,
    Engine,
    Integer,
    Select,
    delete,
    false,
    func,
    insert,
    literal_column,
    or_,
    select,
    table,
    update,
)
from sqlalchemy.orm import Session, sessionmaker

from aggregator.analyse import AnalysedEntry
from aggregator.config import FeedSettings
from aggregator.models import TermHit, TopicMatch
from aggregator.normalise import fallback_title
from aggregator.schedule import typical_gap
from aggregator.store.schema import (
    Feed,
    Item,
    Match,
    Meta,
    Story,
    StoryLink,
    table_of,
    update_by_id,
)
from aggregator.store.statistics import analyse_outgrown_tables
from aggregator.store.stories import (
    NewItem,
    assign_stories,
    assign_unassigned,
    refresh_stories,
)

# Bound parameter lists: SQLite allows 32,766 per statement, and smaller batches keep memory flat.
BATCH_SIZE = 500
RULES_KEY = "rules_fingerprint"
# Changes whenever what readers see of stories may have changed: the page's validator.
CONTENT_VERSION_KEY = "content_version"
PAUSED = "paused"  # a feed failing for too long, or gone (410): not fetched until resumed
_T = TypeVar("_T")


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
    failing_since: datetime | None = None
    ttl: timedelta | None = None
    type: str = "rss"
    last_success_at: datetime | None = None
    publish_gap: timedelta | None = None  # how often it publishes, once that is known


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
    ttl: timedelta | None = None  # from a parsed body; None keeps what is known

    @property
    def failed(self) -> bool:
        return self.error is not None


@dataclass(frozen=True, slots=True)
class FeedFetch:
    """One feed's fetch to record: how it ended and the entries its body brought."""

    feed_id: int
    outcome: FetchOutcome
    entries: Iterable[AnalysedEntry] = ()


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
    last_success_at: datetime | None
    next_fetch_at: datetime | None
    items: int
    kind: str | None = None


@dataclass(frozen=True, slots=True)
class StorySource:
    """One item of a story: where it was seen, under which title and link."""

    item_id: int
    feed: str
    kind: str | None
    title: str
    link: str | None
    published: datetime
    feed_title: str  # what the feed calls itself, else its name in the config


@dataclass(frozen=True, slots=True)
class StoryRow:
    """A story as listed: the best source's title and link, every source, why it matched."""

    id: int
    title: str
    link: str | None
    first_seen: datetime
    updated: datetime
    news_at: datetime
    summary: str
    sources: tuple[StorySource, ...]
    matches: tuple[TopicMatch, ...]  # the best match per topic among the story's items


@dataclass(frozen=True, slots=True)
class MergeReason:
    """Two items of a story, and why they were found to be the same story."""

    item_id: int
    other_item_id: int
    reason: str


@dataclass(frozen=True, slots=True)
class ItemText:
    """What matching reads of a stored item."""

    item_id: int
    feed: str
    title: str
    summary: str
    content_html: str


@dataclass(frozen=True, slots=True)
class MatchChange:
    """An item that would join (`added`) or leave a topic under new rules."""

    topic: str
    item_id: int
    title: str
    added: bool


ItemMatcher = Callable[[ItemText], Sequence[TopicMatch]]


class Repository:
    """Storage for feeds and items on one engine (SQLite or PostgreSQL)."""

    def __init__(self, engine: Engine) -> None:
        self._engine = engine
        self._sessions = sessionmaker(engine, expire_on_commit=False)
        self._dialect = engine.dialect.name
        # One-statement reads need no transaction: on PostgreSQL, BEGIN and ROLLBACK around
        # the page's version check were two of its three round trips. On SQLite, where they
        # cost no round trip, switching a connection's mode and back costs more than it saves.
        self._single_reads = (
            engine.execution_options(isolation_level="AUTOCOMMIT")
            if self._dialect == "postgresql"
            else engine
        )

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
                    session.add(Feed(name=name, url=feed.url, type=feed.type, kind=feed.kind))
                    continue
                if row.url != feed.url:
                    row.url = feed.url
                    row.etag = row.last_modified = row.body_hash = None
                    row.next_fetch_at = None
                row.type = feed.type
                row.kind = feed.kind
                row.active = True
            for name, row in rows.items():
                if name not in by_name:
                    row.active = False
            if session.new or any(map(session.is_modified, session.dirty)):
                _new_content_version(session)  # names and kinds show on the page

    def feeds_to_fetch(
        self, now: datetime, *, names: Collection[str] | None = None, include_not_due: bool = False
    ) -> list[FeedState]:
        """Active feeds due at `now` (all of them with `include_not_due`), or those named.

        Paused feeds are left out unless named: fetching one by name is how to try it again.
        """
        query = select(Feed).where(Feed.active).order_by(Feed.name)
        if names is not None:
            query = query.where(Feed.name.in_(names))
        else:
            query = query.where(Feed.status != PAUSED)
            if not include_not_due:
                query = query.where(_due(now))
        with self._sessions() as session:
            return [_feed_state(row) for row in session.scalars(query)]

    def claim_due_feeds(
        self, now: datetime, *, lease_until: datetime, owner: str, limit: int
    ) -> list[FeedState]:
        """Take up to `limit` due feeds for `owner` until `lease_until`, in one statement.

        On PostgreSQL the due rows are locked with SKIP LOCKED, so processes claiming at the
        same moment get different feeds and never wait for each other; SQLite runs one writer
        at a time anyway. The lease is the feed's next_fetch_at moved forward: if the owner dies,
        the feed simply falls due again when it runs out.
        """
        due = (
            select(Feed.id)
            .where(Feed.active, Feed.status != PAUSED, _due(now))
            .order_by(Feed.next_fetch_at.is_not(None), Feed.next_fetch_at, Feed.id)
            .limit(limit)
            .with_for_update(skip_locked=True)
        )
        with self._sessions.begin() as session:
            claimed = session.scalars(
                update(Feed)
                .where(Feed.id.in_(due.scalar_subquery()))
                .values(next_fetch_at=lease_until, lease_owner=owner)
                .returning(Feed)
            ).all()
            return sorted((_feed_state(row) for row in claimed), key=lambda state: state.name)

    def release_claims(self, feed_ids: Collection[int], now: datetime) -> None:
        """Give back feeds claimed but not fetched (a shutdown): due again at once, for anyone."""
        if not feed_ids:
            return
        with self._sessions.begin() as session:
            session.execute(
                update(Feed)
                .where(Feed.id.in_(feed_ids), Feed.lease_owner.is_not(None))
                .values(next_fetch_at=now, lease_owner=None)
            )

    def release_dead_claims(self, now: datetime, is_dead: Callable[[str], bool]) -> int:
        """Give back the claims of owners `is_dead` says are gone, without waiting for their
        leases to run out; returns how many feeds were released."""
        with self._sessions.begin() as session:
            owners = session.scalars(
                select(Feed.lease_owner).where(Feed.lease_owner.is_not(None)).distinct()
            ).all()
            dead = [owner for owner in owners if owner is not None and is_dead(owner)]
            if not dead:
                return 0
            released = session.execute(
                update(Feed)
                .where(Feed.lease_owner.in_(dead))
                .values(next_fetch_at=now, lease_owner=None)
                .returning(Feed.id)
            )
            return len(released.all())

    def resume_feed(self, name: str) -> bool:
        """Make a paused feed due again with a clean slate; false if it is not paused."""
        with self._sessions.begin() as session:
            resumed = session.execute(
                update(Feed)
                .where(Feed.name == name, Feed.status == PAUSED)
                .values(
                    status="resumed",
                    next_fetch_at=None,
                    consecutive_failures=0,
                    failing_since=None,
                    lease_owner=None,
                )
                .returning(Feed.id)
            )
            return resumed.first() is not None

    def count_stories(self) -> int:
        with self._sessions() as session:
            return session.scalar(select(func.count()).select_from(Story)) or 0

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
        with self._sessions.begin() as session:
            feeds = {f.id: f for f in session.scalars(select(Feed).where(Feed.id.in_(feed_ids)))}
            now = max(fetch.outcome.fetched_at for fetch in fetches)
            counts = self._upsert_items(session, fetches, now)
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
                _new_content_version(session)
        if grown and self._dialect == "postgresql":
            analyse_outgrown_tables(self._engine)
        return [counts[feed_id] for feed_id in feed_ids]

    def record_quiet_fetches(self, outcomes: Sequence[tuple[int, FetchOutcome]]) -> None:
        """Record fetches that brought nothing to store (a 304, the same body again), many in
        one transaction: a refresh of a thousand quiet feeds is a few commits, not a thousand.

        They carry no data, so losing them to a crash costs only a fetch made again.
        """
        with self._sessions.begin() as session:
            feeds: dict[int, Feed] = {}
            for batch in _batches([feed_id for feed_id, _ in outcomes], BATCH_SIZE):
                feeds |= {
                    feed.id: feed
                    for feed in session.scalars(select(Feed).where(Feed.id.in_(batch)))
                }
            for feed_id, outcome in outcomes:
                _apply_outcome(feeds[feed_id], outcome)

    def _upsert_items(
        self, session: Session, fetches: Sequence[FeedFetch], now: datetime
    ) -> dict[int, tuple[int, int]]:
        new: Counter[int] = Counter()
        updated: Counter[int] = Counter()
        stream = ((fetch.feed_id, analysed) for fetch in fetches for analysed in fetch.entries)
        for batch in _batches(stream, BATCH_SIZE):
            known = {
                (feed_id, identity): (item_id, content_hash)
                for feed_id, identity, item_id, content_hash in session.execute(
                    select(Item.feed_id, Item.identity, Item.id, Item.content_hash).where(
                        Item.feed_id.in_({feed_id for feed_id, _ in batch}),
                        Item.identity.in_({analysed.entry.identity for _, analysed in batch}),
                    )
                )
            }
            fresh: dict[tuple[int, str], AnalysedEntry] = {}
            changed: dict[int, AnalysedEntry] = {}
            unchanged_ids: list[int] = []
            for feed_id, analysed in batch:
                key = (feed_id, analysed.entry.identity)
                item_id, content_hash = known.get(key, (None, None))
                if item_id is None:
                    fresh[key] = analysed
                    new[feed_id] += 1
                elif content_hash != analysed.entry.content_hash:
                    changed[item_id] = analysed
                    updated[feed_id] += 1
                else:
                    unchanged_ids.append(item_id)
            if changed:
                session.execute(
                    update_by_id(Item),
                    [
                        _item_values(a) | {"row_id": item_id, "last_seen_at": now}
                        for item_id, a in changed.items()
                    ],
                )
            new_items = [
                NewItem(
                    _item_values(a)
                    | {"feed_id": feed_id, "first_seen_at": now, "last_seen_at": now},
                    a.fingerprint,
                )
                for (feed_id, _), a in fresh.items()
            ]
            fingerprints = {
                item_id: replace(a.fingerprint, item=str(item_id)) for item_id, a in changed.items()
            }
            added_ids = assign_stories(session, new_items, list(changed), now, fingerprints)
            touched = dict(zip(added_ids, fresh.values(), strict=True)) | changed
            _store_matches(
                session, {item_id: a.matches for item_id, a in touched.items()}, replaced=changed
            )
            if unchanged_ids:
                session.execute(
                    update(Item).where(Item.id.in_(unchanged_ids)).values(last_seen_at=now)
                )
        return {fetch.feed_id: (new[fetch.feed_id], updated[fetch.feed_id]) for fetch in fetches}

    def group_unassigned_items(self, now: datetime) -> int:
        """Put items stored before stories existed into stories; returns how many."""
        with self._sessions.begin() as session:
            assigned = assign_unassigned(session, now)
            if assigned:
                _new_content_version(session)
            return assigned

    def title_untitled_items(self, now: datetime) -> int:
        """Give items stored without a title (before titles were made from text) one, and
        their stories with them; returns how many. An empty title stopped the Atom export."""
        with self._sessions.begin() as session:
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
            _new_content_version(session)
            return len(untitled)

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
                    last_success_at=feed.last_success_at,
                    next_fetch_at=feed.next_fetch_at,
                    items=count,
                    kind=feed.kind,
                )
                for feed, count in session.execute(query)
            ]

    def list_stories(
        self,
        limit: int,
        *,
        topic: str | None = None,
        matched_only: bool = True,
        search: str | None = None,
    ) -> list[StoryRow]:
        """The newest stories first, with their sources and why they matched.

        Only stories an item of which matches a topic (`topic`, if given) are listed, unless
        `matched_only` is false; `search` keeps those with an item containing every word of it
        (full-text: SQLite FTS5, PostgreSQL tsvector).
        """
        query = select(Story)
        if search is not None:
            matching = select(Item.story_id).where(_text_search(search, self._dialect))
            query = query.where(Story.id.in_(matching))
        if topic is not None or matched_only:
            matched = select(Item.story_id).join(Match)
            if topic is not None:
                matched = matched.where(Match.topic == topic)
            query = query.where(Story.id.in_(matched))
        query = query.order_by(Story.first_seen_at.desc(), Story.id.desc()).limit(limit)
        with self._sessions() as session:
            return _story_rows(session, list(session.scalars(query)))

    def stories_by_id(self, story_ids: Sequence[int]) -> list[StoryRow]:
        """The stories with these ids, in the order given (ids that no longer exist left out)."""
        with self._sessions() as session:
            found: dict[int, Story] = {}
            for batch in _batches(story_ids, BATCH_SIZE):
                stories = session.scalars(select(Story).where(Story.id.in_(batch)))
                found |= {story.id: story for story in stories}
            return _story_rows(session, [found[i] for i in story_ids if i in found])

    def show_story(self, story_id: int) -> tuple[StoryRow, list[MergeReason]] | None:
        """A story with every source, and the links that made its items one story."""
        with self._sessions() as session:
            story = session.get(Story, story_id)
            if story is None:
                return None
            [row] = _story_rows(session, [story])
            item_ids = [source.item_id for source in row.sources]
            links = session.scalars(
                select(StoryLink)
                .where(StoryLink.item_id.in_(item_ids))
                .order_by(StoryLink.item_id, StoryLink.other_item_id)
            )
            return row, [MergeReason(x.item_id, x.other_item_id, x.reason) for x in links]

    def content_version(self) -> str:
        """A token that changes in every transaction that changes stories, their items or
        their matches (a random one, so writers in several processes can never repeat one).

        Read on every page request, so through a plain connection outside a transaction: an
        ORM session costs three times as much here."""
        with self._single_reads.connect() as connection:
            return connection.scalar(_CONTENT_VERSION) or ""

    def rules_fingerprint(self) -> str | None:
        """The fingerprint of the matching rules the stored matches follow, if any."""
        with self._sessions() as session:
            row = session.get(Meta, RULES_KEY)
            return row.value if row else None

    def rematch(self, fingerprint: str, match_item: ItemMatcher) -> list[MatchChange]:
        """Recompute every stored item's matches under new rules, in one transaction.

        Rules apply to the past, not only to new items. Returns what changed.
        """
        with self._sessions.begin() as session:
            changes = []
            for batch in self._recomputed(session, match_item):
                changes += _changes(session, batch)
                matches = {text.item_id: found for text, found in batch}
                _store_matches(session, matches, replaced=matches)
            session.merge(Meta(key=RULES_KEY, value=fingerprint))
            if changes:
                _new_content_version(session)
            return changes

    def preview_rematch(self, match_item: ItemMatcher) -> list[MatchChange]:
        """What `rematch` would add and remove, without changing anything."""
        with self._sessions() as session:
            return [
                change
                for batch in self._recomputed(session, match_item)
                for change in _changes(session, batch)
            ]

    def _recomputed(
        self, session: Session, match_item: ItemMatcher
    ) -> Iterator[list[tuple[ItemText, Sequence[TopicMatch]]]]:
        query = (
            select(Item.id, Feed.name, Item.title, Item.summary, Item.content_html)
            .join(Feed)
            .order_by(Item.id)
        )
        batch = []
        for row in session.execute(query.execution_options(yield_per=BATCH_SIZE)):
            text = ItemText(*row)
            batch.append((text, match_item(text)))
            if len(batch) == BATCH_SIZE:
                yield batch
                batch = []
        if batch:
            yield batch


def _recent_publish_times(
    session: Session, feed_ids: Collection[int], limit: int = 20
) -> dict[int, list[datetime]]:
    """When each feed's latest `limit` items were published (estimated dates left out), for
    all the feeds in one query."""
    newest_first = func.row_number().over(
        partition_by=Item.feed_id, order_by=Item.published_at.desc()
    )
    ranked = (
        select(Item.feed_id, Item.published_at, newest_first.label("rank"))
        .where(Item.feed_id.in_(feed_ids), Item.date_estimated.is_(False))
        .subquery()
    )
    published: defaultdict[int, list[datetime]] = defaultdict(list)
    query = select(ranked.c.feed_id, ranked.c.published_at).where(ranked.c.rank <= limit)
    for feed_id, published_at in session.execute(query):
        published[feed_id].append(published_at)
    return published


_CONTENT_VERSION = select(Meta.value).where(Meta.key == CONTENT_VERSION_KEY)


def _new_content_version(session: Session) -> None:
    session.merge(Meta(key=CONTENT_VERSION_KEY, value=uuid.uuid4().hex))


def _text_search(words: str, dialect: str) -> ColumnElement[bool]:
    """Items containing every word of `words`, through the database's full-text index.

    Words are quoted for FTS5 so that a reader's "CAR-T" or a stray quote is text, never query
    syntax; PostgreSQL's websearch_to_tsquery is made to take what people type.
    """
    terms = re.findall(r"\w+", words)
    if not terms:
        return false()
    if dialect == "sqlite":
        matching: Select[int] = (
            select(literal_column("rowid", Integer))
            .select_from(table("items_search"))
            .where(literal_column("items_search").op("MATCH")(" ".join(f'"{t}"' for t in terms)))
        )
        return Item.id.in_(matching)
    document = func.to_tsvector("english", Item.title + " " + Item.summary)
    return document.op("@@")(func.websearch_to_tsquery("english", " ".join(terms)))


def _store_matches(
    session: Session, matches: Mapping[int, Sequence[TopicMatch]], *, replaced: Collection[int]
) -> None:
    """Store `matches` by item; the `replaced` items' earlier matches are deleted first (a new
    item has none to delete)."""
    if replaced:
        session.execute(delete(Match).where(Match.item_id.in_(list(replaced))))
    rows = [
        {
            "item_id": item_id,
            "topic": match.topic,
            "score": match.score,
            "hits": [_hit_values(hit) for hit in match.hits],
        }
        for item_id, found in matches.items()
        for match in found
    ]
    if rows:
        session.execute(insert(table_of(Match)), rows)


def _hit_values(hit: TermHit) -> dict[str, str]:
    """`asdict(hit)` without its recursive deep copy, which costs thirty times as much: every
    hit of every stored item passes through here."""
    return {"group": hit.group, "term": hit.term, "field": hit.field, "text": hit.text}


def _story_rows(session: Session, stories: Sequence[Story]) -> list[StoryRow]:
    """Stories with their sources (best first: the story's own link, then by date) and matches."""
    items: dict[int, list[tuple[Item, Feed]]] = {story.id: [] for story in stories}
    for batch in _batches([story.id for story in stories], BATCH_SIZE):
        query = select(Item, Feed).join(Feed).where(Item.story_id.in_(batch))
        for item, feed in session.execute(query):
            items[item.story_id or 0].append((item, feed))
    matches = _matches_of(session, [item.id for pairs in items.values() for item, _ in pairs])
    rows = []
    for story in stories:
        members = sorted(
            items[story.id], key=lambda pair: (pair[0].link != story.link, pair[0].published_at)
        )
        best_per_topic: dict[str, TopicMatch] = {}
        for item, _ in members:
            for match in matches.get(item.id, ()):
                if (
                    match.topic not in best_per_topic
                    or match.score > best_per_topic[match.topic].score
                ):
                    best_per_topic[match.topic] = match
        rows.append(
            StoryRow(
                id=story.id,
                title=story.title,
                link=story.link,
                first_seen=story.first_seen_at,
                updated=story.updated_at,
                news_at=story.news_at,
                summary=members[0][0].summary if members else "",
                sources=tuple(
                    StorySource(
                        item.id,
                        feed.name,
                        item.kind or feed.kind,
                        item.title,
                        item.link,
                        item.published_at,
                        feed.title or feed.name,
                    )
                    for item, feed in members
                ),
                matches=tuple(best_per_topic[topic] for topic in sorted(best_per_topic)),
            )
        )
    return rows


def _matches_of(session: Session, item_ids: Sequence[int]) -> dict[int, tuple[TopicMatch, ...]]:
    found: dict[int, list[TopicMatch]] = {}
    for batch in _batches(item_ids, BATCH_SIZE):
        rows = session.scalars(select(Match).where(Match.item_id.in_(batch)).order_by(Match.topic))
        for row in rows:
            hits = tuple(TermHit(**hit) for hit in row.hits)
            found.setdefault(row.item_id, []).append(TopicMatch(row.topic, row.score, hits))
    return {item_id: tuple(matches) for item_id, matches in found.items()}


def _changes(
    session: Session, batch: Sequence[tuple[ItemText, Sequence[TopicMatch]]]
) -> list[MatchChange]:
    stored = _matches_of(session, [text.item_id for text, _ in batch])
    changes = []
    for text, found in batch:
        before = {match.topic for match in stored.get(text.item_id, ())}
        after = {match.topic for match in found}
        changes += [MatchChange(t, text.item_id, text.title, True) for t in sorted(after - before)]
        changes += [MatchChange(t, text.item_id, text.title, False) for t in sorted(before - after)]
    return changes


def _due(now: datetime) -> ColumnElement[bool]:
    return or_(Feed.next_fetch_at.is_(None), Feed.next_fetch_at <= now)


def _feed_state(row: Feed) -> FeedState:
    return FeedState(
        feed_id=row.id,
        name=row.name,
        url=row.url,
        etag=row.etag,
        last_modified=row.last_modified,
        body_hash=row.body_hash,
        consecutive_failures=row.consecutive_failures,
        failing_since=row.failing_since,
        ttl=timedelta(seconds=row.ttl_seconds) if row.ttl_seconds else None,
        type=row.type,
        last_success_at=row.last_success_at,
        publish_gap=timedelta(seconds=row.publish_gap_seconds)
        if row.publish_gap_seconds is not None
        else None,
    )


def _apply_outcome(feed: Feed, outcome: FetchOutcome) -> None:
    feed.status = outcome.status
    feed.last_fetched_at = outcome.fetched_at
    feed.next_fetch_at = outcome.next_fetch_at
    feed.lease_owner = None
    feed.last_http_status = outcome.http_status
    if outcome.failed:
        feed.last_error = outcome.error
        feed.consecutive_failures += 1
        feed.failing_since = feed.failing_since or outcome.fetched_at
        return
    feed.last_error = None
    feed.consecutive_failures = 0
    feed.failing_since = None
    feed.last_success_at = outcome.fetched_at
    if outcome.status == "ok":
        feed.ttl_seconds = int(outcome.ttl.total_seconds()) if outcome.ttl else None
    # A 304 may omit validators; keep the ones we have rather than forget them.
    feed.etag = outcome.etag or feed.etag
    feed.last_modified = outcome.last_modified or feed.last_modified
    feed.body_hash = outcome.body_hash or feed.body_hash
    feed.title = outcome.title or feed.title


def _item_values(analysed: AnalysedEntry) -> dict[str, Any]:
    entry = analysed.entry
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
        "kind": entry.kind,
        "canonical_url": analysed.canonical_url,
    }


def _batches(values: Iterable[_T], size: int) -> Iterator[list[_T]]:
    remaining = iter(values)
    while batch := list(islice(remaining, size)):
        yield batch
