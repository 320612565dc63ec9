"""Helpers for sources that are paged JSON APIs (ClinicalTrials.gov, E-utilities, Europe PMC):
their pages are one body, so an unchanged answer is never parsed twice."""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from typing import Any
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

from aggregator.errors import ParseError
from aggregator.fetch import FetchResult

MAX_PAGES = 10  # a first fetch of an API query reads this many pages at most


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


def api_result(url: str, pages: Sequence[bytes], last: FetchResult) -> FetchResult:
    """The pages of one API query, as one fetch result."""
    return FetchResult(
        url,
        last.final_url,
        last.status,
        pages_body(pages),
        etag=None,
        last_modified=None,
        content_type="application/json",
        server_wait=last.server_wait,
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
