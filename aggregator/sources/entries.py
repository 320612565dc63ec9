"""Building a clean `Entry` from the raw fields any source format provides.

Every format (RSS/Atom through feedparser, JSON Feed through json) ends here, so the rules for
text, links, dates, caps and identity are the same whatever the source.
"""

from __future__ import annotations

import hashlib
import html
import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from datetime import datetime

from aggregator.models import Entry, SourceKind
from aggregator.normalise import (
    clean_text,
    declared_identifiers,
    fallback_title,
    own_identifiers,
    plausible_date,
    safe_link,
    text_from_html,
)
from aggregator.sanitise import sanitise_html

MAX_TITLE = 1_000
MAX_SUMMARY = 2_000
MAX_NAME = 200
MAX_AUTHORS = 20
MAX_CATEGORIES = 30
MAX_IDENTITY = 512
# WordPress's RSS footer ("The post <a>Title</a> appeared first on <a>Site</a>."), in the
# site's language: the same words under every item of the feed, never part of what the item
# says. (Italian's "L'articolo ... proviene da ..." reads like prose: only matching, which
# judges sentence by sentence, sets it aside; text_units.py.)
_WORDPRESS_FOOTER = re.compile(
    r"(?:<p>\s*)?(?:The post|Der Beitrag|L['\u2019]article|La entrada|Het bericht|O post)"
    r" .{1,1000}? (?:appeared first on|erschien zuerst auf|est apparu en premier sur"
    r"|se publicó primero en|apareció primero en|verscheen eerst op|apareceu primeiro em)"
    r" .{1,500}?(?:</p>\s*|\.?\s*)$",
    re.IGNORECASE | re.DOTALL,
)
# Its words as WordPress writes them: the pattern is tried only on text holding one, since,
# with no one word it must start with, it is slow on every other.
_WORDPRESS_FOOTER_WORDS = (
    *("appeared first on", "erschien zuerst auf", "est apparu en premier sur"),
    *("se publicó primero en", "apareció primero en", "verscheen eerst op"),
    *("apareceu primeiro em",),
)


@dataclass(frozen=True, slots=True)
class RawEntry:
    """An item's fields as the format gave them: untrusted strings, possibly HTML."""

    guid: str | None = None
    link: str | None = None
    title: str = ""
    body: str = ""
    body_is_html: bool = True
    summary: str = ""
    authors: tuple[str, ...] = ()
    categories: tuple[str, ...] = ()
    published: datetime | None = None
    updated: datetime | None = None
    kind: SourceKind | None = None
    identifiers: tuple[str, ...] = ()  # the record's own, as the source states them
    status: str | None = None  # a registry record's status ("Recruiting")


def build_entries(
    raws: Iterable[RawEntry], feed_url: str, fetched_at: datetime
) -> tuple[Entry, ...]:
    """Clean entries in feed order; a repeated identity keeps its first (usually newest) entry."""
    return tuple(iter_entries(raws, feed_url, fetched_at))


def iter_entries(raws: Iterable[RawEntry], feed_url: str, fetched_at: datetime) -> Iterator[Entry]:
    """`build_entries`, one at a time as `raws` arrive: a large feed streams through."""
    return _unique(build_entry(raw, feed_url, fetched_at) for raw in raws)


def build_entry(raw: RawEntry, feed_url: str, fetched_at: datetime) -> Entry:
    """One clean entry. Missing or implausible dates become the fetch time, flagged as estimated."""
    guid = clean_text(raw.guid or "") or None
    link = safe_link(raw.link, feed_url)
    body = _without_footer(raw.body)
    if raw.body_is_html:
        content_html = sanitise_html(body, feed_url)
    else:  # plain text, though APIs still send entities ("&amp;") and tags ("<i>") in it
        text = text_from_html(body)
        content_html = f"<p>{html.escape(text)}</p>" if text else ""
    summary = text_from_html(_without_footer(raw.summary) or content_html, MAX_SUMMARY)
    title = text_from_html(raw.title, MAX_TITLE) or fallback_title(content_html or summary, link)
    published = plausible_date(raw.published, fetched_at)
    updated = plausible_date(raw.updated, fetched_at)
    content_hash = _hash(title, link or "", summary, content_html)
    return Entry(
        identity=_identity(guid or link or f"sha256:{content_hash}"),
        guid=guid,
        link=link,
        title=title,
        summary=summary,
        content_html=content_html,
        authors=_names(raw.authors)[:MAX_AUTHORS],
        categories=_names(raw.categories)[:MAX_CATEGORIES],
        published_at=published or updated or fetched_at,
        updated_at=updated,
        date_estimated=published is None and updated is None,
        content_hash=content_hash,
        kind=raw.kind,
        identifiers=tuple(
            sorted(own_identifiers(link, guid) | declared_identifiers(raw.identifiers))
        ),
        status=raw.status,
    )


def _without_footer(text: str) -> str:
    lowered = text.lower()
    if any(words in lowered for words in _WORDPRESS_FOOTER_WORDS):
        return _WORDPRESS_FOOTER.sub("", text)
    return text


def _names(values: Iterable[str]) -> tuple[str, ...]:
    cleaned = (clean_text(value, MAX_NAME) for value in values)
    return tuple(dict.fromkeys(value for value in cleaned if value))


def _identity(value: str) -> str:
    if len(value) <= MAX_IDENTITY:
        return value
    return "sha256:" + hashlib.sha256(value.encode()).hexdigest()


def _hash(*fields: str) -> str:
    return hashlib.sha256("\0".join(fields).encode()).hexdigest()


def _unique(entries: Iterator[Entry]) -> Iterator[Entry]:
    seen: set[str] = set()
    for entry in entries:
        if entry.identity not in seen:
            seen.add(entry.identity)
            yield entry
