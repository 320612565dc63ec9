"""Rendered pages, kept until the stored content changes.

Every change to stories, items or matches writes a new content version (`store/meta.py`), so a
page rendered at one version is the right page for every request at that version: the
thousandth reader of the front page costs a dictionary lookup, not a query and a render. When
many readers ask for a page no one has rendered yet, it is rendered once and they all wait
for that one rendering.
"""

from __future__ import annotations

import asyncio
from collections import OrderedDict
from collections.abc import Awaitable, Callable, Hashable
from dataclasses import dataclass

from starlette.background import BackgroundTask
from starlette.responses import Response

MAX_PAGES = 512  # distinct pages (topics, months, searches, stories) kept at one version


@dataclass(frozen=True, slots=True)
class Rendered:
    status: int
    body: bytes
    policy: str  # its Content-Security-Policy


def html_response(
    page: Rendered,
    headers: dict[str, str] | None = None,
    background: BackgroundTask | None = None,
) -> Response:
    """The response carrying `page`, with its own Content-Security-Policy."""
    response = Response(
        page.body,
        status_code=page.status,
        media_type="text/html",
        headers=headers,
        background=background,
    )
    response.headers["Content-Security-Policy"] = page.policy
    return response


class PageCache:
    """Pages by (content version, what was asked); the oldest go when MAX_PAGES are kept, and
    all of them when the version changes. Used from the event loop only, so it needs no lock."""

    def __init__(self, capacity: int = MAX_PAGES) -> None:
        self._capacity = capacity
        self._version = ""
        self._pages: OrderedDict[Hashable, Rendered] = OrderedDict()
        self._rendering: dict[tuple[str, Hashable], asyncio.Future[Rendered]] = {}

    async def page(
        self, version: str, key: Hashable, render: Callable[[], Awaitable[Rendered]]
    ) -> Rendered:
        """The page for `key` at `version`: kept, being rendered for another reader, or
        rendered now by `render`."""
        if version == self._version and (kept := self._pages.get(key)) is not None:
            self._pages.move_to_end(key)
            return kept
        under_way = self._rendering.get((version, key))
        if under_way is None:
            under_way = asyncio.ensure_future(render())
            self._rendering[(version, key)] = under_way
            under_way.add_done_callback(lambda _: self._rendering.pop((version, key), None))
            under_way.add_done_callback(lambda done: self._keep(version, key, done))
        # Shielded: a reader who leaves does not cancel the rendering the others await.
        return await asyncio.shield(under_way)

    def _keep(self, version: str, key: Hashable, done: asyncio.Future[Rendered]) -> None:
        if done.cancelled() or done.exception() is not None:
            return
        if version != self._version:
            self._version = version
            self._pages.clear()
        self._pages[key] = done.result()
        if len(self._pages) > self._capacity:
            self._pages.popitem(last=False)


class FreshVersion:
    """The content version as of a read begun after the caller asked, with at most one read
    at a time: under load each read answers every request that arrived while the one before
    it ran, so a thousand requests a second cost a few dozen queries and see no stale page."""

    def __init__(self, read: Callable[[], Awaitable[str]]) -> None:
        self._read = read
        self._next: asyncio.Future[str] | None = None  # the read that starts next
        self._reader: asyncio.Task[None] | None = None

    async def get(self) -> str:
        if self._next is None:
            self._next = asyncio.get_running_loop().create_future()
            if self._reader is None or self._reader.done():
                self._reader = asyncio.ensure_future(self._read_while_asked())
        return await asyncio.shield(self._next)

    async def _read_while_asked(self) -> None:
        while self._next is not None:
            asked, self._next = self._next, None
            try:
                asked.set_result(await self._read())
            except Exception as error:  # every caller waiting on this read sees it
                asked.set_exception(error)
