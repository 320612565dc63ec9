"""Values that cross pipeline stages and the store's edge. Frozen, typed, and free of I/O.

Renderers, the CLI and the web face read stories and feeds as these values, so none of them
needs the store (or SQLAlchemy) to be imported to work with what it holds.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Literal

# A feed's state after its last fetch: "new" (never fetched), "ok" (parsed), "partial" (an
# API answer that stopped short: what came is stored, the rest is asked for again), "not
# modified" (a 304), "unchanged" (the same body again), "error" (failing, retried with
# back-off), "paused" (failing too long, or gone: not fetched until resumed), "resumed".
FeedStatus = Literal[
    "new", "ok", "partial", "not modified", "unchanged", "error", "paused", "resumed"
]
PAUSED: FeedStatus = "paused"

SourceKind = Literal["registry", "journal", "preprint", "press-release", "news", "society"]
# What readers see for each kind: on badges, and as the category of feed entries.
SOURCE_KIND_LABELS: dict[str, str] = {
    "registry": "Trial registry",
    "journal": "Journal",
    "preprint": "Preprint",
    "press-release": "Press release",
    "news": "News",
    "society": "Patient society",
}


@dataclass(frozen=True, slots=True)
class Entry:
    """One item of a feed, cleaned: text fields are plain text, HTML is sanitised, links http(s).

    `identity` is what makes the item the same across fetches of its feed: the GUID, else the
    link, else a hash of its content.
    """

    identity: str
    guid: str | None
    link: str | None
    title: str
    summary: str
    content_html: str
    authors: tuple[str, ...]
    categories: tuple[str, ...]
    published_at: datetime
    updated_at: datetime | None
    date_estimated: bool
    content_hash: str
    kind: SourceKind | None = None  # when the item says more than its feed (a preprint)
    # Strong identifiers of the record the item is (doi:, pmid:, pmcid:, nct:, euct:), from its
    # link and GUID and from what its source states (dc:identifier, prism:doi, API fields).
    identifiers: tuple[str, ...] = ()
    status: str | None = None  # a registry record's status as the registry words it


@dataclass(frozen=True, slots=True)
class ParsedFeed:
    """What a source turned a fetched body into.

    `entries` may be an iterator that parses as it goes (a large feed), so it is read once.
    """

    title: str
    link: str | None
    entries: Iterable[Entry]
    ttl: timedelta | None = None  # RSS <ttl>: how long the publisher says the feed stays fresh


@dataclass(frozen=True, slots=True)
class TermHit:
    """One reason an item matched: `term` of `group` found in `field`, written as `text`."""

    group: str
    term: str
    field: str
    text: str


@dataclass(frozen=True, slots=True)
class TopicMatch:
    """An item is about `topic`; `hits` say why, `score` ranks (title hits weigh most), and
    `evidence` is the sentence (or title) that says it, as readers are shown it."""

    topic: str
    score: float
    hits: tuple[TermHit, ...]
    evidence: str = ""


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
    title: str | None = None  # what the feed calls itself


@dataclass(frozen=True, slots=True)
class FetchOutcome:
    """A feed's whole state after one fetch, as the store writes it (`outcome.next_state`
    decides it: the store only assigns)."""

    status: FeedStatus
    fetched_at: datetime
    next_fetch_at: datetime
    http_status: int | None = None
    error: str | None = None
    consecutive_failures: int = 0
    failing_since: datetime | None = None
    last_success_at: datetime | None = None
    etag: str | None = None
    last_modified: str | None = None
    body_hash: str | None = None
    title: str | None = None
    ttl: timedelta | None = None  # the feed's own <ttl>


@dataclass(frozen=True, slots=True)
class FeedRow:
    """A feed with its fetch state, for `feeds list`, /healthz and the digest's footer."""

    name: str
    url: str
    type: str
    title: str | None
    status: FeedStatus
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
class StatusSeen:
    """A registry record's status as of one of its versions (the record's own date)."""

    status: str
    as_of: datetime


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
    published: datetime  # when its best source published it (first seen when estimated)
    published_estimated: bool = False  # no source gave a date
    statuses: tuple[StatusSeen, ...] = ()  # a registry record's history, oldest first

    @property
    def status_change(self) -> tuple[str, str] | None:
        """The record's last change of status, (before, now), if it ever changed."""
        if len(self.statuses) < 2:
            return None
        return self.statuses[-2].status, self.statuses[-1].status


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


def reader_key(subscriber_id: int) -> str:
    """How the outbox names a reader who subscribed (never by address): `reader-ID`."""
    return f"reader-{subscriber_id}"
