"""ClinicalTrials.gov, PubMed and Europe PMC as sources, against fixture payloads in the shape
each API documents, served by the local server at paths that mirror the real endpoints."""

from __future__ import annotations

import itertools
import json
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest
from conftest import CliRunnerFunction, ConfigFactory
from feed_server import FeedServer

from aggregator.sources import pubmed

CTGOV = "api/v2/studies?query.cond=multiple+sclerosis&query.intr=CAR-T"
PUBMED = "entrez/eutils/esearch.fcgi?db=pubmed&term=car+t+AND+multiple+sclerosis"
EUROPEPMC = "europepmc/webservices/rest/search?query=%22CAR+T%22+AND+%22multiple+sclerosis%22"
RULES = """
[terms]
car_t = ["CAR T", "CAR-T", "chimeric antigen receptor", "CAR T-cell"]
cd19 = ["CD19"]
ms = ["multiple sclerosis", "MS"]

[[topics]]
id = "car-t-ms"
title = "CAR T in MS"
all = ["ms"]
any = ["car_t", "cd19"]
"""


@pytest.fixture(autouse=True)
def small_summary_batches(monkeypatch: pytest.MonkeyPatch) -> None:
    """Two PMIDs per esummary request, so three PMIDs need two batches."""
    monkeypatch.setattr(pubmed, "SUMMARY_BATCH", 2)


@pytest.fixture
def sources(
    database_url: str,
    make_config: ConfigFactory,
    run_cli: CliRunnerFunction,
    feed_server: FeedServer,
) -> Any:
    """`sources(types...)`: a config with those API feeds at the local server, initialised."""

    def make(*types: str) -> Path:
        urls = {"clinicaltrials": CTGOV, "pubmed": PUBMED, "europepmc": EUROPEPMC}
        feeds = "".join(
            f'[[feeds]]\nname = "{kind}"\ntype = "{kind}"\n'
            f'url = "{feed_server.url(urls[kind])}"\n\n'
            for kind in types
        )
        config = make_config(
            database_url,
            fetch='timeout = "5s"\ncontact_email = "operator@example.org"',
            extra=feeds + RULES,
        )
        assert run_cli(config, "init").exit_code == 0
        return config

    return make


def fetch(run_cli: CliRunnerFunction, config: Path) -> str:
    result = run_cli(config, "fetch", "--all")
    assert result.exit_code == 0, result.output
    return str(result.stdout)


def stories(run_cli: CliRunnerFunction, config: Path) -> list[dict[str, Any]]:
    result = run_cli(config, "stories", "list", "--all", "--json")
    return json.loads(result.stdout)  # type: ignore[no-any-return]


def feeds(run_cli: CliRunnerFunction, config: Path) -> dict[str, dict[str, Any]]:
    listed = json.loads(run_cli(config, "feeds", "list", "--json").stdout)
    return {feed["name"]: feed for feed in listed}


def queries(server: FeedServer, path: str) -> list[dict[str, str]]:
    return [
        {name: values[0] for name, values in parse_qs(urlsplit(r.path).query).items()}
        for r in server.requests
        if urlsplit(r.path).path == path
    ]


KYSA8 = "KYV-101, a Fully Human Anti-CD19 CAR T-cell Therapy, in Progressive Multiple Sclerosis"


def test_clinicaltrials_pages_until_an_empty_page_and_stores_one_item_per_study(
    sources: Any, run_cli: CliRunnerFunction, feed_server: FeedServer
) -> None:
    config = sources("clinicaltrials")
    fetch(run_cli, config)
    asked = queries(feed_server, "/api/v2/studies")
    assert [q.get("pageToken") for q in asked] == [None, "NF0g5JGBlPMuwQY", "ZZ8last"]
    for query in asked:  # the feed's own query, plus what the module needs
        assert query["query.cond"] == "multiple sclerosis"
        assert query["query.intr"] == "CAR-T"
        assert query["format"] == "json"
        assert query["sort"] == "LastUpdatePostDate:desc"
        assert "OverallStatus" in query["fields"]
    by_title = {story["title"]: story for story in stories(run_cli, config)}
    assert set(by_title) == {
        f"Not yet recruiting: {KYSA8} (KYSA-8)",
        "Now recruiting: CD19 CAR T Cells for Refractory Multiple Sclerosis",
        "Completed: Anti-CD19 CAR T Cells in Neuromyelitis Optica and MS",
    }
    stanford = by_title["Now recruiting: CD19 CAR T Cells for Refractory Multiple Sclerosis"]
    [source] = stanford["sources"]
    assert source["link"] == "https://clinicaltrials.gov/study/NCT06220201"
    assert source["published"].startswith("2026-11-01")  # "2026-11": a partial date
    assert "Phase 1 · Sponsor: Stanford University" in stanford["summary"]
    assert "Interventions: CD19 CAR T cells, Fludarabine, Cyclophosphamide" in stanford["summary"]
    assert feeds(run_cli, config)["clinicaltrials"]["kind"] == "registry"


def test_a_second_fetch_stops_at_records_it_has_seen(
    sources: Any, run_cli: CliRunnerFunction, feed_server: FeedServer
) -> None:
    config = sources("clinicaltrials")
    fetch(run_cli, config)
    feed_server.requests.clear()
    fetch(run_cli, config)
    # The first page already reaches studies updated before the last fetch: no more pages.
    assert len(queries(feed_server, "/api/v2/studies")) == 1


def test_a_trial_status_change_is_news_in_the_next_digest(
    sources: Any, run_cli: CliRunnerFunction, feed_server: FeedServer
) -> None:
    from smtp_server import SmtpServer

    from aggregator.clock import utc_now
    from aggregator.config import load_settings
    from aggregator.publish.mailer import Mailer
    from aggregator.publish.sending import DigestSender
    from aggregator.store import Outbox, Repository
    from aggregator.store.database import create_database_engine

    smtp = SmtpServer()
    config = sources("clinicaltrials")
    with config.open("a") as extra:
        extra.write(
            f'\n[digest]\nfrom = "d@news.example.org"\nto = ["reader@example.org"]\n'
            f'[smtp]\nhost = "127.0.0.1"\nport = {smtp.port}\nsecurity = "none"\n'
        )
    fetch(run_cli, config)
    settings = load_settings(config, environ={})
    engine = create_database_engine(settings.database.url)
    try:
        repository = Repository(engine)
        sender = DigestSender(settings, repository, Outbox(engine), Mailer(settings.smtp, {}))
        [reader] = settings.all_subscribers
        now = utc_now()
        # The first fetch is the query's backlog, updated before this week: no news in it.
        assert sender.send(reader, now)[0].outcome == "empty"

        page = feed_server.root / "api/clinicaltrials/page-first.json"
        page.write_text(
            page.read_text()
            .replace('"NOT_YET_RECRUITING"', '"RECRUITING"')
            .replace('"2026-11-20"', '"2026-11-21"')
        )
        fetch(run_cli, config)
        [report] = sender.send(reader, now + timedelta(days=7))
        assert report.outcome == "sent"
        assert report.stories == 1
        text = smtp.received[0].message.get_body(("plain",)).get_content()  # type: ignore[union-attr]
        changed = "Updated (Not yet recruiting → Recruiting)"
        assert f"* {changed}: Now recruiting: {KYSA8} (KYSA-8)" in text
        assert "-- Trial updates --" in text
    finally:
        engine.dispose()
        smtp.stop()


def test_pubmed_searches_then_summarises_in_batches_saying_who_asks(
    sources: Any, run_cli: CliRunnerFunction, feed_server: FeedServer
) -> None:
    config = sources("pubmed")
    fetch(run_cli, config)
    [search] = queries(feed_server, "/entrez/eutils/esearch.fcgi")
    summaries = queries(feed_server, "/entrez/eutils/esummary.fcgi")
    assert search["term"] == "car t AND multiple sclerosis"
    assert (search["datetype"], search["reldate"]) == ("edat", "30")  # a month at first
    assert [q["id"] for q in summaries] == ["39512345,39498765", "39401234"]
    for query in [search, *summaries]:
        assert query["tool"] == "aggregator"
        assert query["email"] == "operator@example.org"
        assert "api_key" not in query
    by_title = {story["title"]: story for story in stories(run_cli, config)}
    paper = by_title[
        "CD19-targeted chimeric antigen receptor T cell therapy in two patients with "
        "multiple sclerosis."
    ]
    assert paper["link"] == "https://pubmed.ncbi.nlm.nih.gov/39512345/"
    assert paper["summary"].startswith("BACKGROUND: B cells drive inflammation in multiple")
    assert paper["sources"][0]["published"].startswith("2026-11-12")  # the e-pub date
    assert len(by_title) == 3
    assert feeds(run_cli, config)["pubmed"]["kind"] == "journal"

    feed_server.requests.clear()
    fetch(run_cli, config)
    [again] = queries(feed_server, "/entrez/eutils/esearch.fcgi")
    assert again["reldate"] == "1"  # only what was entered since the last fetch


@pytest.mark.parametrize(("api_key", "per_second"), [(None, 3), ("k3y", 10)])
def test_pubmed_requests_stay_under_ncbis_rate_across_feeds(
    sources: Any,
    run_cli: CliRunnerFunction,
    feed_server: FeedServer,
    monkeypatch: pytest.MonkeyPatch,
    api_key: str | None,
    per_second: int,
) -> None:
    if api_key:
        monkeypatch.setenv("NCBI_API_KEY", api_key)
    config = sources("pubmed")
    with config.open("a") as extra:  # a second PubMed feed: the limit is per host, shared
        extra.write(
            f'\n[[feeds]]\nname = "pubmed-2"\ntype = "pubmed"\nurl = "{feed_server.url(PUBMED)}"\n'
        )
    fetch(run_cli, config)
    times = sorted(r.at for r in feed_server.requests if "/entrez/eutils/" in r.path)
    assert len(times) == 10  # each feed: esearch, then esummary and efetch for two batches
    # Requests to NCBI arrive more than 1/limit apart, whichever feed sent them: the margin
    # under NCBI's limit is kept.
    gaps = [later - earlier for earlier, later in itertools.pairwise(times)]
    assert min(gaps) >= 1 / per_second, gaps
    if api_key:
        assert all(
            q["api_key"] == api_key for q in queries(feed_server, "/entrez/eutils/esearch.fcgi")
        )


def test_europepmc_follows_cursors_and_marks_preprints(
    sources: Any, run_cli: CliRunnerFunction, feed_server: FeedServer
) -> None:
    config = sources("europepmc")
    fetch(run_cli, config)
    asked = queries(feed_server, "/europepmc/webservices/rest/search")
    assert [q["cursorMark"] for q in asked] == ["*", "AoIIQJ8w", "AoIIQK1x"]
    assert all(q["format"] == "json" and q["sort"] == "FIRST_IDATE_D desc" for q in asked)
    assert all(q["query"] == '"CAR T" AND "multiple sclerosis"' for q in asked)
    kinds = {story["title"]: story["sources"][0]["kind"] for story in stories(run_cli, config)}
    assert kinds == {
        "Anti-CD19 CAR T cells in progressive MS: a case series": "preprint",
        "CD19-targeted chimeric antigen receptor T cell therapy in two patients with "
        "multiple sclerosis.": "journal",
        "B cell depletion beyond antibodies in MS: CAR T and T cell engagers.": "journal",
    }


def test_an_error_inside_a_200_answer_is_an_error(
    sources: Any, run_cli: CliRunnerFunction, feed_server: FeedServer
) -> None:
    (feed_server.root / "api/europepmc/page-start.json").write_text(
        '{"version": "6.9", "errCode": 400, "errMsg": "Invalid query: unbalanced quotes"}'
    )
    config = sources("europepmc", "pubmed")
    output = fetch(run_cli, config)
    assert "warning: 1 failing" in output
    listed = feeds(run_cli, config)
    assert listed["europepmc"]["last_error"] == (
        "Europe PMC error 400: Invalid query: unbalanced quotes"
    )
    assert listed["pubmed"]["last_error"] is None


def test_a_429_with_retry_after_backs_off(
    sources: Any, run_cli: CliRunnerFunction, feed_server: FeedServer
) -> None:
    feed_server.overrides["/api/v2/studies"] = (429, {"Retry-After": "7200"})
    config = sources("clinicaltrials")
    fetch(run_cli, config)
    feed = feeds(run_cli, config)["clinicaltrials"]
    assert feed["last_error"] == "HTTP 429 Too Many Requests"
    waited = datetime.fromisoformat(feed["next_fetch_at"]) - datetime.fromisoformat(
        feed["last_fetched_at"]
    )
    assert waited >= timedelta(hours=2)


def test_every_source_type_lands_in_stories_with_its_kind(
    sources: Any, run_cli: CliRunnerFunction
) -> None:
    config = sources("clinicaltrials", "pubmed", "europepmc")
    assert "3 feeds fetched: 9 new items" in fetch(run_cli, config)
    found = stories(run_cli, config)
    kinds = {source["kind"] for story in found for source in story["sources"]}
    assert kinds == {"registry", "journal", "preprint"}
    # The same paper from PubMed and Europe PMC is one story with both sources.
    [paper] = [s for s in found if s["title"].startswith("CD19-targeted chimeric")]
    assert sorted(source["name"] for source in paper["sources"]) == ["europepmc", "pubmed"]
