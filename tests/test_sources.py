"""Feed bodies of every format and oddity -> clean entries (pure: bytes in, values out)."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path

import feedparser
import pytest
from feed_server import write_feed

from aggregator.errors import ParseError
from aggregator.models import Entry, ParsedFeed
from aggregator.sanitise import sanitise_html
from aggregator.sources.rss import parse_feed
from aggregator.sources.xmlparts import split_feed

FEEDS = Path(__file__).parent / "data" / "feeds"
FETCHED_AT = datetime(2026, 11, 21, 12, 0, tzinfo=UTC)


def parse(name: str, url: str | None = None, **split: int) -> ParsedFeed:
    """The file parsed, with its entries read (a large feed's come as an iterator)."""
    parsed = parse_feed(
        (FEEDS / name).read_bytes(),
        url=url or f"https://feeds.example.org/{name}",
        content_type=None,
        fetched_at=FETCHED_AT,
        **split,
    )
    return replace(parsed, entries=tuple(parsed.entries))


def only(feed: ParsedFeed) -> Entry:
    assert len(feed.entries) == 1
    return feed.entries[0]


def test_rss_20() -> None:
    feed = parse("rss20.xml")
    assert feed.title == "MS Research News"
    first, second = feed.entries
    assert first.title == "CAR T-cell therapy KYV-101 enters phase 2 in multiple sclerosis"
    assert first.identity == first.guid == "news-example-1001"
    assert first.link == "https://news.example.org/2026/kyv-101-phase-2"
    assert first.published_at == datetime(2026, 11, 3, 9, 30, tzinfo=UTC)
    assert not first.date_estimated
    assert first.authors == ("A. Researcher",)
    assert first.categories == ("CAR T", "Trials")
    assert first.summary == "The KYSA-7 trial opens at five sites."
    assert first.content_html == "<p>The KYSA-7 trial <b>opens</b> at five sites.</p>"
    assert second.summary == "A cohort of 2,000 people with relapsing MS."


def test_rss_091_in_latin_1_without_guids_or_dates() -> None:
    entry = only(parse("rss091.xml"))
    assert entry.title == "Thérapie CAR-T : premiers résultats"
    assert entry.guid is None
    assert entry.identity == entry.link == "https://society.example.org/news/car-t"
    assert entry.published_at == FETCHED_AT
    assert entry.date_estimated


def test_rss_10_rdf() -> None:
    entry = only(parse("rss10.rdf"))
    assert entry.title == "Anti-CD19 CAR T cells in progressive multiple sclerosis"
    assert entry.link == "https://journal.example.org/article/10.1000/jni.2026.001"
    assert entry.published_at == datetime(2026, 10, 30, 12, 0, tzinfo=UTC)
    assert entry.authors == ("B. Clinician",)


def test_atom_10() -> None:
    entry = only(parse("atom10.xml"))
    assert entry.title == "Stanford opens CAR-T study for MS"
    assert entry.identity == "tag:centre.example.org,2026:news-42"
    assert entry.link == "https://centre.example.org/news/stanford-car-t-ms"
    assert entry.published_at == datetime(2026, 11, 1, 8, 0, tzinfo=UTC)
    assert entry.updated_at == datetime(2026, 11, 1, 10, 0, tzinfo=UTC)
    assert 'href="https://centre.example.org/trials/42"' in entry.content_html
    assert entry.authors == ("Press Office",)


def test_json_feed() -> None:
    feed = parse("feed.json")
    entry = only(feed)
    assert feed.title == "JSON Feed: CAR T news"
    assert entry.identity == "json-1"
    assert entry.title == "Rese-cel data in lupus and MS"
    assert entry.link == "https://json.example.org/posts/1"
    assert entry.published_at == datetime(2026, 11, 2, 10, 0, tzinfo=UTC)
    assert "<strong>rese-cel</strong>" in entry.content_html
    assert "script" not in entry.content_html
    assert entry.authors == ("Newsroom",)
    assert entry.categories == ("CAR T",)


def test_items_without_guid_fall_back_to_link_then_content_hash() -> None:
    with_link, without = parse("no-guid.xml").entries
    assert with_link.identity == "https://noguid.example.org/posts/with-link"
    assert without.link is None
    assert without.identity == f"sha256:{without.content_hash}"


def test_duplicate_guids_keep_the_first_entry() -> None:
    entries = parse("duplicate-guids.xml").entries
    assert [entry.identity for entry in entries] == ["dup-1", "dup-2"]
    assert entries[0].title == "Newest version of the post"


def test_markup_in_titles_becomes_text_and_content_is_sanitised() -> None:
    entry = only(parse("title-markup.xml"))
    assert entry.title == "CAR T in MS & lupus"
    assert entry.summary == "Safe text"
    for forbidden in ("<script", "alert", "<iframe", "onclick", "steal"):
        assert forbidden not in entry.content_html


def test_javascript_links_never_survive() -> None:
    entry = only(parse("javascript-link.xml"))
    assert entry.link is None
    assert "javascript" not in entry.content_html.lower()
    assert 'href="https://ok.example.org/"' in entry.content_html


def test_relative_links_resolve_against_the_feed_url() -> None:
    feed = parse("relative-links.xml", url="https://relative.example.org/feeds/news.xml")
    entry = only(feed)
    assert feed.link == "https://relative.example.org/"
    assert entry.link == "https://relative.example.org/news/relative-item"
    assert 'href="https://relative.example.org/about"' in entry.content_html


def test_a_relative_xml_base_resolves_against_the_feed_url() -> None:
    entry = only(parse("relative-base.xml", url="https://base.example.org/feeds/atom.xml"))
    assert entry.link == "https://base.example.org/centre/news/sites"
    assert 'href="https://base.example.org/centre/trials/7"' in entry.content_html
    assert 'src="https://base.example.org/centre/map.png"' in entry.content_html


def test_json_feed_relative_links_resolve_against_the_feed_url() -> None:
    entry = only(parse("relative-links.json", url="https://json.example.org/feeds/feed.json"))
    assert entry.link == "https://json.example.org/posts/1"
    assert 'href="https://json.example.org/about"' in entry.content_html
    assert 'src="https://json.example.org/feeds/img/chart.png"' in entry.content_html


def test_a_relative_link_with_no_absolute_base_is_dropped() -> None:
    html = sanitise_html(
        '<a href="/about">about</a> <a href="https://ok.example.org/">ok</a>', "/f"
    )
    assert 'href="/about"' not in html
    assert ">about</a>" in html
    assert 'href="https://ok.example.org/"' in html


def test_implausible_dates_become_the_fetch_time_flagged() -> None:
    entries = {entry.title: entry for entry in parse("bad-dates.xml").entries}
    for title in ("Epoch", "Future", "Garbage"):
        assert entries[title].published_at == FETCHED_AT, title
        assert entries[title].date_estimated, title
    assert entries["Good"].published_at == datetime(2026, 11, 1, 12, 0, tzinfo=UTC)
    assert not entries["Good"].date_estimated


@pytest.mark.parametrize(
    ("name", "reason"),
    [
        pytest.param("malformed.xml", "not a feed", id="malformed-xml"),
        pytest.param("login-page.html", "HTML page", id="html-login-page"),
    ],
)
def test_what_is_not_a_feed_is_a_parse_error(name: str, reason: str) -> None:
    with pytest.raises(ParseError, match=reason) as caught:
        parse(name)
    assert caught.value.url.endswith(name)


@pytest.mark.parametrize(
    ("body", "reason"),
    [
        pytest.param(b"", "empty", id="empty-body"),
        pytest.param(
            b'{"version": "https://jsonfeed.org/version/1.1"}', "items", id="json-no-items"
        ),
        pytest.param(b'{"hello": "world"}', "version", id="json-not-a-feed"),
        pytest.param(b'{"broken": ', "invalid JSON", id="json-broken"),
    ],
)
def test_bodies_that_are_not_feeds(body: bytes, reason: str) -> None:
    with pytest.raises(ParseError, match=reason):
        parse_feed(body, url="https://x.example/feed", content_type=None, fetched_at=FETCHED_AT)


def test_truncated_feed_keeps_the_items_it_has() -> None:
    body = (FEEDS / "rss20.xml").read_bytes()
    truncated = body[: body.index(b"<title>Vitamin D")]
    feed = parse_feed(
        truncated, url="https://x.example/f", content_type=None, fetched_at=FETCHED_AT
    )
    assert [entry.identity for entry in feed.entries][:1] == ["news-example-1001"]


XML_FILES = sorted(
    str(path.relative_to(FEEDS)) for path in FEEDS.rglob("*") if path.suffix in (".xml", ".rdf")
)


def parse_outcome(name: str, **split: int) -> ParsedFeed | str:
    try:
        return parse(name, **split)
    except ParseError as error:
        return error.reason


@pytest.mark.parametrize("name", XML_FILES)
def test_a_feed_parsed_in_parts_gives_what_it_gives_whole(name: str) -> None:
    assert parse_outcome(name, split_bytes=0, items_per_part=1) == parse_outcome(name)


def test_a_feed_of_many_scan_chunks_parsed_in_parts_gives_what_it_gives_whole(
    tmp_path: Path,
) -> None:
    items = [(f"g{n}", f"https://x.example/{n}", f"Item {n}", "words " * 50) for n in range(900)]
    write_feed(tmp_path, "long", items)
    body = (tmp_path / "long.xml").read_bytes()
    assert len(body) > 4 * 64 * 1024

    def entries(**split: int) -> tuple[Entry, ...]:
        parsed = parse_feed(
            body, url="https://x.example/", content_type=None, **split, fetched_at=FETCHED_AT
        )
        return tuple(parsed.entries)

    assert entries(split_bytes=0, items_per_part=7) == entries()
    assert [entry.guid for entry in entries(split_bytes=0)] == [f"g{n}" for n in range(900)]


def test_a_large_feed_is_cut_into_parts_of_its_items() -> None:
    items = "".join(
        f"<item><guid>g{n}</guid><title>Item {n} &amp; more</title></item>" for n in range(7)
    )
    body = (
        f'<?xml version="1.0"?><rss version="2.0"><channel><title>Big</title>{items}'
        "<ttl>60</ttl></channel></rss>"
    )
    parts = split_feed(body.encode(), 3)
    assert parts is not None
    parsed = [feedparser.parse(part) for part in parts]
    assert [[entry.title for entry in part.entries] for part in parsed] == [
        ["Item 0 & more", "Item 1 & more", "Item 2 & more"],
        ["Item 3 & more", "Item 4 & more", "Item 5 & more"],
        ["Item 6 & more"],
    ]
    assert not any(part.bozo for part in parsed)  # each part is a well-formed feed of its own
    assert {part.feed.title for part in parsed} == {"Big"}


@pytest.mark.parametrize(
    "body",
    [
        pytest.param(b"<rss><channel><item><title>x</item></channel></rss>", id="malformed"),
        pytest.param("<rss><channel><item/><item/></channel></rss>".encode("utf-16"), id="utf-16"),
        pytest.param(b"<rss><channel><item/></channel></rss>", id="one-part-only"),
    ],
)
def test_what_cannot_or_need_not_be_cut_is_parsed_whole(body: bytes) -> None:
    assert split_feed(body, 1) is None
