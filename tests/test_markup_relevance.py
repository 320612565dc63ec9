"""Matching an item whose text comes as markup, as feeds send it: a heading, a paragraph, a list
item or a line of a record ends a statement, as a stop does, however the stored summary (plain
text, its blocks joined by spaces) reads. Each feed below is in the shape of a WordPress site's
/feed/ (description and content:encoded as HTML in CDATA)."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from samples import SHIPPED_MATCHER

from aggregator.analyse import analyse
from aggregator.sources.rss import parse_feed

NOW = datetime(2026, 12, 5, tzinfo=UTC)
URL = "https://society.example/feed/"


def feed_of(*items: tuple[str, str, str]) -> bytes:
    """An RSS 2.0 feed of (title, description, content:encoded) items."""
    entries = "".join(
        f"<item><title>{title}</title><link>https://society.example/{n}/</link>"
        f"<guid>https://society.example/?p={n}</guid>"
        f"<description><![CDATA[{description}]]></description>"
        + (f"<content:encoded><![CDATA[{content}]]></content:encoded>" if content else "")
        + "</item>"
        for n, (title, description, content) in enumerate(items)
    )
    return (
        '<?xml version="1.0" encoding="UTF-8"?><rss version="2.0" '
        'xmlns:content="http://purl.org/rss/1.0/modules/content/"><channel>'
        f"<title>Research news</title><link>https://society.example</link>{entries}"
        "</channel></rss>"
    ).encode()


def on_car_t_ms(title: str, description: str, content: str = "") -> bool:
    parsed = parse_feed(
        feed_of((title, description, content)), url=URL, content_type=None, fetched_at=NOW
    )
    [entry] = analyse(parsed.entries, "news", SHIPPED_MATCHER)
    return any(match.topic == "car-t-ms" for match in entry.matches)


@pytest.mark.parametrize(
    ("title", "description", "content", "expected"),
    [
        pytest.param(
            "Research update",
            "<h2>KYV-101 in progressive MS</h2>"
            "<p>MS researchers at Stanford gave CD19 CAR T cells to two patients.</p>",
            "",
            True,
            id="heading-ends-where-the-paragraph-starts",  # not "MS MS" (tandem MS)
        ),
        pytest.param(
            "Trial update",
            "<p>First patient dosed with CD19 CAR T in MS</p>"
            "<p>Based on lupus results, the team expects lasting responses.</p>",
            "",
            True,
            id="paragraph-without-a-stop",  # not "MS-based"
        ),
        pytest.param(
            "Ce que disent les chercheurs",
            "<h3>Les CAR-T dans la SEP</h3><p>SEP : une patiente a reçu des CAR-T anti-CD19.</p>",
            "",
            True,
            id="french-heading",
        ),
        pytest.param(
            "What our readers asked this month",
            "A first look at the results [&#8230;]",
            "<h3>Results in relapsing MS</h3>"
            "<p>MS patients given KYV-101 CAR T cells stayed free of relapses.</p>",
            True,
            id="content-encoded-heading",
        ),
        pytest.param(
            "NCT06384976",
            "<p>Condition: Multiple Sclerosis<br />Intervention: CD19 CAR T cells (KYV-101)"
            "<br />Status: Recruiting</p>",
            "",
            True,
            id="a-records-lines-read-together",
        ),
        pytest.param(
            "Proteomics of cell products",
            "<h2>Methods</h2><p>We used LC-MS/MS to profile CAR T cell products.</p>",
            "",
            False,
            id="a-veto-inside-a-block-still-holds",
        ),
        pytest.param(
            "CAR T in lupus",
            "<p>CD19 CAR T cells induced remission in lupus.</p>"
            "<h3>Related stories</h3><ul><li>Ocrelizumab in MS</li><li>MS and diet</li></ul>",
            "",
            False,
            id="navigation-under-a-heading",
        ),
    ],
)
def test_blocks_of_an_items_markup_end_its_statements(
    title: str, description: str, content: str, expected: bool
) -> None:
    assert on_car_t_ms(title, description, content) is expected
