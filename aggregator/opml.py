"""OPML 2.0 subscription lists, the format every feed reader imports and exports.

Reading keeps what a reader's export says about each feed: its title and the folders it
sits in (a folder named for a kind of source, "Journals" or "Trials", becomes the
feed's `kind`; any other is kept as a tag). Writing gives a feed reader only what it can read:
a registry query is written as ClinicalTrials.gov's own RSS for the same search, and an API
query no feed reader understands (PubMed, Europe PMC) is left out with a comment saying so.
"""

from __future__ import annotations

import xml.etree.ElementTree as ElementTree
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from email.utils import format_datetime
from urllib.parse import parse_qsl, urlencode, urlsplit

import defusedxml.ElementTree as SafeElementTree
from defusedxml import DefusedXmlException
from slugify import slugify

from aggregator.errors import ConfigError
from aggregator.models import SOURCE_KIND_LABELS, SourceKind

NAME_LENGTH = 60
# Words in a folder's name that say which kind of source its feeds are.
FOLDER_KINDS: dict[str, SourceKind] = {
    "trial": "registry",
    "trials": "registry",
    "registry": "registry",
    "registries": "registry",
    "journal": "journal",
    "journals": "journal",
    "papers": "journal",
    "preprint": "preprint",
    "preprints": "preprint",
    "news": "news",
    "press": "press-release",
    "society": "society",
    "societies": "society",
    "charities": "society",
    "associations": "society",
}
CLINICALTRIALS_RSS = "https://clinicaltrials.gov/api/rss"
CLINICALTRIALS_SEARCH = "https://clinicaltrials.gov/search"
# The API's query parameters, and what the site's search and RSS call them.
CLINICALTRIALS_PARAMETERS = {"query.cond": "cond", "query.intr": "intr", "query.term": "term"}


@dataclass(frozen=True, slots=True)
class Outline:
    """One feed in an OPML file, with the folders it sits in (outermost first)."""

    title: str
    url: str
    folders: tuple[str, ...] = ()

    @property
    def kind(self) -> SourceKind | None:
        """The kind of source its innermost folder that names one says."""
        kinds = (folder_kind(folder) for folder in reversed(self.folders))
        return next((kind for kind in kinds if kind is not None), None)

    @property
    def tags(self) -> tuple[str, ...]:
        """Its folders that name no kind of source: the operator's own grouping."""
        return tuple(folder for folder in self.folders if folder_kind(folder) is None)


@dataclass(frozen=True, slots=True)
class Exported:
    """A configured feed as export sees it."""

    name: str
    title: str
    url: str
    type: str
    kind: str | None
    tags: tuple[str, ...]


class OpmlError(ConfigError):
    """The file is not an OPML subscription list we can read (a usage error: exit 2)."""


def read_opml(data: bytes) -> list[Outline]:
    """Every outline with an xmlUrl, at any depth, in file order, with its folders.

    defusedxml refuses entity tricks: an OPML file comes from anywhere.
    """
    try:
        root = SafeElementTree.fromstring(data)
    except (ElementTree.ParseError, DefusedXmlException) as exc:
        raise OpmlError(f"not a readable OPML file: {exc}") from None
    if root.tag != "opml":
        raise OpmlError(f"not an OPML file: the root element is <{root.tag}>")
    body = root.find("body")
    return list(_outlines(body, ())) if body is not None else []


def _outlines(parent: ElementTree.Element, folders: tuple[str, ...]) -> Iterable[Outline]:
    for outline in parent.findall("outline"):
        title = (outline.get("title") or outline.get("text") or "").strip()
        url = (outline.get("xmlUrl") or "").strip()
        if url:
            yield Outline(title or url, url, folders)
        else:
            yield from _outlines(outline, (*folders, title) if title else folders)


def write_opml(feeds: Sequence[Exported], *, title: str, now: datetime) -> bytes:
    """An OPML 2.0 document of `feeds` a feed reader can subscribe to, in folders by kind."""
    root = ElementTree.Element("opml", version="2.0")
    head = ElementTree.SubElement(root, "head")
    ElementTree.SubElement(head, "title").text = title
    ElementTree.SubElement(head, "dateCreated").text = format_datetime(now)
    body = ElementTree.SubElement(root, "body")
    folders: dict[str, ElementTree.Element] = {}
    for feed in feeds:
        urls = reader_urls(feed)
        if urls is None:
            body.append(
                ElementTree.Comment(
                    f" {feed.name} ({feed.type}): an API query, which feed readers cannot read "
                )
            )
            continue
        folder_name = SOURCE_KIND_LABELS.get(feed.kind or "") or (feed.tags[0] if feed.tags else "")
        parent = body
        if folder_name:
            if folder_name not in folders:
                folders[folder_name] = ElementTree.SubElement(
                    body, "outline", text=folder_name, title=folder_name
                )
            parent = folders[folder_name]
        xml_url, html_url = urls
        attributes = {"type": "rss", "text": feed.title, "title": feed.title, "xmlUrl": xml_url}
        if html_url:
            attributes["htmlUrl"] = html_url
        ElementTree.SubElement(parent, "outline", attributes)
    ElementTree.indent(root)
    document: bytes = ElementTree.tostring(root, encoding="utf-8", xml_declaration=True)
    return document + b"\n"


def reader_urls(feed: Exported) -> tuple[str, str | None] | None:
    """(xmlUrl, htmlUrl) a feed reader can use for `feed`, or None for an API-only source."""
    if feed.type == "rss":
        parts = urlsplit(feed.url)
        return feed.url, f"{parts.scheme}://{parts.netloc}/"
    if feed.type == "clinicaltrials":
        query = {
            CLINICALTRIALS_PARAMETERS[key]: value
            for key, value in parse_qsl(urlsplit(feed.url).query)
            if key in CLINICALTRIALS_PARAMETERS
        }
        search = urlencode(query)
        rss = urlencode(query | {"dateField": "LastUpdatePostDate"})
        return f"{CLINICALTRIALS_RSS}?{rss}", f"{CLINICALTRIALS_SEARCH}?{search}"
    return None


def folder_kind(folder: str) -> SourceKind | None:
    """The kind of source a folder's name says, by its first word that names one."""
    for word in slugify(folder).split("-"):
        if word in FOLDER_KINDS:
            return FOLDER_KINDS[word]
    return None


def name_for(title: str, taken: set[str]) -> str:
    """A feed name (for config.toml and --feed) made from a title, transliterated to ASCII
    ("Sclérose en plaques" -> "sclerose-en-plaques"), unique among `taken`."""
    base = slugify(title, max_length=NAME_LENGTH, word_boundary=True) or "feed"
    name, counter = base, 2
    while name in taken:
        name, counter = f"{base}-{counter}", counter + 1
    return name
