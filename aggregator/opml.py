"""OPML 2.0 subscription lists, the format every feed reader imports and exports."""

from __future__ import annotations

import re
import xml.etree.ElementTree as ElementTree
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from email.utils import format_datetime

import defusedxml.ElementTree as SafeElementTree
from defusedxml import DefusedXmlException

from aggregator.errors import AggregatorError


@dataclass(frozen=True, slots=True)
class Subscription:
    """One feed in an OPML file."""

    title: str
    url: str


class OpmlError(AggregatorError):
    """The file is not an OPML subscription list we can read."""


def read_opml(data: bytes) -> list[Subscription]:
    """Every outline with an xmlUrl, at any depth (readers nest them in folders), in file order.

    defusedxml refuses entity tricks: an OPML file comes from anywhere.
    """
    try:
        root = SafeElementTree.fromstring(data)
    except (ElementTree.ParseError, DefusedXmlException) as exc:
        raise OpmlError(f"not a readable OPML file: {exc}") from None
    if root.tag != "opml":
        raise OpmlError(f"not an OPML file: the root element is <{root.tag}>")
    subscriptions = []
    for outline in root.iter("outline"):
        url = (outline.get("xmlUrl") or "").strip()
        if url:
            title = (outline.get("title") or outline.get("text") or url).strip()
            subscriptions.append(Subscription(title=title, url=url))
    return subscriptions


def write_opml(subscriptions: Iterable[Subscription], *, title: str, now: datetime) -> bytes:
    """An OPML 2.0 document listing `subscriptions` as RSS outlines."""
    root = ElementTree.Element("opml", version="2.0")
    head = ElementTree.SubElement(root, "head")
    ElementTree.SubElement(head, "title").text = title
    ElementTree.SubElement(head, "dateCreated").text = format_datetime(now)
    body = ElementTree.SubElement(root, "body")
    for subscription in subscriptions:
        ElementTree.SubElement(
            body,
            "outline",
            type="rss",
            text=subscription.title,
            title=subscription.title,
            xmlUrl=subscription.url,
        )
    ElementTree.indent(root)
    document: bytes = ElementTree.tostring(root, encoding="utf-8", xml_declaration=True)
    return document + b"\n"


def name_for(title: str, taken: set[str]) -> str:
    """A feed name (for config.toml and --feed) made from a title, unique among `taken`."""
    base = re.sub(r"[^a-z0-9]+", "-", title.lower()).strip("-")[:60].strip("-") or "feed"
    name, counter = base, 2
    while name in taken:
        name, counter = f"{base}-{counter}", counter + 1
    return name
