"""PubMed through NCBI E-utilities (https://www.ncbi.nlm.nih.gov/books/NBK25499/).

The feed's URL is a documented esearch query (`esearch.fcgi?db=pubmed&term=...`). This module
asks for records entered since the last fetch (`datetype=edat`, `reldate` days; a month on the
first fetch), then reads them in batches with esummary (titles, journals, identifiers) and
efetch (abstracts). NCBI asks every caller to send `tool` and `email` and to stay under 3
requests a second (10 with an API key): every request here does both, a little under the
rate, which all PubMed feeds of a run share. A batch that fails (a 429 past its short
Retry-After) is left out and the fetch marked incomplete; the others are kept.
"""

from __future__ import annotations

import math
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any
from xml.etree import ElementTree

import defusedxml.ElementTree as SafeElementTree
from defusedxml import DefusedXmlException

from aggregator.errors import ParseError
from aggregator.models import ParsedFeed
from aggregator.sources.api import Pages, date_from, read_page, read_pages, with_params
from aggregator.sources.base import Download
from aggregator.sources.entries import RawEntry, build_entries

if TYPE_CHECKING:  # a parse worker needs no HTTP client
    from aggregator.fetch import Fetcher, FetchResult

TOOL = "aggregator"
# NCBI allows 3 requests a second without a key, 10 with one; a margin under both keeps the
# shared limit when clocks and networks jitter. Requests are spaced from when each was due to
# go; on a busy machine one left 12.5 ms late and the next arrived 98.6 ms after it, so the
# margin with a key is 25 ms (8/s), not the 11 ms of 9/s.
RATE, RATE_WITH_KEY = 2.5, 8.0
FIRST_FETCH_DAYS = 30
MAX_RECORDS = 1_000
SUMMARY_BATCH = 200
ARTICLE_URL = "https://pubmed.ncbi.nlm.nih.gov/"


async def download(fetcher: Fetcher, request: Download) -> FetchResult:
    """The esearch answer, then for each batch of the PMIDs it found their esummary (titles,
    journals, identifiers) and their efetch abstracts, so matching and excerpts see them."""
    identity = {"tool": TOOL, "db": "pubmed"}
    if request.contact_email:
        identity["email"] = request.contact_email
    if request.api_key:
        identity["api_key"] = request.api_key
    rate = RATE_WITH_KEY if request.api_key else RATE
    days = FIRST_FETCH_DAYS
    if request.since is not None:
        days = max(1, math.ceil((request.now - request.since) / timedelta(days=1)))
    search = identity | {
        "retmode": "json",
        "datetype": "edat",
        "reldate": str(days),
        "retmax": str(MAX_RECORDS),
    }
    pages = Pages(request.url)
    found = await pages.read(fetcher, with_params(request.url, search), rate=rate)
    assert found is not None  # the first request raises rather than coming back empty
    pmids = _pmids(read_page(found, request.url), request.url)
    endpoint = request.url.split("?")[0]
    for start in range(0, len(pmids), SUMMARY_BATCH):
        batch = identity | {"id": ",".join(pmids[start : start + SUMMARY_BATCH])}
        summary_url = endpoint.replace("esearch.fcgi", "esummary.fcgi")
        await pages.read(fetcher, with_params(summary_url, batch | {"retmode": "json"}), rate=rate)
        abstracts = batch | {"retmode": "xml", "rettype": "abstract"}
        fetch_url = with_params(endpoint.replace("esearch.fcgi", "efetch.fcgi"), abstracts)
        await pages.read(fetcher, fetch_url, rate=rate, xml=True)
    return pages.result()


def parse(body: bytes, url: str, _content_type: str | None, fetched_at: datetime) -> ParsedFeed:
    search, *answers = read_pages(body, url)
    pmids = _pmids(search, url)
    records: dict[str, dict[str, Any]] = {}
    abstracts: dict[str, str] = {}
    for page in answers:
        if "xml" in page:
            abstracts |= _abstracts(str(page["xml"]))
            continue
        result = page.get("result")
        if not isinstance(result, dict):
            raise ParseError(url, f"esummary error: {page.get('error', 'no result')}")
        records |= {
            uid: result[uid]
            for uid in result.get("uids", [])
            # NCBI answers a record it cannot summarise with {"uid": ..., "error": ...}.
            if isinstance(result.get(uid), dict) and "error" not in result[uid]
        }
    return ParsedFeed(
        title="PubMed: " + str(search.get("esearchresult", {}).get("querytranslation", ""))[:200],
        link=ARTICLE_URL,
        entries=build_entries(
            (
                _raw_entry(records[pmid], abstracts.get(pmid, ""))
                for pmid in pmids
                if pmid in records
            ),
            url,
            fetched_at,
        ),
    )


def _abstracts(xml: str) -> dict[str, str]:
    """Each PMID's abstract from an efetch PubmedArticleSet, its labelled parts run together
    ("METHODS: ..."). An answer that does not parse gives none: abstracts add to a record, and
    the records themselves came from esummary."""
    try:
        root = SafeElementTree.fromstring(xml)
    except (ElementTree.ParseError, DefusedXmlException):
        return {}
    found = {}
    for article in root.iter("PubmedArticle"):
        pmid = (article.findtext("MedlineCitation/PMID") or "").strip()
        parts = [
            f"{part.get('Label')}: {text}" if part.get("Label") else text
            for part in article.iterfind("MedlineCitation/Article/Abstract/AbstractText")
            if (text := "".join(part.itertext()).strip())
        ]
        if pmid and parts:
            found[pmid] = " ".join(parts)
    return found


def _pmids(search: dict[str, Any], url: str) -> list[str]:
    result = search.get("esearchresult")
    if not isinstance(result, dict) or "ERROR" in result or "error" in search:
        reason = (result or {}).get("ERROR") if isinstance(result, dict) else search.get("error")
        raise ParseError(url, f"esearch error: {reason or 'no esearchresult'}")
    return [str(pmid) for pmid in result.get("idlist", []) if str(pmid).isdigit()]


def _raw_entry(record: dict[str, Any], abstract: str) -> RawEntry:
    pmid = str(record.get("uid", ""))
    ids = {item.get("idtype"): item.get("value") for item in record.get("articleids", [])}
    authors = tuple(str(author.get("name", "")) for author in record.get("authors", []))
    journal = record.get("fulljournalname") or record.get("source") or ""
    doi = ids.get("doi")
    published = date_from(record.get("epubdate")) or date_from(record.get("pubdate"))
    facts = [
        f"Published in {journal}" if journal else "",
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
        summary=abstract,
        authors=authors,
        categories=tuple(str(kind) for kind in record.get("pubtype", [])),
        published=published or date_from(record.get("sortpubdate")),
        identifiers=tuple(
            value
            for value in (f"pmid:{pmid}", f"doi:{doi}" if doi else "", ids.get("pmc"))
            if value
        ),
    )
