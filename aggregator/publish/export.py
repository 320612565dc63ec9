"""Writing the output feeds to `[output] dir`, atomically, after fetches and on `export`."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from aggregator.config import Settings
from aggregator.files import write_atomically, write_if_changed
from aggregator.publish.feeds import FORMATS, Channel, Format, document_path, render
from aggregator.store import Repository


def channels(settings: Settings, repository: Repository, topic: str | None = None) -> list[Channel]:
    """The feed for every topic and one per topic (or only `topic`'s), newest stories first."""
    limit = settings.output.max_items
    found = []
    if topic is None:
        found.append(Channel(None, settings.output.title, repository.list_stories(limit)))
    for topic_id, topic_title in settings.topic_titles.items():
        if topic in (None, topic_id):
            title = f"{settings.output.title}: {topic_title}"
            found.append(Channel(topic_id, title, repository.list_stories(limit, topic=topic_id)))
    return found


def export_all(
    settings: Settings,
    repository: Repository,
    *,
    topic: str | None = None,
    formats: Sequence[Format] = FORMATS,
) -> list[Path]:
    """Write the feeds (all, or `topic`'s) in `formats` under the output folder; returns the
    files that changed (an unchanged feed is left alone, so its HTTP validators stay)."""
    titles = settings.topic_titles
    written = []
    for channel in channels(settings, repository, topic):
        for fmt in formats:
            path = settings.output.dir / document_path(channel.topic, fmt)
            if write_if_changed(path, render(channel, fmt, settings.output, titles)):
                written.append(path)
    return written


def export_one(
    settings: Settings, repository: Repository, fmt: Format, topic: str | None, path: Path
) -> None:
    """Write one feed (all topics, or `topic`'s) in `fmt` to `path`."""
    [channel] = [c for c in channels(settings, repository, topic) if c.topic == topic]
    write_atomically(path, render(channel, fmt, settings.output, settings.topic_titles))
