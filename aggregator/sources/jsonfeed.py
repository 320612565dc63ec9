"""JSON Feed 1.0/1.1 (https://www.jsonfeed.org/version/1.1/) bodies -> typed entries."""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any

from aggregator.errors import ParseError
from aggregator.models import ParsedFeed
from aggregator.normalise import safe_link, text_from_html
from aggregator.sources.entries import MAX_TITLE, RawEntry, build_entries

_VERSION_PREFIX = "https://jsonfeed.org/version/"


def looks_like_json(body: bytes) -> bool:
    """True when the body is JSON rather than XML; byte-order marks and whitespace are skipped."""
    return body.lstrip(b"\xef\xbb\xbf \t\r\n")[:1] == b"{"


def parse_json_feed(body: bytes, *, url: str, fetched_at: datetime) -> ParsedFeed:
    """Parse a JSON Feed document; anything else that is JSON is not a feed."""
    try:
        document = json.loads(body.decode("utf-8-sig"))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ParseError(url, f"not a feed: invalid JSON ({exc})") from None
    if not isinstance(document, dict) or not str(document.get("version", "")).startswith(
        _VERSION_PREFIX
    ):
        raise ParseError(url, "not a feed: JSON without a JSON Feed 'version'")
    items = document.get("items")
    if not isinstance(items, list):
        raise ParseError(url, "not a feed: JSON Feed without an 'items' list")
    return ParsedFeed(
        title=text_from_html(_string(document.get("title")), MAX_TITLE),
        link=safe_link(_string(document.get("home_page_url")) or None, url),
        entries=build_entries(
            (_raw_entry(item) for item in items if isinstance(item, dict)), url, fetched_at
        ),
    )


def _raw_entry(item: dict[str, Any]) -> RawEntry:
    html_body = _string(item.get("content_html"))
    authors = item.get("authors") or (
        [item["author"]] if isinstance(item.get("author"), dict) else []
    )
    return RawEntry(
        guid=_string(item.get("id")) or None,
        link=_string(item.get("url")) or _string(item.get("external_url")) or None,
        title=_string(item.get("title")),
        body=html_body or _string(item.get("content_text")),
        body_is_html=bool(html_body),
        summary=_string(item.get("summary")),
        authors=tuple(_string(a.get("name")) for a in authors if isinstance(a, dict)),
        categories=tuple(_string(tag) for tag in item.get("tags") or [] if isinstance(tag, str)),
        published=_date(item.get("date_published")),
        updated=_date(item.get("date_modified")),
    )


def _string(value: object) -> str:
    if isinstance(value, str):
        return value
    if isinstance(value, int | float) and not isinstance(value, bool):
        return str(value)
    return ""


def _date(value: object) -> datetime | None:
    if not isinstance(value, str):
        return None
    try:
        return datetime.fromisoformat(value)
    except ValueError:
        return None
