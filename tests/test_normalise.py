"""Pure text, link and date rules, one row per real-world case."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import pytest

from aggregator.normalise import (
    UNTITLED,
    clean_text,
    fallback_title,
    html_blocks_only,
    plausible_date,
    safe_link,
    text_from_html,
)
from aggregator.sources.entries import RawEntry, build_entry

NOW = datetime(2026, 11, 21, 12, 0, tzinfo=UTC)
BASE = "https://feeds.example.org/news/feed.xml"


TEXTS_OF_MARKUP = [
    pytest.param("CAR T in MS", "CAR T in MS", id="plain"),
    pytest.param("<b>CAR</b>-T <i>cells</i>", "CAR-T cells", id="tags-inside-words"),
    pytest.param("CAR&nbsp;T &amp; MS", "CAR T & MS", id="entities"),
    pytest.param("&lt;i&gt;EBV&lt;/i&gt; in MS", "EBV in MS", id="escaped-markup-is-text-too"),
    pytest.param("CD5&lt;sup&gt;+&lt;/sup&gt; T cells", "CD5+ T cells", id="escaped-superscript"),
    pytest.param("&amp;lt;b&amp;gt;CAR&amp;lt;/b&amp;gt;-T", "CAR-T", id="escaped-twice"),
    pytest.param(
        "J Neurol Neurosurg &amp;amp; Psychiatry",
        "J Neurol Neurosurg & Psychiatry",
        id="ampersand-escaped-twice",
    ),
    pytest.param(
        "<p>Kyverna Therapeutics</p><p>Recruiting</p>",
        "Kyverna Therapeutics Recruiting",
        id="paragraphs-keep-words-apart",
    ),
    pytest.param(
        "2 December 2026<br/>Results from",
        "2 December 2026 Results from",
        id="line-break-keeps-words-apart",
    ),
    pytest.param(
        "<ul><li>Relapsing MS</li><li>CD19</li></ul>",
        "Relapsing MS CD19",
        id="list-items-keep-words-apart",
    ),
    pytest.param("<td>MS</td><td>CAR T</td>", "MS CAR T", id="table-cells-keep-words-apart"),
    pytest.param("multiple scle\u00adrosis", "multiple sclerosis", id="soft-hyphen"),
    pytest.param("multiple scle&shy;rosis", "multiple sclerosis", id="soft-hyphen-entity"),
    pytest.param("CAR\u200b-T for MS\u200b:", "CAR-T for MS:", id="zero-width-space"),
    pytest.param("\u202eMS\u202c CAR T", "MS CAR T", id="bidi-controls"),
    pytest.param("\ufeffCAR T", "CAR T", id="byte-order-mark-inside-text"),
    pytest.param("a<script>alert(1)</script>b", "ab", id="script-content-dropped"),
    pytest.param("a<style>p{}</style>b", "ab", id="style-content-dropped"),
    pytest.param("line\none\r\n\ttwo", "line one two", id="whitespace-collapsed"),
    pytest.param("bell\x07 and\x00 nul", "bell and nul", id="control-characters"),
    pytest.param("non\ufffecharacter", "noncharacter", id="noncharacter-dropped"),
    pytest.param("CD19 < 5% & > 2%", "CD19 < 5% & > 2%", id="comparison-signs-kept"),
    pytest.param("<!-- hidden -->shown", "shown", id="comments-dropped"),
    pytest.param("<h2>Results</h2><hr>In MS<figure>x</figure>", "Results In MS x", id="blocks"),
    pytest.param(
        '<p class="lede">CAR&nbsp;T <a href="/a">in MS</a></p>', "CAR T in MS", id="attrs"
    ),
]


@pytest.mark.parametrize(("markup", "expected"), TEXTS_OF_MARKUP)
def test_text_from_html(markup: str, expected: str) -> None:
    assert text_from_html(markup) == expected


@pytest.mark.parametrize(("markup", "expected"), TEXTS_OF_MARKUP)
def test_markup_cut_to_its_blocks_keeps_its_text(markup: str, expected: str) -> None:
    """Matching reads a field's blocks from `html_blocks_only`: the same words the reader sees."""
    assert text_from_html(html_blocks_only(markup)) == expected


@pytest.mark.parametrize(
    ("markup", "link", "expected"),
    [
        pytest.param(
            "<p>KYSA-7 update from Kyverna</p><p>Recruiting in Germany.</p>",
            None,
            "KYSA-7 update from Kyverna",
            id="first-paragraph",
        ),
        pytest.param(
            "Sites open in Germany. More follow in 2027.",
            None,
            "Sites open in Germany.",
            id="first-sentence",
        ),
        pytest.param(
            "Dr. Schett's team in Erlangen treated two people with MS. More follow.",
            None,
            "Dr. Schett's team in Erlangen treated two people with MS.",
            id="abbreviation-inside",
        ),
        pytest.param(
            "Reading list:<ul><li>MS</li></ul>", None, "Reading list", id="trailing-colon"
        ),
        pytest.param(
            "word " * 60, None, ("word " * 23).strip() + "…", id="long-text-cut-at-a-word"
        ),
        pytest.param("", "https://a.example/post/1", "https://a.example/post/1", id="link-only"),
        pytest.param("<p></p>", None, UNTITLED, id="nothing-at-all"),
    ],
)
def test_an_untitled_item_takes_a_title_from_its_text(
    markup: str, link: str | None, expected: str
) -> None:
    assert fallback_title(markup, link) == expected


def test_text_is_capped_with_an_ellipsis() -> None:
    assert text_from_html("word " * 100, max_length=20) == "word word word word…"


def test_clean_text_removes_header_breaking_characters() -> None:
    assert clean_text("Subject\r\nBcc: victim@example.org") == "Subject Bcc: victim@example.org"


@pytest.mark.parametrize(
    ("link", "expected"),
    [
        pytest.param("https://a.example/x", "https://a.example/x", id="absolute-https"),
        pytest.param("http://a.example/x", "http://a.example/x", id="absolute-http"),
        pytest.param("/story/1", "https://feeds.example.org/story/1", id="root-relative"),
        pytest.param("../about", "https://feeds.example.org/about", id="dot-dot-relative"),
        pytest.param("//cdn.example/x", "https://cdn.example/x", id="scheme-relative"),
        pytest.param("javascript:alert(1)", None, id="javascript"),
        pytest.param("JaVaScRiPt:alert(1)", None, id="javascript-mixed-case"),
        pytest.param("data:text/html,<script>", None, id="data-url"),
        pytest.param("ftp://files.example/x", None, id="ftp"),
        pytest.param("mailto:someone@example.org", None, id="mailto-is-not-an-item-link"),
        pytest.param("", None, id="empty"),
        pytest.param(None, None, id="missing"),
        pytest.param(" https://a.example/x\n", "https://a.example/x", id="surrounding-whitespace"),
        pytest.param("http://[broken/x", None, id="unparseable-ipv6-host"),
        pytest.param("HTTPS://a.example/x", "https://a.example/x", id="scheme-lower-cased"),
        # Absolute links are taken as they are, but for what joining to the feed's URL changes:
        pytest.param("https://?q=1", "https://feeds.example.org/news/feed.xml?q=1", id="no-host"),
        pytest.param("https:/a.example/x", "https://feeds.example.org/a.example/x", id="one-slash"),
        pytest.param("https://a.example/x;", "https://a.example/x", id="empty-parameters"),
    ],
)
def test_safe_link(link: str | None, expected: str | None) -> None:
    assert safe_link(link, BASE) == expected


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        pytest.param(
            datetime(2026, 11, 1, tzinfo=UTC), datetime(2026, 11, 1, tzinfo=UTC), id="normal"
        ),
        pytest.param(
            datetime(2026, 11, 1, 9, tzinfo=timezone(timedelta(hours=1))),
            datetime(2026, 11, 1, 8, tzinfo=UTC),
            id="offset-converted-to-utc",
        ),
        pytest.param(datetime(2026, 11, 1), datetime(2026, 11, 1, tzinfo=UTC), id="naive-is-utc"),
        pytest.param(datetime(1970, 1, 1, tzinfo=UTC), None, id="epoch"),
        pytest.param(datetime(1989, 12, 31, tzinfo=UTC), None, id="before-1990"),
        pytest.param(
            NOW + timedelta(hours=23), NOW + timedelta(hours=23), id="clock-skew-tolerated"
        ),
        pytest.param(NOW + timedelta(days=2), None, id="far-future"),
        pytest.param(None, None, id="missing"),
    ],
)
def test_plausible_date(value: datetime | None, expected: datetime | None) -> None:
    assert plausible_date(value, NOW) == expected


@pytest.mark.parametrize(
    "footer",
    [
        'The post <a href="/p">CAR T in MS</a> appeared first on <a href="/">MS-UK</a>.',
        'Der Beitrag <a href="/p">CAR-T bei MS</a> erschien zuerst auf <a href="/">DMSG</a>.',
        "L\u2019article CAR-T et SEP est apparu en premier sur Fondation ARSEP.",
        "La entrada CAR-T en la EM se publicó primero en Esclerosis Múltiple España.",
        "Het bericht CAR-T bij MS verscheen eerst op MS Vereniging.",
        "O post CAR-T na EM apareceu primeiro em AME.",
    ],
)
def test_a_wordpress_footer_is_not_the_items_text_in_any_language(footer: str) -> None:
    raw = RawEntry(
        guid="g1",
        link="https://site.example/p",
        title="CAR T in MS",
        body=f"<p>Two patients were treated.</p><p>{footer}</p>",
        summary=f"Two patients were treated. {footer}",
    )
    entry = build_entry(raw, "https://site.example/feed/", datetime(2026, 12, 1, tzinfo=UTC))
    assert entry.summary == "Two patients were treated."
    assert entry.content_html == "<p>Two patients were treated.</p>"
