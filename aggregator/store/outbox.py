"""The digest outbox: digests committed before sending, claimed by one sender, marked sent.

Once-only delivery rests on three database facts, so it holds across processes and machines:
a digest is unique per (subscriber, scheduled run); a story's news is unique per subscriber
across digests; and sending needs a lease (`claimed_until`) taken by a conditional UPDATE that
only one process can win. A sender that dies leaves its lease to run out; the digest is then
sent again, the same bytes with the same Message-ID.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import Engine, exists, func, insert, or_, select, update
from sqlalchemy.exc import IntegrityError

from aggregator.store.schema import Digest, DigestStory, Item, Match, Story
from aggregator.store.sessions import Sessions

SENT = "sent"
FAILED = "failed"
PENDING = "pending"


@dataclass(frozen=True, slots=True)
class DigestDraft:
    """A digest ready to be committed: the exact message and the stories (with the news_at
    they were sent as) it carries."""

    subscriber: str
    run_at: datetime
    period_start: datetime
    period_end: datetime
    topics: tuple[str, ...]
    message_id: str
    subject: str
    message: bytes
    stories: Sequence[tuple[int, datetime]]


@dataclass(frozen=True, slots=True)
class ArchivedDigest:
    """A sent digest as the archive lists it."""

    id: int
    subject: str
    topics: tuple[str, ...]
    story_count: int
    sent_at: datetime | None


@dataclass(frozen=True, slots=True)
class StoredDigest:
    id: int
    subscriber: str
    run_at: datetime
    period_start: datetime
    period_end: datetime
    topics: tuple[str, ...]
    message_id: str
    subject: str
    story_count: int
    message: bytes
    status: str
    attempts: int
    last_error: str | None
    sent_at: datetime | None


class Outbox:
    """Digests on one engine (SQLite or PostgreSQL); every method is one transaction."""

    def __init__(self, engine: Engine) -> None:
        self._db = Sessions(engine)

    def find(self, subscriber: str, run_at: datetime) -> StoredDigest | None:
        with self._db.reading() as session:
            row = session.scalar(
                select(Digest).where(Digest.subscriber == subscriber, Digest.run_at == run_at)
            )
            return _stored(row) if row else None

    def unsent(self, subscriber: str) -> list[StoredDigest]:
        """Digests committed but not yet accepted by the server, oldest first."""
        with self._db.reading() as session:
            rows = session.scalars(
                select(Digest)
                .where(Digest.subscriber == subscriber, Digest.status != SENT)
                .order_by(Digest.run_at)
            )
            return [_stored(row) for row in rows]

    def coverage(self, subscriber: str) -> tuple[datetime, datetime] | None:
        """When the subscriber's first digest started and their latest one ended, if any."""
        with self._db.reading() as session:
            first, last = session.execute(
                select(func.min(Digest.period_start), func.max(Digest.period_end)).where(
                    Digest.subscriber == subscriber
                )
            ).one()
            return (first, last) if first is not None else None

    def due_stories(
        self, subscriber: str, topics: Sequence[str], since: datetime
    ) -> list[tuple[int, datetime]]:
        """Stories about `topics` with news after `since` that no digest of the subscriber has
        carried as of their current news: (story_id, news_at), newest first."""
        carried = exists().where(
            DigestStory.subscriber == subscriber,
            DigestStory.story_id == Story.id,
            DigestStory.news_at >= Story.news_at,
        )
        about_topics = select(Item.story_id).join(Match).where(Match.topic.in_(topics))
        query = (
            select(Story.id, Story.news_at)
            .where(Story.news_at > since, Story.id.in_(about_topics), ~carried)
            .order_by(Story.news_at.desc(), Story.id.desc())
        )
        with self._db.reading() as session:
            return [(story_id, news_at) for story_id, news_at in session.execute(query)]

    def add(self, draft: DigestDraft, now: datetime, claimed_until: datetime) -> int | None:
        """Commit `draft`, claimed by the caller until `claimed_until`; its id, or None when
        another process got there first (the run's digest exists, or one of its stories is
        already in another digest of this subscriber)."""
        try:
            with self._db.transaction() as session:
                digest_id = session.scalars(
                    insert(Digest).returning(Digest.id),
                    [
                        {
                            "subscriber": draft.subscriber,
                            "run_at": draft.run_at,
                            "period_start": draft.period_start,
                            "period_end": draft.period_end,
                            "topics": list(draft.topics),
                            "message_id": draft.message_id,
                            "subject": draft.subject,
                            "story_count": len(draft.stories),
                            "message": draft.message.decode("ascii"),
                            "status": PENDING,
                            "attempts": 1,
                            "claimed_until": claimed_until,
                            "created_at": now,
                        }
                    ],
                ).one()
                if draft.stories:
                    session.execute(
                        insert(DigestStory),
                        [
                            {
                                "digest_id": digest_id,
                                "story_id": story_id,
                                "subscriber": draft.subscriber,
                                "news_at": news_at,
                            }
                            for story_id, news_at in draft.stories
                        ],
                    )
                return digest_id
        except IntegrityError:
            return None

    def claim(self, digest_id: int, now: datetime, until: datetime) -> bool:
        """Take the lease on an unsent digest; false if it is sent or another process holds it."""
        with self._db.transaction() as session:
            claimed = session.execute(
                update(Digest)
                .where(
                    Digest.id == digest_id,
                    Digest.status != SENT,
                    or_(Digest.claimed_until.is_(None), Digest.claimed_until <= now),
                )
                .values(claimed_until=until, attempts=Digest.attempts + 1)
                .returning(Digest.id)
            )
            return claimed.scalar_one_or_none() is not None

    def mark_sent(self, digest_id: int, now: datetime) -> None:
        with self._db.transaction() as session:
            session.execute(
                update(Digest)
                .where(Digest.id == digest_id)
                .values(status=SENT, sent_at=now, claimed_until=None, last_error=None)
            )

    def mark_failed(self, digest_id: int, error: str) -> None:
        """Record why sending failed and release the lease, so the next run tries again."""
        with self._db.transaction() as session:
            session.execute(
                update(Digest)
                .where(Digest.id == digest_id, Digest.status != SENT)
                .values(status=FAILED, last_error=error, claimed_until=None)
            )

    def archive(self, limit: int) -> list[ArchivedDigest]:
        """Sent digests, newest first, once each: readers with the same topics were sent the
        same digest for a run. Read from the rows' columns; no message is parsed."""
        query = (
            select(
                Digest.id,
                Digest.subject,
                Digest.topics,
                Digest.story_count,
                Digest.sent_at,
                Digest.run_at,
                Digest.period_start,
                Digest.period_end,
            )
            .where(Digest.status == SENT)
            .order_by(Digest.sent_at.desc(), Digest.id.desc())
        )
        archive: dict[tuple[object, ...], ArchivedDigest] = {}
        with self._db.reading() as session:
            for row in session.execute(query.execution_options(yield_per=500)):
                digest_id, subject, topics, count, sent_at, run_at, start, end = row
                key = (run_at, tuple(sorted(topics)), start, end, subject)
                if key not in archive:
                    archive[key] = ArchivedDigest(digest_id, subject, tuple(topics), count, sent_at)
                if len(archive) == limit:
                    break
        return list(archive.values())

    def get_sent(self, digest_id: int) -> StoredDigest | None:
        with self._db.reading() as session:
            row = session.scalar(
                select(Digest).where(Digest.id == digest_id, Digest.status == SENT)
            )
            return _stored(row) if row else None


def _stored(row: Digest) -> StoredDigest:
    return StoredDigest(
        id=row.id,
        subscriber=row.subscriber,
        run_at=row.run_at,
        period_start=row.period_start,
        period_end=row.period_end,
        topics=tuple(row.topics),
        message_id=row.message_id,
        subject=row.subject,
        story_count=row.story_count,
        message=row.message.encode("ascii"),
        status=row.status,
        attempts=row.attempts,
        last_error=row.last_error,
        sent_at=row.sent_at,
    )
