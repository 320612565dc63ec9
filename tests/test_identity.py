"""Canonical URLs and strong identifiers, one row per real-world case."""

from __future__ import annotations

import pytest

from aggregator.normalise import canonical_url, doi, mentioned_identifiers, own_identifiers


@pytest.mark.parametrize(
    ("url", "canonical"),
    [
        pytest.param("https://example.org/a/b", "example.org/a/b", id="plain"),
        pytest.param("http://example.org/a/b", "example.org/a/b", id="scheme-ignored"),
        pytest.param("https://www.example.org/a/b", "example.org/a/b", id="www-ignored"),
        pytest.param("https://EXAMPLE.org/a/b", "example.org/a/b", id="host-case"),
        pytest.param("https://example.org/A/b", "example.org/A/b", id="path-case-kept"),
        pytest.param("https://example.org:443/a", "example.org/a", id="default-https-port"),
        pytest.param("http://example.org:80/a", "example.org/a", id="default-http-port"),
        pytest.param("http://example.org:8080/a", "example.org:8080/a", id="other-port-kept"),
        pytest.param("https://example.org/a/#section", "example.org/a", id="fragment"),
        pytest.param("https://example.org/a/", "example.org/a", id="trailing-slash"),
        pytest.param("https://example.org/", "example.org", id="home-page"),
        pytest.param("https://example.org//a//b", "example.org/a/b", id="double-slashes"),
        pytest.param(
            "https://example.org/a?utm_source=x&utm_medium=rss&id=5",
            "example.org/a?id=5",
            id="utm",
        ),
        pytest.param("https://example.org/a?fbclid=abc", "example.org/a", id="fbclid"),
        pytest.param(
            "https://example.org/a?gclid=abc&mc_cid=1&mc_eid=2", "example.org/a", id="ads"
        ),
        pytest.param("https://example.org/a?b=2&a=1", "example.org/a?a=1&b=2", id="query-order"),
        pytest.param(
            "https://pubmed.ncbi.nlm.nih.gov/39012345/?fc=20240101&ff=20240102&v=2.18",
            "pubmed.ncbi.nlm.nih.gov/39012345",
            id="pubmed-tracking",
        ),
        pytest.param(
            "https://other.example/search?v=2", "other.example/search?v=2", id="v-kept-elsewhere"
        ),
    ],
)
def test_canonical_url(url: str, canonical: str) -> None:
    assert canonical_url(url) == canonical


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        pytest.param(
            "https://doi.org/10.1177/13524585241234567", "10.1177/13524585241234567", id="doi-org"
        ),
        pytest.param("doi:10.1038/S41591-024-0001-X", "10.1038/s41591-024-0001-x", id="case"),
        pytest.param(
            "https://www.medrxiv.org/content/10.1101/2024.05.01.24306789v2",
            "10.1101/2024.05.01.24306789",
            id="preprint-version",
        ),
        pytest.param(
            "https://www.biorxiv.org/content/10.1101/2024.05.01.588888v1.full",
            "10.1101/2024.05.01.588888",
            id="preprint-full-text",
        ),
        pytest.param("(see 10.1016/j.cell.2024.01.001).", "10.1016/j.cell.2024.01.001", id="punct"),
        pytest.param("no identifier here", None, id="none"),
    ],
)
def test_doi(text: str, expected: str | None) -> None:
    assert doi(text) == expected


@pytest.mark.parametrize(
    ("link", "guid", "expected"),
    [
        pytest.param(
            "https://clinicaltrials.gov/study/NCT06384976", None, {"nct:NCT06384976"}, id="registry"
        ),
        pytest.param(
            "https://clinicaltrials.gov/ct2/show/NCT06451159?term=car-t",
            None,
            {"nct:NCT06451159"},
            id="registry-classic",
        ),
        pytest.param(None, "NCT06220201", {"nct:NCT06220201"}, id="registry-guid"),
        pytest.param(
            "https://pubmed.ncbi.nlm.nih.gov/39012345/?fc=1", None, {"pmid:39012345"}, id="pubmed"
        ),
        pytest.param(None, "pubmed:39012345", {"pmid:39012345"}, id="pubmed-guid"),
        pytest.param(
            "https://www.ncbi.nlm.nih.gov/pubmed/39012345", None, {"pmid:39012345"}, id="pubmed-old"
        ),
        pytest.param(
            "https://www.ncbi.nlm.nih.gov/gene/39012345", None, set(), id="ncbi-but-not-pubmed"
        ),
        pytest.param(
            "https://doi.org/10.1002%2Fana.27012", None, {"doi:10.1002/ana.27012"}, id="doi-encoded"
        ),
        pytest.param(
            "https://www.ncbi.nlm.nih.gov/pmc/articles/PMC11012345/",
            None,
            {"pmcid:PMC11012345"},
            id="pmc",
        ),
        pytest.param(
            "https://journals.sagepub.com/doi/10.1177/13524585241234567",
            "https://journals.sagepub.com/doi/10.1177/13524585241234567",
            {"doi:10.1177/13524585241234567"},
            id="journal-doi-in-path",
        ),
        pytest.param(
            "https://europepmc.org/article/MED/39512345",
            "MED:39512345",
            {"pmid:39512345"},
            id="europepmc-medline",
        ),
        pytest.param(
            "https://europepmc.org/article/PMC/PMC11012345",
            None,
            {"pmcid:PMC11012345"},
            id="europepmc-pmc",
        ),
        pytest.param(
            "https://europepmc.org/article/PPR/PPR912345",
            "PPR:PPR912345",
            set(),
            id="europepmc-preprint-has-no-pubmed-id",
        ),
        pytest.param(
            "https://euclinicaltrials.eu/search-for-clinical-trials/?EUCT=2024-512345-12-00",
            None,
            {"euct:2024-512345-12-00"},
            id="eu-ct",
        ),
        pytest.param(
            "https://news.example.org/kyverna-nct06384976-update",
            "news-1",
            set(),
            id="news-link-mentioning-nct-is-not-the-record",
        ),
    ],
)
def test_own_identifiers(link: str | None, guid: str | None, expected: set[str]) -> None:
    assert own_identifiers(link, guid) == expected


def test_mentioned_identifiers() -> None:
    text = (
        "Results of NCT06384976 (PMID: 39012345; PMC11012345; EU CT 2024-512345-12-00) "
        "published as doi:10.1177/1352458524.1234"
    )
    assert mentioned_identifiers(text) == {
        "nct:NCT06384976",
        "pmid:39012345",
        "pmcid:PMC11012345",
        "euct:2024-512345-12-00",
        "doi:10.1177/1352458524.1234",
    }
