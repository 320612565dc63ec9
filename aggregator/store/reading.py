"""Reading stories as readers see them: newest first, with every source and why they matched.

Lists, the page, the output feeds and the digest all read stories through here, as plain
`StoryRow` values.
"""

from __future__ import annotations

import re
from collections import defaultdict
from collections.abc import Iterable, Sequence

from sqlalchemy import ColumnElement, Integer, Select, false, func, literal_column, select, table
from sqlalchemy.orm import Session

from aggregator.models import MergeReason, StatusSeen, StoryRow, StorySource, TopicMatch
from aggregator.store.batches import batches
from aggregator.store.matches import matches_of
from aggregator.store.meta import CONTENT_VERSION
from aggregator.store.schema import Feed, Item, Match, RecordStatus, Story, StoryLink
from aggregator.store.sessions import Sessions


class StoryReader:
    """Stories as readers see them; part of `Repository`."""

    _db: Sessions

    def count_stories(self) -> int:
        with self._db.reading() as session:
            return session.scalar(select(func.count()).select_from(Story)) or 0

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
            matching = select(Item.story_id).where(_text_search(search, self._db.dialect))
            query = query.where(Story.id.in_(matching))
        if topic is not None or matched_only:
            matched = select(Item.story_id).join(Match)
            if topic is not None:
                matched = matched.where(Match.topic == topic)
            query = query.where(Story.id.in_(matched))
        query = query.order_by(Story.published_at.desc(), Story.id.desc()).limit(limit)
        with self._db.reading() as session:
            return _story_rows(session, list(session.scalars(query)))

    def stories_by_id(self, story_ids: Sequence[int]) -> list[StoryRow]:
        """The stories with these ids, in the order given (ids that no longer exist left out)."""
        with self._db.reading() as session:
            found: dict[int, Story] = {}
            for batch in batches(story_ids):
                stories = session.scalars(select(Story).where(Story.id.in_(batch)))
                found |= {story.id: story for story in stories}
            return _story_rows(session, [found[i] for i in story_ids if i in found])

    def show_story(self, story_id: int) -> tuple[StoryRow, list[MergeReason]] | None:
        """A story with every source, and the links that made its items one story."""
        with self._db.reading() as session:
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
        with self._db.single_read() as connection:
            return connection.scalar(CONTENT_VERSION) or ""


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


def _story_rows(session: Session, stories: Sequence[Story]) -> list[StoryRow]:
    """Stories with their sources (best first: the story's own link, then by date) and matches."""
    items: dict[int, list[tuple[Item, Feed]]] = {story.id: [] for story in stories}
    for batch in batches([story.id for story in stories]):
        query = select(Item, Feed).join(Feed).where(Item.story_id.in_(batch))
        for item, feed in session.execute(query):
            items[item.story_id or 0].append((item, feed))
    item_ids = [item.id for pairs in items.values() for item, _ in pairs]
    matches = matches_of(session, item_ids)
    statuses = _statuses_of(session, item_ids)
    rows = []
    for story in stories:
        members = sorted(
            items[story.id],
            key=lambda pair: (
                (pair[0].link, pair[0].title) != (story.link, story.title),
                pair[0].published_at,
            ),
        )
        # Why the story is shown: the match of the item whose title and link it shows, else
        # the best scored of the others (a stale copy's sentence is not the story's).
        best_per_topic: dict[str, tuple[tuple[bool, float], TopicMatch]] = {}
        for item, _ in members:
            own = (item.link, item.title) == (story.link, story.title)
            for match in matches.get(item.id, ()):
                rank = (own, match.score)
                if match.topic not in best_per_topic or rank > best_per_topic[match.topic][0]:
                    best_per_topic[match.topic] = (rank, match)
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
                matches=tuple(best_per_topic[topic][1] for topic in sorted(best_per_topic)),
                published=story.published_at,
                published_estimated=story.published_estimated,
                statuses=_history(status for item, _ in members for status in statuses[item.id]),
            )
        )
    return rows


def _statuses_of(session: Session, item_ids: Sequence[int]) -> defaultdict[int, list[StatusSeen]]:
    """Every status each registry item has shown, by item."""
    found: defaultdict[int, list[StatusSeen]] = defaultdict(list)
    for batch in batches(item_ids):
        query = select(RecordStatus.item_id, RecordStatus.status, RecordStatus.as_of).where(
            RecordStatus.item_id.in_(batch)
        )
        for item_id, status, as_of in session.execute(query):
            found[item_id].append(StatusSeen(status, as_of))
    return found


def _history(seen: Iterable[StatusSeen]) -> tuple[StatusSeen, ...]:
    """A record's statuses in the order of the versions that showed them, each change once:
    the same record seen in several feeds, some behind the others, tells one history."""
    history: list[StatusSeen] = []
    for status in sorted(seen, key=lambda status: status.as_of):
        if not history or history[-1].status != status.status:
            history.append(status)
    return tuple(history)
