"""Topic matches of stored items: written as items are stored or re-matched, read with stories."""

from __future__ import annotations

from collections.abc import Collection, Mapping, Sequence

from sqlalchemy import delete, insert, select
from sqlalchemy.orm import Session

from aggregator.models import TermHit, TopicMatch
from aggregator.store.batches import batches
from aggregator.store.schema import Match, table_of


def store_matches(
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
            "evidence": match.evidence,
        }
        for item_id, found in matches.items()
        for match in found
    ]
    if rows:
        session.execute(insert(table_of(Match)), rows)


def matches_of(session: Session, item_ids: Sequence[int]) -> dict[int, tuple[TopicMatch, ...]]:
    """The stored matches of each of `item_ids` that has any, by topic."""
    found: dict[int, list[TopicMatch]] = {}
    for batch in batches(item_ids):
        rows = session.execute(
            select(Match.item_id, Match.topic, Match.score, Match.hits, Match.evidence)
            .where(Match.item_id.in_(batch))
            .order_by(Match.topic)
        )
        for item_id, topic, score, hits, evidence in rows:
            found.setdefault(item_id, []).append(stored_match(topic, score, hits, evidence))
    return {item_id: tuple(matches) for item_id, matches in found.items()}


def stored_match(
    topic: str, score: float, hits: Sequence[Mapping[str, str]], evidence: str
) -> TopicMatch:
    """A match as read back from the `matches` table's columns."""
    return TopicMatch(topic, score, tuple(TermHit(**hit) for hit in hits), evidence)


def _hit_values(hit: TermHit) -> dict[str, str]:
    """`asdict(hit)` without its recursive deep copy, which costs thirty times as much: every
    hit of every stored item passes through here."""
    return {"group": hit.group, "term": hit.term, "field": hit.field, "text": hit.text}
