"""What each source says, shown right: real-shaped feeds through the feed server and the CLI,
on SQLite and PostgreSQL. Titles, words, identifiers, dates and statuses as readers see them."""

from __future__ import annotations

import json
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import feedparser
import pytest
from conftest import CliRunnerFunction, ConfigFactory
from feed_server import FeedServer
from outputs import assert_valid_outputs
from samples import TOPIC_RULES
from sqlalchemy import create_engine, text
from worlds import KYSA7, OUTPUT, dated_feed, listed, literature_config, serve_kysa7

from aggregator.config import load_settings
from aggregator.sources import pubmed


def feed_state(run_cli: CliRunnerFunction, config: Path, name: str) -> dict[str, Any]:
    result = run_cli(config, "feeds", "list", "--json")
    assert result.exit_code == 0, result.output
    [feed] = [feed for feed in json.loads(result.stdout) if feed["name"] == name]
    return feed  # type: ignore[no-any-return]


@pytest.fixture
def untitled_world(
    database_url: str,
    make_config: ConfigFactory,
    run_cli: CliRunnerFunction,
    feed_server: FeedServer,
) -> Path:
    """A Mastodon feed (items without titles) and a WordPress feed (footers, an empty title)."""
    feeds = [
        ("mastodon", feed_server.url("real/mastodon-untitled.xml")),
        ("wordpress", feed_server.url("real/wordpress.xml")),
    ]
    config = make_config(database_url, feeds, extra=OUTPUT)
    assert run_cli(config, "init").exit_code == 0
    return config


def test_items_without_titles_are_titled_from_their_text_and_every_output_is_valid(
    untitled_world: Path, run_cli: CliRunnerFunction, tmp_path: Path
) -> None:
    fetched = run_cli(untitled_world, "fetch", "--all")
    assert fetched.exit_code == 0, fetched.output
    assert "2 feeds fetched: 4 new items" in fetched.stdout
    titles = {story["title"] for story in listed(run_cli, untitled_world)}
    assert titles == {
        "KYSA-7 update from Kyverna Therapeutics",
        "Reading list for the week",
        "CAR T-cell therapy: what our members asked this month",
        "Webinar recording now online: a neurologist explains CD19-directed therapy.",
    }
    exported = run_cli(untitled_world, "export", "--format", "atom")
    assert exported.exit_code == 0, exported.output
    assert_valid_outputs(tmp_path / "public")


def test_words_stay_apart_and_wordpress_footers_are_not_content(
    untitled_world: Path, run_cli: CliRunnerFunction
) -> None:
    assert run_cli(untitled_world, "fetch", "--all").exit_code == 0
    summaries = {story["title"]: story["summary"] for story in listed(run_cli, untitled_world)}
    assert summaries["Reading list for the week"] == "Reading list for the week: Relapsing MS CD19"
    assert (
        "Kyverna Therapeutics Recruiting: the phase 2"
        in summaries["KYSA-7 update from Kyverna Therapeutics"]
    )
    assert "2026. 2 December 2026" not in " ".join(summaries.values())
    assert all("appeared first on" not in summary for summary in summaries.values())


def test_init_gives_stories_stored_without_a_title_one_and_the_atom_export_works_again(
    untitled_world: Path, run_cli: CliRunnerFunction, tmp_path: Path
) -> None:
    assert run_cli(untitled_world, "fetch", "--all").exit_code == 0
    url = load_settings(untitled_world, environ={}).database.url
    engine = create_engine(url)
    with engine.begin() as connection:  # what an older version stored for such items
        connection.execute(
            text(
                "UPDATE items SET title = '' WHERE feed_id IN "
                "(SELECT id FROM feeds WHERE name = 'mastodon')"
            )
        )
        connection.execute(
            text(
                "UPDATE stories SET title = '' WHERE id IN "
                "(SELECT story_id FROM items WHERE title = '')"
            )
        )
    engine.dispose()

    repaired = run_cli(untitled_world, "init")

    assert repaired.exit_code == 0, repaired.output
    assert "gave 2 untitled items a title from their text" in repaired.stdout
    assert "KYSA-7 update from Kyverna Therapeutics" in {
        story["title"] for story in listed(run_cli, untitled_world)
    }
    assert run_cli(untitled_world, "export").exit_code == 0
    assert_valid_outputs(tmp_path / "public")
    again = run_cli(untitled_world, "init")
    assert "untitled" not in again.stdout


def test_one_paper_from_a_journal_feed_and_a_literature_database_is_one_story(
    database_url: str,
    make_config: ConfigFactory,
    run_cli: CliRunnerFunction,
    feed_server: FeedServer,
) -> None:
    config = literature_config(make_config, database_url, feed_server)
    assert run_cli(config, "init").exit_code == 0
    fetched = run_cli(config, "fetch", "--all")
    assert fetched.exit_code == 0, fetched.output
    assert "warning" not in fetched.stdout

    sources = {
        story["title"]: sorted(source["name"] for source in story["sources"])
        for story in listed(run_cli, config)
    }
    # Nature's dc:identifier DOI and PubMed's; medRxiv's link and Europe PMC's preprint DOI;
    # SAGE's prism:doi and Europe PMC's doi field.
    by_sources = sorted(sources.values())
    assert ["europepmc", "medrxiv"] in by_sources
    assert ["europepmc", "sage"] in by_sources
    assert ["nature", "pubmed"] in by_sources
    assert len(sources) == 6  # and Nature's other paper, and two PubMed records of their own
    # Markup E-utilities escaped is text, and a record NCBI could not summarise is no item.
    assert (
        "EBV-specific CD5+ T cells after CD19 CAR T-cell therapy in multiple sclerosis." in sources
    )
    walking = next(
        story for story in listed(run_cli, config) if story["title"].startswith("Walking speed")
    )
    assert walking["title"].endswith("progressive multiple sclerosis: a post hoc analysis.")
    assert walking["summary"].startswith(
        "Published in Neurology(R) neuroimmunology & neuroinflammation ·"
    )
    assert not any("cannot get document summary" in title for title in sources)


def test_pubmed_abstracts_are_read_and_matched(
    database_url: str,
    make_config: ConfigFactory,
    run_cli: CliRunnerFunction,
    feed_server: FeedServer,
) -> None:
    config = literature_config(make_config, database_url, feed_server)
    assert run_cli(config, "init").exit_code == 0
    assert run_cli(config, "fetch", "--feed", "pubmed").exit_code == 0
    [ebv] = [s for s in listed(run_cli, config) if s["title"].startswith("EBV-specific")]
    assert ebv["summary"].startswith(
        "BACKGROUND AND OBJECTIVES: Epstein-Barr virus (EBV)-specific T cells may change"
    )
    assert "RESULTS: EBV-specific CD5+ T cells fell by half" in ebv["summary"]
    asked = [r.path for r in feed_server.requests if "efetch.fcgi" in r.path]
    [abstracts] = asked
    assert "rettype=abstract" in abstracts
    assert "tool=aggregator" in abstracts


def test_a_429_on_one_esummary_batch_keeps_the_others_and_asks_again_next_time(
    database_url: str,
    make_config: ConfigFactory,
    run_cli: CliRunnerFunction,
    feed_server: FeedServer,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(pubmed, "SUMMARY_BATCH", 2)
    answers = feed_server.root / "real/literature/api/pubmed"
    every = json.loads((answers / "esummary-41200004.json").read_text(encoding="utf-8"))
    for first, second in (("41200004", "41200003"), ("41200002", "41200001")):
        result = {"uids": [first, second], first: every["result"][first]}
        result[second] = every["result"][second]
        (answers / f"esummary-{first}.json").write_text(json.dumps(every | {"result": result}))
    (answers / "efetch-41200002.xml").write_text(
        (answers / "efetch-41200004.xml").read_text(encoding="utf-8"), encoding="utf-8"
    )
    busy = "/real/literature/entrez/eutils/esummary.fcgi?id=41200002,41200001"
    feed_server.overrides[busy] = (429, {"Retry-After": "1"})
    config = literature_config(make_config, database_url, feed_server)
    assert run_cli(config, "init").exit_code == 0

    first = run_cli(config, "fetch", "--feed", "pubmed")

    assert first.exit_code == 0, first.output
    titles = {story["title"] for story in listed(run_cli, config)}
    assert any(title.startswith("Walking speed") for title in titles)  # the first batch
    assert not any(title.startswith("CD19-directed") for title in titles)  # the busy one
    feed = feed_state(run_cli, config, "pubmed")
    assert feed["status"] == "partial"
    assert "429" in feed["last_error"]
    retried = [r for r in feed_server.requests if "id=41200002" in r.path and "esummary" in r.path]
    assert len(retried) == 2  # the short Retry-After was waited for once

    feed_server.overrides.clear()
    second = run_cli(config, "fetch", "--feed", "pubmed")
    assert second.exit_code == 0, second.output
    searches = [r.path for r in feed_server.requests if "esearch.fcgi" in r.path]
    assert "reldate=30" in searches[-1]  # from the last complete fetch: none yet
    titles = {story["title"] for story in listed(run_cli, config)}
    assert any(title.startswith("CD19-directed") for title in titles)
    feed = feed_state(run_cli, config, "pubmed")
    assert (feed["status"], feed["last_error"]) == ("ok", None)


def test_a_pubmed_feed_without_a_contact_email_is_warned_about(
    database_url: str,
    make_config: ConfigFactory,
    run_cli: CliRunnerFunction,
    feed_server: FeedServer,
) -> None:
    url = feed_server.url("real/literature/entrez/eutils/esearch.fcgi?db=pubmed&term=x")
    config = make_config(
        database_url, extra=f'[[feeds]]\nname = "p"\nurl = "{url}"\ntype = "pubmed"\n'
    )
    assert run_cli(config, "init").exit_code == 0
    fetched = run_cli(config, "fetch", "--all")
    assert fetched.exit_code == 0
    assert "event=config_warning key=fetch.contact_email" in fetched.stderr
    assert "NCBI asks every E-utilities caller for one" in fetched.stderr


def _europepmc_page(records: list[tuple[str, date, date]], cursor: str) -> str:
    """A Europe PMC search page (lite) of (id, indexed, published) records."""
    return json.dumps(
        {
            "version": "6.9",
            "hitCount": 100,
            "nextCursorMark": cursor,
            "request": {"queryString": "car-t", "resultType": "lite"},
            "resultList": {
                "result": [
                    {
                        "id": ident,
                        "source": "MED",
                        "pmid": ident,
                        "title": f"CAR T cells in multiple sclerosis, paper {ident}",
                        "authorString": "Weber B.",
                        "journalTitle": "Mult Scler",
                        "pubYear": str(published.year),
                        "firstIndexDate": indexed.isoformat(),
                        "firstPublicationDate": published.isoformat(),
                    }
                    for ident, indexed, published in records
                ]
            },
        }
    )


def test_europe_pmc_follows_the_index_date_so_late_indexed_papers_are_fetched(
    database_url: str,
    make_config: ConfigFactory,
    run_cli: CliRunnerFunction,
    feed_server: FeedServer,
) -> None:
    site = feed_server.root / "late/api/europepmc"
    site.mkdir(parents=True)
    today = datetime.now(UTC).date()
    old = today - timedelta(days=60)
    (site / "page-start.json").write_text(_europepmc_page([("1", old, old)], "C1"))
    (site / "page-C1.json").write_text(_europepmc_page([], "C1"))
    url = feed_server.url("late/europepmc/webservices/rest/search?query=car-t")
    config = make_config(
        database_url, extra=f'[[feeds]]\nname = "e"\nurl = "{url}"\ntype = "europepmc"\n'
    )
    assert run_cli(config, "init").exit_code == 0
    assert run_cli(config, "fetch", "--all").exit_code == 0
    # A week later: two papers published two months ago, indexed only now, and below them on
    # the next page one more, then what the first fetch saw.
    (site / "page-start.json").write_text(
        _europepmc_page([("2", today, old), ("3", today, old - timedelta(days=3))], "C2")
    )
    (site / "page-C2.json").write_text(
        _europepmc_page([("4", today, old - timedelta(days=9)), ("1", old, old)], "C3")
    )
    feed_server.requests.clear()

    assert run_cli(config, "fetch", "--all").exit_code == 0

    asked = [r.path for r in feed_server.requests]
    assert all("sort=FIRST_IDATE_D+desc" in path for path in asked), asked
    assert len(asked) == 2  # the second page too, and no third: it reached what was seen
    titles = {story["title"] for story in listed(run_cli, config)}
    assert {f"CAR T cells in multiple sclerosis, paper {n}" for n in "1234"} <= titles


def test_a_later_page_that_fails_keeps_the_pages_read(
    database_url: str,
    make_config: ConfigFactory,
    run_cli: CliRunnerFunction,
    feed_server: FeedServer,
) -> None:
    feed_server.overrides["/api/v2/studies?pageToken"] = (503, {})
    url = feed_server.url("api/v2/studies?query.cond=multiple+sclerosis")
    config = make_config(
        database_url, extra=f'[[feeds]]\nname = "ct"\nurl = "{url}"\ntype = "clinicaltrials"\n'
    )
    assert run_cli(config, "init").exit_code == 0
    fetched = run_cli(config, "fetch", "--all")
    assert fetched.exit_code == 0, fetched.output
    assert len(listed(run_cli, config)) == 2  # the first page's two studies
    feed = feed_state(run_cli, config, "ct")
    assert feed["status"] == "partial"
    assert "HTTP 503" in feed["last_error"]
    assert feed["consecutive_failures"] == 0


def test_the_freshest_copy_of_a_trial_record_wins_and_says_what_changed(
    database_url: str,
    make_config: ConfigFactory,
    run_cli: CliRunnerFunction,
    feed_server: FeedServer,
    tmp_path: Path,
) -> None:
    feeds = "".join(
        f'[[feeds]]\nname = "{name}"\nurl = "{serve_kysa7(feed_server, name, "recruiting")}"\n'
        'type = "clinicaltrials"\n\n'
        for name in ("ct-car-t", "ct-cd19")
    )
    digest = '[digest]\nfrom = "d@news.example.org"\nto = ["reader@example.org"]\n\n'
    config = make_config(database_url, extra=OUTPUT + feeds + digest + TOPIC_RULES)
    assert run_cli(config, "init").exit_code == 0
    assert run_cli(config, "fetch", "--all").exit_code == 0
    [story] = listed(run_cli, config)
    assert story["title"] == f"Now recruiting: {KYSA7}"

    # The registry moves on; one query sees it, the other still serves the August copy.
    serve_kysa7(feed_server, "ct-car-t", "active")
    assert run_cli(config, "fetch", "--all", "--feed", "ct-car-t").exit_code == 0
    assert run_cli(config, "fetch", "--all", "--feed", "ct-cd19").exit_code == 0

    [story] = listed(run_cli, config)
    assert story["title"] == f"Active, not recruiting: {KYSA7}"
    assert story["published"].startswith("2026-11-28")
    assert [(s["status"], s["as_of"][:10]) for s in story["statuses"]] == [
        ("Recruiting", "2026-08-04"),
        ("Active, not recruiting", "2026-11-28"),
    ]
    shown = run_cli(config, "stories", "show", str(story["id"]))
    assert "status: Recruiting (2026-08-04) → Active, not recruiting (2026-11-28)" in shown.stdout
    digest_file = tmp_path / "digest.txt"
    assert run_cli(config, "digest", "--dry-run", "--output", str(digest_file)).exit_code == 0
    text = digest_file.read_text(encoding="utf-8")
    assert (
        f"* Updated (Recruiting → Active, not recruiting): Active, not recruiting: {KYSA7}" in text
    )
    assert run_cli(config, "export").exit_code == 0
    rss = (tmp_path / "public" / "feed.xml").read_text(encoding="utf-8")
    assert f"<title>Active, not recruiting: {KYSA7}</title>" in rss
    assert "Now recruiting" not in rss


def test_stories_are_ordered_and_dated_by_when_their_sources_published_them(
    database_url: str,
    make_config: ConfigFactory,
    run_cli: CliRunnerFunction,
    feed_server: FeedServer,
    tmp_path: Path,
) -> None:
    now = datetime.now(UTC).replace(microsecond=0)
    august = now - timedelta(days=120)
    topline = now - timedelta(days=1)
    late = dated_feed(feed_server, "wire", [("CAR T in MS: the August press release", august)])
    early = dated_feed(feed_server, "company", [("CAR T in MS: December topline", topline)])
    undated = dated_feed(feed_server, "blog", [("CAR T in MS: an undated note", None)])
    config = make_config(
        database_url,
        [("company", early), ("wire", late), ("blog", undated)],
        extra=OUTPUT + TOPIC_RULES,
    )
    assert run_cli(config, "init").exit_code == 0
    assert run_cli(config, "fetch", "--feed", "company").exit_code == 0  # fetched first
    assert run_cli(config, "fetch", "--feed", "wire", "--feed", "blog").exit_code == 0

    stories = listed(run_cli, config)
    assert [s["title"] for s in stories] == [
        "CAR T in MS: an undated note",  # no date: when it was first seen, marked
        "CAR T in MS: December topline",
        "CAR T in MS: the August press release",
    ]
    assert [datetime.fromisoformat(s["published"]) for s in stories[1:]] == [topline, august]
    assert [s["published_estimated"] for s in stories] == [True, False, False]
    assert run_cli(config, "export").exit_code == 0
    rss = feedparser.parse((tmp_path / "public" / "feed.xml").read_bytes())
    dates = {e.title: datetime(*e.published_parsed[:6], tzinfo=UTC) for e in rss.entries}
    assert dates["CAR T in MS: the August press release"] == august
    assert dates["CAR T in MS: December topline"] == topline


def test_a_feeds_backlog_never_floods_a_digest(
    database_url: str,
    make_config: ConfigFactory,
    run_cli: CliRunnerFunction,
    feed_server: FeedServer,
    tmp_path: Path,
) -> None:
    now = datetime.now(UTC)
    backlog = [
        ("CAR T in MS: published in August", now - timedelta(days=110)),
        ("CAR T in MS: published in September", now - timedelta(days=80)),
        ("CAR T in MS: published this week", now - timedelta(days=2)),
        ("CAR T in MS: no date given", None),
    ]
    url = dated_feed(feed_server, "society", backlog)
    digest = '[digest]\nfrom = "d@news.example.org"\nto = ["reader@example.org"]\n\n'
    config = make_config(database_url, [("society", url)], extra=OUTPUT + digest + TOPIC_RULES)
    assert run_cli(config, "init").exit_code == 0
    assert run_cli(config, "fetch", "--all").exit_code == 0
    assert len(listed(run_cli, config)) == 4  # all stored, listed and searchable

    first = tmp_path / "first.txt"
    assert run_cli(config, "digest", "--dry-run", "--output", str(first)).exit_code == 0
    text = first.read_text(encoding="utf-8")
    assert "1 new story" in text
    assert "CAR T in MS: published this week" in text
    assert "August" not in text
    assert "September" not in text
    assert "no date" not in text

    # What the feed publishes after its first fetch is news when it arrives.
    dated_feed(feed_server, "society", [("CAR T in MS: published today", now), *backlog])
    assert run_cli(config, "fetch", "--all").exit_code == 0
    second = tmp_path / "second.txt"
    assert run_cli(config, "digest", "--dry-run", "--output", str(second)).exit_code == 0
    assert "CAR T in MS: published today" in second.read_text(encoding="utf-8")
