"""Plain RSS 2.0 read straight from expat, into the fields feedparser would have given.

feedparser is the parser of record, and it is most of a parse worker's time: every element goes
through its SAX handler, its context stack and its dictionaries, for dozens of formats and
oddities. Most feeds are none of those: RSS 2.0 in UTF-8, items of flat text elements. This
module reads that shape, and only that shape, and answers None for anything else, which
feedparser then parses as before.

What "only that shape" means is what makes the two agree: every element this module does not
know exactly how feedparser treats sends the document to feedparser. It dispatches elements
by the key feedparser derives from their namespace and name, and it derives each value with
feedparser's own rules (its URI joining, its mojibake repair and cp1252 mapping, its date
parser). tests/test_plain_rss.py holds the two to the same results on feedparser's own test
corpus, on every feed in tests/data, and on generated variations of each rule below.
"""

from __future__ import annotations

import re
from contextlib import suppress
from typing import Any
from xml.parsers import expat

from feedparser.api import StrictFeedParser
from feedparser.datetimes import _parse_date
from feedparser.encodings import parse_content_type
from feedparser.html import _cp1252
from feedparser.urls import _urljoin

_MIXIN_NAMESPACES: dict[str, str] = {
    uri.lower(): prefix for uri, prefix in StrictFeedParser.namespaces.items()
}
_XML_NAMESPACE = "http://www.w3.org/XML/1998/namespace"
_USERLAND = "http://backend.userland.com/rss"
_PI_ENCODING = re.compile(rb"^<\?.*encoding=['\"](.*?)['\"].*\?>")
_MARKUP_FIRST = re.compile(rb"\s*<")  # not a byte order mark, nor UTF-16
_DECLARATIONS = re.compile(rb"<!(?:DOCTYPE|ENTITY)", re.IGNORECASE)
_NAMED_ENTITY = re.compile("&([A-Za-z0-9_]+);")
# feedparser's e-mail address in an author's string (feedparser/mixin.py).
_EMAIL = re.compile(
    r"(([a-zA-Z0-9\_\-\.\+]+)@((\[[0-9]{1,3}\.[0-9]{1,3}\.[0-9]{1,3}\.)|(([a-zA-Z0-9\-]+\.)+))"
    r"([a-zA-Z]{2,4}|[0-9]{1,3})(\]?))(\?subject=\S+)?"
)
_APPLICATION_XML = (
    *("application/xml", "application/xml-dtd", "application/xml-external-parsed-entity"),
)

# The entry keys `rss._raw_entry` reads, and the channel's: an element feedparser stores under
# one of these by its generic rule would change what we read, so it is left to feedparser.
_READ_KEYS = frozenset(
    {
        *("id", "link", "links", "title", "title_detail", "summary", "summary_detail"),
        *("content", "authors", "author", "author_detail", "tags", "ttl"),
        *("published", "published_parsed", "updated", "updated_parsed", "guidislink"),
        *("dc_identifier", "prism_doi"),
    }
)
# Elements feedparser has a handler for whose only effect is on keys nobody here reads.
_HARMLESS_IN_ITEM = frozenset({"enclosure", "media_thumbnail", "media_content"})
_HARMLESS_IN_CHANNEL = frozenset(
    {
        *("description", "language", "lastbuilddate", "pubdate", "generator", "copyright"),
        *("category", "managingeditor", "webmaster", "cloud", "dc_publisher", "dc_language"),
        *("dc_rights", "dc_date", "dc_creator", "dc_subject"),
    }
)
_IMAGE_CHILDREN = frozenset({"title", "url", "link", "width", "height", "description"})
# Item elements read here, each to the key feedparser files it under.
_TEXT_IN_ITEM = {
    "title": "title",
    "dc_title": "title",
    "link": "link",
    "guid": "id",
    "description": "summary",
    "content_encoded": "content",
    "pubdate": "published",
    "dc_date": "updated",
    "dc_identifier": "dc_identifier",
    "prism_doi": "prism_doi",
}
_AUTHORS = frozenset({"author", "dc_creator"})
_CATEGORIES = frozenset({"category", "dc_subject"})
_URI_KEYS = frozenset(StrictFeedParser.can_be_relative_uri)


class _NotPlain(Exception):
    """The document holds something this reader leaves to feedparser."""


Fields = dict[str, Any]


def read(body: bytes, content_type: str | None) -> tuple[Fields, list[Fields]] | None:
    """The channel's and the items' fields as feedparser gives them, or None if not plain RSS.

    The dictionaries hold only the keys `rss.py` reads, under feedparser's names.
    """
    if not _decodes_as_feedparser_would(body, content_type) or _DECLARATIONS.search(body):
        return None
    reader = _Reader()
    parser = expat.ParserCreate("utf-8", " ")
    parser.buffer_text = True
    parser.StartNamespaceDeclHandler = reader.declare
    parser.StartElementHandler = reader.start
    parser.EndElementHandler = reader.end
    parser.CharacterDataHandler = reader.text
    try:
        parser.Parse(body, True)
    except (_NotPlain, expat.ExpatError):
        return None
    if not reader.entries:
        return None  # feedparser decides what an empty document is
    return reader.channel, reader.entries


def _decodes_as_feedparser_would(body: bytes, content_type: str | None) -> bool:
    """Whether feedparser would read `body` as UTF-8 without a fallback (its RFC 3023 rules).

    Byte order marks, UTF-16 and legacy encodings are left to feedparser.
    """
    if not _MARKUP_FIRST.match(body):
        return False
    declared = _PI_ENCODING.match(body)
    xml_encoding = declared[1].decode("utf-8", "replace").lower() if declared else ""
    media_type, http_encoding = parse_content_type(content_type or "")
    if media_type in _APPLICATION_XML or (
        media_type.startswith("application/") and media_type.endswith("+xml")
    ):
        encoding = http_encoding or xml_encoding or "utf-8"
    elif media_type.startswith("text/"):
        encoding = http_encoding or "us-ascii"
    else:
        encoding = xml_encoding or "utf-8"
    encoding = encoding.lower()
    if encoding in ("us-ascii", "ascii"):
        return body.isascii()
    if encoding not in ("utf-8", "utf8"):
        return False
    try:
        body.decode("utf-8")
    except UnicodeDecodeError:
        return False
    return True


def _lowered_namespace(uri: str) -> str:
    """A namespace as feedparser looks it up: lower case, every Userland RSS namespace as one."""
    lowered = uri.lower()
    return _USERLAND if "backend.userland.com/rss" in lowered else lowered


def _value(pieces: list[str]) -> str:
    """An element's text as feedparser's `pop` leaves it (sanitising and URI resolving off)."""
    text = "".join(pieces).strip()
    if text.isascii():
        return text
    with suppress(UnicodeEncodeError, UnicodeDecodeError):  # feedparser's mojibake repair
        text = text.encode("iso-8859-1").decode("utf-8")
    return text.translate(_cp1252)


class _Reader:
    """expat's callbacks: the channel's and items' elements, one level of text each."""

    def __init__(self) -> None:
        self.channel: dict[str, Any] = {}
        self.entries: list[dict[str, Any]] = []
        self._declared: dict[str, str] = {}  # feedparser's namespaces_in_use
        self._prefixes: dict[str | None, str] = {}  # feedparser's namespacemap
        self._keys: dict[str, str] = {}
        self._path: list[str] = []  # the open elements' keys
        self._pieces: list[str] | None = None  # the text element being read
        self._attributes: dict[str, str] = {}
        self._channel_seen: set[str] = set()  # single-valued elements read so far
        self._item_seen: set[str] = set()
        self._item_titled = False  # feedparser's title_depth: a title with text came first

    def declare(self, prefix: str | None, uri: str | None) -> None:
        if not uri:
            return
        lowered = _lowered_namespace(uri)
        if lowered == _USERLAND:
            uri = _USERLAND
        known = _MIXIN_NAMESPACES.get(lowered)
        if known is None:
            self._declared[prefix or ""] = uri
        else:
            self._prefixes[prefix or None] = known
            self._declared[known] = uri
        self._keys.clear()

    def _key(self, name: str) -> str:
        """feedparser's key for an element: its namespace's usual prefix, "_", its name."""
        key = self._keys.get(name)
        if key is not None:
            return key
        uri, _, local = name.rpartition(" ")
        prefix = ""
        if uri:
            lowered = _lowered_namespace(uri)
            prefix = _MIXIN_NAMESPACES.get(lowered) or next(
                (p for p, declared in self._declared.items() if p and declared == uri), ""
            )
            if not prefix and lowered not in _MIXIN_NAMESPACES:
                raise _NotPlain  # an undeclared default namespace: feedparser reads it bare
            prefix = prefix.lower()
            prefix = self._prefixes.get(prefix, prefix)
        key = f"{prefix}_{local.lower()}" if prefix else local.lower()
        self._keys[name] = key
        return key

    def start(self, name: str, attributes: dict[str, str]) -> None:
        if self._pieces is not None:
            raise _NotPlain  # markup inside a text element
        if attributes and any(a.startswith(_XML_NAMESPACE) for a in attributes):
            raise _NotPlain  # xml:base, xml:lang
        key = self._key(name)
        depth = len(self._path)
        self._path.append(key)
        if depth == 0:
            if key != "rss" or set(attributes) - {"version"}:
                raise _NotPlain
        elif depth == 1:
            if key != "channel" or attributes or "channel" in self._channel_seen:
                raise _NotPlain
            self._channel_seen.add("channel")
        elif self._path[1] != "channel":
            raise _NotPlain
        elif depth == 2:
            self._start_in_channel(key, attributes)
        elif self._path[2] == "item":
            self._start_in_item(key, attributes, depth)
        elif self._path[2] == "image":
            if depth > 3 or key not in _IMAGE_CHILDREN or attributes:
                raise _NotPlain
        elif not (_generic(self._path[2]) and _generic(key)):
            raise _NotPlain

    def _start_in_channel(self, key: str, attributes: dict[str, str]) -> None:
        if key == "item":
            if attributes:
                raise _NotPlain
            self.entries.append({})
            self._item_seen = set()
            self._item_titled = False
        elif key in ("title", "link", "ttl") and not attributes:
            self._read_once(key, self._channel_seen)
        elif key == "link":  # an atom:link beside the channel's own
            if "href" not in attributes or attributes.get("rel", "").lower() not in ("self", "hub"):
                raise _NotPlain
        elif key == "image":
            if attributes:
                raise _NotPlain
        elif key not in _HARMLESS_IN_CHANNEL and not _generic(key):
            raise _NotPlain

    def _start_in_item(self, key: str, attributes: dict[str, str], depth: int) -> None:
        if depth > 3:
            if self._path[3] in _HARMLESS_IN_ITEM or not _generic(key):
                raise _NotPlain
            return
        if key in _TEXT_IN_ITEM:
            allowed = {"isPermaLink"} if key == "guid" else set()
            if set(attributes) - allowed:
                raise _NotPlain
            if _TEXT_IN_ITEM[key] not in ("title", "dc_identifier", "prism_doi"):
                self._read_once(key, self._item_seen)
            self._attributes = attributes
            self._pieces = []
        elif key in _AUTHORS:
            if attributes:
                raise _NotPlain
            self._pieces = []
        elif key in _CATEGORIES:
            if set(attributes) - {"domain"}:  # a domain only adds a scheme to feedparser's tag
                raise _NotPlain
            self._pieces = []
        elif key not in _HARMLESS_IN_ITEM and not _generic(key):
            raise _NotPlain

    def _read_once(self, key: str, seen: set[str]) -> None:
        if key in seen:
            raise _NotPlain  # which one counts depends on feedparser's depth rules
        seen.add(key)
        self._pieces = []

    def text(self, data: str) -> None:
        if self._pieces is not None:
            self._pieces.append(data)

    def end(self, name: str) -> None:
        key = self._path.pop()
        pieces, self._pieces = self._pieces, None
        if pieces is None:
            return
        value = _value(pieces)
        if len(self._path) == 2:
            if key == "link":
                value = _NAMED_ENTITY.sub(r"&\g<1>", _urljoin("", value) if value else value)
            self.channel[key] = value
        else:
            self._end_in_item(key, value)

    def _end_in_item(self, key: str, value: str) -> None:
        entry = self.entries[-1]
        if key in _AUTHORS:
            entry.setdefault("authors", []).append(_author(value))
            return
        if key in _CATEGORIES:  # feedparser's tags hold these terms in this order, each once
            if value and {"term": value} not in entry.setdefault("tags", []):
                entry["tags"].append({"term": value})
            return
        field = _TEXT_IN_ITEM[key]
        permalink = self._attributes.get("isPermaLink", "true") == "true"
        if field in _URI_KEYS and value and (field != "id" or permalink):
            value = _urljoin("", value)
        if field == "title":  # the first with text counts; an empty one only until then
            if not self._item_titled:
                entry["title"] = value
            self._item_titled = self._item_titled or bool(value)
        elif key == "link":
            value = _NAMED_ENTITY.sub(r"&\g<1>", value.replace("&amp;", "&"))
            entry["link"] = value
        elif key == "guid":
            entry["id"] = value
            if permalink:
                entry.setdefault("link", value)
        elif key == "description":
            entry["summary"] = value
            entry["summary_detail"] = {"type": "text/html", "value": value}
        elif key == "content_encoded":
            entry["content"] = [{"type": "text/html", "value": value}]
            entry.setdefault("summary", value)
        elif field in ("published", "updated"):
            entry[f"{field}_parsed"] = _parse_date(value)
        else:
            entry[field] = value


def _author(value: str) -> dict[str, str]:
    """feedparser's name and e-mail address of an author written as one string
    (`_sync_author_detail`): "jane@example.org (Jane Doe)" is Jane Doe at jane@example.org."""
    found = _EMAIL.search(value)
    if not found:
        return {"name": value} if value else {}
    email = found[0]
    name = value.replace(email, "").replace("()", "").replace("<>", "").replace("&lt;&gt;", "")
    name = name.strip()
    name = name[1:] if name.startswith("(") else name
    name = name[:-1] if name.endswith(")") else name
    name = name.strip()
    return {"name": name, "email": email} if name else {"email": email}


def _generic(key: str) -> bool:
    """An element feedparser stores under its own key, which `rss.py` never reads."""
    return (
        key not in _READ_KEYS
        and not hasattr(StrictFeedParser, "_start_" + key)
        and not hasattr(StrictFeedParser, "_end_" + key)
    )
