"""Feeds in the store: rows that follow the config, and the leases that share them out.

A feed's row holds its fetch state (validators, errors, next due time). Claiming feeds moves
their due time forward as a lease, so any number of processes share them without a
coordinator and without fetching one twice.
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Sequence
from datetime import datetime, timedelta
from typing import cast

from sqlalchemy import ColumnElement, Row, func, or_, select, update
from sqlalchemy.exc import IntegrityError

from aggregator.config import FeedSettings
from aggregator.models import PAUSED, FeedRow, FeedState, FeedStatus
from aggregator.store.meta import new_content_version
from aggregator.store.schema import Feed, Item
from aggregator.store.sessions import Sessions

# The feed columns that follow the config; the rest is fetch state.
_FOLLOWED = ("url", "type", "kind", "config_title", "active")


def _followed(feed: FeedSettings) -> tuple[object, ...]:
    """What the config says each of `_FOLLOWED` should hold for `feed`'s row, in order."""
    return (feed.url, feed.type, feed.kind, feed.title, True)


class FeedStore:
    """Feed rows and leases; part of `Repository`."""

    _db: Sessions

    def sync_feeds(self, feeds: Sequence[FeedSettings]) -> None:
        """Make feed rows follow the config: add new names, follow new URLs, deactivate gone ones.

        A changed URL is a different resource, so its validators and body hash are forgotten,
        and its next fetch is a first one (an API query starts afresh; what it brings is
        backlog, not news).
        """
        if self._feeds_follow(feeds):
            return
        try:
            self._sync_feeds(feeds)
        except IntegrityError:  # another process added the same new feed a moment ago
            self._sync_feeds(feeds)

    def _feeds_follow(self, feeds: Sequence[FeedSettings]) -> bool:
        """Whether the feed rows already follow the config. Every command syncs first, so the
        usual answer, yes, costs a read of six columns: loading every feed row whole as objects
        was 40 ms of `feeds list` with 250 feeds."""
        wanted = {feed.name: _followed(feed) for feed in feeds}
        columns = [Feed.name, *(getattr(Feed, column) for column in _FOLLOWED)]
        with self._db.reading() as session:
            for name, *stored in session.execute(select(*columns)):
                expected = wanted.pop(name, None)
                if expected is None and stored[-1]:  # active, and gone from the config
                    return False
                if expected is not None and tuple(stored) != expected:
                    return False
        return not wanted  # every configured feed has its row

    def _sync_feeds(self, feeds: Sequence[FeedSettings]) -> None:
        by_name = {feed.name: feed for feed in feeds}
        with self._db.transaction() as session:
            rows = {row.name: row for row in session.scalars(select(Feed))}
            for name, feed in by_name.items():
                row = rows.get(name)
                followed = dict(zip(_FOLLOWED, _followed(feed), strict=True))
                if row is None:
                    session.add(Feed(name=name, **followed))
                    continue
                if row.url != feed.url:
                    row.etag = row.last_modified = row.body_hash = None
                    row.next_fetch_at = row.last_success_at = None
                for column, value in followed.items():
                    setattr(row, column, value)
            for name, row in rows.items():
                if name not in by_name:
                    row.active = False
            if session.new or any(map(session.is_modified, session.dirty)):
                new_content_version(session)  # names and kinds show on the page

    def feeds_to_fetch(
        self, now: datetime, *, names: Collection[str] | None = None, include_not_due: bool = False
    ) -> list[FeedState]:
        """Active feeds due at `now` (all of them with `include_not_due`), or those named.

        Paused feeds are left out unless named: fetching one by name is how to try it again.
        """
        query = select(*_STATE_COLUMNS).where(_to_fetch(now, names, include_not_due))
        with self._db.reading() as session:
            return [_feed_state(row) for row in session.execute(query.order_by(Feed.name))]

    def names_to_fetch(
        self, now: datetime, *, names: Collection[str] | None = None, include_not_due: bool = False
    ) -> set[str]:
        """The names of the feeds `feeds_to_fetch` would return: what `fetch` needs to tell
        which feeds another process holds, without every due feed's state beside the claimed
        ones'."""
        with self._db.reading() as session:
            return set(
                session.scalars(select(Feed.name).where(_to_fetch(now, names, include_not_due)))
            )

    def claim_feeds(
        self,
        now: datetime,
        *,
        lease_until: datetime,
        owner: str,
        limit: int | None = None,
        names: Collection[str] | None = None,
        include_not_due: bool = False,
    ) -> list[FeedState]:
        """Take feeds for `owner` until `lease_until`, in one statement: those due (up to
        `limit`, longest due first), every unpaused one with `include_not_due`, or those
        named (paused ones too: naming one is how to try it again). A feed another process
        holds a live lease on is never taken, so `run` and `fetch` can overlap freely.

        On PostgreSQL the rows are locked with SKIP LOCKED, so processes claiming at the same
        moment get different feeds and never wait for each other; SQLite runs one writer at a
        time anyway. The lease is the feed's next_fetch_at moved forward: if the owner dies,
        the feed simply falls due again when it runs out.
        """
        # Free: no lease, a lease run out, or one this process took before and did not use.
        free = or_(Feed.lease_owner.is_(None), _due(now), Feed.lease_owner == owner)
        claimable = (
            select(Feed.id)
            .where(_to_fetch(now, names, include_not_due), free)
            .order_by(Feed.next_fetch_at.is_not(None), Feed.next_fetch_at, Feed.id)
            .limit(limit)
            .with_for_update(skip_locked=True)
        )
        with self._db.transaction() as session:
            claimed = session.execute(
                update(Feed)
                .where(Feed.id.in_(claimable.scalar_subquery()))
                .values(next_fetch_at=lease_until, lease_owner=owner)
                .returning(*_STATE_COLUMNS)
                .execution_options(synchronize_session=False)
            )
            return sorted((_feed_state(row) for row in claimed), key=lambda state: state.name)

    def release_claims(self, feed_ids: Collection[int], now: datetime) -> None:
        """Give back feeds claimed but not fetched (a shutdown): due again at once, for anyone."""
        if not feed_ids:
            return
        with self._db.transaction() as session:
            session.execute(
                update(Feed)
                .where(Feed.id.in_(feed_ids), Feed.lease_owner.is_not(None))
                .values(next_fetch_at=now, lease_owner=None)
            )

    def release_dead_claims(self, now: datetime, is_dead: Callable[[str], bool]) -> int:
        """Give back the claims of owners `is_dead` says are gone, without waiting for their
        leases to run out; returns how many feeds were released."""
        with self._db.transaction() as session:
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
        with self._db.transaction() as session:
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
        with self._db.reading() as session:
            return [
                FeedRow(
                    name=feed.name,
                    url=feed.url,
                    type=feed.type,
                    title=feed.config_title or feed.title,
                    status=cast(FeedStatus, feed.status),
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


def _to_fetch(
    now: datetime, names: Collection[str] | None, include_not_due: bool
) -> ColumnElement[bool]:
    if names is not None:
        return Feed.active & Feed.name.in_(names)
    if include_not_due:
        return Feed.active & (Feed.status != PAUSED)
    return Feed.active & (Feed.status != PAUSED) & _due(now)


def _due(now: datetime) -> ColumnElement[bool]:
    return or_(Feed.next_fetch_at.is_(None), Feed.next_fetch_at <= now)


# What a fetch needs of a feed, read as columns: ORM objects for thousands of due feeds were
# short-lived but, made among the states the pass keeps, left its heap fragmented.
_STATE_COLUMNS = (
    Feed.id,
    Feed.name,
    Feed.url,
    Feed.etag,
    Feed.last_modified,
    Feed.body_hash,
    Feed.consecutive_failures,
    Feed.failing_since,
    Feed.ttl_seconds,
    Feed.type,
    Feed.last_success_at,
    Feed.publish_gap_seconds,
    Feed.title,
)


_StateColumns = Row[
    int,
    str,
    str,
    str | None,
    str | None,
    str | None,
    int,
    datetime | None,
    int | None,
    str,
    datetime | None,
    int | None,
    str | None,
]


def _feed_state(row: _StateColumns) -> FeedState:
    """A row of `_STATE_COLUMNS` as the fetcher takes it."""
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
        publish_gap=None
        if row.publish_gap_seconds is None
        else timedelta(seconds=row.publish_gap_seconds),
        title=row.title,
    )
