"""Europe PMC REST search (https://europepmc.org/RestfulWebService): papers and preprints.

The feed's URL is a documented `search?query=...` request; this module asks for JSON, newest
indexed first (`sort=FIRST_IDATE_D desc`), and follows `cursorMark` until a page holds nothing
indexed since the last fetch. The index date, not the publication date: a third of a real week's
records were indexed days after their publication date, and stopping by publication date never
fetched them. Europe PMC reports some errors inside HTTP 200 answers (`errCode`, `errMsg`): those
are errors here too. Preprints (source PPR) are marked as preprints whatever the feed's kind.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

from aggregator.errors import ParseError
from aggregator.models import ParsedFeed
from aggregator.sources.api import (
    MAX_PAGES,
    Pages,
    date_from,
    read_page,
    read_pages,
    with_params,
)
from aggregator.sources.base import Download
from aggregator.sources.entries import RawEntry, build_entries

if TYPE_CHECKING:  # a parse worker needs no HTTP client
    from aggregator.fetch import Fetcher, FetchResult

RATE = 5.0  # requests per second: no published limit, so stay modest
PAGE_SIZE = 100
ARTICLE_URL = "https://europepmc.org/article/"


async def download(fetcher: Fetcher, request: Download) -> FetchResult:
    """Pages of the search, newest indexed first, until one reaches what the last fetch saw."""
    pages = Pages(request.url)
    cursor = "*"
    for _ in range(MAX_PAGES):
        params = {
            "format": "json",
            "resultType": "lite",
            "sort": "FIRST_IDATE_D desc",
            "pageSize": str(PAGE_SIZE),
            "cursorMark": cursor,
        }
        body = await pages.read(fetcher, with_params(request.url, params), rate=RATE)
        if body is None:
            break
        page = read_page(body, request.url)
        _raise_reported_error(page, request.url)
        following = page.get("nextCursorMark")
        results = _results(page, request.url)
        if (
            not results
            or not following
            or following == cursor
            or _older_than(results, request.since)
        ):
            break
        cursor = str(following)
    return pages.result()


def parse(body: bytes, url: str, _content_type: str | None, fetched_at: datetime) -> ParsedFeed:
    records = []
    for page in read_pages(body, url):
        _raise_reported_error(page, url)
        records += _results(page, url)
    query = str((read_pages(body, url)[0].get("request") or {}).get("queryString", ""))
    return ParsedFeed(
        title=f"Europe PMC: {query}"[:200],
        link="https://europepmc.org/",
        entries=build_entries((_raw_entry(record) for record in records), url, fetched_at),
    )


def _raise_reported_error(page: dict[str, Any], url: str) -> None:
    if "errCode" in page or "errMsg" in page:
        raise ParseError(
            url, f"Europe PMC error {page.get('errCode', '')}: {page.get('errMsg', 'unknown')}"
        )


def _results(page: dict[str, Any], url: str) -> list[dict[str, Any]]:
    result_list = page.get("resultList")
    if not isinstance(result_list, dict) or not isinstance(result_list.get("result"), list):
        raise ParseError(url, "not a Europe PMC search page (no resultList)")
    return [record for record in result_list["result"] if isinstance(record, dict)]


def _raw_entry(record: dict[str, Any]) -> RawEntry:
    source, ident = str(record.get("source", "")), str(record.get("id", ""))
    doi = record.get("doi")
    journal = record.get("journalTitle")
    facts = [
        f"Published in {journal}" if journal else ("Preprint" if source == "PPR" else ""),
        str(record.get("authorString", "")),
        f"doi:{doi}" if doi else "",
        f"PMID {record['pmid']}" if record.get("pmid") else "",
    ]
    identifiers = [f"doi:{doi}" if doi else ""]
    identifiers += [f"pmid:{record['pmid']}" if record.get("pmid") else ""]
    identifiers += [str(record.get("pmcid") or "")]
    return RawEntry(
        guid=f"{source}:{ident}",
        link=f"{ARTICLE_URL}{source}/{ident}",
        title=str(record.get("title", "")),
        body=" · ".join(fact for fact in facts if fact),
        body_is_html=False,
        authors=tuple(name.strip() for name in str(record.get("authorString", "")).split(",")),
        categories=(str(record.get("pubType", "")),) if record.get("pubType") else (),
        published=date_from(record.get("firstPublicationDate")) or date_from(record.get("pubYear")),
        kind="preprint" if source == "PPR" else None,
        identifiers=tuple(value for value in identifiers if value),
    )


def _older_than(results: list[dict[str, Any]], since: datetime | None) -> bool:
    """True when the page reaches records indexed before `since` (a day's margin: Europe PMC
    dates its index to the day). A record without an index date counts by its publication."""
    if since is None:
        return False
    dates = [
        date_from(record.get("firstIndexDate") or record.get("firstPublicationDate"))
        for record in results
    ]
    known = [date for date in dates if date is not None]
    return bool(known) and min(known) < since - timedelta(days=1)
