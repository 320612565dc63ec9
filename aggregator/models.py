"""Values that cross pipeline stages. Frozen, typed, and free of I/O."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Literal

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
    """An item is about `topic`; `hits` say why, `score` ranks (title hits weigh most)."""

    topic: str
    score: float
    hits: tuple[TermHit, ...]
