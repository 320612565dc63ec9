"""The site's pages, rendered to bytes: the latest stories (per topic, paged back through every
stored story), a search, a story with all its sources, the archive by month, the digests.

Each function here does blocking work (database reads, template rendering) and is called in a
worker process or thread (`web/render_pool.py`), never on the event loop. An unknown id, topic
or month is a 404 page; nothing a reader types is a 500.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, date, datetime
from email import message_from_bytes, policy
from email.message import EmailMessage
from typing import Any, NamedTuple
from urllib.parse import urlencode

from aggregator.config import Settings
from aggregator.models import StoryRow
from aggregator.publish.templates import environment
from aggregator.store import Outbox, Repository
from aggregator.store.search import query_words
from aggregator.web.cache import Rendered
from aggregator.web.security import DIGEST_POLICY, PAGE_POLICY

ARCHIVE_SIZE = 200  # the newest sent digests listed at /digests/
MAX_ID = 2**63 - 1  # ids are 64-bit integers in both databases
MAX_QUERY_CHARS = 200
SEARCH_RESULTS = 20  # the best ranked; past them a reader adds a word rather than pages
_BODY = re.compile(r"<body[^>]*>(.*)</body>", re.DOTALL | re.IGNORECASE)
# A reader's own links in a digest (preferences, unsubscribe): never shown in the archive.
_PERSONAL = re.compile(r"<!-- personal -->.*?<!-- /personal -->", re.DOTALL)


class NotFound(Exception):
    """What was asked for does not exist: a 404 page saying so."""


@dataclass(frozen=True, slots=True)
class Listing:
    """What a list of stories shows: which stories, and how to page."""

    topic: str | None = None
    query: str | None = None
    before: int | None = None
    month: date | None = None


class Page(NamedTuple):
    """A page to render: a method of `Site` and its arguments, plain values all, so that it can
    be sent to a worker process (a method goes by its name)."""

    render: Callable[..., Rendered]
    args: tuple[Any, ...] = ()


class Site:
    """The pages of one configuration and store."""

    def __init__(self, repository: Repository, outbox: Outbox, settings: Settings) -> None:
        self._repository = repository
        self._outbox = outbox
        self._per_page = settings.output.max_items
        self._titles = settings.topic_titles
        self._env = environment()
        self._common: dict[str, Any] = {
            "site_title": settings.output.title,
            "topics": [{"id": i, "title": t} for i, t in self._titles.items()],
            "topic_titles": self._titles,
            "subscriptions_open": settings.digest.sender is not None,
        }

    def render(self, page: Page) -> Rendered:
        """`page`, or the 404 page saying what does not exist."""
        try:
            return page.render(self, *page.args)
        except NotFound as missing:
            return self.error(404, "Not found", str(missing))

    def listed(self, params: Mapping[str, str], month: str | None = None) -> Rendered:
        """The stories a reader asked for by the query string (and the month of the path)."""
        return self.stories(listing(params, month))

    def stories(self, listing: Listing) -> Rendered:
        """The latest stories, a month of them, or a search's, best ranked first."""
        topic = self._topic(listing.topic)
        published = _month_range(listing.month) if listing.month else None
        per_page = SEARCH_RESULTS if listing.query else self._per_page
        found = self._repository.list_stories(
            per_page + 1,
            topic=listing.topic,
            search=listing.query,
            before=listing.before,
            published=published,
        )
        shown, more = found[:per_page], len(found) > per_page
        base = f"/archive/{listing.month:%Y-%m}" if listing.month else "/"
        older = None
        if more and listing.query is None:
            older = _link(base, topic=listing.topic, before=shown[-1].id)
        newer = _link(base, topic=listing.topic) if listing.before is not None else None
        return self.page(
            "index.html",
            stories=shown,
            topic=topic,
            query=listing.query,
            more_found=more and listing.query is not None,
            words=query_words(listing.query) if listing.query else (),
            heading=f"{listing.month:%B %Y}" if listing.month else None,
            older=older,
            newer=newer,
        )

    def story(self, story_id: int) -> Rendered:
        found = self._repository.show_story(story_id) if story_id <= MAX_ID else None
        if found is None:
            raise NotFound(f"There is no story {story_id}.")
        row: StoryRow = found[0]
        return self.page("story.html", story=row, topic=None)

    def archive(self, topic_id: str | None) -> Rendered:
        topic = self._topic(topic_id)
        months = self._repository.months(topic_id)
        return self.page("archive.html", months=months, topic=topic)

    def digests(self) -> Rendered:
        archive = self._outbox.archive(ARCHIVE_SIZE)
        return self.page("digests.html", digests=archive, topic=None)

    def digest(self, digest_id: int) -> Rendered:
        digest = self._outbox.get_sent(digest_id) if digest_id <= MAX_ID else None
        if digest is None:
            raise NotFound(f"There is no digest {digest_id}.")
        html = _html_part(digest.message)
        body = _PERSONAL.sub("", found[1] if (found := _BODY.search(html)) else html)
        return self.page(
            "digest_page.html", policy=DIGEST_POLICY, digest=digest, body=body, topic=None
        )

    def error(self, status: int, heading: str, message: str) -> Rendered:
        return self.page("notice.html", status=status, heading=heading, message=message)

    def _topic(self, topic_id: str | None) -> dict[str, str] | None:
        if topic_id is None:
            return None
        if topic_id not in self._titles:
            raise NotFound(f"There is no topic {topic_id!r}.")
        return {"id": topic_id, "title": self._titles[topic_id]}

    def page(
        self, template: str, *, status: int = 200, policy: str = PAGE_POLICY, **context: Any
    ) -> Rendered:
        body = self._env.get_template(template).render(self._common | context)
        return Rendered(status, body.encode("utf-8"), policy)


def listing(params: Mapping[str, str], month: str | None = None) -> Listing:
    """What a reader asked for, from the query string and path; NotFound for what cannot be."""
    query = params.get("q", "").strip()[:MAX_QUERY_CHARS] or None
    before = params.get("before")
    if before is not None and not (before.isdigit() and int(before) <= MAX_ID):
        raise NotFound("There is no such page of stories.")
    return Listing(
        topic=params.get("topic") or None,
        query=query,
        before=int(before) if before is not None else None,
        month=_month(month) if month is not None else None,
    )


def _month(text: str) -> date:
    try:
        month = date.fromisoformat(f"{text}-01")
    except ValueError:
        raise NotFound(f"There is no month {text!r}.") from None
    if not re.fullmatch(r"\d{4}-\d{2}", text):
        raise NotFound(f"There is no month {text!r}.")
    return month


def _month_range(month: date) -> tuple[datetime, datetime]:
    start = datetime(month.year, month.month, 1, tzinfo=UTC)
    following = datetime(month.year + month.month // 12, month.month % 12 + 1, 1, tzinfo=UTC)
    return start, following


def _link(path: str, **params: object) -> str:
    present = {name: value for name, value in params.items() if value is not None}
    return f"{path}?{urlencode(present)}" if present else path


def _html_part(message: bytes) -> str:
    """The HTML part of a stored digest, as the reader's mail client showed it."""
    parsed = message_from_bytes(message, policy=policy.default)
    assert isinstance(parsed, EmailMessage)
    body = parsed.get_body(preferencelist=("html",))
    return str(body.get_content()) if body is not None else ""
