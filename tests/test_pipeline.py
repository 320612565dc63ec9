"""`aggregator fetch` end to end: a real feed server, a real database (SQLite and PostgreSQL)."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime
from pathlib import Path
from typing import Any

import pytest
from conftest import CliRunnerFunction, ConfigFactory
from feed_server import FeedServer, Item, write_feed

from aggregator.models import FeedState
from aggregator.pipeline import fetch_pass

# The shipped vocabulary, vetoes, cue words and topics: what readers get.
_SHIPPED = (Path(__file__).parent.parent / "config.toml").read_text(encoding="utf-8")
SHIPPED_RULES = _SHIPPED[_SHIPPED.index("[terms]") : _SHIPPED.index("[digest]")]

FORMATS = [
    ("rss091", "rss091.xml"),
    ("rss10", "rss10.rdf"),
    ("rss20", "rss20.xml"),
    ("atom10", "atom10.xml"),
    ("jsonfeed", "feed.json"),
]


@pytest.fixture
def fetch_setup(database_url: str, make_config: ConfigFactory, run_cli: CliRunnerFunction) -> Any:
    """Returns `setup(server, feeds)`: writes the config, runs init, returns the config path."""

    def setup(server: FeedServer, feeds: list[tuple[str, str]]) -> Any:
        config = make_config(database_url, [(name, server.url(path)) for name, path in feeds])
        assert run_cli(config, "init").exit_code == 0
        return config

    return setup


def stories(run_cli: CliRunnerFunction, config: Any) -> list[dict[str, Any]]:
    result = run_cli(config, "stories", "list", "--all", "--json", "--limit", "1000")
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout)  # type: ignore[no-any-return]


def feeds_json(run_cli: CliRunnerFunction, config: Any) -> dict[str, dict[str, Any]]:
    result = run_cli(config, "feeds", "list", "--json")
    assert result.exit_code == 0, result.output
    return {feed["name"]: feed for feed in json.loads(result.stdout)}


def test_fetch_all_stores_items_of_every_format(
    feed_server: FeedServer, fetch_setup: Any, run_cli: CliRunnerFunction
) -> None:
    config = fetch_setup(feed_server, FORMATS)
    result = run_cli(config, "fetch", "--all")
    assert result.exit_code == 0, result.output
    assert "5 feeds fetched: 6 new items, 0 updated" in result.stdout
    titles = {story["title"] for story in stories(run_cli, config)}
    assert titles == {
        "Thérapie CAR-T : premiers résultats",
        "Anti-CD19 CAR T cells in progressive multiple sclerosis",
        "CAR T-cell therapy KYV-101 enters phase 2 in multiple sclerosis",
        "Vitamin D and relapse rates: a cohort study",
        "Stanford opens CAR-T study for MS",
        "Rese-cel data in lupus and MS",
    }


def test_second_fetch_is_conditional_and_stores_nothing_new(
    feed_server: FeedServer, fetch_setup: Any, run_cli: CliRunnerFunction
) -> None:
    config = fetch_setup(feed_server, FORMATS)
    run_cli(config, "fetch", "--all")
    before = stories(run_cli, config)

    result = run_cli(config, "fetch", "--all")

    assert result.exit_code == 0
    assert "5 feeds fetched: 0 new items, 0 updated" in result.stdout
    assert result.stdout.count("not modified") == 5
    for _, path in FORMATS:
        second_request = feed_server.requests_for(path)[1].headers
        assert "If-None-Match" in second_request
        assert "If-Modified-Since" in second_request
    assert stories(run_cli, config) == before


def test_quiet_fetches_are_recorded_in_batches_and_none_is_left_out(
    feed_server: FeedServer,
    fetch_setup: Any,
    run_cli: CliRunnerFunction,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(fetch_pass, "QUIET_BATCH", 2)  # five feeds: two full batches and a rest
    config = fetch_setup(feed_server, FORMATS)
    assert run_cli(config, "fetch", "--all").exit_code == 0
    first = feeds_json(run_cli, config)
    result = run_cli(config, "fetch", "--all")
    assert result.exit_code == 0, result.output
    for name, feed in feeds_json(run_cli, config).items():
        assert feed["status"] == "not modified", name
        assert feed["last_fetched_at"] > first[name]["last_fetched_at"]
        assert feed["next_fetch_at"] > feed["last_fetched_at"]


def test_identical_body_without_validators_is_not_parsed_again(
    feed_server: FeedServer, fetch_setup: Any, run_cli: CliRunnerFunction
) -> None:
    config = fetch_setup(feed_server, [("stubborn", "ignore-validators/rss20.xml")])
    run_cli(config, "fetch", "--all")
    result = run_cli(config, "fetch", "--all")
    assert "stubborn  unchanged" in result.stdout
    assert len(stories(run_cli, config)) == 2


def test_a_feed_is_polled_at_half_its_publishing_gap_after_a_304_too(
    database_url: str,
    make_config: ConfigFactory,
    run_cli: CliRunnerFunction,
    feed_server: FeedServer,
) -> None:
    items = "".join(
        f"<item><guid>g{n}</guid><title>Item {n}</title>"
        f"<pubDate>{format_datetime(datetime(2026, 11, 1, tzinfo=UTC) - timedelta(hours=6 * n))}"
        "</pubDate></item>"
        for n in range(4)
    )
    (feed_server.root / "six-hourly.xml").write_text(
        f'<?xml version="1.0"?><rss version="2.0"><channel><title>t</title>{items}</channel></rss>'
    )
    config = make_config(database_url, [("six-hourly", feed_server.url("six-hourly.xml"))])
    assert run_cli(config, "init").exit_code == 0

    def next_wait() -> timedelta:
        assert run_cli(config, "fetch", "--all").exit_code == 0
        [feed] = json.loads(run_cli(config, "feeds", "list", "--json").stdout)
        fetched, due = (
            datetime.fromisoformat(feed[key]) for key in ("last_fetched_at", "next_fetch_at")
        )
        return due - fetched

    first = next_wait()  # nothing was known of the feed yet: the [fetch] interval
    assert timedelta(hours=1) <= first <= timedelta(hours=1.1)  # plus up to 10% jitter
    not_modified = next_wait()  # half the six hours it was seen to publish at
    assert feed_server.requests_for("six-hourly.xml")[-1].headers.get("If-None-Match")
    assert timedelta(hours=3) <= not_modified <= timedelta(hours=3.3)


def test_only_due_feeds_are_fetched_without_all(
    feed_server: FeedServer, fetch_setup: Any, run_cli: CliRunnerFunction
) -> None:
    config = fetch_setup(feed_server, [("rss20", "rss20.xml")])
    assert "1 feeds fetched" in run_cli(config, "fetch").stdout  # never fetched: due
    assert "no feeds are due" in run_cli(config, "fetch").stdout  # fetched a moment ago
    assert len(feed_server.requests) == 1


def test_fetch_one_feed_by_name(
    feed_server: FeedServer, fetch_setup: Any, run_cli: CliRunnerFunction
) -> None:
    config = fetch_setup(feed_server, FORMATS)
    result = run_cli(config, "fetch", "--feed", "atom10")
    assert "1 feeds fetched: 1 new items" in result.stdout
    assert [request.path for request in feed_server.requests] == ["/atom10.xml"]


def test_unknown_feed_name_is_a_usage_error(
    feed_server: FeedServer, fetch_setup: Any, run_cli: CliRunnerFunction
) -> None:
    config = fetch_setup(feed_server, [("rss20", "rss20.xml")])
    result = run_cli(config, "fetch", "--feed", "nope")
    assert result.exit_code == 2
    assert "no feed named 'nope' (feeds: rss20)" in result.stderr


def test_failing_feeds_are_recorded_and_the_others_stored(
    feed_server: FeedServer, fetch_setup: Any, run_cli: CliRunnerFunction
) -> None:
    config = fetch_setup(
        feed_server,
        [
            ("good", "rss20.xml"),
            ("gone", "status/404"),
            ("broken-server", "status/500"),
            ("malformed", "malformed.xml"),
            ("login-page", "login-page.html"),
            ("redirected", "redirect/2/atom10.xml"),
        ],
    )
    result = run_cli(config, "fetch", "--all")

    assert result.exit_code == 0  # failing feeds are a warning, not a failure
    assert "6 feeds fetched: 3 new items" in result.stdout
    assert "warning: 4 failing" in result.stdout
    feeds = feeds_json(run_cli, config)
    assert feeds["good"]["status"] == "ok"
    assert feeds["good"]["last_error"] is None
    assert feeds["redirected"]["status"] == "ok"
    assert feeds["gone"]["last_error"] == "HTTP 404 Not Found"
    assert feeds["broken-server"]["last_error"] == "HTTP 500 Internal Server Error"
    assert feeds["malformed"]["last_error"].startswith("not a feed")
    assert "HTML page" in feeds["login-page"]["last_error"]
    for name in ("gone", "broken-server", "malformed", "login-page"):
        assert feeds[name]["status"] == "error"
        assert feeds[name]["consecutive_failures"] == 1
        assert feeds[name]["next_fetch_at"] > feeds[name]["last_fetched_at"]


def test_a_failure_never_loses_what_was_stored(
    feed_server: FeedServer, fetch_setup: Any, run_cli: CliRunnerFunction
) -> None:
    config = fetch_setup(feed_server, [("flaky", "rss20.xml")])
    run_cli(config, "fetch", "--all")
    (feed_server.root / "rss20.xml").write_bytes((feed_server.root / "malformed.xml").read_bytes())

    run_cli(config, "fetch", "--all")
    run_cli(config, "fetch", "--all")

    feed = feeds_json(run_cli, config)["flaky"]
    assert feed["status"] == "error"
    assert feed["consecutive_failures"] == 2
    assert len(stories(run_cli, config)) == 2


def test_an_edited_item_is_updated_not_duplicated(
    feed_server: FeedServer, fetch_setup: Any, run_cli: CliRunnerFunction
) -> None:
    config = fetch_setup(feed_server, [("rss20", "rss20.xml")])
    run_cli(config, "fetch", "--all")
    path = feed_server.root / "rss20.xml"
    path.write_text(path.read_text().replace("enters phase 2", "enters phase 2 (updated)"))

    result = run_cli(config, "fetch", "--all")

    assert "1 feeds fetched: 0 new items, 1 updated" in result.stdout
    titles = sorted(story["title"] for story in stories(run_cli, config))
    assert titles == [
        "CAR T-cell therapy KYV-101 enters phase 2 (updated) in multiple sclerosis",
        "Vitamin D and relapse rates: a cohort study",
    ]


def test_odd_feeds_store_clean_items(
    feed_server: FeedServer, fetch_setup: Any, run_cli: CliRunnerFunction
) -> None:
    config = fetch_setup(
        feed_server,
        [
            ("no-guid", "no-guid.xml"),
            ("dupes", "duplicate-guids.xml"),
            ("markup", "title-markup.xml"),
            ("hostile", "javascript-link.xml"),
            ("relative", "relative-links.xml"),
        ],
    )
    run_cli(config, "fetch", "--all")
    by_title = {story["title"]: story for story in stories(run_cli, config)}

    assert set(by_title) == {
        "Item with only a link",
        "Item with neither GUID nor link",
        "Newest version of the post",
        "A different post",
        "CAR T in MS & lupus",
        "Click me",
        "Relative item link",
    }
    assert by_title["Click me"]["link"] is None
    assert by_title["Relative item link"]["link"] == feed_server.url("news/relative-item")
    assert by_title["Item with neither GUID nor link"]["summary"] == "Only text."
    assert by_title["CAR T in MS & lupus"]["summary"] == "Safe text"


def test_stories_json_has_the_contract_fields(
    feed_server: FeedServer, fetch_setup: Any, run_cli: CliRunnerFunction
) -> None:
    config = fetch_setup(feed_server, [("rss20", "rss20.xml")])
    run_cli(config, "fetch", "--all")
    story = stories(run_cli, config)[0]
    assert {"id", "title", "link", "first_seen", "topics", "sources", "matches"} <= set(story)
    [source] = story["sources"]
    assert source["name"] == "rss20"
    assert source["link"] == story["link"]
    assert source["title"] == story["title"]


def test_feeds_json_has_the_contract_fields(
    feed_server: FeedServer, fetch_setup: Any, run_cli: CliRunnerFunction
) -> None:
    config = fetch_setup(feed_server, [("rss20", "rss20.xml")])
    assert feeds_json(run_cli, config)["rss20"]["status"] == "new"
    run_cli(config, "fetch", "--all")
    feed = feeds_json(run_cli, config)["rss20"]
    assert feed["url"] == feed_server.url("rss20.xml")
    assert feed["type"] == "rss"
    assert feed["status"] == "ok"
    assert feed["last_error"] is None
    assert feed["consecutive_failures"] == 0
    assert feed["last_fetched_at"] < feed["next_fetch_at"]
    assert feed["items"] == 2


def test_a_first_fetch_says_nothing_about_matching_rules(
    feed_server: FeedServer, fetch_setup: Any, run_cli: CliRunnerFunction
) -> None:
    config = fetch_setup(feed_server, [("rss20", "rss20.xml")])
    assert "matching rules" not in run_cli(config, "fetch", "--all").stdout


def test_feeds_of_one_busy_host_take_turns_with_other_hosts() -> None:
    """A pass holds a bounded number of feeds in flight; a host with many feeds (fetched a few
    at a time) must not fill them all while other hosts' feeds wait."""
    urls = [
        "https://eutils.ncbi.example/1",
        "https://eutils.ncbi.example/2",
        "https://eutils.ncbi.example/3",
        "https://society.example/feed",
        "https://journal.example/a.xml",
        "https://journal.example/b.xml",
    ]
    feeds = [FeedState(n, f"feed-{n}", url, None, None, None, 0) for n, url in enumerate(urls)]
    order = [feed.url for feed in fetch_pass.interleaved_by_host(feeds)]
    assert order == [urls[0], urls[3], urls[4], urls[1], urls[5], urls[2]]


def test_fetch_keeps_what_reports_on_car_t_for_ms_in_any_language(
    feed_server: FeedServer,
    database_url: str,
    make_config: ConfigFactory,
    run_cli: CliRunnerFunction,
) -> None:
    footer = "Our CAR T coverage serves people with multiple sclerosis."
    items: list[Item] = [
        (
            "de",
            "https://news.example/de",
            "Multiple Sklerose: Erste Patientin erhält CAR-T-Zellen",
            f"Die Klinik behandelte eine Frau mit schubförmiger MS. {footer}",
        ),
        (
            "fr",
            "https://news.example/fr",
            "Un deuxième patient atteint de SEP traité par CAR-T",
            f"Le patient a reçu des cellules CAR-T à Lyon. {footer}",
        ),
        (
            "contrast",
            "https://news.example/mg",
            "CD19 CAR T in myasthenia gravis",
            f"MG is an antibody disease, unlike multiple sclerosis. {footer}",
        ),
        (
            "lupus",
            "https://news.example/lupus",
            "CAR T keeps lupus in remission",
            f"Three-year data from Erlangen. {footer}",
        ),
    ]
    path = write_feed(feed_server.root, "multilingual", items, published=datetime.now(UTC))
    config = make_config(
        database_url, [("multilingual", feed_server.url(path))], extra=SHIPPED_RULES
    )
    assert run_cli(config, "init").exit_code == 0
    assert run_cli(config, "fetch", "--all").exit_code == 0

    topics = {story["title"]: story["topics"] for story in stories(run_cli, config)}
    assert "car-t-ms" in topics["Multiple Sklerose: Erste Patientin erhält CAR-T-Zellen"]
    assert "car-t-ms" in topics["Un deuxième patient atteint de SEP traité par CAR-T"]
    assert "car-t-ms" not in topics["CD19 CAR T in myasthenia gravis"]  # a passing mention
    assert "car-t-ms" not in topics["CAR T keeps lupus in remission"]  # only the feed's footer
    # New rules re-match what is stored, learning the feed's footer from its stored items.
    config.write_text(config.read_text().replace('"CAR T",', '"CAR T", "CAR-T cell",', 1))
    preview = run_cli(config, "topics", "test")
    assert (
        preview.stdout.strip()
        == "0 would be added, 0 removed (applied by the next `aggregator fetch`)"
    )
    assert run_cli(config, "fetch", "--all").exit_code == 0
    assert {story["title"]: story["topics"] for story in stories(run_cli, config)} == topics
    [french] = [s for s in stories(run_cli, config) if s["title"].startswith("Un deuxième")]
    shown = run_cli(config, "stories", "show", str(french["id"]))
    assert (
        "car-t-ms: \u201cUn deuxième patient atteint de SEP traité par CAR-T\u201d" in shown.stdout
    )
