"""The email digest as a reader sees it: which stories, in what order, saying why. Pure.

Stories are grouped by the reader's topics (a story sits under the first of them it matches)
and then by kind of source, trial updates first, newest first within a group. Rendering makes
a plain-text part and an HTML part (table layout, inline CSS: what mail clients render alike)
from Jinja2 templates with autoescape, and the message is built with the `email` package, whose
header folding and encoding keep feed text out of the headers' structure.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import datetime
from email.message import EmailMessage
from email.policy import SMTP
from email.utils import format_datetime, parseaddr
from urllib.parse import urljoin
from zoneinfo import ZoneInfo

from aggregator.config import Subscriber
from aggregator.models import PAUSED, FeedRow, StoryRow, StorySource
from aggregator.publish.templates import environment
from aggregator.publish.why import Segment, Why, highlight, matched_words, why_shown

# Section headings in the order readers asked for: trial news first, society posts last.
KIND_HEADINGS: dict[str | None, str] = {
    "registry": "Trial updates",
    "journal": "Papers",
    "preprint": "Preprints",
    "news": "News",
    "press-release": "Press releases",
    "society": "Society posts",
    None: "Other sources",
}
EXCERPT_CHARS = 280  # two or three lines on a phone


@dataclass(frozen=True, slots=True)
class Source:
    name: str
    link: str | None


@dataclass(frozen=True, slots=True)
class DigestStory:
    story_id: int
    title: str
    link: str | None
    source: str
    date: datetime  # when its source published it
    updated: bool  # news again: a record changed after it was first seen
    change: str | None  # what changed, when a registry record's status did ("A → B")
    excerpt: tuple[Segment, ...]
    reasons: tuple[Why, ...]  # each with its topic's title
    also: tuple[Source, ...]


@dataclass(frozen=True, slots=True)
class KindSection:
    heading: str
    stories: tuple[DigestStory, ...]


@dataclass(frozen=True, slots=True)
class TopicSection:
    title: str
    kinds: tuple[KindSection, ...]


@dataclass(frozen=True, slots=True)
class FailingSource:
    name: str
    failing_since: datetime | None  # the last success; None if it never worked
    error: str
    paused: bool  # failing so long (or gone) that it is no longer fetched


@dataclass(frozen=True, slots=True)
class ReaderLinks:
    """The reader's own links: their preferences page and one-click unsubscribe."""

    preferences: str
    unsubscribe: str


@dataclass(frozen=True, slots=True)
class DigestContent:
    """Everything a digest says, ready for either template."""

    title: str
    topics: tuple[str, ...]
    period_start: datetime
    period_end: datetime
    timezone: str
    sections: tuple[TopicSection, ...]
    failing: tuple[FailingSource, ...]
    archive_url: str
    contact: str  # where to write to change or stop the subscription
    links: ReaderLinks | None = None  # for a reader the database knows

    @property
    def count(self) -> int:
        return sum(len(kind.stories) for topic in self.sections for kind in topic.kinds)

    @property
    def story_ids(self) -> list[int]:
        return [
            story.story_id
            for topic in self.sections
            for kind in topic.kinds
            for story in kind.stories
        ]


@dataclass(frozen=True, slots=True)
class Envelope:
    """Who sends a digest to whom, and the identifiers that make it the same message on resend."""

    sender: str
    recipient: str
    message_id: str
    subject: str


def build_content(
    stories: Sequence[StoryRow],
    subscriber: Subscriber,
    *,
    title: str,
    topic_titles: Mapping[str, str],
    period: tuple[datetime, datetime],
    feeds: Sequence[FeedRow],
    base_url: str,
    contact: str,
) -> DigestContent:
    """Arrange `stories` for `subscriber`: by topic, then kind, newest first."""
    by_topic: dict[str, dict[str | None, list[DigestStory]]] = {
        topic: {} for topic in subscriber.topics
    }
    for story in sorted(stories, key=lambda s: (s.published, s.id), reverse=True):
        topics = [match.topic for match in story.matches if match.topic in by_topic]
        if not topics:
            continue
        home = min(topics, key=subscriber.topics.index)
        kind = story.sources[0].kind if story.sources else None
        by_topic[home].setdefault(kind, []).append(_digest_story(story, topic_titles))
    sections = tuple(
        TopicSection(
            topic_titles.get(topic, topic),
            tuple(
                KindSection(heading, tuple(kinds[kind]))
                for kind, heading in KIND_HEADINGS.items()
                if kind in kinds
            ),
        )
        for topic, kinds in by_topic.items()
        if kinds
    )
    failing = tuple(
        FailingSource(
            feed.title or feed.name, feed.last_success_at, feed.last_error, feed.status == PAUSED
        )
        for feed in feeds
        if feed.last_error is not None
    )
    return DigestContent(
        title=title,
        topics=tuple(topic_titles.get(topic, topic) for topic in subscriber.topics),
        period_start=period[0],
        period_end=period[1],
        timezone=subscriber.timezone,
        sections=sections,
        failing=failing,
        archive_url=urljoin(base_url, "digests/"),
        contact=contact,
    )


def _digest_story(story: StoryRow, topic_titles: Mapping[str, str]) -> DigestStory:
    best = _best_source(story)
    words = matched_words(story.matches)
    return DigestStory(
        story_id=story.id,
        title=story.title,
        link=story.link,
        source=best.feed_title if best else "",
        date=story.published,
        updated=story.news_at > story.first_seen,
        change=" → ".join(story.status_change) if story.status_change else None,
        excerpt=highlight(excerpt(story.summary), words),
        reasons=tuple(
            replace(reason, topic=topic_titles.get(reason.topic, reason.topic))
            for reason in why_shown(story.matches)
        ),
        also=_also_reported_by(story, best),
    )


def _best_source(story: StoryRow) -> StorySource | None:
    """The source the story's title and link come from (several may share the link)."""
    for source in story.sources:
        if source.link == story.link and source.title == story.title:
            return source
    return story.sources[0] if story.sources else None


def _also_reported_by(story: StoryRow, best: StorySource | None) -> tuple[Source, ...]:
    """Every other feed that carried the story, once each; a link only where it adds one."""
    seen = {best.feed} if best else set()
    others = []
    for source in story.sources:
        if source.feed not in seen:
            seen.add(source.feed)
            link = source.link if source.link != story.link else None
            others.append(Source(source.feed_title, link))
    return tuple(others)


def excerpt(text: str, limit: int = EXCERPT_CHARS) -> str:
    """The start of `text`, cut at a word boundary with an ellipsis when it is longer."""
    text = " ".join(text.split())
    if len(text) <= limit:
        return text
    cut = text[:limit].rsplit(" ", 1)[0] or text[:limit]
    return cut.rstrip(" ,.;:") + "…"


def subject_line(template: str, content: DigestContent, title: str) -> str:
    """The subject from the configured template; one line whatever the values hold."""
    count = content.count
    count_text = (
        "No new stories" if count == 0 else "1 new story" if count == 1 else f"{count} new stories"
    )
    date = content.period_end.astimezone(ZoneInfo(content.timezone))
    subject = template.format(
        title=title, date=f"{date:%-d %b %Y}", count=count, count_text=count_text
    )
    return " ".join(subject.split())


def message_id(subscriber: str, run_at: datetime, sender: str) -> str:
    """The same Message-ID for the same reader and scheduled run, from any process, every time."""
    reader = hashlib.sha256(subscriber.lower().encode()).hexdigest()[:16]
    return f"<digest.{run_at:%Y%m%dT%H%M%SZ}.{reader}@{_domain(sender)}>"


def render_text(content: DigestContent) -> str:
    return environment().get_template("digest.txt").render(digest=content)


def render_html(content: DigestContent) -> str:
    return environment().get_template("digest.html").render(digest=content)


def compose(content: DigestContent, envelope: Envelope) -> bytes:
    """The whole message: multipart/alternative, plain text first, HTML preferred by clients."""
    message = EmailMessage(policy=SMTP)
    message["From"] = envelope.sender
    message["To"] = envelope.recipient
    message["Subject"] = envelope.subject
    message["Date"] = format_datetime(content.period_end.astimezone(ZoneInfo(content.timezone)))
    message["Message-ID"] = envelope.message_id
    address = parseaddr(envelope.sender)[1]
    message["List-Id"] = f"{content.title} <digest.{_domain(envelope.sender)}>"
    mailto = f"<mailto:{address}?subject=unsubscribe>"
    if content.links is None:
        message["List-Unsubscribe"] = mailto
    else:  # RFC 8058: mail clients POST to the link, so leaving takes one click
        message["List-Unsubscribe"] = f"<{content.links.unsubscribe}>, {mailto}"
        message["List-Unsubscribe-Post"] = "List-Unsubscribe=One-Click"
    message["Auto-Submitted"] = "auto-generated"  # RFC 3834: no auto-replies to a digest
    message.set_content(render_text(content), cte="quoted-printable")
    message.add_alternative(render_html(content), subtype="html", cte="quoted-printable")
    return message.as_bytes()


def _domain(sender: str) -> str:
    return parseaddr(sender)[1].rpartition("@")[2] or "localhost"
