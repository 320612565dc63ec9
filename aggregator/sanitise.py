"""The one place item HTML is made safe, and its links absolute, before it is stored or published.

nh3 (Rust's ammonia) is a maintained allow-list sanitiser; it replaces the deprecated bleach and is
fast enough to run on every item. The allow-list keeps what research news uses (paragraphs, lists,
tables, links, emphasis, images) and drops scripts, styles, forms, frames and event handlers.
"""

from __future__ import annotations

from functools import lru_cache

import nh3

_ALLOWED_TAGS = {
    "a",
    "abbr",
    "b",
    "blockquote",
    "br",
    "caption",
    "cite",
    "code",
    "dd",
    "del",
    "dfn",
    "div",
    "dl",
    "dt",
    "em",
    "figcaption",
    "figure",
    "h1",
    "h2",
    "h3",
    "h4",
    "h5",
    "h6",
    "hr",
    "i",
    "img",
    "ins",
    "kbd",
    "li",
    "mark",
    "ol",
    "p",
    "pre",
    "q",
    "s",
    "small",
    "span",
    "strong",
    "sub",
    "sup",
    "table",
    "tbody",
    "td",
    "tfoot",
    "th",
    "thead",
    "time",
    "tr",
    "u",
    "ul",
}
_ALLOWED_ATTRIBUTES = {
    "a": {"href", "title"},
    "abbr": {"title"},
    "img": {"src", "alt", "title", "width", "height"},
    "td": {"colspan", "rowspan"},
    "th": {"colspan", "rowspan", "scope"},
    "time": {"datetime"},
}


@lru_cache(maxsize=64)
def _cleaner(base_url: str) -> nh3.Cleaner:
    """A cleaner that also makes relative links absolute against `base_url`.

    A relative href is broken once the item leaves its feed for an email or our page. Cached: a
    feed's entries share its URL.
    """
    try:
        return _new_cleaner(base_url)
    except ValueError:  # no absolute URL to resolve against: a relative link would lead nowhere
        return _new_cleaner(None)


def _new_cleaner(base_url: str | None) -> nh3.Cleaner:
    return nh3.Cleaner(
        tags=_ALLOWED_TAGS,
        clean_content_tags={"script", "style", "iframe", "object", "embed", "form", "template"},
        attributes=_ALLOWED_ATTRIBUTES,
        url_schemes={"http", "https", "mailto"},
        url_relative=("rewrite_with_base", base_url) if base_url else "deny",
        link_rel="noopener noreferrer nofollow",
        strip_comments=True,
    )


def sanitise_html(markup: str, base_url: str) -> str:
    """`markup` with only harmless tags, attributes and http(s)/mailto URLs, links made absolute."""
    return _cleaner(base_url).clean(markup).strip()
