"""Grouping items into stories, inside the caller's transaction.

The decision is `dedupe.py`'s; this module does the I/O around it in a few set-based queries
per batch: find the stored items that share an index key with the new ones, link them, merge
the stories the links join, insert the new items already in their stories, and refresh each
touched story's title, link and dates from its best source.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from typing import Any, NamedTuple, Protocol

from sqlalchemy import (
    ARRAY,
    Integer,
    String,
    bindparam,
    delete,
    insert,
    select,
    text,
    update,
)
from sqlalchemy.orm import Session

from aggregator.dedupe import (
    MAX_BAND_ITEMS,
    Fingerprint,
    Link,
    UnionFind,
    find_links,
    fingerprint,
    with_shared_link,
)
from aggregator.normalise import canonical_url, own_identifiers
from aggregator.store.batches import BATCH_SIZE, batches
from aggregator.store.schema import (
    DedupeKey,
    DigestStory,
    Feed,
    Item,
    Story,
    StoryLink,
    table_of,
    update_by_id,
)

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


class _Ranked(Protocol):
    """What choosing a story's best source reads of an item."""

    @property
    def link(self) -> str | None: ...
    @property
    def guid(self) -> str | None: ...
    @property
    def identity(self) -> str: ...
    @property
    def title(self) -> str: ...
    @property
    def published_at(self) -> datetime: ...
    @property
    def date_estimated(self) -> bool: ...
    @property
    def canonical_url(self) -> str | None: ...


class _Member(NamedTuple):
    """What ranking a story's items needs of each (a plain tuple: every member of every
    touched story passes through, and ORM objects cost several times as much to load)."""

    story_id: int
    link: str | None
    guid: str | None
    identity: str
    title: str
    published_at: datetime
    date_estimated: bool
    canonical_url: str | None
    first_seen_at: datetime
    identifiers: list[str] | None


# Every member of a batch's touched stories: written once, as the lookups below.
_MEMBERS = (
    text(f"SELECT {', '.join(_Member._fields)} FROM items WHERE story_id IN :story_ids")
    .bindparams(bindparam("story_ids", expanding=True))
    .columns(*(table_of(Item).c[name] for name in _Member._fields))
)
_REGISTRY_KINDS = ("nct:", "euct:")
_LITERATURE_KINDS = ("doi:", "pmid:", "pmcid:")


@dataclass(frozen=True, slots=True)
class _Row:
    item_id: int
    feed_id: int
    feed: str
    link: str | None
    guid: str | None
    identity: str
    title: str
    summary: str
    published_at: datetime
    date_estimated: bool
    first_seen_at: datetime
    canonical_url: str | None
    story_id: int | None
    identifiers: list[str] | None  # None: stored before sources' own identifiers were kept
    backlog: bool = False  # brought by its feed's first fetch


class NewItem(NamedTuple):
    """A fetched item not stored yet: `values` is its row but for its story, `fingerprint` the
    one `analyse` made of it, and `backlog` whether its feed's first fetch brought it (a feed's
    backlog is news only for what was published within a digest's period)."""

    values: Mapping[str, Any]
    fingerprint: Fingerprint
    backlog: bool = False


def assign_stories(
    session: Session,
    new: Sequence[NewItem],
    stored_ids: Sequence[int],
    now: datetime,
    made: Mapping[int, Fingerprint] | None = None,
) -> list[int]:
    """Insert `new` items into stories (joining or merging existing ones), and place again the
    stored items of `stored_ids` (changed, or stored before stories existed). Returns the new
    items' ids, in order.

    A new item is inserted once its story is known, with it: inserting first and then setting
    the story would write each row, and on PostgreSQL every one of its indexes, twice. Until
    then it goes by a provisional id below zero, which no stored item has.

    `made` holds fingerprints of stored items made from the same text as it was fetched; the
    others are made here from the stored rows. A changed item keeps its story (its content
    changed, not its identity) but may join more items; a changed registry record makes its
    story news again.
    """
    if not new and not stored_ids:
        return []
    if stored_ids:  # their text changed, so their keys are recomputed below
        session.execute(delete(DedupeKey).where(DedupeKey.item_id.in_(stored_ids)))
    unstored = {-number: item for number, item in enumerate(new, 1)}
    unstored_rows = [_unstored_row(item_id, item) for item_id, item in unstored.items()]
    rows = [*unstored_rows, *_with_canonical_urls(session, _load(session, stored_ids))]
    shared = _shared_links(session, rows, unstored_rows)
    given = dict(made or {})
    for item_id, item in unstored.items():
        given[item_id] = replace(item.fingerprint, item=str(item_id))
    fingerprints = {row.item_id: _fingerprint(row, shared, given.get(row.item_id)) for row in rows}
    candidates = _candidates(session, fingerprints.values(), exclude=set(stored_ids))
    known_rows = _with_canonical_urls(session, _load(session, candidates))
    shared |= _shared_links(session, known_rows, unstored_rows)
    known = [_fingerprint(row, shared, None) for row in known_rows]
    links = find_links(list(fingerprints.values()), known)

    all_rows = [*rows, *known_rows]
    story_of = {row.item_id: row.story_id for row in all_rows}
    groups = UnionFind()
    for item_id in fingerprints:
        groups.add(_node(item_id, story_of))
    for link in links:
        groups.union(_node(int(link.item), story_of), _node(int(link.other), story_of))
    own_ids = {int(fp.item): fp.own_ids for fp in [*fingerprints.values(), *known]}
    touched = _apply_groups(session, groups.groups(), story_of, all_rows, own_ids, now)
    stored_as = _insert(session, unstored, story_of)
    _store_keys(session, fingerprints.values(), stored_as)
    _store_links(session, links, stored_as)
    renewed = {
        story
        for item_id in stored_ids
        if any(i.startswith(_REGISTRY_KINDS) for i in fingerprints[item_id].own_ids)
        and (story := story_of.get(item_id)) is not None
    }
    _refresh(session, touched, now, renewed)
    return list(stored_as.values())


def assign_unassigned(session: Session, now: datetime) -> int:
    """Give stories to items stored before stories existed; returns how many were assigned."""
    total = 0
    while ids := list(
        session.scalars(
            select(Item.id).where(Item.story_id.is_(None)).order_by(Item.id).limit(BATCH_SIZE)
        )
    ):
        assign_stories(session, (), ids, now)
        total += len(ids)
    return total


def _unstored_row(item_id: int, item: NewItem) -> _Row:
    values = item.values
    return _Row(
        item_id=item_id,
        feed_id=values["feed_id"],
        feed=item.fingerprint.feed,
        link=values["link"],
        guid=values["guid"],
        identity=values["identity"],
        title=values["title"],
        summary=values["summary"],
        published_at=values["published_at"],
        date_estimated=values["date_estimated"],
        first_seen_at=values["first_seen_at"],
        canonical_url=values["canonical_url"],
        story_id=None,
        identifiers=values["identifiers"],
        backlog=item.backlog,
    )


def _insert(
    session: Session, unstored: Mapping[int, NewItem], story_of: Mapping[int, int | None]
) -> dict[int, int]:
    """Insert the new items with their stories; returns each one's id by its provisional id."""
    if not unstored:
        return {}
    inserted = session.execute(
        insert(table_of(Item)).returning(Item.feed_id, Item.identity, Item.id),
        [{**item.values, "story_id": story_of[item_id]} for item_id, item in unstored.items()],
    )
    id_of = {(feed_id, identity): item_id for feed_id, identity, item_id in inserted}
    return {
        provisional: id_of[item.values["feed_id"], item.values["identity"]]
        for provisional, item in unstored.items()
    }


def _load(session: Session, item_ids: Iterable[int]) -> list[_Row]:
    rows = []
    for ids in batches(item_ids):
        query = (
            select(
                Item.id.label("item_id"),
                Item.feed_id,
                Feed.name.label("feed"),
                Item.link,
                Item.guid,
                Item.identity,
                Item.title,
                Item.summary,
                Item.published_at,
                Item.date_estimated,
                Item.first_seen_at,
                Item.canonical_url,
                Item.story_id,
                Item.identifiers,
            )
            .join(Feed)
            .where(Item.id.in_(ids))
            .order_by(Item.id)
        )
        rows += [_Row(**row._mapping) for row in session.execute(query)]
    return rows


def _with_canonical_urls(session: Session, rows: Sequence[_Row]) -> list[_Row]:
    """Rows with the canonical URL of their link, which every step after this needs: items
    stored before the column existed get it computed now, and stored for later batches' shared
    link lookups."""
    missing = {
        row.item_id: canonical_url(row.link)
        for row in rows
        if row.canonical_url is None and row.link
    }
    if not missing:
        return list(rows)
    session.execute(
        update_by_id(Item), [{"row_id": i, "canonical_url": url} for i, url in missing.items()]
    )
    return [replace(row, canonical_url=missing.get(row.item_id, row.canonical_url)) for row in rows]


def _shared_links(
    session: Session, rows: Iterable[_Row], unstored: Iterable[_Row]
) -> set[tuple[int, str]]:
    """The (feed, canonical URL) pairs of `rows` that several items of that feed link to,
    counting the `unstored` items with those stored.

    Looked up by URL alone (indexed), then kept for the feeds asked about: a row-value IN
    over (feed, URL) pairs makes SQLite scan every item."""
    wanted = {(row.feed_id, row.canonical_url) for row in rows if row.canonical_url}
    items = Counter(
        pair for row in unstored if (pair := (row.feed_id, row.canonical_url)) in wanted
    )
    urls = sorted({url for _, url in wanted})
    for batch in batches(urls):
        for feed_id, url, count in session.execute(_ITEMS_BY_LINK, {"urls": batch}):
            if url is not None and (feed_id, url) in wanted:
                items[feed_id, url] += count
    return {pair for pair, count in items.items() if count > 1}


# Written once, as the candidate lookup below: built per batch, the query cost SQLAlchemy more
# than the database answering it.
_ITEMS_BY_LINK = text(
    "SELECT feed_id, canonical_url, count(*) FROM items WHERE canonical_url IN :urls"
    " GROUP BY feed_id, canonical_url"
).bindparams(bindparam("urls", expanding=True))


def _fingerprint(row: _Row, shared: set[tuple[int, str]], given: Fingerprint | None) -> Fingerprint:
    """The row's fingerprint: `given` (made from the same text when it was fetched), else
    made from the row; either way knowing whether its feed shares its link."""
    link_is_shared = (row.feed_id, row.canonical_url or "") in shared
    if given is not None:
        return with_shared_link(given) if link_is_shared else given
    return fingerprint(
        str(row.item_id),
        row.feed,
        link=row.link,
        guid=row.guid,
        title=row.title,
        summary=row.summary,
        link_is_shared=link_is_shared,
        identifiers=row.identifiers,
    )


# Stored items sharing one of a batch's keys, each key's items counted as they are read.
# Written once: built per batch as a select, it cost more in SQLAlchemy (building the query,
# its cache key, 500 keys bound one by one) than in the database answering it.
_SHARING_KEYS = text(
    "SELECT item_id FROM ("
    " SELECT key, item_id, count(*) OVER (PARTITION BY key) AS items_sharing"
    " FROM dedupe_keys WHERE key IN :keys"
    ") AS sharing WHERE items_sharing <= :most OR key NOT LIKE 'band:%'"
).bindparams(bindparam("keys", expanding=True), most=MAX_BAND_ITEMS)


def _candidates(session: Session, fps: Iterable[Fingerprint], exclude: set[int]) -> set[int]:
    """Stored items sharing an index key with `fps`, leaving out boilerplate bands: one query
    a batch of keys."""
    keys = sorted({key for fp in fps for key in fp.index_keys})
    found: set[int] = set()
    for batch in batches(keys):
        found.update(session.scalars(_SHARING_KEYS, {"keys": batch}))
    return found - exclude


# A batch's keys in one statement on PostgreSQL: psycopg's executemany would run the insert
# once per row, a quarter of the server's work in a cold ingest (bench/README.md).
_KEYS_FROM_ARRAYS = text(
    "INSERT INTO dedupe_keys (key, item_id) SELECT * FROM unnest(:keys, :item_ids)"
).bindparams(bindparam("keys", type_=ARRAY(String)), bindparam("item_ids", type_=ARRAY(Integer)))


# The same on SQLite, straight to the driver's executemany: six keys an item, and SQLAlchemy
# building each row's parameters cost 5% of the store thread's time (bench/README.md).
_KEYS_FROM_ROWS = "INSERT INTO dedupe_keys (key, item_id) VALUES (?, ?)"


def _store_keys(session: Session, fps: Iterable[Fingerprint], stored_as: Mapping[int, int]) -> None:
    rows = [
        (key, _stored_id(fp.item, stored_as)) for fp in fps for key in dict.fromkeys(fp.index_keys)
    ]
    if not rows:
        return
    if session.get_bind().dialect.name == "postgresql":
        keys, item_ids = zip(*rows, strict=True)
        session.execute(_KEYS_FROM_ARRAYS, {"keys": list(keys), "item_ids": list(item_ids)})
    else:
        session.connection().exec_driver_sql(_KEYS_FROM_ROWS, rows)


def _store_links(session: Session, links: Sequence[Link], stored_as: Mapping[int, int]) -> None:
    pairs: dict[tuple[int, int], str] = {}
    for link in links:
        a, b = _stored_id(link.item, stored_as), _stored_id(link.other, stored_as)
        pairs.setdefault((min(a, b), max(a, b)), link.reason)
    if not pairs:
        return
    # Looked up by the first item (the key's prefix): a row-value IN makes SQLite scan them all.
    firsts = sorted({a for a, _ in pairs})
    existing: set[tuple[int, int]] = set()
    for batch in batches(firsts):
        existing.update((a, b) for a, b in session.execute(_LINKS_FROM, {"item_ids": batch}))
    rows = [
        {"item_id": a, "other_item_id": b, "reason": reason}
        for (a, b), reason in pairs.items()
        if (a, b) not in existing
    ]
    if rows:
        session.execute(insert(table_of(StoryLink)), rows)


# The links already stored from a batch's first items (the primary key's prefix).
_LINKS_FROM = text(
    "SELECT item_id, other_item_id FROM story_links WHERE item_id IN :item_ids"
).bindparams(bindparam("item_ids", expanding=True))


def _stored_id(item: str, stored_as: Mapping[int, int]) -> int:
    """The stored id of a fingerprint's or link's item, provisional or not."""
    item_id = int(item)
    return stored_as.get(item_id, item_id)


def _node(item_id: int, story_of: dict[int, int | None]) -> str:
    story = story_of.get(item_id)
    return f"story:{story}" if story is not None else f"item:{item_id}"


def _apply_groups(
    session: Session,
    groups: Iterable[frozenset[str]],
    story_of: dict[int, int | None],
    rows: Sequence[_Row],
    own_ids: Mapping[int, frozenset[str]],
    now: datetime,
) -> set[int]:
    """Write each group as one story (its oldest existing one, else a new one) and record it
    in `story_of`; return the existing ones, which gained items and need `_refresh`.

    New stories are inserted and stored items assigned in one statement each per batch, already
    titled from their best source: all their items are at hand, so they need no refresh (which
    would read them back). Only merging stories (rare) costs a statement per merge. Items not
    stored yet (provisional ids) get theirs as they are inserted.
    """
    row_of = {row.item_id: row for row in rows}
    assignments: dict[int, int] = {}
    touched: set[int] = set()
    new_groups: list[list[int]] = []
    for members in groups:
        stories = sorted(int(node[6:]) for node in members if node.startswith("story:"))
        items = [int(node[5:]) for node in members if node.startswith("item:")]
        if not stories:
            new_groups.append(items)
            continue
        target, merged = stories[0], stories[1:]
        touched.add(target)
        if merged:
            session.execute(update(Item).where(Item.story_id.in_(merged)).values(story_id=target))
            _carry_digest_history(session, merged, target)
            session.execute(delete(Story).where(Story.id.in_(merged)))
            for item, story in story_of.items():
                if story in merged:
                    story_of[item] = target
        assignments |= dict.fromkeys(items, target)
    if new_groups:
        stories_table = table_of(Story)
        created = session.execute(
            insert(stories_table).returning(stories_table.c.id, sort_by_parameter_order=True),
            [_new_story([row_of[i] for i in items], own_ids, now) for items in new_groups],
        ).scalars()
        for items, story_id in zip(new_groups, created, strict=True):
            assignments |= dict.fromkeys(items, story_id)
    if stored := [
        {"row_id": item, "story_id": story} for item, story in assignments.items() if item > 0
    ]:
        session.execute(update_by_id(Item), stored)
    story_of |= assignments
    return touched


def _new_story(
    items: Sequence[_Row], own_ids: Mapping[int, frozenset[str]], now: datetime
) -> dict[str, object]:
    """A new story's row, as `_refresh` would make it from these items."""
    best = min(items, key=lambda row: _source_rank(row, own_ids[row.item_id]))
    first_seen = min(row.first_seen_at for row in items)
    return {
        "title": best.title,
        "link": best.link,
        "first_seen_at": first_seen,
        "updated_at": now,
        "news_at": max(_news_time(row) for row in items),
        "published_at": best.published_at,
        "published_estimated": best.date_estimated,
    }


def _news_time(row: _Row) -> datetime:
    """When an item became news: when first seen, but for a feed's backlog (its first fetch)
    when it was published, and never for an undated backlog item. So a new feed, or a new
    installation, never floods the next digest with months of old news."""
    if not row.backlog:
        return row.first_seen_at
    return _EPOCH if row.date_estimated else row.published_at


def _carry_digest_history(session: Session, merged: Sequence[int], target: int) -> None:
    """A story merged into another stays sent: the digests that carried it now count as having
    carried the story it joined, so no reader gets the same news again under another id."""
    columns = (DigestStory.digest_id, DigestStory.subscriber, DigestStory.news_at)
    carried = session.execute(select(*columns).where(DigestStory.story_id.in_(merged))).all()
    if not carried:
        return
    kept = session.execute(select(*columns).where(DigestStory.story_id == target)).all()
    digests = {digest_id for digest_id, _, _ in kept}
    news = {(subscriber, news_at) for _, subscriber, news_at in kept}
    moved = []
    for digest_id, subscriber, news_at in carried:
        if digest_id in digests or (subscriber, news_at) in news:
            continue
        digests.add(digest_id)
        news.add((subscriber, news_at))
        moved.append(
            {
                "digest_id": digest_id,
                "story_id": target,
                "subscriber": subscriber,
                "news_at": news_at,
            }
        )
    session.execute(delete(DigestStory).where(DigestStory.story_id.in_(merged)))
    if moved:
        session.execute(insert(DigestStory), moved)


def refresh_stories(session: Session, story_ids: set[int], now: datetime) -> None:
    """Take each story's title, link and dates from its items again (after items changed
    outside a fetch, such as titles repaired)."""
    _refresh(session, story_ids, now, set())


def _refresh(session: Session, story_ids: set[int], now: datetime, renewed: set[int]) -> None:
    """Title and link from the best source; first seen from the earliest item."""
    if not story_ids:
        return
    members: defaultdict[int, list[_Member]] = defaultdict(list)
    for row in session.execute(_MEMBERS, {"story_ids": list(story_ids)}):
        member = _Member._make(row)
        members[member.story_id].append(member)
    refreshed = []
    for story_id, items in members.items():
        best = min(items, key=lambda item: _source_rank(item, _own(item)))
        refreshed.append(
            {
                "row_id": story_id,
                "title": best.title,
                "link": best.link,
                "first_seen_at": min(item.first_seen_at for item in items),
                "updated_at": now,
                "published_at": best.published_at,
                "published_estimated": best.date_estimated,
            }
        )
    if refreshed:
        session.execute(update_by_id(Story), refreshed)
    if renewed:
        session.execute(update(Story).where(Story.id.in_(renewed)).values(news_at=now))


def _own(member: _Member) -> frozenset[str]:
    """A stored item's own identifiers: as its source stated them, else from link and GUID."""
    if member.identifiers is not None:
        return frozenset(member.identifiers)
    return own_identifiers(member.link, member.guid)


def _source_rank(item: _Ranked, own: frozenset[str]) -> tuple[int, bool, float, str, str, str]:
    """Registry before journal before anything else (by `own`, the item's own identifiers).
    Among registry records the freshest version first: a trial's current status wins over an
    older copy of the record in another feed. Among the others the earliest real publication
    (the original, not a later copy); an estimated date is only when we happened to fetch it.
    Then a stable tie-break: nothing here depends on arrival order, so neither does a story's
    title."""
    if any(i.startswith(_REGISTRY_KINDS) for i in own):
        kind = 0
    elif any(i.startswith(_LITERATURE_KINDS) for i in own):
        kind = 1
    else:
        kind = 2
    published = 0.0 if item.date_estimated else item.published_at.timestamp()
    order = -published if kind == 0 else published
    return kind, item.date_estimated, order, item.canonical_url or "", item.identity, item.title
