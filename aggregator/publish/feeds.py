"""Output feeds: RSS 2.0 and Atom 1.0 with feedgen, JSON Feed 1.1 as plain JSON. Pure.

One feed for all topics and one per topic, newest story first. Story IDs are stable URLs, so a
reader never sees an old story as new; a feed's build date is its newest story's last change,
so exporting again without changes writes the same bytes and readers' conditional requests
keep getting 304s.
"""

from __future__ import annotations

import html
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Literal
from urllib.parse import urljoin

from feedgen.feed import FeedGenerator

from aggregator.config import OutputSettings
from aggregator.models import SOURCE_KIND_LABELS, StoryRow
from aggregator.publish.why import why_shown

Format = Literal["rss", "atom", "json"]
FORMATS: tuple[Format, ...] = ("rss", "atom", "json")
MEDIA_TYPES: dict[Format, str] = {
    "rss": "application/rss+xml; charset=utf-8",
    "atom": "application/atom+xml; charset=utf-8",
    "json": "application/feed+json; charset=utf-8",
}
_EMPTY_FEED_DATE = datetime(2026, 1, 1, tzinfo=UTC)  # a fixed date: an empty feed never "changes"


@dataclass(frozen=True, slots=True)
class Channel:
    """One output feed: every topic (`topic` None) or one."""

    topic: str | None
    title: str
    stories: Sequence[StoryRow]


def document_path(topic: str | None, fmt: Format) -> str:
    """Where a feed lives, under the output folder and on the web server."""
    if topic is None:
        return {"rss": "feed.xml", "atom": "atom.xml", "json": "feed.json"}[fmt]
    return f"topics/{topic}." + {"rss": "xml", "atom": "atom", "json": "json"}[fmt]


def render(
    channel: Channel, fmt: Format, output: OutputSettings, topic_titles: Mapping[str, str]
) -> bytes:
    """The feed document for `channel` in `fmt`."""
    if fmt == "json":
        return _json_feed(channel, output, topic_titles)
    generator = FeedGenerator()
    feed_url = urljoin(output.base_url, document_path(channel.topic, fmt))
    generator.id(feed_url)
    generator.title(channel.title)
    generator.description(channel.title)
    generator.link(href=output.base_url, rel="alternate")
    generator.link(href=feed_url, rel="self")
    generator.language("en")
    generator.author(name=output.title)  # Atom requires an author of the feed or of each entry
    generator.updated(_last_change(channel))
    # feedgen prepends entries; adding oldest first leaves the newest at the top.
    for story in reversed(channel.stories):
        entry = generator.add_entry()
        page = story_page(story, output)
        entry.id(page)
        entry.guid(page, permalink=True)
        entry.title(story.title)
        # Only this link: feedgen writes an entry's links without their rel, so a second one
        # (the source, as rel="related") would read as a second alternate. The sources' links
        # are in the content.
        entry.link(href=page, rel="alternate")
        entry.published(story.published)
        entry.updated(story.updated)
        entry.content(_entry_html(story, topic_titles), type="html")
        for match in story.matches:
            entry.category(term=match.topic, label=topic_titles.get(match.topic, match.topic))
        for kind in source_kinds(story):
            entry.category(term=kind, label=SOURCE_KIND_LABELS[kind])
    document: bytes = (
        generator.rss_str(pretty=True) if fmt == "rss" else generator.atom_str(pretty=True)
    )
    return document


def _json_feed(channel: Channel, output: OutputSettings, topic_titles: Mapping[str, str]) -> bytes:
    document = {
        "version": "https://jsonfeed.org/version/1.1",
        "title": channel.title,
        "home_page_url": output.base_url,
        "feed_url": urljoin(output.base_url, document_path(channel.topic, "json")),
        "language": "en",
        "items": [
            {
                "id": story_page(story, output),
                "url": story_page(story, output),
                "title": story.title,
                "content_html": _entry_html(story, topic_titles),
                "summary": story.summary,
                "date_published": story.published.isoformat(),
                "date_modified": story.updated.isoformat(),
                "tags": [match.topic for match in story.matches] + source_kinds(story),
            }
            | ({"external_url": story.link} if story.link else {})
            for story in channel.stories
        ],
    }
    return json.dumps(document, ensure_ascii=False, indent=2).encode("utf-8")


def source_kinds(story: StoryRow) -> list[str]:
    """The kinds of source that carried a story (registry, journal, news...), in kind order."""
    kinds = {source.kind for source in story.sources if source.kind}
    return [kind for kind in SOURCE_KIND_LABELS if kind in kinds]


def story_page(story: StoryRow, output: OutputSettings) -> str:
    """The story's own page on the site: each entry's id and link, where readers see every
    source, why it matched and a trial's status history."""
    return urljoin(output.base_url, f"stories/{story.id}")


def _last_change(channel: Channel) -> datetime:
    return max((story.updated for story in channel.stories), default=_EMPTY_FEED_DATE)


def _entry_html(story: StoryRow, topic_titles: Mapping[str, str]) -> str:
    """Summary, why it matched, and every source with its link (the entry's own link is the
    story's page); every text escaped, links http(s)."""
    parts = [f"<p>{html.escape(story.summary)}</p>"] if story.summary else []
    for reason in why_shown(story.matches):
        topic = html.escape(topic_titles.get(reason.topic, reason.topic))
        parts.append(
            f"<p><strong>Why it is here ({topic}):</strong> {html.escape(reason.text)}</p>"
        )
    links = ", ".join(
        f'<a href="{html.escape(source.link)}">{html.escape(source.feed)}</a>'
        if source.link
        else html.escape(source.feed)
        for source in story.sources
    )
    parts.append(f"<p><strong>Reported by:</strong> {links}</p>")
    return "\n".join(parts)
