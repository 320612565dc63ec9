"""What every source type is: how it is downloaded and parsed, and what a download needs."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # the registry reads this module; only its users need httpx
    from aggregator.fetch import Fetcher, FetchResult
    from aggregator.models import ParsedFeed


@dataclass(frozen=True, slots=True)
class Download:
    """What a source needs to know to download a feed."""

    url: str
    now: datetime  # when the fetch starts: APIs asked for "since the last fetch" count from it
    etag: str | None = None
    last_modified: str | None = None
    since: datetime | None = None  # the last successful fetch: older records are known
    contact_email: str | None = None  # sent to APIs that ask who is calling (NCBI)
    api_key: str | None = None


@dataclass(frozen=True, slots=True)
class SourceType:
    """A `[[feeds]] type`: how to download it and how to parse what came."""

    download: Callable[[Fetcher, Download], Awaitable[FetchResult]]
    parse: Callable[[bytes, str, str | None, datetime], ParsedFeed]
