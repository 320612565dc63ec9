"""ClinicalTrials.gov API v2 (https://clinicaltrials.gov/data-api/api): one item per study.

The feed's URL is a documented `/api/v2/studies` query (`query.cond`, `query.intr`,
`query.term`, `filter.overallStatus`...); this module adds the fields it reads, newest update
first, and follows `nextPageToken` until a page holds nothing updated since the last fetch.
The overall status leads the title, so a change of status ("Now recruiting: ...") changes the
record, and a changed registry record is news again.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qsl, urlsplit

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

RATE = 1.0  # requests per second; the API allows about 50 a minute per address
PAGE_SIZE = 100
FIELDS = (
    "NCTId,BriefTitle,BriefSummary,OverallStatus,LastUpdatePostDate,LeadSponsorName,Phase,"
    "Condition,InterventionName,LocationFacility"
)
# The status as the registry's own pages word it, for a record's status history.
STATUS_LABELS = {
    "NOT_YET_RECRUITING": "Not yet recruiting",
    "RECRUITING": "Recruiting",
    "ENROLLING_BY_INVITATION": "Enrolling by invitation",
    "ACTIVE_NOT_RECRUITING": "Active, not recruiting",
    "SUSPENDED": "Suspended",
    "TERMINATED": "Terminated",
    "COMPLETED": "Completed",
    "WITHDRAWN": "Withdrawn",
    "UNKNOWN": "Unknown status",
}
STATUS_TITLES = {
    "NOT_YET_RECRUITING": "Not yet recruiting",
    "RECRUITING": "Now recruiting",
    "ENROLLING_BY_INVITATION": "Enrolling by invitation",
    "ACTIVE_NOT_RECRUITING": "Active, not recruiting",
    "SUSPENDED": "Suspended",
    "TERMINATED": "Terminated",
    "COMPLETED": "Completed",
    "WITHDRAWN": "Withdrawn",
    "UNKNOWN": "Status unknown",
}
STUDY_URL = "https://clinicaltrials.gov/study/"


async def download(fetcher: Fetcher, request: Download) -> FetchResult:
    """Every page of the query updated since the last fetch (at most MAX_PAGES)."""
    pages = Pages(request.url)
    token: str | None = None
    for _ in range(MAX_PAGES):
        extra = {
            "format": "json",
            "fields": FIELDS,
            "sort": "LastUpdatePostDate:desc",
            "pageSize": str(PAGE_SIZE),
        }
        if token:
            extra["pageToken"] = token
        body = await pages.read(fetcher, with_params(request.url, extra), rate=RATE)
        if body is None:
            break
        page = read_page(body, request.url)
        token = page.get("nextPageToken")
        if not token or not page.get("studies") or _older_than(page, request.since):
            break
    return pages.result()


def parse(body: bytes, url: str, _content_type: str | None, fetched_at: datetime) -> ParsedFeed:
    studies = [study for page in read_pages(body, url) for study in _studies(page, url)]
    return ParsedFeed(
        title="ClinicalTrials.gov: " + _query_words(url),
        link="https://clinicaltrials.gov/",
        entries=build_entries((_raw_entry(study) for study in studies), url, fetched_at),
    )


def _studies(page: dict[str, Any], url: str) -> list[dict[str, Any]]:
    studies = page.get("studies")
    if not isinstance(studies, list):
        raise ParseError(url, "not a ClinicalTrials.gov studies page (no 'studies' list)")
    return [study for study in studies if isinstance(study, dict)]


def _raw_entry(study: dict[str, Any]) -> RawEntry:
    protocol = study.get("protocolSection", {})
    ident = protocol.get("identificationModule", {})
    status = protocol.get("statusModule", {})
    nct = str(ident.get("nctId", ""))
    overall = str(status.get("overallStatus", "UNKNOWN"))
    summary = str(protocol.get("descriptionModule", {}).get("briefSummary") or "")
    updated = date_from(status.get("lastUpdatePostDateStruct", {}).get("date"))
    sponsor = protocol.get("sponsorCollaboratorsModule", {}).get("leadSponsor", {}).get("name")
    phases = protocol.get("designModule", {}).get("phases") or []
    conditions = protocol.get("conditionsModule", {}).get("conditions") or []
    interventions = [
        i.get("name", "")
        for i in protocol.get("armsInterventionsModule", {}).get("interventions") or []
    ]
    locations = protocol.get("contactsLocationsModule", {}).get("locations") or []
    status_title = STATUS_TITLES.get(overall, overall.replace("_", " ").capitalize())
    facts = [
        status_title,
        "/".join(phase.replace("PHASE", "Phase ").replace("EARLY_", "Early ") for phase in phases)
        or None,
        f"Sponsor: {sponsor}" if sponsor else None,
        f"Conditions: {', '.join(conditions)}" if conditions else None,
        f"Interventions: {', '.join(interventions)}" if interventions else None,
        f"{len(locations)} location{'s' if len(locations) != 1 else ''}" if locations else None,
        f"Last update posted {updated:%Y-%m-%d}" if updated else None,
    ]
    return RawEntry(
        guid=nct or None,
        link=STUDY_URL + nct if nct else None,
        title=f"{status_title}: {ident.get('briefTitle', nct)}",
        body=" · ".join(fact for fact in facts if fact),
        body_is_html=False,
        summary=summary,
        authors=(sponsor,) if sponsor else (),
        categories=(f"status:{overall}", *conditions),
        published=updated,
        identifiers=(nct,) if nct else (),
        status=STATUS_LABELS.get(overall, overall.replace("_", " ").capitalize()),
    )


def _older_than(page: dict[str, Any], since: datetime | None) -> bool:
    """True when the page reaches records last updated before `since` (a day's margin: the
    registry dates updates to the day)."""
    if since is None:
        return False
    dates = [
        date_from(
            study.get("protocolSection", {})
            .get("statusModule", {})
            .get("lastUpdatePostDateStruct", {})
            .get("date")
        )
        for study in page.get("studies") or []
        if isinstance(study, dict)
    ]
    known = [date for date in dates if date is not None]
    return bool(known) and min(known) < since - timedelta(days=1)


def _query_words(url: str) -> str:
    params = dict(parse_qsl(urlsplit(url).query))
    words = [params[key] for key in ("query.cond", "query.intr", "query.term") if key in params]
    return " + ".join(words) or "studies"
