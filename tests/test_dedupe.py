"""The same-story decision: one row per real-world case, and order never matters."""

from __future__ import annotations

from dataclasses import dataclass

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from samples import PRESS_RELEASE, TEMPLATE

from aggregator.dedupe import (
    Fingerprint,
    StoryGraph,
    fingerprint,
    same_story,
    with_shared_link,
)


@dataclass(frozen=True)
class Raw:
    feed: str
    link: str | None
    guid: str
    title: str
    summary: str = ""


def fp(raw: Raw, *, shared: bool = False) -> Fingerprint:
    return fingerprint(
        f"{raw.feed}/{raw.guid}",
        raw.feed,
        link=raw.link,
        guid=raw.guid,
        title=raw.title,
        summary=raw.summary,
        link_is_shared=shared,
    )


CASES = [
    pytest.param(
        Raw(
            "wire-1",
            "https://wire1.example/kyverna-rmat",
            "w1",
            "Kyverna announces RMAT designation for KYV-101 in MS",
            PRESS_RELEASE,
        ),
        Raw(
            "wire-2",
            "https://wire2.example/news/2026/11/123",
            "w2",
            "Kyverna Therapeutics Announces FDA RMAT Designation for KYV-101 in MS",
            PRESS_RELEASE,
        ),
        "near-identical text",
        id="syndicated-press-release",
    ),
    pytest.param(
        Raw(
            "journal",
            "https://journals.sagepub.com/doi/10.1177/1352458526001",
            "j1",
            "Anti-CD19 CAR T cells in progressive MS",
        ),
        Raw(
            "europepmc",
            "https://doi.org/10.1177/1352458526001",
            "e1",
            "CAR-T therapy for progressive multiple sclerosis: a case series",
        ),
        "same record doi:10.1177/1352458526001",
        id="doi-only-overlap",
    ),
    pytest.param(
        Raw(
            "pubmed-a",
            "https://pubmed.ncbi.nlm.nih.gov/41000001/?fc=20261101&ff=20261102&v=2.18",
            "pubmed:41000001",
            "CAR T in MS",
        ),
        Raw(
            "pubmed-b",
            "https://pubmed.ncbi.nlm.nih.gov/41000001/?fc=20261103&ff=20261104&v=2.18",
            "pubmed:41000001",
            "CAR T in MS",
        ),
        "same link",
        id="pubmed-tracking-parameters",
    ),
    pytest.param(
        Raw("news", "https://www.news.example/story/car-t-ms?utm_source=rss", "n1", "CAR T in MS"),
        Raw("society", "http://news.example/story/car-t-ms/#comments", "s1", "A CAR-T first"),
        "same link news.example/story/car-t-ms",
        id="same-page-different-tracking",
    ),
    pytest.param(
        Raw("society", "https://society.example/", "s1", "Fundraising walk this Sunday"),
        Raw("other", "https://society.example/", "o1", "New research grants announced"),
        None,
        id="home-page-link-is-generic",
    ),
    pytest.param(
        Raw(
            "ir",
            "https://acme.example/q2",
            "q2",
            "Acme reports second quarter 2026 results",
            TEMPLATE,
        ),
        Raw(
            "wire",
            "https://wire.example/acme-q3",
            "q3",
            "Acme reports third quarter 2026 results",
            TEMPLATE,
        ),
        None,
        id="quarterly-results-template",
    ),
    pytest.param(
        Raw(
            "registry",
            "https://clinicaltrials.gov/study/NCT06138132",
            "NCT06138132",
            "A Study of KYV-101 in Relapsing Multiple Sclerosis",
            TEMPLATE,
        ),
        Raw(
            "registry-2",
            "https://clinicaltrials.gov/study/NCT06451159",
            "NCT06451159",
            "A Study of KYV-101 in Relapsing Multiple Sclerosis",
            TEMPLATE,
        ),
        None,
        id="two-trials-near-identical-titles",
    ),
    pytest.param(
        Raw(
            "news", "https://n.example/1", "n1", "CD19 CAR T given to 3 patients with MS", TEMPLATE
        ),
        Raw(
            "wire", "https://w.example/1", "w1", "CD19 CAR T given to 5 patients with MS", TEMPLATE
        ),
        None,
        id="different-counts",
    ),
    pytest.param(
        Raw(
            "wire-1",
            "https://wire1.example/kyverna-kysa7",
            "w1",
            "Kyverna Therapeutics Announces First Patient Dosed in KYSA-7 Trial of KYV-101",
            PRESS_RELEASE,
        ),
        Raw(
            "news",
            "https://news.example/2026/kyverna",
            "n1",
            "Kyverna doses first patient in KYSA-7",
            PRESS_RELEASE,
        ),
        "near-identical text",
        id="shorter-headline-leaves-a-number-out",
    ),
    pytest.param(
        Raw("news", "https://n.example/1", "n1", "KYSA-8 update: March 2026", TEMPLATE),
        Raw("wire", "https://w.example/2", "w2", "KYSA-8 update: April 2026", TEMPLATE),
        None,
        id="different-months",
    ),
    pytest.param(
        Raw("blog", "https://blog.example/roundup-45", "r45", "This week in MS research", TEMPLATE),
        Raw("blog", "https://blog.example/roundup-46", "r46", "This week in MS research", TEMPLATE),
        None,
        id="weekly-roundups-same-title",
    ),
    pytest.param(
        Raw(
            "news",
            "https://n.example/kysa7",
            "n1",
            "KYSA-7 opens (NCT06384976)",
            "A news story about the trial NCT06384976 and what it means for people with MS.",
        ),
        Raw(
            "registry",
            "https://clinicaltrials.gov/study/NCT06384976",
            "NCT06384976",
            "KYV-101 in Relapsing MS (KYSA-7)",
            "Phase 2 open-label study.",
        ),
        None,
        id="news-mentioning-nct-is-not-the-record",
    ),
    pytest.param(
        Raw("wire-1", "https://w1.example/a", "a", "Trial of NCT06138132 opens", PRESS_RELEASE),
        Raw("wire-2", "https://w2.example/b", "b", "Trial of NCT06451159 opens", PRESS_RELEASE),
        None,
        id="same-text-different-trial-numbers",
    ),
    pytest.param(
        Raw("wire-1", "https://w1.example/a", "a", "KYSA-6 opens", f"{PRESS_RELEASE} NCT06138132."),
        Raw(
            "wire-2", "https://w2.example/b", "b", "KYSA-6 opens", f"{PRESS_RELEASE} PMID 41234567."
        ),
        "near-identical text",
        id="same-text-naming-records-of-different-kinds",
    ),
    pytest.param(
        Raw("wire-1", "https://w1.example/a", "a", "KYSA-6 opens", f"{PRESS_RELEASE} NCT06138132."),
        Raw(
            "wire-2",
            "https://w2.example/b",
            "b",
            "KYSA-6 opens",
            f"{PRESS_RELEASE} PMID 41234567 and NCT06451159.",
        ),
        None,
        id="same-text-one-kind-in-common-but-not-the-record",
    ),
]


@pytest.mark.parametrize(("a", "b", "reason"), CASES)
def test_same_story(a: Raw, b: Raw, reason: str | None) -> None:
    forwards, backwards = same_story(fp(a), fp(b)), same_story(fp(b), fp(a))
    if reason is None:
        assert forwards is None
        assert backwards is None
    else:
        assert forwards is not None
        assert forwards.startswith(reason)
        assert backwards is not None


def test_a_link_shared_by_a_feeds_items_proves_nothing() -> None:
    a = Raw("society", "https://society.example/news", "s1", "Grant round opens")
    b = Raw("aggregator", "https://society.example/news", "x1", "Research strategy published")
    assert same_story(fp(a, shared=True), fp(b)) is None
    assert same_story(fp(a), fp(b)) is not None


@pytest.mark.parametrize("index", range(len(CASES)))
def test_a_link_found_shared_later_changes_the_fingerprint_as_if_known_at_once(index: int) -> None:
    for raw in CASES[index].values[:2]:
        assert with_shared_link(fp(raw)) == fp(raw, shared=True)


# Items drawn from a small world with every kind of overlap, so that random subsets and orders
# exercise links by URL, by record and by text, and the guards between them.
WORLD = [
    Raw("wire-1", "https://w1.example/rmat", "w1", "Kyverna gets RMAT for KYV-101", PRESS_RELEASE),
    Raw(
        "wire-2", "https://w2.example/x/9", "w2", "Kyverna Gets FDA RMAT for KYV-101", PRESS_RELEASE
    ),
    Raw("wire-3", "https://w3.example/rmat?utm_source=a", "w3", "RMAT for KYV-101", PRESS_RELEASE),
    Raw("news", "https://w1.example/rmat/?utm_medium=rss", "n1", "FDA fast-tracks MS CAR T"),
    Raw("registry", "https://clinicaltrials.gov/study/NCT06138132", "NCT06138132", "KYV-101 in MS"),
    Raw("registry-2", "https://clinicaltrials.gov/ct2/show/NCT06138132", "r2", "KYV-101 MS trial"),
    Raw("registry", "https://clinicaltrials.gov/study/NCT06451159", "NCT06451159", "KYV-101 in MS"),
    Raw("ir", "https://acme.example/q2", "q2", "Acme second quarter 2026 results", TEMPLATE),
    Raw("ir-2", "https://acme2.example/q3", "q3", "Acme third quarter 2026 results", TEMPLATE),
    Raw("ir-3", "https://acme3.example/q3b", "q3b", "Acme third quarter 2026 results", TEMPLATE),
    Raw("journal", "https://doi.org/10.1177/135245852600", "j1", "CAR T in progressive MS"),
    Raw("epmc", "https://journal.example/doi/10.1177/135245852600v2", "e1", "CAR-T case series"),
    Raw("society", "https://society.example/", "s1", "Walk this Sunday"),
    Raw("society-2", "https://society.example/", "s2", "Grant round opens"),
]


@settings(max_examples=60, deadline=None)
@given(
    st.permutations(range(len(WORLD))).flatmap(
        lambda order: st.tuples(st.just(order), st.integers(min_value=1, max_value=len(WORLD)))
    )
)
def test_arrival_order_and_batching_never_change_the_stories(
    order_and_batch: tuple[list[int], int],
) -> None:
    order, batch_size = order_and_batch
    in_order = StoryGraph()
    in_order.add([fp(raw) for raw in WORLD])
    shuffled = StoryGraph()
    arrivals = [fp(WORLD[index]) for index in order]
    for start in range(0, len(arrivals), batch_size):
        shuffled.add(arrivals[start : start + batch_size])
    assert shuffled.stories() == in_order.stories()


def test_the_world_groups_as_a_reader_would_expect() -> None:
    graph = StoryGraph()
    graph.add([fp(raw) for raw in WORLD])
    stories = sorted(sorted(story) for story in graph.stories())
    assert stories == sorted(
        [
            ["news/n1", "wire-1/w1", "wire-2/w2", "wire-3/w3"],
            ["registry-2/r2", "registry/NCT06138132"],
            ["registry/NCT06451159"],
            ["ir/q2"],
            ["ir-2/q3", "ir-3/q3b"],
            ["epmc/e1", "journal/j1"],
            ["society/s1"],
            ["society-2/s2"],
        ]
    )
