"""The HTTP server on 127.0.0.1: feeds with the right types, validators, 304s, gzip; health."""

from __future__ import annotations

import contextlib
import multiprocessing
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import feedparser
import httpx
import pytest
from conftest import CliRunnerFunction, ConfigFactory, serve_process, serving
from feed_server import FeedServer, write_feed
from samples import TOPIC_RULES

from aggregator.config import load_settings
from aggregator.store import Outbox, Repository
from aggregator.store.database import create_database_engine
from aggregator.web import create_app

RULES = '[output]\nbase_url = "https://news.example.org/"\n' + TOPIC_RULES


@pytest.fixture
def site(
    database_url: str,
    make_config: ConfigFactory,
    run_cli: CliRunnerFunction,
    feed_server: FeedServer,
) -> Iterator[str]:
    """A fetched database served by uvicorn on 127.0.0.1; yields the base URL."""
    config = make_config(
        database_url,
        [("gone", feed_server.url("status/410"))],
        extra=f'[[feeds]]\nname = "mixed"\nurl = "{feed_server.url("mixed-topics.xml")}"\n'
        'kind = "news"\n' + RULES,
    )
    run_cli(config, "init")
    run_cli(config, "fetch", "--all")
    settings = load_settings(config, environ={})
    engine = create_database_engine(settings.database.url)
    with serving(create_app(Repository(engine), Outbox(engine), settings)) as url:
        yield url
    engine.dispose()


MS_STORY = "Anti-CD19 CAR\u2011T cells reduce intrathecal IgG in MS"
LUPUS_STORY = "Lupus patients stay in remission after CD19 CAR T"
RSS, ATOM, JSON_FEED = (
    "application/rss+xml; charset=utf-8",
    "application/atom+xml; charset=utf-8",
    "application/feed+json; charset=utf-8",
)


@pytest.mark.parametrize(
    ("path", "media_type", "titles"),
    [
        pytest.param("/feed.xml", RSS, [LUPUS_STORY, MS_STORY], id="rss"),
        pytest.param("/atom.xml", ATOM, [LUPUS_STORY, MS_STORY], id="atom"),
        pytest.param("/feed.json", JSON_FEED, [LUPUS_STORY, MS_STORY], id="json"),
        pytest.param("/topics/car-t-ms.xml", RSS, [MS_STORY], id="topic-rss"),
        pytest.param("/topics/car-t-ms.atom", ATOM, [MS_STORY], id="topic-atom"),
        pytest.param("/topics/car-t-lupus.json", JSON_FEED, [LUPUS_STORY], id="topic-json"),
    ],
)
def test_feeds_are_served_with_their_type_and_validators(
    site: str, path: str, media_type: str, titles: list[str]
) -> None:
    response = httpx.get(site + path)
    assert response.status_code == 200
    assert response.headers["content-type"] == media_type
    assert response.headers["etag"]
    assert response.headers["last-modified"]
    if media_type == JSON_FEED:
        items = response.json()["items"]
        assert [item["title"] for item in items] == titles
        assert all("news" in item["tags"] for item in items)
    else:
        parsed = feedparser.parse(response.content)
        assert not parsed.bozo
        assert parsed.version == ("rss20" if media_type == RSS else "atom10")
        assert [entry.title for entry in parsed.entries] == titles
        kind = "News" if media_type == RSS else "news"  # RSS categories carry the label
        assert all(kind in [tag.term for tag in entry.tags] for entry in parsed.entries)


def test_a_reader_polling_again_gets_304(site: str) -> None:
    first = httpx.get(site + "/atom.xml")
    by_etag = httpx.get(site + "/atom.xml", headers={"If-None-Match": first.headers["etag"]})
    assert by_etag.status_code == 304
    assert by_etag.content == b""
    by_date = httpx.get(
        site + "/atom.xml", headers={"If-Modified-Since": first.headers["last-modified"]}
    )
    assert by_date.status_code == 304


def test_responses_are_gzipped_for_clients_that_ask(site: str) -> None:
    with httpx.Client() as client:
        raw = client.get(site + "/feed.xml", headers={"Accept-Encoding": "gzip"})
        plain = client.get(site + "/feed.xml", headers={"Accept-Encoding": "identity"})
    assert raw.headers["content-encoding"] == "gzip"
    assert "content-encoding" not in plain.headers
    assert raw.content == plain.content  # httpx decoded the gzip: same document


def test_healthz_reports_the_last_fetch_and_failing_feeds(site: str) -> None:
    health = httpx.get(site + "/healthz").json()
    assert health["status"] == "ok"
    assert health["scheduler"] == {"state": "off"}  # `serve` runs no scheduler
    assert health["last_successful_fetch"] is not None
    assert health["feeds"] == 2
    assert health["failing_feeds"] == [
        {
            "name": "gone",
            "status": "paused",
            "last_error": "HTTP 410 Gone",
            "consecutive_failures": 1,
        }
    ]
    assert health["paused_feeds"] == ["gone"]  # 410 Gone: no longer fetched


def test_unknown_paths_are_404(site: str) -> None:
    assert httpx.get(site + "/nothing-here.xml").status_code == 404
    assert httpx.get(site + "/../config.toml").status_code == 404


def test_aggregator_serve_runs_until_stopped(
    tmp_path: Path, make_config: ConfigFactory, run_cli: CliRunnerFunction
) -> None:
    config = make_config(f"sqlite:///{tmp_path / 'serve.db'}", extra=RULES)
    run_cli(config, "init")
    with serve_process(config) as (url, process):
        response = httpx.get(url + "/feed.xml")
        process.terminate()
        process.wait(timeout=10)
    assert response.status_code == 200
    assert feedparser.parse(response.content).version == "rss20"
    log = (config.parent / "serve.log").read_text()
    assert process.returncode == 0, log
    assert "event=http_server" in log  # uvicorn's own lines, under our name and form
    assert "event=http_request" not in log  # a line per request only with -v


def test_the_page_lists_filters_and_searches_stories(site: str) -> None:
    page = httpx.get(site + "/")
    assert page.status_code == 200
    assert page.headers["content-type"] == "text/html; charset=utf-8"
    assert MS_STORY in page.text
    assert '<span class="badge kind">News</span>' in page.text
    assert (
        "Why it is here: \u201cAnti-<mark>CD19</mark> <mark>CAR\u2011T</mark> cells reduce "
        "intrathecal IgG in <mark>MS</mark>\u201d"
    ) in page.text
    for media, href in (
        ("application/atom+xml", "/atom.xml"),
        ("application/rss+xml", "/feed.xml"),
        ("application/feed+json", "/feed.json"),
    ):
        assert f'<link rel="alternate" type="{media}"' in page.text
        assert f'href="{href}"' in page.text
    topic = httpx.get(site + "/", params={"topic": "car-t-ms"})
    assert 'href="/topics/car-t-ms.atom"' in topic.text
    assert "Supermarket" not in topic.text
    found = httpx.get(site + "/", params={"q": "toilets"})
    assert "Supermarket cart hygiene study" not in found.text  # matches no topic: not a story
    assert "No stories match" in found.text
    found = httpx.get(site + "/", params={"q": "intrathecal"}).text
    assert "1 story matching \u201cintrathecal\u201d" in found
    assert "reduce <mark>intrathecal</mark> IgG" in found


def test_pages_are_rendered_by_worker_processes_and_outlive_them(
    site: str, caplog: pytest.LogCaptureFixture
) -> None:
    """The server starts its render workers; once they are up, pages are theirs, and if they
    die the next page is still served (in a thread while new workers start)."""
    caplog.set_level("INFO", logger="aggregator")
    _wait_until(lambda: _render_workers(site) == "ready")
    assert "1 story matching" in httpx.get(site + "/", params={"q": "intrathecal"}).text
    workers = multiprocessing.active_children()
    assert workers, "no render worker was started"
    for worker in workers:  # some may be an earlier test's, ending by themselves
        with contextlib.suppress(ProcessLookupError):
            os.kill(worker.pid or 0, signal.SIGKILL)
        worker.join()

    after = httpx.get(site + "/", params={"q": "IgG"})
    assert after.status_code == 200
    assert "reduce intrathecal <mark>IgG</mark>" in after.text
    assert "render_worker_died" in caplog.text  # the page was given to the dead workers first
    _wait_until(lambda: _render_workers(site) == "ready")  # new workers replaced them
    again = httpx.get(site + "/", params={"q": "cells"})
    assert "cells reduce" in again.text


def test_with_no_render_workers_pages_are_rendered_in_the_servers_threads(
    database_url: str,
    make_config: ConfigFactory,
    run_cli: CliRunnerFunction,
    feed_server: FeedServer,
) -> None:
    story = ("n1", "https://n.example/1", "CAR T-cell therapy in MS: first results")
    write_feed(feed_server.root, "news", [story])
    extra = RULES + "[server]\nrender_workers = 0\n"
    config = make_config(database_url, [("news", feed_server.url("news.xml"))], extra=extra)
    assert run_cli(config, "init").exit_code == 0
    assert run_cli(config, "fetch", "--all").exit_code == 0
    settings = load_settings(config, environ={})
    engine = create_database_engine(settings.database.url)
    try:
        with serving(create_app(Repository(engine), Outbox(engine), settings)) as url:
            assert "first results" in httpx.get(url + "/", params={"q": "first"}).text
            assert _render_workers(url) == "threads"
    finally:
        engine.dispose()


def test_a_render_worker_does_not_load_the_fetcher() -> None:
    """A render worker imports the web layer and renders pages; it fetches nothing, yet the
    fetch pipeline (httpx and, through it, pygments) came with /metrics' type hints: 13 MB of
    every worker, which lives as long as the server."""
    fetcher = ("httpx", "aggregator.pipeline.fetch_pass")
    probe = (
        "import sys, aggregator.web.render_pool\n"
        f"print(' '.join(name for name in {fetcher!r} if name in sys.modules))"
    )
    loaded = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, check=True
    ).stdout
    assert loaded.split() == []


def _render_workers(site: str) -> str:
    state: str = httpx.get(site + "/healthz").json()["render_workers"]
    return state


def _wait_until(condition: Callable[[], bool], timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.05)


def test_the_page_answers_304_until_its_stories_change(
    database_url: str,
    make_config: ConfigFactory,
    run_cli: CliRunnerFunction,
    feed_server: FeedServer,
) -> None:
    first_story = ("n1", "https://n.example/1", "CAR T-cell therapy in MS: first results")
    write_feed(feed_server.root, "news", [first_story])
    config = make_config(database_url, [("news", feed_server.url("news.xml"))], extra=RULES)
    assert run_cli(config, "init").exit_code == 0
    assert run_cli(config, "fetch", "--all").exit_code == 0
    settings = load_settings(config, environ={})
    engine = create_database_engine(settings.database.url)
    try:
        with serving(create_app(Repository(engine), Outbox(engine), settings)) as url:
            first = httpx.get(url + "/")
            etag = first.headers["etag"]
            assert first.status_code == 200
            assert "first results" in first.text
            again = httpx.get(url + "/", headers={"If-None-Match": etag})
            assert (again.status_code, again.content, again.headers["etag"]) == (304, b"", etag)
            searched = httpx.get(url + "/?q=first", headers={"If-None-Match": etag})
            assert searched.status_code == 200  # another view of the stories, its own validator

            second_story = ("n2", "https://n.example/2", "CD19 CAR T in MS: second patient")
            write_feed(feed_server.root, "news", [second_story, first_story])
            assert run_cli(config, "fetch", "--all").exit_code == 0
            changed = httpx.get(url + "/", headers={"If-None-Match": etag})
            assert changed.status_code == 200
            assert "second patient" in changed.text
            assert changed.headers["etag"] != etag

            assert run_cli(config, "fetch", "--all").exit_code == 0  # nothing new this time
            unchanged = httpx.get(url + "/", headers={"If-None-Match": changed.headers["etag"]})
            assert unchanged.status_code == 304
    finally:
        engine.dispose()


def test_the_page_escapes_what_readers_type(site: str) -> None:
    page = httpx.get(site + "/", params={"q": '<script>alert("x")</script>'})
    assert page.status_code == 200
    assert "<script>" not in page.text
    assert "&lt;script&gt;" in page.text


def test_unknown_topic_is_404_and_the_digest_archive_exists(site: str) -> None:
    assert httpx.get(site + "/", params={"topic": "nope"}).status_code == 404
    archive = httpx.get(site + "/digests/")
    assert archive.status_code == 200
    assert "No digest has been sent yet." in archive.text
