"""Helpers for sources that are paged JSON APIs (ClinicalTrials.gov, E-utilities, Europe PMC):
their pages are one body, so an unchanged answer is never parsed twice."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime, timedelta
from http import HTTPStatus
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

from aggregator.errors import FetchError, ParseError

if TYPE_CHECKING:  # a parse worker needs no HTTP client
    from aggregator.fetch import Fetcher, FetchResult

MAX_PAGES = 10  # a first fetch of an API query reads this many pages at most
# A 429 or 503 asking to wait this long or less is waited for and the page asked once more;
# a longer wait ends the fetch (the feed's next due time honours it).
SHORT_WAIT = timedelta(seconds=10)
_BUSY = (HTTPStatus.TOO_MANY_REQUESTS, HTTPStatus.SERVICE_UNAVAILABLE)


async def fetch_page(fetcher: Fetcher, url: str, *, rate: float) -> FetchResult:
    """One page of an API at `rate` requests a second; a short Retry-After is honoured once."""
    try:
        return await fetcher.fetch(url, rate=rate)
    except FetchError as error:
        wait = error.retry_after
        if error.status not in _BUSY or wait is None or wait > SHORT_WAIT:
            raise
    await asyncio.sleep(wait.total_seconds())
    return await fetcher.fetch(url, rate=rate)


class Pages:
    """The pages of one API answer, read one by one. A page after the first that fails is
    left out and noted (`incomplete`): what was read is kept, and since the feed's last
    success then stays where it was, the next fetch asks again for what is missing."""

    def __init__(self, url: str) -> None:
        self.url = url
        self._bodies: list[bytes] = []
        self._last: FetchResult | None = None
        self._missing: list[str] = []

    async def read(
        self, fetcher: Fetcher, page_url: str, *, rate: float, xml: bool = False
    ) -> bytes | None:
        """The page's body, or None if it failed after an earlier page was read. An XML page
        (E-utilities' efetch) is kept as {"xml": text}, so the pages stay one JSON body."""
        try:
            result = await fetch_page(fetcher, page_url, rate=rate)
        except FetchError as error:
            if self._last is None:
                raise
            self._missing.append(f"request {len(self._bodies) + 1} failed: {error.reason}")
            return None
        assert result.body is not None  # no validators are sent: never a 304
        body = result.body
        if xml:
            body = json.dumps({"xml": body.decode("utf-8", "replace")}).encode()
        self._bodies.append(body)
        self._last = result
        return result.body

    def result(self) -> FetchResult:
        """Every page read, as one fetch result."""
        assert self._last is not None
        incomplete = "; ".join(self._missing) or None
        return api_result(self.url, self._bodies, self._last, incomplete)


def pages_body(pages: Sequence[bytes]) -> bytes:
    """Several JSON pages as one body (a JSON array), so they are hashed and parsed together."""
    return b"[" + b",".join(pages) + b"]"


def read_page(body: bytes, url: str) -> dict[str, Any]:
    """One JSON object from an API; anything else is a clear error naming the feed."""
    page = _json(body, url)
    if not isinstance(page, dict):
        raise ParseError(url, "not the JSON this API documents")
    return page


def with_params(url: str, extra: Mapping[str, str]) -> str:
    """`url` with `extra` query parameters set (replacing the same names)."""
    parts = urlsplit(url)
    params = dict(parse_qsl(parts.query)) | dict(extra)
    return urlunsplit(parts._replace(query=urlencode(params)))


def read_pages(body: bytes, url: str) -> list[dict[str, Any]]:
    """The pages `pages_body` joined, each checked like `read_page`."""
    pages = _json(body, url)
    if not isinstance(pages, list) or not all(isinstance(page, dict) for page in pages):
        raise ParseError(url, "not the JSON this API documents")
    return pages


def _json(body: bytes, url: str) -> Any:
    try:
        return json.loads(body)
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ParseError(url, f"not JSON: {exc}") from None


def api_result(
    url: str, pages: Sequence[bytes], last: FetchResult, incomplete: str | None = None
) -> FetchResult:
    """The pages of one API query, as one fetch result (`incomplete`: what is missing)."""
    from aggregator.fetch import FetchResult  # downloads only: parse workers never get here

    return FetchResult(
        url,
        last.final_url,
        last.status,
        pages_body(pages),
        etag=None,
        last_modified=None,
        content_type="application/json",
        server_wait=last.server_wait,
        incomplete=incomplete,
    )


def date_from(text: object) -> datetime | None:
    """A date written "2024-10-15", "2024-10", "2024", or "2024 Oct 15"/"2024 Oct" (PubMed);
    partial dates mean their first day."""
    value = str(text or "").strip()
    for pattern in ("%Y-%m-%d", "%Y-%m", "%Y", "%Y %b %d", "%Y %b", "%Y/%m/%d %H:%M"):
        try:
            return datetime.strptime(value, pattern).replace(tzinfo=UTC)
        except ValueError:
            continue
    return None
