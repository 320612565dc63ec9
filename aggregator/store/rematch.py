"""Re-matching stored items when the rules change: rules apply to the past, not only to new items.

The fingerprint of the rules the stored matches follow is kept in `meta`; when the config's
rules differ, every item is matched again in one transaction (or previewed, changing nothing).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from aggregator.models import ItemText, MatchChange, TopicMatch
from aggregator.store.batches import BATCH_SIZE
from aggregator.store.matches import matches_of, store_matches
from aggregator.store.meta import RULES_KEY, new_content_version, put_meta
from aggregator.store.schema import Feed, Item, Meta
from aggregator.store.sessions import Sessions

REMATCH_LOCK = 0x72656D61  # PostgreSQL advisory lock: one process re-matches at a time ("rema")
ItemMatcher = Callable[[ItemText], Sequence[TopicMatch]]


class Rematcher:
    """Matching stored items again under new rules; part of `Repository`."""

    _db: Sessions

    def rules_fingerprint(self) -> str | None:
        """The fingerprint of the matching rules the stored matches follow, if any."""
        with self._db.reading() as session:
            row = session.get(Meta, RULES_KEY)
            return row.value if row else None

    def rematch(self, fingerprint: str, match_item: ItemMatcher) -> list[MatchChange]:
        """Recompute every stored item's matches under new rules, in one transaction.

        Rules apply to the past, not only to new items. Returns what changed.
        """
        with self._db.transaction() as session:
            if self._db.dialect == "postgresql":
                # One process at a time: two rewriting the same items' matches at once clash.
                session.execute(select(func.pg_advisory_xact_lock(REMATCH_LOCK)))
            applied = session.get(Meta, RULES_KEY, populate_existing=True)
            if applied is not None and applied.value == fingerprint:
                return []  # another process applied these rules while this one waited
            changes = []
            for batch in self._recomputed(session, match_item):
                changes += _changes(session, batch)
                matches = {text.item_id: found for text, found in batch}
                store_matches(session, matches, replaced=matches)
            put_meta(session, RULES_KEY, fingerprint)
            if changes:
                new_content_version(session)
            return changes

    def latest_item_texts(self, per_feed: int) -> dict[str, list[ItemText]]:
        """Each feed's latest `per_feed` items (what a feed's boilerplate is learned from)."""
        rank = (
            func.row_number().over(partition_by=Item.feed_id, order_by=Item.id.desc()).label("rank")
        )
        ranked = (
            select(Item.id, Feed.name, Item.title, Item.summary, Item.content_html, rank)
            .join(Feed)
            .subquery()
        )
        texts: dict[str, list[ItemText]] = {}
        with self._db.reading() as session:
            for *row, _ in session.execute(select(ranked).where(ranked.c.rank <= per_feed)):
                text = ItemText(*row)
                texts.setdefault(text.feed, []).append(text)
        return texts

    def preview_rematch(self, match_item: ItemMatcher) -> list[MatchChange]:
        """What `rematch` would add and remove, without changing anything."""
        with self._db.reading() as session:
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


def _changes(
    session: Session, batch: Sequence[tuple[ItemText, Sequence[TopicMatch]]]
) -> list[MatchChange]:
    stored = matches_of(session, [text.item_id for text, _ in batch])
    changes = []
    for text, found in batch:
        before = {match.topic for match in stored.get(text.item_id, ())}
        after = {match.topic for match in found}
        changes += [MatchChange(t, text.item_id, text.title, True) for t in sorted(after - before)]
        changes += [MatchChange(t, text.item_id, text.title, False) for t in sorted(before - after)]
    return changes
