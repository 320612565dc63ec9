"""The HTTP server on 127.0.0.1: feeds with the right types, validators, 304s, gzip; health."""

from __future__ import annotations

import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import feedparser
import httpx
import pytest
import uvicorn
from conftest import CliRunnerFunction, ConfigFactory
from feed_server import FeedServer

from aggregator.config import load_settings
from aggregator.store.database import create_database_engine
from aggregator.store.repository import Repository
from aggregator.web import create_app

RULES = """
[output]
base_url = "https://news.example.org/"

[terms]
car_t = ["CAR T"]
cd19 = ["CD19"]
ms = ["multiple sclerosis", "MS"]

[vetoes]
MS = ["LC-MS", "mass spectrometry"]

[[topics]]
id = "car-t-ms"
title = "CAR T in MS"
all = ["ms"]
any = ["car_t", "cd19"]
"""


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


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
        [("mixed", feed_server.url("mixed-topics.xml")), ("gone", feed_server.url("status/410"))],
        extra=RULES,
    )
    run_cli(config, "init")
    run_cli(config, "fetch", "--all")
    settings = load_settings(config, environ={})
    engine = create_database_engine(settings.database.url)
    port = free_port()
    server = uvicorn.Server(
        uvicorn.Config(
            create_app(Repository(engine), settings.output.dir),
            host="127.0.0.1",
            port=port,
            log_config=None,
            lifespan="off",
        )
    )
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not server.started and time.monotonic() < deadline:
        time.sleep(0.02)
    yield f"http://127.0.0.1:{port}"
    server.should_exit = True
    thread.join(timeout=10)
    engine.dispose()


@pytest.mark.parametrize(
    ("path", "media_type", "version"),
    [
        pytest.param("/feed.xml", "application/rss+xml; charset=utf-8", "rss20", id="rss"),
        pytest.param("/atom.xml", "application/atom+xml; charset=utf-8", "atom10", id="atom"),
        pytest.param(
            "/topics/car-t-ms.xml", "application/rss+xml; charset=utf-8", "rss20", id="topic-rss"
        ),
        pytest.param(
            "/topics/car-t-ms.atom",
            "application/atom+xml; charset=utf-8",
            "atom10",
            id="topic-atom",
        ),
        pytest.param("/feed.json", "application/feed+json; charset=utf-8", "", id="json"),
    ],
)
def test_feeds_are_served_with_their_type_and_validators(
    site: str, path: str, media_type: str, version: str
) -> None:
    response = httpx.get(site + path)
    assert response.status_code == 200
    assert response.headers["content-type"] == media_type
    assert response.headers["etag"]
    assert response.headers["last-modified"]
    if version:
        parsed = feedparser.parse(response.content)
        assert parsed.version == version
        assert not parsed.bozo
        assert [e.title for e in parsed.entries] == [
            "Anti-CD19 CAR\u2011T cells reduce intrathecal IgG in MS"
        ]
    else:
        assert response.json()["items"][0]["title"].startswith("Anti-CD19 CAR")


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
    assert health["last_successful_fetch"] is not None
    assert health["feeds"] == 2
    assert health["failing_feeds"] == [
        {"name": "gone", "last_error": "HTTP 410 Gone", "consecutive_failures": 1}
    ]


def test_unknown_paths_are_404(site: str) -> None:
    assert httpx.get(site + "/nothing-here.xml").status_code == 404
    assert httpx.get(site + "/../config.toml").status_code == 404


def test_aggregator_serve_runs_until_stopped(
    tmp_path: Path, make_config: ConfigFactory, run_cli: CliRunnerFunction
) -> None:
    config = make_config(f"sqlite:///{tmp_path / 'serve.db'}", extra=RULES)
    run_cli(config, "init")
    port = free_port()
    command = [sys.executable, "-m", "aggregator", "--config", str(config), "serve"]
    with subprocess.Popen(
        [*command, "--port", str(port)], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE
    ) as process:
        deadline = time.monotonic() + 20
        while True:
            try:
                response = httpx.get(f"http://127.0.0.1:{port}/feed.xml")
                break
            except httpx.ConnectError:
                assert process.poll() is None, "aggregator serve exited early"
                assert time.monotonic() < deadline, "aggregator serve did not start"
                time.sleep(0.1)
        process.terminate()
        _, stderr = process.communicate(timeout=10)
    assert response.status_code == 200
    assert feedparser.parse(response.content).version == "rss20"
    assert process.returncode == 0, stderr.decode()
