"""One story however many sources carry it: scenarios through the feed server, two fetch rounds."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from conftest import CliRunnerFunction, ConfigFactory
from feed_server import FeedServer, Item, write_feed
from samples import PRESS_RELEASE, TEMPLATE


@pytest.fixture
def world(
    database_url: str,
    make_config: ConfigFactory,
    run_cli: CliRunnerFunction,
    feed_server: FeedServer,
) -> Any:
    """`world(feeds)` writes feeds {name: items}, configures and inits; returns helpers."""

    class World:
        config: Path

        def __init__(self, feeds: dict[str, list[Item]]) -> None:
            self.write(feeds)
            names = [(name, feed_server.url(f"{name}.xml")) for name in feeds]
            self.config = make_config(database_url, names)
            assert run_cli(self.config, "init").exit_code == 0

        def write(self, feeds: dict[str, list[Item]]) -> None:
            for name, items in feeds.items():
                write_feed(feed_server.root, name, items)

        def fetch(self, *feeds: str) -> str:
            args = [arg for name in feeds for arg in ("--feed", name)] or ["--all"]
            result = run_cli(self.config, "fetch", *args)
            assert result.exit_code == 0, result.output
            assert "failing" not in result.stdout, result.stdout
            return result.stdout

        def stories(self) -> list[dict[str, Any]]:
            result = run_cli(self.config, "stories", "list", "--all", "--json", "--limit", "500")
            return json.loads(result.stdout)  # type: ignore[no-any-return]

        def groups(self) -> set[frozenset[str]]:
            """Each story as the set of "feed: title" of its sources."""
            return {
                frozenset(f"{s['name']}: {s['title']}" for s in story["sources"])
                for story in self.stories()
            }

        def show(self, story_id: int) -> str:
            return run_cli(self.config, "stories", "show", str(story_id)).stdout

    return World


def test_syndicated_press_release_is_one_story_with_every_source(world: Any) -> None:
    w = world(
        {
            "company": [
                (
                    "c1",
                    "https://kyverna.example/news/rmat",
                    "Kyverna receives RMAT for KYV-101",
                    PRESS_RELEASE,
                )
            ],
            "wire-a": [
                (
                    "a1",
                    "https://wire-a.example/2026/11/03/kyverna",
                    "Kyverna Therapeutics Receives FDA RMAT Designation for KYV-101",
                    PRESS_RELEASE,
                )
            ],
            "wire-b": [
                (
                    "b1",
                    "https://wire-b.example/n/88123",
                    "Kyverna gets RMAT designation for KYV-101 in MS",
                    PRESS_RELEASE,
                )
            ],
            "society": [
                (
                    "s1",
                    "https://society.example/research/kyv-101-rmat",
                    "What RMAT designation for KYV-101 means",
                    "Our research team explains.",
                )
            ],
        }
    )
    w.fetch()
    w.fetch()  # a second round changes nothing
    groups = w.groups()
    assert len(groups) == 2
    assert (
        frozenset(
            {
                "company: Kyverna receives RMAT for KYV-101",
                "wire-a: Kyverna Therapeutics Receives FDA RMAT Designation for KYV-101",
                "wire-b: Kyverna gets RMAT designation for KYV-101 in MS",
            }
        )
        in groups
    )
    [story] = [s for s in w.stories() if len(s["sources"]) == 3]
    shown = w.show(story["id"])
    assert "sources (3):" in shown
    assert shown.count("near-identical text") == 3  # each pair of the three is alike


def test_doi_only_overlap_and_the_journal_gives_the_title(world: Any) -> None:
    w = world(
        {
            "news": [
                (
                    "n1",
                    "https://doi.org/10.1177/13524585261001",
                    "Case series: CAR-T in progressive MS",
                )
            ],
            "journal": [
                (
                    "j1",
                    "https://journals.sagepub.com/doi/10.1177/13524585261001",
                    "Anti-CD19 CAR T cells in progressive multiple sclerosis: a case series",
                )
            ],
        }
    )
    w.fetch()
    [story] = w.stories()
    assert len(story["sources"]) == 2
    assert "same record doi:10.1177/13524585261001" in w.show(story["id"])


def test_a_story_arriving_whole_is_titled_from_its_best_source(world: Any) -> None:
    """Five copies of one paper in one fetch: the story is new and all of it arrives at once.
    None ranks above the others by kind or date, so the tie-break (the canonical URL) decides:
    whatever order the items are handled in, the doi.org copy gives the title."""
    doi = "10.1177/13524585261001"
    hosts = ["journals.sagepub.com/doi", "doi.org", "nejm.org/doi", "wiley.com/doi", "tf.com/doi"]
    w = world(
        {
            "alerts": [
                (f"a{n}", f"https://{host}/{doi}", f"{host}: CAR T in MS")
                for n, host in enumerate(hosts)
            ]
        }
    )
    w.fetch()
    [story] = w.stories()
    assert len(story["sources"]) == 5
    assert (story["title"], story["link"]) == ("doi.org: CAR T in MS", f"https://doi.org/{doi}")


def test_pubmed_tracking_parameters_change_on_every_fetch(world: Any) -> None:
    link = "https://pubmed.ncbi.nlm.nih.gov/41000001/?fc=20261101&ff=20261102&v=2.18"
    w = world(
        {
            "pubmed": [("p-round-1", link, "CD19 CAR T in MS")],
            "alerts": [
                ("x1", link.replace("fc=20261101", "fc=20261109"), "CD19 CAR T in MS (alert)")
            ],
        }
    )
    w.fetch()
    # The next day PubMed's feed says the same paper with new tracking parameters and GUID.
    w.write(
        {"pubmed": [("p-round-2", link.replace("ff=20261102", "ff=20261110"), "CD19 CAR T in MS")]}
    )
    w.fetch()
    [story] = w.stories()
    assert len(story["sources"]) == 3


def test_a_feed_linking_every_item_to_its_home_page(world: Any) -> None:
    w = world(
        {
            "society": [
                ("s1", "https://society.example/", "Fundraising walk this Sunday"),
                ("s2", "https://society.example/", "New research grants announced"),
            ],
            "partner": [("p1", "https://society.example/", "Volunteers wanted")],
            "section": [
                ("x1", "https://other.example/news", "First post"),
                ("x2", "https://other.example/news", "Second post"),
            ],
            "mirror": [("m1", "https://other.example/news", "Mirror of the news page")],
        }
    )
    w.fetch()
    assert len(w.groups()) == 6  # nothing merged on a shared generic link


def test_quarterly_results_templates_stay_apart(world: Any) -> None:
    w = world(
        {
            "ir": [
                (
                    "q2",
                    "https://acme.example/ir/q2-2026",
                    "Acme Bio reports second quarter 2026 results",
                    TEMPLATE,
                )
            ],
            "wire": [
                (
                    "q3",
                    "https://wire.example/acme-q3-2026",
                    "Acme Bio reports third quarter 2026 results",
                    TEMPLATE,
                )
            ],
        }
    )
    w.fetch()
    assert len(w.groups()) == 2


def test_two_trials_with_near_identical_titles_stay_apart(world: Any) -> None:
    w = world(
        {
            "registry": [
                (
                    "NCT06138132",
                    "https://clinicaltrials.gov/study/NCT06138132",
                    "A Study of KYV-101 in Multiple Sclerosis",
                    TEMPLATE,
                ),
                (
                    "NCT06451159",
                    "https://clinicaltrials.gov/study/NCT06451159",
                    "A Study of KYV-101 in Multiple Sclerosis",
                    TEMPLATE,
                ),
            ],
            "registry-mirror": [
                ("r1", "https://clinicaltrials.gov/ct2/show/NCT06138132", "KYV-101 in MS")
            ],
        }
    )
    w.fetch()
    groups = w.groups()
    assert len(groups) == 2
    assert (
        frozenset(
            {"registry: A Study of KYV-101 in Multiple Sclerosis", "registry-mirror: KYV-101 in MS"}
        )
        in groups
    )


def test_weekly_roundups_with_the_same_title_stay_apart(world: Any) -> None:
    w = world({"blog": [("r45", "https://blog.example/45", "This week in MS research", TEMPLATE)]})
    w.fetch()
    w.write(
        {
            "blog": [
                ("r46", "https://blog.example/46", "This week in MS research", TEMPLATE),
                ("r45", "https://blog.example/45", "This week in MS research", TEMPLATE),
            ]
        }
    )
    w.fetch()
    assert [len(story["sources"]) for story in w.stories()] == [1, 1]


def test_an_edited_item_updates_its_story(world: Any) -> None:
    w = world({"news": [("n1", "https://n.example/1", "KYSA-8 enrols first patient", TEMPLATE)]})
    w.fetch()
    [before] = w.stories()
    w.write(
        {
            "news": [
                ("n1", "https://n.example/1", "KYSA-8 enrols first patient in Germany", TEMPLATE)
            ]
        }
    )
    w.fetch()
    [after] = w.stories()
    assert after["id"] == before["id"]
    assert after["title"] == "KYSA-8 enrols first patient in Germany"
    assert after["first_seen"] == before["first_seen"]


def test_a_changed_registry_record_is_news_again(world: Any) -> None:
    record = (
        "NCT06384976",
        "https://clinicaltrials.gov/study/NCT06384976",
        "KYSA-7: Not yet recruiting",
    )
    w = world({"registry": [record]})
    w.fetch()
    [before] = w.stories()
    w.write({"registry": [(*record[:2], "KYSA-7: Recruiting")]})
    w.fetch()
    [after] = w.stories()
    assert after["id"] == before["id"]
    assert after["news_at"] > before["news_at"]
    assert after["first_seen"] == before["first_seen"]


def test_arrival_order_does_not_change_the_stories(
    database_url: str,
    another_database_url: str,
    make_config: ConfigFactory,
    run_cli: CliRunnerFunction,
    feed_server: FeedServer,
) -> None:
    feeds = {
        "company": [
            (
                "c1",
                "https://kyverna.example/news/rmat",
                "Kyverna receives RMAT for KYV-101",
                PRESS_RELEASE,
            )
        ],
        "wire": [
            (
                "a1",
                "https://wire.example/kyverna",
                "Kyverna Receives FDA RMAT for KYV-101",
                PRESS_RELEASE,
            )
        ],
        "journal": [("j1", "https://doi.org/10.1177/13524585261001", "CAR T in MS")],
        "europepmc": [
            ("e1", "https://journals.sagepub.com/doi/10.1177/13524585261001", "CAR-T MS")
        ],
        "news": [
            ("n1", "https://kyverna.example/news/rmat?utm_source=x", "FDA fast-tracks MS CAR T")
        ],
    }
    for name, items in feeds.items():
        write_feed(feed_server.root, name, items)
    outcomes = []
    for url, order in ((database_url, list(feeds)), (another_database_url, list(reversed(feeds)))):
        config = make_config(url, [(name, feed_server.url(f"{name}.xml")) for name in feeds])
        run_cli(config, "init")
        for name in order:  # one fetch per feed: each arrives in its own round
            run_cli(config, "fetch", "--feed", name)
        listed = json.loads(run_cli(config, "stories", "list", "--all", "--json").stdout)
        outcomes.append(
            {
                (story["title"], frozenset(f"{s['name']}: {s['title']}" for s in story["sources"]))
                for story in listed
            }
        )
    assert outcomes[0] == outcomes[1]
    assert len(outcomes[0]) == 2
