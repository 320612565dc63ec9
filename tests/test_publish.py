"""Output feeds: every format parses, says the same stories, keeps IDs and dates stable."""

from __future__ import annotations

import json
import threading
from pathlib import Path
from typing import Any

import feedparser
import pytest
from conftest import CliRunnerFunction, ConfigFactory
from defusedxml import ElementTree
from feed_server import FeedServer
from lxml import etree
from outputs import atom_schema
from samples import PRESS_RELEASE

from aggregator.files import write_atomically

RULES = """
[output]
title = "Test news"
base_url = "https://news.example.org/"
dir = "public"
max_items = 50

[terms]
car_t = ["CAR T", "KYV-101"]
ms = ["multiple sclerosis", "MS"]

[[topics]]
id = "car-t-ms"
title = "CAR T in MS"
all = ["ms", "car_t"]
"""


def rss(items: list[tuple[str, str, str, str]]) -> str:
    body = "".join(
        f"<item><guid isPermaLink='false'>{guid}</guid><link>{link}</link>"
        f"<title>{title}</title><description>{text}</description></item>"
        for guid, link, title, text in items
    )
    return (
        "<?xml version='1.0'?><rss version='2.0'><channel><title>t</title>"
        f"<link>https://t.example/</link><description>t</description>{body}</channel></rss>"
    )


@pytest.fixture
def published(
    database_url: str,
    make_config: ConfigFactory,
    run_cli: CliRunnerFunction,
    feed_server: FeedServer,
) -> Any:
    (feed_server.root / "company.xml").write_text(
        rss(
            [
                (
                    "c1",
                    "https://kyverna.example/rmat",
                    "Kyverna receives RMAT for KYV-101 in MS",
                    PRESS_RELEASE,
                ),
                (
                    "c2",
                    "https://kyverna.example/lunch",
                    "Company picnic &amp; awards",
                    "&lt;script&gt;alert(1)&lt;/script&gt;Fun for all.",
                ),
            ]
        )
    )
    (feed_server.root / "wire.xml").write_text(
        rss(
            [
                (
                    "w1",
                    "https://wire.example/k",
                    "Kyverna Therapeutics Receives FDA RMAT for KYV-101 in MS",
                    PRESS_RELEASE,
                )
            ]
        )
    )
    config = make_config(
        database_url,
        [("company", feed_server.url("company.xml")), ("wire", feed_server.url("wire.xml"))],
        extra=RULES,
    )
    run_cli(config, "init")
    fetched = run_cli(config, "fetch", "--all")
    assert "updated 6 feed files in" in fetched.stdout
    return config


def parse(path: Path) -> Any:
    result = feedparser.parse(path.read_bytes())
    assert not result.bozo, result.get("bozo_exception")
    return result


def test_every_format_parses_and_lists_the_stories(published: Path) -> None:
    public = published.parent / "public"
    # RSS categories carry the topic's title; Atom's carry its id as term, title as label.
    categories = {
        "feed.xml": "CAR T in MS",
        "atom.xml": "car-t-ms",
        "topics/car-t-ms.xml": "CAR T in MS",
        "topics/car-t-ms.atom": "car-t-ms",
    }
    for name, category in categories.items():
        feed = parse(public / name)
        [entry] = feed.entries  # one story from two sources; the picnic matches no topic
        assert entry.title == "Kyverna receives RMAT for KYV-101 in MS"
        assert entry.id.startswith("https://news.example.org/stories/")
        assert entry.link == entry.id  # the story's own page, with every source
        assert [tag.term for tag in entry.tags] == [category]
        content = entry.content[0].value if "content" in entry else entry.description
        assert "Reported by:" in content
        assert 'href="https://kyverna.example/rmat"' in content
        assert 'href="https://wire.example/k"' in content
        assert "Why it is here (CAR T in MS):" in content


def test_rss_has_the_required_elements_and_a_self_link(published: Path) -> None:
    root = ElementTree.parse(published.parent / "public" / "feed.xml").getroot()
    channel = root.find("channel")
    assert root.get("version") == "2.0"
    for element in ("title", "link", "description", "lastBuildDate"):
        assert channel.findtext(element), element
    self_link = channel.find("{http://www.w3.org/2005/Atom}link")
    assert self_link.get("rel") == "self"
    assert self_link.get("href") == "https://news.example.org/feed.xml"
    for item in channel.findall("item"):
        assert item.findtext("title")
        assert item.find("guid").get("isPermaLink") == "true"  # the story's page
        assert item.findtext("link") == item.findtext("guid")


def test_atom_has_the_required_elements(published: Path) -> None:
    atom = "{http://www.w3.org/2005/Atom}"
    root = ElementTree.parse(published.parent / "public" / "atom.xml").getroot()
    for element in ("id", "title", "updated", "author"):
        assert root.find(atom + element) is not None, element
    assert root.find(f"{atom}link[@rel='self']").get("href") == "https://news.example.org/atom.xml"
    for entry in root.findall(atom + "entry"):
        for element in ("id", "title", "updated"):
            assert entry.find(atom + element) is not None, element


def test_atom_is_valid_against_the_rfc_4287_schema(published: Path) -> None:
    schema = atom_schema()
    broken = b'<feed xmlns="http://www.w3.org/2005/Atom"><title>no id, no date</title></feed>'
    assert not schema.validate(etree.fromstring(broken))  # the schema does catch mistakes
    for name in ("atom.xml", "topics/car-t-ms.atom"):
        document = etree.parse(str(published.parent / "public" / name))
        assert schema.validate(document), schema.error_log.last_error


def test_json_feed_has_the_required_fields(published: Path) -> None:
    document = json.loads((published.parent / "public" / "feed.json").read_text())
    assert document["version"] == "https://jsonfeed.org/version/1.1"
    assert document["title"] == "Test news"
    assert document["feed_url"] == "https://news.example.org/feed.json"
    [item] = document["items"]
    assert item["id"].startswith("https://news.example.org/stories/")
    assert item["url"] == item["id"]
    assert item["external_url"] == "https://kyverna.example/rmat"
    assert "Reported by" in item["content_html"]
    assert item["tags"] == ["car-t-ms"]


def test_exporting_again_without_changes_writes_the_same_bytes(
    published: Path, run_cli: CliRunnerFunction
) -> None:
    public = published.parent / "public"
    before = {path: (path.read_bytes(), path.stat().st_mtime_ns) for path in public.rglob("*.*")}
    result = run_cli(published, "export")
    assert result.exit_code == 0
    assert "updated 0 feed files" in result.stdout
    after = {path: (path.read_bytes(), path.stat().st_mtime_ns) for path in public.rglob("*.*")}
    assert after == before  # not even rewritten: HTTP validators derived from files stay


def test_new_stories_keep_old_ids_and_move_the_build_date(
    published: Path, run_cli: CliRunnerFunction, feed_server: FeedServer
) -> None:
    public = published.parent / "public"
    first = parse(public / "atom.xml")
    (feed_server.root / "wire.xml").write_text(
        rss(
            [
                ("w2", "https://wire.example/new", "CAR T trial opens for MS", "A new trial."),
                (
                    "w1",
                    "https://wire.example/k",
                    "Kyverna Therapeutics Receives FDA RMAT for KYV-101 in MS",
                    PRESS_RELEASE,
                ),
            ]
        )
    )
    run_cli(published, "fetch", "--all")
    second = parse(public / "atom.xml")
    assert [e.title for e in second.entries] == [
        "CAR T trial opens for MS",
        "Kyverna receives RMAT for KYV-101 in MS",
    ]
    assert second.entries[1].id == first.entries[0].id
    assert second.feed.updated > first.feed.updated


def test_export_one_feed_to_a_file(
    published: Path, run_cli: CliRunnerFunction, tmp_path: Path
) -> None:
    target = tmp_path / "out" / "ms.json"
    result = run_cli(published, "export", "--topic", "car-t-ms", "--output", str(target))
    assert result.exit_code == 0, result.output
    assert json.loads(target.read_text())["title"] == "Test news: CAR T in MS"
    atom = tmp_path / "all.atom"
    run_cli(published, "export", "--output", str(atom))
    assert parse(atom).version == "atom10"


def test_nothing_unsafe_reaches_a_feed(
    published: Path, run_cli: CliRunnerFunction, tmp_path: Path
) -> None:
    # The picnic matches no topic, so give every story a way into a feed: a topic of everything.
    config = published.read_text().replace('all = ["ms", "car_t"]', 'any = ["ms", "car_t", "fun"]')
    published.write_text(
        config.replace(
            'ms = ["multiple sclerosis", "MS"]',
            'ms = ["multiple sclerosis", "MS"]\nfun = ["picnic"]',
        )
    )
    run_cli(published, "fetch")  # applies the new rules, then writes the feeds
    for name in ("feed.xml", "atom.xml", "feed.json"):
        text = (published.parent / "public" / name).read_text()
        assert "Company picnic" in text
        assert "<script" not in text
        assert "&lt;script" not in text


def test_readers_never_see_half_a_file(tmp_path: Path) -> None:
    path = tmp_path / "feed.json"
    versions = [json.dumps({"n": n, "pad": "x" * 200_000}).encode() for n in range(2)]
    write_atomically(path, versions[0])
    stop = threading.Event()
    torn: list[int] = []

    def read() -> None:
        while not stop.is_set():
            data = path.read_bytes()
            if data not in versions:
                torn.append(len(data))

    reader = threading.Thread(target=read)
    reader.start()
    for n in range(200):
        write_atomically(path, versions[n % 2])
    stop.set()
    reader.join()
    assert torn == []
