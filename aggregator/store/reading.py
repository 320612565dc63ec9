"""Reading stories as readers see them: newest first, with every source and why they matched.

Lists, the page, the output feeds and the digest all read stories through here, as plain
`StoryRow` values.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Sequence
from datetime import date, datetime
from typing import Any

from sqlalchemy import Connection, Row, and_, exists, func, or_, select

from aggregator.models import MergeReason, StatusSeen, StoryRow, StorySource, TopicMatch
from aggregator.store.batches import batches
from aggregator.store.matches import stored_match
from aggregator.store.meta import CONTENT_VERSION
from aggregator.store.schema import Feed, Item, Match, RecordStatus, Story, StoryLink, feed_title
from aggregator.store.search import query_words, ranked_items
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
        before: int | None = None,
        published: tuple[datetime, datetime] | None = None,
    ) -> list[StoryRow]:
        """The newest stories first, with their sources and why they matched.

        Only stories an item of which matches a topic (`topic`, if given) are listed, unless
        `matched_only` is false. `before` pages back: the stories that come after that story
        in this order; `published` keeps those published in [start, end). `search` keeps the
        stories an item of which holds every word of it (`store/search.py`), best ranked first.
        """
        query = select(*_STORY_COLUMNS)
        if topic is not None or matched_only:
            matched = select(Item.story_id).join(Match)
            if topic is not None:
                matched = matched.where(Match.topic == topic)
            query = query.where(Story.id.in_(matched))
        if published is not None:
            query = query.where(
                Story.published_at >= published[0], Story.published_at < published[1]
            )
        newest_first = (Story.published_at.desc(), Story.id.desc())
        if search is not None:
            words = query_words(search)
            if not words:
                return []
            ranked = ranked_items(words, self._db.dialect)
            best = (
                select(Item.story_id, func.max(ranked.c.score).label("score"))
                .join(ranked, ranked.c.item_id == Item.id)
                .group_by(Item.story_id)
                .subquery()
            )
            query = query.join(best, best.c.story_id == Story.id).order_by(
                best.c.score.desc(), *newest_first
            )
        else:
            if before is not None:  # an unknown story: an empty page
                anchor = select(Story.published_at).where(Story.id == before).scalar_subquery()
                query = query.where(
                    or_(
                        Story.published_at < anchor,
                        and_(Story.published_at == anchor, Story.id < before),
                    )
                )
            query = query.order_by(*newest_first)
        with self._db.plain_reads() as connection:
            return _story_rows(connection, list(connection.execute(query.limit(limit))))

    def stories_by_id(self, story_ids: Sequence[int]) -> list[StoryRow]:
        """The stories with these ids, in the order given (ids that no longer exist left out)."""
        with self._db.plain_reads() as connection:
            found: dict[int, _StoryColumns] = {}
            for batch in batches(story_ids):
                stories = connection.execute(select(*_STORY_COLUMNS).where(Story.id.in_(batch)))
                found |= {story.id: story for story in stories}
            return _story_rows(connection, [found[i] for i in story_ids if i in found])

    def show_story(self, story_id: int) -> tuple[StoryRow, list[MergeReason]] | None:
        """A story with every source, and the links that made its items one story."""
        with self._db.plain_reads() as connection:
            story = connection.execute(
                select(*_STORY_COLUMNS).where(Story.id == story_id)
            ).one_or_none()
            if story is None:
                return None
            [row] = _story_rows(connection, [story])
            item_ids = [source.item_id for source in row.sources]
            links = connection.execute(
                select(StoryLink.item_id, StoryLink.other_item_id, StoryLink.reason)
                .where(StoryLink.item_id.in_(item_ids))
                .order_by(StoryLink.item_id, StoryLink.other_item_id)
            )
            return row, [MergeReason(*link) for link in links]

    def months(self, topic: str | None = None) -> list[tuple[date, int]]:
        """The months stories (on `topic`, else on any topic) were published in, newest
        first, with how many: the archive's index."""
        month = (
            func.strftime("%Y-%m", Story.published_at)
            if self._db.dialect == "sqlite"
            else func.to_char(Story.published_at, "YYYY-MM")
        ).label("month")
        matched = select(Item.story_id).join(Match)
        if topic is not None:
            matched = matched.where(Match.topic == topic)
        query = (
            select(month, func.count())
            .where(Story.id.in_(matched))
            .group_by(month)
            .order_by(month.desc())
        )
        with self._db.plain_reads() as connection:
            return [
                (date.fromisoformat(f"{value}-01"), count)
                for value, count in connection.execute(query)
            ]

    def content_version(self) -> str:
        """A token that changes in every transaction that changes stories, their items or
        their matches (a random one, so writers in several processes can never repeat one).

        Read on every page request, so through a plain connection outside a transaction: an
        ORM session costs three times as much here."""
        with self._db.plain_reads() as connection:
            return connection.scalar(CONTENT_VERSION) or ""


# What a story's list entry shows of each of its items: not their content or search text.
_SOURCE_COLUMNS = (
    Item.id,
    Item.story_id,
    Item.title,
    Item.link,
    Item.summary,
    Item.published_at,
    Item.kind,
    Feed.name,
    Feed.kind.label("feed_kind"),
    feed_title().label("feed_title"),
)
_MATCH_COLUMNS = (Match.topic, Match.score, Match.hits, Match.evidence)
_HAS_STATUSES = exists().where(RecordStatus.item_id == Item.id).label("has_statuses")
# What a story's list entry shows of the story itself, and a row of it.
_StoryColumns = Row[int, str, str | None, datetime, datetime, datetime, datetime, bool]
_STORY_COLUMNS = (
    Story.id,
    Story.title,
    Story.link,
    Story.first_seen_at,
    Story.updated_at,
    Story.news_at,
    Story.published_at,
    Story.published_estimated,
)


def _story_rows(connection: Connection, stories: Sequence[_StoryColumns]) -> list[StoryRow]:
    """Stories (rows of `_STORY_COLUMNS`) with their sources (best first: the story's own
    link, then by date) and matches.

    Reads plain columns, not ORM objects: a page of a hundred stories is read on every
    change, and building an object per item and match cost most of that. The items come
    with their matches in one statement, and statuses are asked for only for the items
    that have any (registry records): on PostgreSQL every statement is a round trip."""
    items: dict[int, list[Any]] = {story.id: [] for story in stories}
    matches: defaultdict[int, list[TopicMatch]] = defaultdict(list)
    with_statuses = []
    for batch in batches([story.id for story in stories]):
        query = (
            select(*_SOURCE_COLUMNS, *_MATCH_COLUMNS, _HAS_STATUSES)
            .join(Feed)
            .outerjoin(Match)
            .where(Item.story_id.in_(batch))
            .order_by(Item.id, Match.topic)
        )
        for row in connection.execute(query):
            found = items[row.story_id]
            if not found or found[-1].id != row.id:  # an item's rows are adjacent, in order
                found.append(row)
                if row.has_statuses:
                    with_statuses.append(row.id)
            if row.topic is not None:
                matches[row.id].append(stored_match(row.topic, row.score, row.hits, row.evidence))
    statuses = _statuses_of(connection, with_statuses)
    rows = []
    for story in stories:
        own_copy = (story.link, story.title)
        members = sorted(
            items[story.id],
            key=lambda item: ((item.link, item.title) != own_copy, item.published_at),
        )
        # Why the story is shown: the match of the item whose title and link it shows, else
        # the best scored of the others (a stale copy's sentence is not the story's).
        best_per_topic: dict[str, tuple[tuple[bool, float], TopicMatch]] = {}
        for item in members:
            own = (item.link, item.title) == own_copy
            for match in matches[item.id]:
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
                summary=members[0].summary if members else "",
                sources=tuple(
                    StorySource(
                        item.id,
                        item.name,
                        item.kind or item.feed_kind,
                        item.title,
                        item.link,
                        item.published_at,
                        item.feed_title or item.name,
                    )
                    for item in members
                ),
                matches=tuple(best_per_topic[topic][1] for topic in sorted(best_per_topic)),
                published=story.published_at,
                published_estimated=story.published_estimated,
                statuses=_history(status for item in members for status in statuses[item.id]),
            )
        )
    return rows


def _statuses_of(
    connection: Connection, item_ids: Sequence[int]
) -> defaultdict[int, list[StatusSeen]]:
    """Every status each registry item has shown, by item."""
    found: defaultdict[int, list[StatusSeen]] = defaultdict(list)
    for batch in batches(item_ids):
        query = select(RecordStatus.item_id, RecordStatus.status, RecordStatus.as_of).where(
            RecordStatus.item_id.in_(batch)
        )
        for item_id, status, as_of in connection.execute(query):
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
