"""Topic matching on the shipped vocabulary: how terms are written (spelling variants,
entities, markup inside words) and false friends. Where terms stand in an item, the
readers' languages and the labelled sets are in test_relevance.py.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from aggregator.config import load_settings
from aggregator.match import FeedContext, Matcher, TopicRule, build_matcher, normalise_for_matching

ROOT = Path(__file__).parent.parent
SETTINGS = load_settings(ROOT / "config.toml", environ={})
MATCHER = build_matcher(SETTINGS, feeds={"society": FeedContext(assume=("ms",))})


def about(title: str, summary: str = "", feed: str = "news", topic: str = "car-t-ms") -> bool:
    matches = MATCHER.match({"title": title, "summary": summary}, feed=feed)
    return any(match.topic == topic for match in matches)


@pytest.mark.parametrize(
    ("title", "expected"),
    [
        # CAR T written every way publishers write it
        pytest.param("CAR T cells in multiple sclerosis", True, id="car-space-t"),
        pytest.param("CAR-T cells in multiple sclerosis", True, id="hyphen"),
        pytest.param("CAR\u2011T cells in multiple sclerosis", True, id="non-breaking-hyphen"),
        pytest.param("CAR\u2013T cells in multiple sclerosis", True, id="en-dash"),
        pytest.param("CAR\u2014T cells in multiple sclerosis", True, id="em-dash"),
        pytest.param("CAR\u00a0T cells in multiple sclerosis", True, id="no-break-space"),
        pytest.param("CAR&nbsp;T cells in multiple sclerosis", True, id="entity-nbsp"),
        pytest.param("CAR&amp;nbsp;T cells in multiple sclerosis", True, id="double-escaped"),
        pytest.param("&lt;i&gt;CAR&lt;/i&gt;-T cells in MS", True, id="escaped-markup"),
        pytest.param("<b>CAR</b>-T cells in MS", True, id="markup-inside"),
        pytest.param("car t cells in multiple sclerosis", True, id="lower-case"),
        pytest.param("CAR Ts reset the immune system in MS", True, id="plural"),
        pytest.param("CAR-T's promise for MS", True, id="possessive"),
        pytest.param("CART19 cells in MS", True, id="cart19"),
        pytest.param("\uff23\uff41\uff52-\uff34 for MS", True, id="fullwidth"),
        pytest.param("Chimeric antigen receptor T cells in MS", True, id="spelled-out"),
        pytest.param("Chimeric Antigen Receptors and RRMS", True, id="plural-spelled-out"),
        pytest.param("KYV-101 in progressive MS", True, id="kyv-101"),
        pytest.param("KYV101 in progressive MS", True, id="kyv101-joined"),
        pytest.param("Rese-cel dosing in MS", True, id="rese-cel"),
        pytest.param("CABA-201 for multiple sclerosis", True, id="caba-201"),
        pytest.param("YTB323 in multiple sclerosis", True, id="ytb323"),
        pytest.param("Rapcabtagene autoleucel in MS", True, id="rapcabtagene"),
        pytest.param("BMS-986353 (CC-97540) in multiple sclerosis", True, id="bms-cd19-nex-t"),
        pytest.param("Anti-CD19 therapy in SPMS", True, id="anti-cd19-spms"),
        pytest.param("CD19+ B cells in PPMS", True, id="cd19-plus"),
        pytest.param("CAR T in Multiple Sklerose: Erlangen", True, id="german"),
        pytest.param("CAR-T et sclérose en plaques", True, id="french"),
        # MS written as the disease, and things that only look like it
        pytest.param("CAR T cells for people with MS.", True, id="ms-end-of-sentence"),
        pytest.param("CAR T: MS patients dosed", True, id="ms-after-colon"),
        pytest.param("CAR T for Ms. Rivera's lymphoma", False, id="ms-title-of-address"),
        pytest.param("CAR T kinetics every 5 ms", False, id="milliseconds"),
        pytest.param("CAR T at MSK Cancer Center", False, id="msk"),
        pytest.param("CAR T engineer gets MSc", False, id="msc"),
        pytest.param("MSD invests in CAR T", False, id="msd"),
        pytest.param("MS4A1 and CD19 CAR T", False, id="ms4a1-gene"),
        pytest.param("MS-13 and the CAR T boom", False, id="ms-13-gang"),
        pytest.param("CD19 CAR proteins by MS/MS", False, id="tandem-ms"),
        pytest.param("LC-MS metabolomics of CAR T cells", False, id="lc-ms"),
        pytest.param("CAR T proteomics by mass spectrometry (MS)", False, id="mass-spec-abbrev"),
        pytest.param("MS-based proteomics of CD19 CAR T", False, id="ms-based"),
        pytest.param("Non-MS controls given CD19 CAR T", False, id="non-ms-negation"),
        pytest.param("CD19 in multiple system atrophy, not multiple sclerosis", False, id="not-ms"),
        pytest.param("CAR T in systemic sclerosis", False, id="systemic-sclerosis"),
        pytest.param("CAR T in amyotrophic lateral sclerosis (ALS)", False, id="als"),
        pytest.param("CAR T in multiple myeloma", False, id="multiple-myeloma"),
        # CAR T false friends
        pytest.param("Cartoon series about MS", False, id="cartoon"),
        pytest.param("Jimmy Carter and MS awareness", False, id="carter"),
        pytest.param("A scar on the MS brain", False, id="scar"),
        pytest.param("Shopping cart study in MS", False, id="cart-lower"),
        pytest.param("Car trip advice for people with MS", False, id="car-trip"),
        pytest.param("Cartier donates to MS Society", False, id="cartier"),
        pytest.param("CD20 therapy in MS", False, id="cd20-is-not-cd19"),
        pytest.param("CD190 expression in MS", False, id="cd190"),
    ],
)
def test_spelling_and_false_friends(title: str, expected: bool) -> None:
    assert about(title) is expected


def test_feed_context_supplies_the_ms_group() -> None:
    assert about("CAR-T: a research explainer", feed="society")
    assert not about("CAR-T: a research explainer", feed="news")


def test_feed_topics_limit_what_a_feed_contributes() -> None:
    matcher = build_matcher(SETTINGS, feeds={"oncology": FeedContext(topics=("ms-treatments",))})
    matches = matcher.match({"title": "CAR T therapy trial in MS"}, feed="oncology")
    assert [match.topic for match in matches] == ["ms-treatments"]


def test_broader_topics() -> None:
    assert about("CAR T in lupus nephritis", topic="car-t-autoimmune")
    assert about("Descartes-08 in myasthenia gravis", topic="car-t-autoimmune")
    assert not about("CAR T in lymphoma", topic="car-t-autoimmune")
    assert about("Tolebrutinib slows SPMS", topic="ms-treatments")
    assert about("Remyelinating therapies in progressive MS", topic="ms-treatments")
    assert not about("MS and pregnancy: what to expect", topic="ms-treatments")


def test_title_hits_score_higher_than_summary_hits() -> None:
    def score(title: str, summary: str) -> float:
        return next(m.score for m in MATCHER.match({"title": title, "summary": summary}))

    assert score("CAR T in MS", "An update.") > score("An update", "CAR T in MS.")


@pytest.mark.parametrize(
    ("text", "normalised"),
    [
        pytest.param("CAR\u2011T", " CAR T ", id="dash"),
        pytest.param("  a\t b\n", " a b ", id="whitespace"),
        pytest.param("a&amp;amp;b", " a b ", id="double-entity"),
        pytest.param("<p>x</p>", " x ", id="markup"),
    ],
)
def test_normalise_for_matching(text: str, normalised: str) -> None:
    assert normalise_for_matching(text) == normalised


def test_prefix_terms_and_plural_last_word() -> None:
    matcher = Matcher({"g": ["demyelinat*", "B cell"]}, [TopicRule("t", any=("g",))])
    assert matcher.match({"title": "Demyelinating lesions"})
    assert matcher.match({"title": "B-cells depleted"})
    assert not matcher.match({"title": "Myelin sheath"})


def test_fingerprint_follows_the_rules() -> None:
    rules = {"g": ["CAR T"]}
    topic = [TopicRule("t", any=("g",))]
    assert Matcher(rules, topic).fingerprint == Matcher(rules, topic).fingerprint
    assert Matcher(rules, topic).fingerprint != Matcher({"g": ["CAR-T"]}, topic).fingerprint
    context = {"f": FeedContext(assume=("g",))}
    assert Matcher(rules, topic).fingerprint != Matcher(rules, topic, feeds=context).fingerprint
    # A feed that adds nothing to its items (most feeds) does not ask for a rematch.
    plain = {"f": FeedContext()}
    assert Matcher(rules, topic).fingerprint == Matcher(rules, topic, feeds=plain).fingerprint
