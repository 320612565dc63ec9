"""The digest as a reader sees it, built from plain values: order, grouping, why, escaping,
headers. Sending, the outbox and crashes are in test_digest_send.py."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta
from email import message_from_bytes, policy
from email.message import EmailMessage

import pytest

from aggregator.config import Subscriber
from aggregator.models import FeedRow, StoryRow, StorySource, TermHit, TopicMatch
from aggregator.publish.digest import (
    DigestContent,
    Envelope,
    build_content,
    compose,
    excerpt,
    message_id,
    render_html,
    render_text,
    subject_line,
)
from aggregator.publish.why import Segment, highlight

NOW = datetime(2026, 11, 23, 7, 0, tzinfo=UTC)
TITLES = {"car-t-ms": "CAR T in MS", "car-t-lupus": "CAR T in lupus"}
READER = Subscriber("reader@example.org", ("car-t-ms", "car-t-lupus"), "0 7 * * 1", "UTC", False)


def story(
    story_id: int,
    title: str,
    *,
    kind: str | None = "news",
    topics: tuple[str, ...] = ("car-t-ms",),
    hours_ago: int = 1,
    also: tuple[str, ...] = (),
    summary: str = "CD19 CAR T cells in multiple sclerosis.",
    updated: bool = False,
) -> StoryRow:
    seen = NOW - timedelta(hours=hours_ago)
    link = f"https://{kind or 'other'}.example/{story_id}"
    sources = [StorySource(story_id * 10, "best", kind, title, link, seen, "Best Source")]
    sources += [
        StorySource(story_id * 10 + n, name, "news", title, f"https://{name}.example/", seen, name)
        for n, name in enumerate(also, start=1)
    ]
    hits = (TermHit("car_t", "CAR T", "title", "CAR T"), TermHit("ms", "MS", "title", "MS"))
    return StoryRow(
        id=story_id,
        title=title,
        link=link,
        first_seen=seen - timedelta(days=30) if updated else seen,
        updated=seen,
        news_at=seen,
        summary=summary,
        sources=tuple(sources),
        matches=tuple(TopicMatch(topic, 1.0, hits) for topic in topics),
        published=seen,
    )


def content(stories: list[StoryRow], feeds: list[FeedRow] | None = None) -> DigestContent:
    return build_content(
        stories,
        READER,
        title="CAR T in MS news",
        topic_titles=TITLES,
        period=(NOW - timedelta(days=7), NOW),
        feeds=feeds or [],
        base_url="https://news.example.org/",
        contact="digest@news.example.org",
    )


def shape(digest: DigestContent) -> list[tuple[str, str, list[str]]]:
    return [
        (topic.title, kind.heading, [story.title for story in kind.stories])
        for topic in digest.sections
        for kind in topic.kinds
    ]


def test_stories_are_grouped_by_topic_then_kind_newest_first() -> None:
    digest = content(
        [
            story(1, "Older MS news", hours_ago=5),
            story(2, "Lupus paper", kind="journal", topics=("car-t-lupus",)),
            story(3, "Trial opens", kind="registry", hours_ago=9),
            story(4, "Newer MS news", hours_ago=2),
            story(5, "Society post", kind="society"),
            story(6, "MS preprint", kind="preprint"),
            story(7, "Both topics", kind="journal", topics=("car-t-lupus", "car-t-ms")),
            story(8, "Unknown kind", kind=None),
        ]
    )
    assert shape(digest) == [
        ("CAR T in MS", "Trial updates", ["Trial opens"]),
        ("CAR T in MS", "Papers", ["Both topics"]),  # under the reader's first topic, once
        ("CAR T in MS", "Preprints", ["MS preprint"]),
        ("CAR T in MS", "News", ["Newer MS news", "Older MS news"]),
        ("CAR T in MS", "Society posts", ["Society post"]),
        ("CAR T in MS", "Other sources", ["Unknown kind"]),
        ("CAR T in lupus", "Papers", ["Lupus paper"]),
    ]
    assert digest.count == 8
    assert sorted(digest.story_ids) == list(range(1, 9))


def test_stories_outside_the_readers_topics_are_left_out() -> None:
    digest = build_content(
        [story(1, "MS news"), story(2, "Lupus news", topics=("car-t-lupus",))],
        Subscriber("ms@example.org", ("car-t-ms",), "0 7 * * 1", "UTC", False),
        title="t",
        topic_titles=TITLES,
        period=(NOW - timedelta(days=7), NOW),
        feeds=[],
        base_url="https://news.example.org/",
        contact="digest@news.example.org",
    )
    assert shape(digest) == [("CAR T in MS", "News", ["MS news"])]


@pytest.mark.parametrize(
    ("text", "words", "expected"),
    [
        pytest.param(
            "CD19 CAR T in MS",
            ["CAR T", "MS"],
            [("CD19 ", 0), ("CAR T", 1), (" in ", 0), ("MS", 1)],
        ),
        pytest.param("ms and MS", ["MS"], [("ms", 1), (" and ", 0), ("MS", 1)], id="any-case"),
        pytest.param("MSAA and LC-MS", ["MS"], [("MSAA and LC-", 0), ("MS", 1)], id="words-only"),
        pytest.param("CAR T-cell", ["CAR T-cell", "CAR T"], [("CAR T-cell", 1)], id="longest"),
        pytest.param("nothing here", [], [("nothing here", 0)], id="no-words"),
        pytest.param("", ["MS"], [], id="empty"),
    ],
)
def test_matched_words_are_highlighted(
    text: str, words: list[str], expected: list[tuple[str, int]]
) -> None:
    assert highlight(text, words) == tuple(Segment(t, bool(m)) for t, m in expected)


def test_excerpts_are_cut_at_a_word() -> None:
    assert excerpt("short  text\n") == "short text"
    long = "word " * 100
    cut = excerpt(long, 42)
    assert cut.endswith("…")
    assert len(cut) <= 43
    assert cut[:-1].split() == ["word"] * len(cut[:-1].split())


def test_the_digest_quotes_the_sentence_that_made_the_match() -> None:
    quoted = "Two people with progressive MS received CAR-T cells in Erlangen."
    hits = (
        TermHit("car_t", "CAR T", "summary", "CAR T"),
        TermHit("ms", "MS", "summary", "MS"),
        TermHit("ms", "", "feed", "ms-society"),  # the feed's own topic: no word of the story
    )
    row = replace(
        story(1, "Neurology news this week"),
        matches=(TopicMatch("car-t-ms", 5.0, hits, quoted),),
    )
    text = render_text(content([row]))
    assert f"Why (CAR T in MS): \u201c{quoted}\u201d" in text
    assert "ms-society" not in text
    html = render_html(content([row]))
    assert '<strong style="background:#fff1b8;color:#1d1d1b;">CAR-T</strong>' in html
    assert '<strong style="background:#fff1b8;color:#1d1d1b;">MS</strong> received' in html


def test_the_text_part_says_why_and_who_else_reported_it() -> None:
    text = render_text(
        content(
            [
                story(1, "KYSA-8 opens", kind="registry", also=("MS Society",), updated=True),
            ],
            feeds=[
                FeedRow(
                    "ctgov",
                    "https://x/",
                    "rss",
                    "ClinicalTrials.gov",
                    "error",
                    "HTTP 503",
                    3,
                    NOW,
                    NOW - timedelta(days=2),
                    None,
                    4,
                ),
                FeedRow("ok", "https://y/", "rss", None, "ok", None, 0, NOW, NOW, None, 1),
                FeedRow(
                    "gone",
                    "https://z/",
                    "rss",
                    None,
                    "paused",
                    "HTTP 410 Gone",
                    1,
                    NOW,
                    None,
                    None,
                    0,
                ),
            ],
        )
    )
    assert "1 new story, 16 Nov 2026 to 23 Nov 2026" in text
    assert "== CAR T in MS ==" in text
    assert "-- Trial updates --" in text
    assert "* Updated: KYSA-8 opens" in text
    assert "Best Source · 23 Nov 2026" in text
    assert "Why (CAR T in MS): CAR T, MS" in text
    assert "Also reported by: MS Society <https://MS Society.example/>" in text
    assert "- ClinicalTrials.gov: HTTP 503 (last worked 21 Nov 2026)\n" in text
    assert "ok:" not in text
    assert "- gone: HTTP 410 Gone (never worked yet); paused, no longer fetched" in text
    assert "write to digest@news.example.org" in text
    assert "https://news.example.org/digests/" in text


def test_feed_text_is_escaped_in_the_html_part() -> None:
    html = render_html(
        content([story(1, "<script>alert(1)</script> CAR T & MS", summary="<b>bold</b> MS")])
    )
    assert "<script>alert" not in html
    assert "&lt;script&gt;alert(1)&lt;/script&gt; CAR T &amp; MS" in html
    assert "&lt;b&gt;bold&lt;/b&gt;" in html
    assert '<strong style="background:#fff1b8;">MS</strong>' in html


def test_subject_follows_the_template_on_one_line() -> None:
    digest = content([story(1, "a"), story(2, "b")])
    assert subject_line("{count_text} · {title} · {date}", digest, "News") == (
        "2 new stories · News · 23 Nov 2026"
    )
    assert subject_line("{title}: {count}", digest, "Two\r\nBcc: x@y") == "Two Bcc: x@y: 2"
    assert subject_line("{count_text}", content([]), "t") == "No new stories"
    assert subject_line("{count_text}", content([story(1, "a")]), "t") == "1 new story"


def test_message_ids_are_the_same_for_the_same_reader_and_run() -> None:
    sender = "Digest <digest@news.example.org>"
    first = message_id("Reader@Example.org", NOW, sender)
    assert first == message_id("reader@example.org", NOW, sender)
    assert first.startswith("<digest.20261123T070000Z.")
    assert first.endswith("@news.example.org>")
    assert first != message_id("other@example.org", NOW, sender)
    assert first != message_id("reader@example.org", NOW + timedelta(days=7), sender)


def parse(message: bytes) -> EmailMessage:
    parsed = message_from_bytes(message, policy=policy.default)
    assert isinstance(parsed, EmailMessage)
    return parsed


def test_the_message_is_multipart_alternative_with_list_headers() -> None:
    evil = "CAR T in MS\r\nBcc: victim@example.org\r\n\r\n<b>body</b>"
    envelope = Envelope(
        sender="CAR T digest <digest@news.example.org>",
        recipient="reader@example.org",
        message_id="<digest.x@news.example.org>",
        subject="3 new stories",
    )
    message = parse(compose(content([story(1, evil)]), envelope))
    assert message.get_content_type() == "multipart/alternative"
    assert [part.get_content_type() for part in message.iter_parts()] == [
        "text/plain",
        "text/html",
    ]
    assert set(message.keys()) == {
        "From",
        "To",
        "Subject",
        "Date",
        "Message-ID",
        "List-Id",
        "List-Unsubscribe",
        "Auto-Submitted",
        "MIME-Version",
        "Content-Type",
    }
    assert message["To"] == "reader@example.org"
    assert message["Message-ID"] == "<digest.x@news.example.org>"
    assert message["List-Id"] == "CAR T in MS news <digest.news.example.org>"
    assert message["List-Unsubscribe"] == "<mailto:digest@news.example.org?subject=unsubscribe>"
    assert message["Date"] == "Mon, 23 Nov 2026 07:00:00 +0000"
    text = message.get_body(("plain",))
    html = message.get_body(("html",))
    assert text is not None
    assert html is not None
    assert "Bcc: victim@example.org" in text.get_content()  # in the body, as text
    assert "&lt;b&gt;body&lt;/b&gt;" in html.get_content()
