"""The database schema, as typed SQLAlchemy 2.x models.

Changes to these classes reach databases only through Alembic migrations in `migrations/`;
`tests/test_migrations.py` fails when the two drift apart.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any, ClassVar

from sqlalchemy import (
    JSON,
    ColumnElement,
    DateTime,
    Dialect,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    TypeDecorator,
    UniqueConstraint,
    Update,
    bindparam,
    func,
    update,
)
from sqlalchemy.orm import (
    DeclarativeBase,
    Mapped,
    mapped_column,
    orm_insert_sentinel,
    relationship,
)

# Stable constraint names, so migrations can refer to them on every database.
NAMING_CONVENTION = {
    "ix": "ix_%(table_name)s_%(column_0_N_name)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


# Full-text search objects made by hand-written migrations (FTS5 on SQLite; a stored tsvector
# and its index on PostgreSQL); the models do not describe them, so schema comparisons skip them.
SEARCH_OBJECTS = ("items_search", "ix_items_search", "search_vector")


def is_search_object(name: str | None) -> bool:
    return bool(name) and str(name).startswith(SEARCH_OBJECTS)


class UTCDateTime(TypeDecorator[datetime]):
    """Timezone-aware UTC datetimes on every backend.

    SQLite stores no zone, so values come back naive; this puts UTC back on them and refuses
    naive values on the way in, where they would silently mean local time.
    """

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError(f"naive datetime {value!r}: pass timezone-aware UTC")
        return value.astimezone(UTC)

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING_CONVENTION)
    type_annotation_map: ClassVar[dict[Any, Any]] = {datetime: UTCDateTime}


def table_of(model: type[Base]) -> Table:
    """The model's table, for bulk inserts of plain rows: through the table they skip the
    ORM's per-row bookkeeping, which costs as much again as SQLite inserting the row."""
    return Base.metadata.tables[model.__tablename__]


def update_by_id(model: type[Base]) -> Update:
    """An UPDATE of rows by id, executed with parameter rows {"row_id": id, column: value}:
    through the table, half the cost a row of the ORM's bulk update by primary key."""
    table = table_of(model)
    return update(table).where(table.c.id == bindparam("row_id"))


class Feed(Base):
    """A source and its fetch state. Rows follow [[feeds]] in config.toml by name.

    A feed removed from the config keeps its row (`active` false) so its items and stories stay.
    """

    __tablename__ = "feeds"

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(200), unique=True)
    url: Mapped[str] = mapped_column(Text)
    type: Mapped[str] = mapped_column(String(32))
    kind: Mapped[str | None] = mapped_column(String(32))
    active: Mapped[bool] = mapped_column(default=True)
    title: Mapped[str | None] = mapped_column(Text)  # what the feed calls itself
    config_title: Mapped[str | None] = mapped_column(Text)  # what the config calls it: wins
    etag: Mapped[str | None] = mapped_column(Text)
    last_modified: Mapped[str | None] = mapped_column(Text)
    body_hash: Mapped[str | None] = mapped_column(String(64))
    status: Mapped[str] = mapped_column(String(32), default="new")
    last_http_status: Mapped[int | None] = mapped_column(Integer)
    last_error: Mapped[str | None] = mapped_column(Text)
    consecutive_failures: Mapped[int] = mapped_column(default=0)
    last_fetched_at: Mapped[datetime | None]
    last_success_at: Mapped[datetime | None]
    failing_since: Mapped[datetime | None]  # the first failure of the current run of failures
    ttl_seconds: Mapped[int | None]  # the feed's own <ttl>, kept for fetches that do not parse
    # The median time between its items' publication dates, kept up to date as items arrive so
    # that a fetch which stores nothing (a 304) can schedule the next without reading items.
    publish_gap_seconds: Mapped[int | None]
    # While a process fetches the feed, next_fetch_at is its lease and lease_owner says whose
    # ("host:pid"); both are replaced when the fetch is recorded.
    next_fetch_at: Mapped[datetime | None] = mapped_column(index=True)
    lease_owner: Mapped[str | None] = mapped_column(String(200))

    items: Mapped[list[Item]] = relationship(back_populates="feed")


def feed_title() -> ColumnElement[str | None]:
    """The title readers see for a feed: the config's, else the feed's own."""
    return func.coalesce(Feed.config_title, Feed.title)


class Item(Base):
    """One entry of one feed, as last seen. Identity is per feed: GUID, else link, else hash."""

    __tablename__ = "items"
    __table_args__ = (
        UniqueConstraint("feed_id", "identity"),
        # Declared without their dialect options, which import PostgreSQL's dialect into every
        # command; the migrations that made them hold those (tests/test_migrations.py checks
        # the rest). Finding the links several items of a feed share (dedupe) looks items up
        # by canonical URL: a hash index on PostgreSQL, since a btree entry cannot hold the
        # longest links.
        Index("ix_items_canonical_url", "canonical_url"),
        # Items search has not read yet (stored before it existed): looked for on every pass,
        # so found without reading the table; partial (search_text = ''), so empty once filled.
        Index("ix_items_unindexed", "id"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    feed_id: Mapped[int] = mapped_column(ForeignKey("feeds.id", ondelete="CASCADE"))
    identity: Mapped[str] = mapped_column(String(512))
    guid: Mapped[str | None] = mapped_column(Text)
    link: Mapped[str | None] = mapped_column(Text)
    title: Mapped[str] = mapped_column(Text)
    summary: Mapped[str] = mapped_column(Text)
    content_html: Mapped[str] = mapped_column(Text)
    authors: Mapped[list[str]] = mapped_column(JSON)
    categories: Mapped[list[str]] = mapped_column(JSON)
    published_at: Mapped[datetime] = mapped_column(index=True)
    updated_at: Mapped[datetime | None]
    date_estimated: Mapped[bool]
    content_hash: Mapped[str] = mapped_column(String(64))
    kind: Mapped[str | None] = mapped_column(String(32))  # the item's own kind, if not its feed's
    first_seen_at: Mapped[datetime]
    last_seen_at: Mapped[datetime]
    canonical_url: Mapped[str | None] = mapped_column(Text)
    # The record's own strong identifiers ("doi:...", "pmid:..."), from its link and GUID and
    # from what its source states; NULL for items stored before they were kept.
    identifiers: Mapped[list[str] | None] = mapped_column(JSON)
    status: Mapped[str | None] = mapped_column(String(64))  # a registry record's status
    # Its words as search folds them (normalise.search_words), with its source's name: what
    # the full-text index reads. Empty until filled (rows stored before it existed).
    search_text: Mapped[str] = mapped_column(Text, default="", server_default="")
    story_id: Mapped[int | None] = mapped_column(
        ForeignKey("stories.id", ondelete="SET NULL"), index=True
    )

    feed: Mapped[Feed] = relationship(back_populates="items")
    matches: Mapped[list[Match]] = relationship(
        back_populates="item", cascade="all, delete-orphan", passive_deletes=True
    )


class Story(Base):
    """One piece of news, however many items (sources) carry it.

    Stories and items are separate tables because a story outlives any one source: items keep
    what each feed said, the story what the reader sees (the best source's title and link, the
    earliest first-seen time).
    """

    __tablename__ = "stories"

    id: Mapped[int] = mapped_column(primary_key=True)
    title: Mapped[str] = mapped_column(Text)
    link: Mapped[str | None] = mapped_column(Text)
    first_seen_at: Mapped[datetime] = mapped_column(index=True)
    updated_at: Mapped[datetime]
    # When it became news: first seen (a feed's backlog: when published), or a record changed.
    news_at: Mapped[datetime] = mapped_column(index=True)
    # When its best source published it (the first-seen time if no source gives a date,
    # then `published_estimated`): what lists are ordered by and what readers are shown.
    published_at: Mapped[datetime] = mapped_column(index=True)
    published_estimated: Mapped[bool] = mapped_column(default=False)
    # Numbers a batch's rows so an INSERT .. RETURNING of many stories can hand their ids back
    # in order on SQLite too, one statement for them all instead of one each.
    _sentinel: Mapped[int | None] = orm_insert_sentinel()


class RecordStatus(Base):
    """A registry record's status as one of its items saw it: a row each time it changes, so a
    story can say "Recruiting → Active, not recruiting" and show the record's history."""

    __tablename__ = "record_statuses"

    id: Mapped[int] = mapped_column(primary_key=True)
    item_id: Mapped[int] = mapped_column(ForeignKey("items.id", ondelete="CASCADE"), index=True)
    status: Mapped[str] = mapped_column(String(64))
    as_of: Mapped[datetime]  # the record's own date for this version (its last update)
    seen_at: Mapped[datetime]


class StoryLink(Base):
    """Why two items were found to be the same story (shown by `stories show`)."""

    __tablename__ = "story_links"

    item_id: Mapped[int] = mapped_column(
        ForeignKey("items.id", ondelete="CASCADE"), primary_key=True
    )
    other_item_id: Mapped[int] = mapped_column(
        ForeignKey("items.id", ondelete="CASCADE"), primary_key=True, index=True
    )
    reason: Mapped[str] = mapped_column(Text)


class DedupeKey(Base):
    """Index keys of an item's fingerprint: only items sharing a key are compared."""

    __tablename__ = "dedupe_keys"

    key: Mapped[str] = mapped_column(String(300), primary_key=True)
    item_id: Mapped[int] = mapped_column(
        ForeignKey("items.id", ondelete="CASCADE"), primary_key=True, index=True
    )


class Match(Base):
    """An item is about a topic, with the terms that matched and where (the "why" readers see).

    Rows are recomputed whenever the item changes or the matching rules do.
    """

    __tablename__ = "matches"

    item_id: Mapped[int] = mapped_column(
        ForeignKey("items.id", ondelete="CASCADE"), primary_key=True
    )
    topic: Mapped[str] = mapped_column(String(200), primary_key=True, index=True)
    score: Mapped[float]
    hits: Mapped[list[dict[str, str]]] = mapped_column(JSON)
    evidence: Mapped[str] = mapped_column(Text, default="", server_default="")

    item: Mapped[Item] = relationship(back_populates="matches")


class Meta(Base):
    """Facts about the database as a whole, such as which matching rules its matches follow."""

    __tablename__ = "meta"

    key: Mapped[str] = mapped_column(String(100), primary_key=True)
    value: Mapped[str] = mapped_column(Text)


class Digest(Base):
    """The outbox: one digest for one subscriber and one scheduled run, kept after it is sent.

    The row, its exact message and its story list are committed before the first attempt to
    send, so a crash can only lead to sending the same message again (same Message-ID, same
    stories), never to a different one or none. `claimed_until` is the lease of the process
    sending it; the unique run key lets only one process create it.
    """

    __tablename__ = "digests"
    __table_args__ = (UniqueConstraint("subscriber", "run_at"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    subscriber: Mapped[str] = mapped_column(String(320))
    run_at: Mapped[datetime]  # the scheduled run this digest belongs to
    period_start: Mapped[datetime]
    period_end: Mapped[datetime]
    topics: Mapped[list[str]] = mapped_column(JSON)
    message_id: Mapped[str] = mapped_column(Text)
    subject: Mapped[str] = mapped_column(Text)
    story_count: Mapped[int]
    message: Mapped[str] = mapped_column(Text)  # RFC 5322, ASCII: resent byte for byte
    status: Mapped[str] = mapped_column(String(16), default="pending")  # pending, failed, sent
    attempts: Mapped[int] = mapped_column(default=0)
    last_error: Mapped[str | None] = mapped_column(Text)
    claimed_until: Mapped[datetime | None]
    created_at: Mapped[datetime]
    sent_at: Mapped[datetime | None] = mapped_column(index=True)


class DigestStory(Base):
    """A story (as of its `news_at`) in a subscriber's digest.

    Unique per subscriber, story and news_at: the database itself refuses to put the same news
    in two digests of one reader, whatever processes race.
    """

    __tablename__ = "digest_stories"
    __table_args__ = (UniqueConstraint("subscriber", "story_id", "news_at"),)

    digest_id: Mapped[int] = mapped_column(
        ForeignKey("digests.id", ondelete="CASCADE"), primary_key=True
    )
    story_id: Mapped[int] = mapped_column(
        ForeignKey("stories.id", ondelete="CASCADE"), primary_key=True, index=True
    )
    subscriber: Mapped[str] = mapped_column(String(320))
    news_at: Mapped[datetime]


class Subscription(Base):
    """A digest reader known to the database: one who subscribed on the page, one the operator
    added, or one listed in the config (whose topics and schedule stay in the config).

    `email_hash` outlives the address: unsubscribing empties `email` and keeps the hash, which
    is all it takes to recognise the address again and never mail it without new consent.
    `due_from` is when the reader's schedule started counting (confirmation, or a change of
    frequency): runs before it are not theirs, so nobody is sent a digest for a run they were
    not yet subscribed to.
    """

    __tablename__ = "subscribers"

    id: Mapped[int] = mapped_column(primary_key=True)
    email: Mapped[str | None] = mapped_column(String(320))
    email_hash: Mapped[str] = mapped_column(String(64), unique=True)
    source: Mapped[str] = mapped_column(String(16))  # page, operator, config
    topics: Mapped[list[str]] = mapped_column(JSON)
    frequency: Mapped[str] = mapped_column(String(16))  # daily, weekly
    timezone: Mapped[str] = mapped_column(String(64))
    state: Mapped[str] = mapped_column(String(16), index=True)  # pending, active, paused, ...
    created_at: Mapped[datetime]
    confirmed_at: Mapped[datetime | None]
    confirmation_sent_at: Mapped[datetime | None]
    due_from: Mapped[datetime | None]
