"""Pure helpers that turn what feeds publish into values we can trust.

Nothing here reads a clock, a file or the network: the caller passes `now` in, so every rule can be
checked with a table of real-world cases.
"""

from __future__ import annotations

import html
import re
import unicodedata
from datetime import UTC, datetime, timedelta
from urllib.parse import urljoin, urlsplit

import nh3

# Before this nobody published a web feed; anything earlier is a parse accident or a placeholder.
EARLIEST_PLAUSIBLE_DATE = datetime(1990, 1, 1, tzinfo=UTC)
# Clock skew and time zones mistakes are common; a date further ahead than this is wrong.
FUTURE_TOLERANCE = timedelta(days=1)

_WHITESPACE = re.compile(r"\s+")
_TEXT_ONLY = nh3.Cleaner(tags=set(), clean_content_tags={"script", "style"}, strip_comments=True)


def clean_text(text: str, max_length: int | None = None) -> str:
    """Plain text safe to store and show: no control or non-characters, whitespace collapsed.

    Text fields are displayed in pages, feeds and email headers, where a stray control character
    breaks XML and a CR/LF could forge a header.
    """
    kept = "".join(
        char
        for char in text
        if char in "\t\n\r " or unicodedata.category(char) not in ("Cc", "Cs", "Co", "Cn")
    )
    result = _WHITESPACE.sub(" ", kept).strip()
    if max_length is not None and len(result) > max_length:
        result = result[: max_length - 1].rstrip() + "…"
    return result


def text_from_html(markup: str, max_length: int | None = None) -> str:
    """The readable text of an HTML fragment: tags and scripts dropped, entities decoded.

    Feeds put markup (and escaped markup) in fields that are meant to be text, such as titles.
    """
    if "<" not in markup and "&" not in markup:
        return clean_text(markup, max_length)
    return clean_text(html.unescape(_TEXT_ONLY.clean(markup)), max_length)


def safe_link(link: str | None, base_url: str) -> str | None:
    """An absolute http(s) URL, or None: relative links are resolved, other schemes refused.

    A `javascript:` or `data:` link in a feed must never become a clickable link for a reader.
    """
    if not link:
        return None
    absolute = urljoin(base_url, clean_text(link))
    parts = urlsplit(absolute)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        return None
    return absolute


def plausible_date(value: datetime | None, now: datetime) -> datetime | None:
    """`value` in UTC if it could be a real publication date, else None.

    Dates before 1990 or more than a day ahead of `now` come from broken feeds; trusting them
    would sort an item to the top of every list for years.
    """
    if value is None:
        return None
    value = value.astimezone(UTC) if value.tzinfo else value.replace(tzinfo=UTC)
    if value < EARLIEST_PLAUSIBLE_DATE or value > now + FUTURE_TOLERANCE:
        return None
    return value
