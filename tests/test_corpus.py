"""feedparser's own test corpus through the whole pipeline: 2,107 feeds, each with one oddity,
served by the local feed server and fetched, stored and published as a user would. Nothing may
crash, and every output must stay valid."""

from __future__ import annotations

import json
import tarfile
from pathlib import Path

from conftest import DATA_DIR, CliRunnerFunction, ConfigFactory
from feed_server import FeedServer
from outputs import assert_valid_outputs


def test_feedparsers_corpus_is_fetched_stored_and_published_without_a_crash(
    database_url: str,
    make_config: ConfigFactory,
    run_cli: CliRunnerFunction,
    feed_server: FeedServer,
    tmp_path: Path,
) -> None:
    with tarfile.open(DATA_DIR / "feedparser-corpus.tar.xz") as archive:
        archive.extractall(feed_server.root / "corpus", filter="data")
    files = sorted(p for p in (feed_server.root / "corpus").rglob("*") if p.is_file())
    assert len(files) == 2107
    feeds = [
        (f"fp{number:04d}", feed_server.url(str(path.relative_to(feed_server.root))))
        for number, path in enumerate(files)
    ]
    config = make_config(
        database_url,
        feeds,
        fetch='timeout = "10s"\nconcurrency = 32\nper_host = 32',
        extra='[output]\nbase_url = "https://news.example.org/"\nmax_items = 10000\n',
    )
    assert run_cli(config, "init").exit_code == 0

    fetched = run_cli(config, "fetch", "--all")

    assert fetched.exit_code == 0, fetched.output[-2000:]
    assert "internal error" not in fetched.stdout
    states = json.loads(run_cli(config, "feeds", "list", "--json").stdout)
    assert all(feed["status"] in ("ok", "error") for feed in states)
    # When this was written: 1,215 items stored, and 283 documents refused as not feeds
    # (ill-formed with nothing readable, or no feed at all), each with its reason.
    assert sum(feed["items"] for feed in states) >= 1_200
    refused = [feed for feed in states if feed["status"] == "error"]
    assert len(refused) <= 300
    assert all(feed["last_error"].startswith("not a feed") for feed in refused)
    listed = run_cli(config, "stories", "list", "--all", "--json", "--limit", "10000")
    stories = json.loads(listed.stdout)
    assert all(story["title"].strip() for story in stories)
    assert run_cli(config, "export").exit_code == 0
    assert_valid_outputs(tmp_path / "public")
