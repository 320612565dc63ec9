"""RSS 0.9x/1.0/2.0, Atom and JSON Feed bodies -> typed entries.

The only module that hands feedparser a document (`plain_rss.py` reads plain RSS 2.0 with its
value rules, without its parser). feedparser never fetches here: it parses the bytes
`fetch.py` already downloaded under our limits, and its loose result dict stops at this module's
edge. feedparser 6.0 does not read JSON Feed, so a JSON body goes to `jsonfeed.py`.
"""

from __future__ import annotations

import re
from calendar import timegm
from collections.abc import Iterable, Iterator
from datetime import UTC, datetime, timedelta
from itertools import chain
from time import struct_time
from typing import TYPE_CHECKING, Any

import feedparser

from aggregator.errors import ParseError
from aggregator.models import ParsedFeed
from aggregator.normalise import safe_link, text_from_html
from aggregator.sources import jsonfeed, plain_rss
from aggregator.sources.base import Download
from aggregator.sources.entries import MAX_TITLE, RawEntry, iter_entries
from aggregator.sources.xmlparts import split_feed

if TYPE_CHECKING:  # a parse worker needs no HTTP client
    from aggregator.fetch import Fetcher, FetchResult

# Bodies larger than this are parsed ITEMS_PER_PART items at a time (see xmlparts.py).
SPLIT_BYTES = 2_000_000
ITEMS_PER_PART = 200
# Longest author/e-mail field handed to feedparser: its e-mail regular expression is quadratic
# in the field's length, so a hostile 1 MB <author> would take minutes to parse.
MAX_AUTHOR_FIELD = 1_000
# xml:base, or the base attribute feedparser also honours (see _feedparser_options).
_BASE_ATTRIBUTE = re.compile(rb"\bbase\s*=")
_AUTHOR_FIELDS = re.compile(
    rb"(<(?:[A-Za-z0-9_]+:)?(?:author|creator|managingEditor|webMaster|email|name)\b[^>]{0,200}>)"
    rb"([^<]{%d,})" % (MAX_AUTHOR_FIELD + 1)
)


def trim_author_fields(body: bytes) -> bytes:
    """Cut author-like fields to MAX_AUTHOR_FIELD bytes before feedparser sees them."""
    if len(body) <= MAX_AUTHOR_FIELD:
        return body
    return _AUTHOR_FIELDS.sub(lambda m: m[1] + m[2][:MAX_AUTHOR_FIELD], body)


async def download(fetcher: Fetcher, request: Download) -> FetchResult:
    """One conditional GET: a feed that has not changed costs a 304 and nothing else."""
    return await fetcher.fetch(request.url, etag=request.etag, last_modified=request.last_modified)


def parse(body: bytes, url: str, content_type: str | None, fetched_at: datetime) -> ParsedFeed:
    """`parse_feed`, in the shape every source type shares."""
    return parse_feed(body, url=url, content_type=content_type, fetched_at=fetched_at)


def parse_feed(
    body: bytes,
    *,
    url: str,
    content_type: str | None,
    fetched_at: datetime,
    split_bytes: int = SPLIT_BYTES,
    items_per_part: int = ITEMS_PER_PART,
    plain_reader: bool = True,
) -> ParsedFeed:
    """Parse a feed body fetched from `url`; raise ParseError if it is not a feed at all.

    A feed that is malformed but still yields entries (truncated XML, a wrong charset) is kept:
    readers are better served by the items than by a strict refusal. Malformed and empty is an
    error; well-formed and empty is just a quiet feed. A body over `split_bytes` is parsed
    `items_per_part` items at a time as its entries are read, so memory does not grow with it.
    Plain RSS 2.0 is read without feedparser, to the same fields (`plain_rss.py`), unless
    `plain_reader` is false: the tests compare the two.
    """
    if jsonfeed.looks_like_json(body):
        return jsonfeed.parse_json_feed(body, url=url, fetched_at=fetched_at)
    body = trim_author_fields(body)
    options = _feedparser_options(body, url, content_type)
    plain = None
    if plain_reader and not options["resolve_relative_uris"] and len(body) <= split_bytes:
        plain = plain_rss.read(body, content_type)
    channel: Any
    raws: Iterable[Any]
    channel, raws = plain or _feedparser_fields(body, url, options, split_bytes, items_per_part)
    return ParsedFeed(
        title=text_from_html(channel.get("title", ""), MAX_TITLE),
        link=safe_link(channel.get("link"), url),
        entries=iter_entries((_raw_entry(raw) for raw in raws), url, fetched_at),
        ttl=_ttl(channel.get("ttl")),
    )


def _feedparser_fields(
    body: bytes, url: str, options: dict[str, Any], split_bytes: int, items_per_part: int
) -> tuple[Any, Iterator[Any]]:
    """feedparser's channel and entries; a large body is parsed a part at a time, lazily."""
    parts = split_feed(body, items_per_part) if len(body) > split_bytes else None
    documents = parts or iter([body])
    result = feedparser.parse(next(documents), **options)
    if not result.entries and (result.get("bozo") or not result.get("version")):
        raise ParseError(url, _why_not_a_feed(body, result))
    later = (raw for document in documents for raw in feedparser.parse(document, **options).entries)
    return result.feed, chain(result.entries, later)


def _feedparser_options(body: bytes, url: str, content_type: str | None) -> dict[str, Any]:
    """feedparser's arguments: the feed's URL only for a document that declares a base.

    Given a URL, feedparser joins it with every element's inherited base and reparses all content
    HTML to resolve links: `parse_feed` took 0.53 ms an item of the bench's feeds so, 0.37 ms
    without. Without an xml:base our own steps resolve links against the feed's URL: `safe_link`
    for item links, nh3 for content.
    The test is loose (a "base =" in text matches too): a false match only takes the slower path.
    """
    headers = {"content-type": content_type} if content_type else {}
    declares_base = _BASE_ATTRIBUTE.search(body) is not None
    if declares_base:
        headers["content-location"] = url
    return {
        "response_headers": headers,
        "sanitize_html": False,  # nh3 sanitises every body (sanitise.py)
        "resolve_relative_uris": declares_base,
    }


def _ttl(minutes: object) -> timedelta | None:
    text = str(minutes or "").strip()
    return timedelta(minutes=int(text)) if text.isdigit() and int(text) > 0 else None


def _why_not_a_feed(body: bytes, result: Any) -> str:
    head = body[:2048].lower()
    if b"<html" in head or b"<!doctype html" in head:
        return "not a feed: the server sent an HTML page (a login, error or bot-check page?)"
    if not body.strip():
        return "not a feed: the body is empty"
    if result.get("bozo"):
        return f"not a feed: {result.get('bozo_exception')}"
    return "not a feed: no RSS, Atom or JSON Feed document found"


def _raw_entry(raw: Any) -> RawEntry:
    body, body_is_html = _body(raw)
    return RawEntry(
        guid=raw.get("id"),
        link=raw.get("link"),
        title=raw.get("title") or "",
        body=body,
        body_is_html=body_is_html,
        summary=raw.get("summary") or "",
        authors=tuple(
            author.get("name") or author.get("email") or "" for author in raw.get("authors", [])
        ),
        categories=tuple(tag.get("term") or "" for tag in raw.get("tags", [])),
        published=_date(raw.get("published_parsed")),
        # `in`, not .get(): .get() falls back to the published date (feedparser issue 310).
        updated=_date(raw["updated_parsed"]) if "updated_parsed" in raw else None,
        # Journals state the record's DOI in Dublin Core and PRISM (Nature, SAGE, medRxiv).
        identifiers=tuple(str(raw[key]) for key in ("dc_identifier", "prism_doi") if raw.get(key)),
    )


def _body(raw: Any) -> tuple[str, bool]:
    """The richest body the entry has, and whether it is HTML (plain text is escaped later)."""
    for detail in [*raw.get("content", []), raw.get("summary_detail")]:
        if detail and detail.get("value"):
            return detail["value"], "html" in (detail.get("type") or "")
    return "", False


def _date(value: struct_time | None) -> datetime | None:
    if value is None:
        return None
    try:
        return datetime.fromtimestamp(timegm(value), tz=UTC)
    except (OverflowError, ValueError, OSError):
        return None
