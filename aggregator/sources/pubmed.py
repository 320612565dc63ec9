"""PubMed through NCBI E-utilities (https://www.ncbi.nlm.nih.gov/books/NBK25499/).

The feed's URL is a documented esearch query (`esearch.fcgi?db=pubmed&term=...`). This module
asks for records entered since the last fetch (`datetype=edat`, `reldate` days; a month on the
first fetch), then reads them with esummary in batches. NCBI asks every caller to send `tool`
and `email` and to stay under 3 requests a second (10 with an API key): every request here does
both, the rate being shared by all PubMed feeds of a run.
"""

from __future__ import annotations

import math
from datetime import datetime, timedelta
from typing import Any

from aggregator.errors import ParseError
from aggregator.fetch import Fetcher, FetchResult
from aggregator.models import ParsedFeed
from aggregator.sources.api import api_result, date_from, read_page, read_pages, with_params
from aggregator.sources.base import Download
from aggregator.sources.entries import RawEntry, build_entries

TOOL = "aggregator"
RATE, RATE_WITH_KEY = 3.0, 10.0
FIRST_FETCH_DAYS = 30
MAX_RECORDS = 1_000
SUMMARY_BATCH = 200
ARTICLE_URL = "https://pubmed.ncbi.nlm.nih.gov/"


async def download(fetcher: Fetcher, request: Download) -> FetchResult:
    """The esearch answer, then esummary pages for the PMIDs it found."""
    identity = {"tool": TOOL, "retmode": "json", "db": "pubmed"}
    if request.contact_email:
        identity["email"] = request.contact_email
    if request.api_key:
        identity["api_key"] = request.api_key
    rate = RATE_WITH_KEY if request.api_key else RATE
    days = FIRST_FETCH_DAYS
    if request.since is not None:
        days = max(1, math.ceil((request.now - request.since) / timedelta(days=1)))
    search = identity | {"datetype": "edat", "reldate": str(days), "retmax": str(MAX_RECORDS)}
    found = await fetcher.fetch(with_params(request.url, search), rate=rate)
    assert found.body is not None
    pmids = _pmids(read_page(found.body, request.url), request.url)
    pages = [found.body]
    summary_url = request.url.replace("esearch.fcgi", "esummary.fcgi").split("?")[0]
    last = found
    for start in range(0, len(pmids), SUMMARY_BATCH):
        batch = ",".join(pmids[start : start + SUMMARY_BATCH])
        last = await fetcher.fetch(with_params(summary_url, identity | {"id": batch}), rate=rate)
        assert last.body is not None
        pages.append(last.body)
    return api_result(request.url, pages, last)


def parse(body: bytes, url: str, _content_type: str | None, fetched_at: datetime) -> ParsedFeed:
    search, *summaries = read_pages(body, url)
    pmids = _pmids(search, url)
    records: dict[str, dict[str, Any]] = {}
    for page in summaries:
        result = page.get("result")
        if not isinstance(result, dict):
            raise ParseError(url, f"esummary error: {page.get('error', 'no result')}")
        records |= {uid: result[uid] for uid in result.get("uids", []) if uid in result}
    return ParsedFeed(
        title="PubMed: " + str(search.get("esearchresult", {}).get("querytranslation", ""))[:200],
        link=ARTICLE_URL,
        entries=build_entries(
            (_raw_entry(records[pmid]) for pmid in pmids if pmid in records), url, fetched_at
        ),
    )


def _pmids(search: dict[str, Any], url: str) -> list[str]:
    result = search.get("esearchresult")
    if not isinstance(result, dict) or "ERROR" in result or "error" in search:
        reason = (result or {}).get("ERROR") if isinstance(result, dict) else search.get("error")
        raise ParseError(url, f"esearch error: {reason or 'no esearchresult'}")
    return [str(pmid) for pmid in result.get("idlist", []) if str(pmid).isdigit()]


def _raw_entry(record: dict[str, Any]) -> RawEntry:
    pmid = str(record.get("uid", ""))
    ids = {item.get("idtype"): item.get("value") for item in record.get("articleids", [])}
    authors = tuple(str(author.get("name", "")) for author in record.get("authors", []))
    journal = record.get("fulljournalname") or record.get("source") or ""
    doi = ids.get("doi")
    published = date_from(record.get("epubdate")) or date_from(record.get("pubdate"))
    facts = [
        str(journal),
        f"{authors[0]} et al." if len(authors) > 1 else (authors[0] if authors else ""),
        f"doi:{doi}" if doi else "",
        f"PMID {pmid}",
    ]
    return RawEntry(
        guid=f"pmid:{pmid}",
        link=ARTICLE_URL + pmid + "/",
        title=str(record.get("title", "")),
        body=" · ".join(fact for fact in facts if fact),
        body_is_html=False,
        authors=authors,
        categories=tuple(str(kind) for kind in record.get("pubtype", [])),
        published=published or date_from(record.get("sortpubdate")),
    )
