"""The site as a reader meets it: a story's own page (where feed entries link), paging back
through every stored story, the archive by month, search by words, trial numbers and DOIs, and
what any address or query answers. Served by uvicorn from a database filled by real fetches of
real-shaped sources; on SQLite and PostgreSQL alike."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import feedparser
import httpx
import lxml.html
import pytest
from browsing import assert_readable
from conftest import (
    ConfigFactory,
    config_factory,
    empty_database,
    invoke_cli,
    serve_feeds,
    serve_process,
    serving,
)
from feed_server import FeedServer
from selenium.common.exceptions import TimeoutException, WebDriverException
from selenium.webdriver.common.by import By
from selenium.webdriver.support.expected_conditions import staleness_of
from selenium.webdriver.support.wait import WebDriverWait
from worlds import KYSA7, dated_feed, listed, literature_config, serve_kysa7

from aggregator.config import load_settings
from aggregator.store import Outbox, Repository
from aggregator.store.database import create_database_engine
from aggregator.web import create_app

BASE_URL = "https://news.example.org/"
PER_PAGE = 5
KYSA7_NCT = "NCT06384976"
NATURE_DOI = "10.1038/s41582-026-01234-5"  # also in PubMed, as PMID 41200001
NATURE_PMID = "41200001"
# Twelve reports from twelve places, nine days apart: four months of news.
PLACES = [
    ("Erlangen", "treats a first patient with progressive MS using CD19 CAR T cells"),
    ("Stanford", "reports a year without relapses after CAR T therapy in multiple sclerosis"),
    ("Heidelberg", "opens enrolment for anti-CD19 CAR T in relapsing MS"),
    ("Milan", "publishes spinal fluid findings after CAR T infusion in MS"),
    ("Lyon", "describes neurotoxicity seen with CAR T cells given for multiple sclerosis"),
    ("Madrid", "starts a registry of MS patients treated with CD19 CAR T"),
    ("Utrecht", "compares CAR T with stem cell transplants for aggressive MS"),
    ("Porto", "measures B-cell return after CAR T therapy for multiple sclerosis"),
    ("Boston", "presents MRI outcomes from CD19 CAR T in progressive MS"),
    ("Toronto", "asks patients with MS what they expect from CAR T treatment"),
    ("Sydney", "costs out CAR T cell therapy for multiple sclerosis in public hospitals"),
    ("Kyoto", "reports manufacturing of CAR T cells from MS patients' blood"),
]


@dataclass(frozen=True)
class Library:
    """A served site and the stories it shows (those matching a topic), as `stories list`
    reports them."""

    url: str
    config: Path
    stories: list[dict[str, Any]]


@pytest.fixture(scope="module", params=["sqlite", "postgresql"])
def library(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Library]:
    """Journals, literature databases, a trial registry whose record moved on, and four months
    of news, fetched into one database and served with five stories a page. Built once per
    database for the module: every test here only reads it."""
    folder = tmp_path_factory.mktemp("library")
    with (
        empty_database(request, folder) as database_url,
        serve_feeds(folder) as feed_server,
        pytest.MonkeyPatch.context() as patch,
    ):
        patch.setenv("NCBI_API_KEY", "site-tests")  # NCBI's faster rate with a key
        yield from _build_library(database_url, config_factory(folder), feed_server)


def _build_library(
    database_url: str, make_config: ConfigFactory, feed_server: FeedServer
) -> Iterator[Library]:
    now = datetime.now(UTC).replace(microsecond=0)
    news = dated_feed(
        feed_server,
        "news",
        [
            (f"{place} team {finding}", now - timedelta(days=1 + 9 * n))
            for n, (place, finding) in enumerate(PLACES)
        ],
    )
    feeds = (
        f'[[feeds]]\nname = "news"\nurl = "{news}"\nkind = "news"\n\n'
        f'[[feeds]]\nname = "ct"\nurl = "{serve_kysa7(feed_server, "ct", "recruiting")}"\n'
        'type = "clinicaltrials"\n\n'
    )
    config = literature_config(
        make_config, database_url, feed_server, feeds, output=f"max_items = {PER_PAGE}\n"
    )
    assert invoke_cli(config, "init").exit_code == 0
    assert invoke_cli(config, "fetch", "--all").exit_code == 0
    serve_kysa7(feed_server, "ct", "active")  # the registry moves on
    assert invoke_cli(config, "fetch", "--all", "--feed", "ct").exit_code == 0
    assert invoke_cli(config, "export").exit_code == 0
    settings = load_settings(config, environ={})
    engine = create_database_engine(settings.database.url)
    try:
        with serving(create_app(Repository(engine), Outbox(engine), settings)) as url:
            shown = [story for story in listed(invoke_cli, config) if story["matches"]]
            yield Library(url, config, shown)
    finally:
        engine.dispose()


def parse(response: httpx.Response) -> Any:
    assert response.headers["content-type"] == "text/html; charset=utf-8"
    return lxml.html.fromstring(response.text)


def listed_on(page: Any) -> list[tuple[str, str]]:
    """(title, publication time) of each story a page lists, in its order."""
    return [
        (" ".join(story.xpath("string(h2)").split()), story.xpath("string(.//time/@datetime)"))
        for story in page.xpath("//article[@class='story']")
    ]


def every_page(site: str, path: str) -> Iterator[Any]:
    """A list's first page and each one its "Older stories" link leads to."""
    address: str | None = path
    while address is not None:
        response = httpx.get(site + address)
        assert response.status_code == 200, address
        page = parse(response)
        yield page
        older = page.xpath("//a[@rel='next']/@href")
        address = older[0] if older else None


def test_a_feed_readers_entry_link_opens_the_story_page(library: Library) -> None:
    exported = feedparser.parse(library.config.parent / "public" / "feed.xml")
    assert len(exported.entries) == PER_PAGE
    for entry in exported.entries:
        assert entry.link.startswith(BASE_URL + "stories/")
        response = httpx.get(library.url + "/" + entry.link.removeprefix(BASE_URL))
        assert response.status_code == 200, entry.link
        page = parse(response)
        assert " ".join(page.xpath("string(//h1)").split()) == entry.title

    [trial] = [story for story in library.stories if KYSA7 in story["title"]]
    page = parse(httpx.get(f"{library.url}/stories/{trial['id']}"))
    assert page.xpath("string(//h1)").strip() == f"Active, not recruiting: {KYSA7}"
    history = [" ".join(item.text_content().split()) for item in page.xpath("//ol/li")]
    assert history == [
        "Recruiting (as of 4 Aug 2026)",
        "Active, not recruiting (as of 28 Nov 2026)",
    ]
    assert "Trial registry" in page.xpath("//span[@class='badge kind']/text()")
    why = " ".join(page.xpath("string(//p[@class='why'])").split())
    assert why.startswith("Why it is here (CAR T in MS): \u201c")

    # A paper a journal and PubMed both carry: one page, both sources, each with its link.
    [paper] = [
        story
        for story in library.stories
        if len(story["sources"]) == 2
        and any(source["name"] == "nature" for source in story["sources"])
    ]
    page = parse(httpx.get(f"{library.url}/stories/{paper['id']}"))
    sources = page.xpath("//ul[@class='sources']/li")
    assert sorted(link for source in sources for link in source.xpath("a/@href")) == sorted(
        source["link"] for source in paper["sources"]
    )
    assert all(source.xpath("string(strong)") for source in sources)  # each source's name
    assert all(source.xpath("span[@class='meta']/time/@datetime") for source in sources)


MISSING = [
    "/stories/0",
    "/stories/123456789",
    f"/stories/{2**63}",
    f"/stories/{10**30}",
    "/stories/-1",
    "/stories/abc",
    f"/digests/{10**30}",
    "/archive/2026-13",
    "/archive/next-week",
    "/?topic=nope",
    "/?before=-1",
    f"/?before={10**30}",
    "/no/such/page",
]


def test_what_does_not_exist_is_a_404_page(library: Library) -> None:
    for path in MISSING:
        response = httpx.get(library.url + path)
        assert response.status_code == 404, path
        page = parse(response)
        assert page.xpath("string(//h1)") == "Not found"
        assert page.xpath("//a[@href='/']")  # and a way back to the stories


def test_a_reader_pages_back_through_every_stored_story(library: Library) -> None:
    seen = [story for page in every_page(library.url, "/") for story in listed_on(page)]
    assert sorted(title for title, _ in seen) == sorted(s["title"] for s in library.stories)
    published = [when for _, when in seen]
    assert published == sorted(published, reverse=True)  # newest published first
    assert len(seen) > 3 * PER_PAGE

    in_topic = [s for page in every_page(library.url, "/?topic=car-t-ms") for s in listed_on(page)]
    assert sorted(title for title, _ in in_topic) == sorted(
        story["title"]
        for story in library.stories
        if any(match["topic"] == "car-t-ms" for match in story["matches"])
    )

    archive = parse(httpx.get(library.url + "/archive/"))
    months = archive.xpath("//ul[@class='months']/li")
    by_month: list[tuple[str, str]] = []
    for month in months:
        [link] = month.xpath("a/@href")
        shown = [s for page in every_page(library.url, link) for s in listed_on(page)]
        count = int(month.xpath("string(span)").strip("( )").split()[0])
        assert len(shown) == count, link
        assert all(when.startswith(link.removeprefix("/archive/")) for _, when in shown)
        by_month += shown
    assert sorted(by_month) == sorted(seen)  # every story sits in exactly one month


def test_search_finds_a_trial_by_its_number_a_paper_by_its_doi_and_marks_the_words(
    library: Library,
) -> None:
    trial = parse(httpx.get(library.url + "/", params={"q": KYSA7_NCT}))
    assert [title for title, _ in listed_on(trial)] == [f"Active, not recruiting: {KYSA7}"]

    [paper] = [s for s in library.stories if NATURE_PMID in str(s["sources"])]
    assert {source["name"] for source in paper["sources"]} == {"nature", "pubmed"}
    for number in (NATURE_DOI, NATURE_PMID, f"doi:{NATURE_DOI}"):
        found = listed_on(parse(httpx.get(library.url + "/", params={"q": number})))
        assert [title for title, _ in found] == [paper["title"]], number

    found = parse(httpx.get(library.url + "/", params={"q": "erlangen  CAR-T"}))
    [story] = found.xpath("//article[@class='story']")
    assert story.xpath("h2//mark/text()") == ["Erlangen", "CAR", "T"]
    assert found.xpath("//input[@name='q']/@value") == ["erlangen  CAR-T"]

    by_source = listed_on(parse(httpx.get(library.url + "/", params={"q": "medrxiv"})))
    assert by_source  # the source's name finds what it carried
    assert all(
        "medrxiv" in {source["name"] for source in story["sources"]}
        for story in library.stories
        if story["title"] in {title for title, _ in by_source}
    )


def test_search_words_are_words_on_every_database(library: Library) -> None:
    """No word a reader types is an operator: "NOT" must be in the text like any other word,
    on SQLite's FTS5 and PostgreSQL's tsquery alike."""
    found = listed_on(parse(httpx.get(library.url + "/", params={"q": "sclerosis NOT recruiting"})))
    assert [title for title, _ in found] == [f"Active, not recruiting: {KYSA7}"]
    assert listed_on(parse(httpx.get(library.url + "/", params={"q": "Erlangen OR Kyoto"}))) == []


ODD_QUERIES = [
    '"',
    "*",
    "NEAR(car t)",
    "ms:car",
    "()",
    "-ms",
    "'; DROP TABLE items; --",
    "\\",
    "&|!<->",
    "^x",
    "{a b}",
    "\u00e9\u0301",
    "\U0001f9ec",
    "x" * 500,
    "a " * 40,
    "\u202eevil",
    "%00",
    "NCT",
]


def test_any_search_gives_a_page(library: Library) -> None:
    for query in ODD_QUERIES:
        response = httpx.get(library.url + "/", params={"q": query})
        assert response.status_code == 200, query
        assert parse(response).xpath("//input[@name='q']/@value") == [query.strip()[:200]]


def test_pages_forbid_scripts_and_framing(library: Library) -> None:
    story_id = library.stories[0]["id"]
    for path in ("/", f"/stories/{story_id}", "/archive/", "/digests/", "/nope", "/feed.xml"):
        response = httpx.get(library.url + path)
        policy = response.headers["content-security-policy"]
        assert "frame-ancestors 'none'" in policy
        assert "default-src 'none'" in policy
        assert "script-src" not in policy  # so no script at all
        assert "unsafe-inline" not in policy
        assert response.headers["x-content-type-options"] == "nosniff"
        assert response.headers["referrer-policy"] == "strict-origin-when-cross-origin"
        if response.headers["content-type"].startswith("text/html"):
            page = parse(response)
            assert not page.xpath("//script | //style | //*[@style] | //*[@onclick]")


def test_a_story_page_answers_304_until_the_stories_change(library: Library) -> None:
    address = f"{library.url}/stories/{library.stories[0]['id']}"
    first = httpx.get(address)
    again = httpx.get(address, headers={"If-None-Match": first.headers["etag"]})
    assert (again.status_code, again.content) == (304, b"")
    other = httpx.get(f"{library.url}/stories/{library.stories[1]['id']}")
    assert other.headers["etag"] != first.headers["etag"]


@pytest.mark.parametrize(("width", "height"), [(390, 844), (1280, 900)], ids=["phone", "desktop"])
def test_a_reader_reads_pages_searches_and_opens_a_story(
    library: Library,
    browser: Any,
    screenshot: Callable[[str], Path],
    width: int,
    height: int,
) -> None:
    browser.set_window_size(width, height)
    browser.get(library.url + "/")
    first_page = titles_shown(browser, PER_PAGE)
    assert_readable(browser)
    screenshot("front")

    follow(browser, browser.find_element(By.PARTIAL_LINK_TEXT, "Older stories"))
    second_page = titles_shown(browser, PER_PAGE)
    assert not set(first_page) & set(second_page)
    assert browser.find_element(By.PARTIAL_LINK_TEXT, "Latest stories").is_displayed()
    assert_readable(browser)
    screenshot("older")

    follow(browser, browser.find_element(By.LINK_TEXT, "CAR T in MS"))
    assert browser.find_element(By.CSS_SELECTOR, 'nav a[aria-current="page"]').text == "CAR T in MS"
    search(browser, KYSA7_NCT)
    assert visible_titles(browser) == [f"Active, not recruiting: {KYSA7}"]
    assert browser.find_element(By.TAG_NAME, "h1").text.startswith("1 story matching")
    marks = browser.find_elements(By.CSS_SELECTOR, "article h2 mark")
    assert [mark.text for mark in marks] == []  # the number is not in the title...
    screenshot("search-nct")
    search(browser, "progressive kysa")
    marks = [m for m in browser.find_elements(By.CSS_SELECTOR, "article h2 mark") if m.text]
    assert {mark.text for mark in marks} == {"Progressive", "KYSA"}  # ...these words are
    assert background(browser, marks[0]) != background(
        browser, marks[0].find_element(By.XPATH, "ancestor::body")
    )
    assert_readable(browser)
    screenshot("search-words")

    follow(browser, browser.find_element(By.PARTIAL_LINK_TEXT, "status history"))
    assert browser.find_element(By.TAG_NAME, "h1").text == f"Active, not recruiting: {KYSA7}"
    history = [item.text for item in browser.find_elements(By.CSS_SELECTOR, "ol.sources li")]
    assert history[-1].startswith("Active, not recruiting (as of")
    assert_readable(browser)
    screenshot("story")

    follow(browser, browser.find_element(By.LINK_TEXT, "Archive"))
    months = browser.find_elements(By.CSS_SELECTOR, "ul.months a")
    assert len(months) >= 4
    assert_readable(browser)
    screenshot("archive")

    browser.get(library.url + "/stories/123456789")
    assert browser.find_element(By.TAG_NAME, "h1").text == "Not found"
    screenshot("not-found")

    browser.execute_cdp_cmd(
        "Emulation.setEmulatedMedia",
        {"features": [{"name": "prefers-color-scheme", "value": "dark"}]},
    )
    browser.get(library.url + "/")
    body = browser.find_element(By.TAG_NAME, "body")
    assert luminance(background(browser, body)) < 0.1  # a dark page...
    assert (
        luminance(browser.execute_script("return getComputedStyle(arguments[0]).color", body)) > 0.6
    )  # ...with light text
    assert_readable(browser)
    screenshot("front-dark")


def search(browser: Any, words: str) -> None:
    """Search for `words` from the page's box, returning once the results have loaded."""
    box = browser.find_element(By.NAME, "q")
    box.clear()
    box.send_keys(words)
    box.submit()
    loaded(browser, box)


def follow(browser: Any, link: Any) -> None:
    """Click `link`, returning once the page it leads to has loaded."""
    link.click()
    loaded(browser, link)


def loaded(browser: Any, left: Any) -> None:
    """Wait until `left`, an element of the page a click or a submit is leaving, is gone and
    the next page has loaded: both start a navigation without waiting for it, and reading
    the page meanwhile reads the old one, or elements that vanish under the reader. While
    the old page goes, chromedriver may answer with an error (seen: "Node with given id does
    not belong to the document") rather than "stale": asked again, it says stale."""
    wait = WebDriverWait(browser, 10, ignored_exceptions=(WebDriverException,))
    wait.until(staleness_of(left))
    wait.until(lambda page: page.execute_script("return document.readyState") == "complete")


def titles_shown(browser: Any, count: int) -> list[str]:
    """The story titles the page shows, once it shows `count` of them (as a person waits for a
    page to be drawn: seen once in CI, the first page of a fresh browser was read before its
    titles were), or what the page held instead."""

    def all_shown(_: Any) -> list[str]:
        titles = visible_titles(browser)
        return titles if len(titles) == count else []  # empty: not yet, ask again

    try:
        shown: list[str] = WebDriverWait(browser, 10).until(all_shown)
    except TimeoutException:
        pytest.fail(
            f"{browser.current_url} shows {visible_titles(browser)}:\n{browser.page_source}"
        )
    return shown


def visible_titles(browser: Any) -> list[str]:
    return [h2.text for h2 in browser.find_elements(By.CSS_SELECTOR, "article h2") if h2.text]


def background(browser: Any, element: Any) -> str:
    color: str = browser.execute_script(
        "return getComputedStyle(arguments[0]).backgroundColor", element
    )
    return color


def luminance(css_color: str) -> float:
    """WCAG's relative luminance of an `rgb(r, g, b)` colour: 0 black, 1 white."""
    red, green, blue = (int(part) / 255 for part in css_color[4:-1].split(",")[:3])

    def linear(channel: float) -> float:
        return channel / 12.92 if channel <= 0.04045 else ((channel + 0.055) / 1.055) ** 2.4

    return 0.2126 * linear(red) + 0.7152 * linear(green) + 0.0722 * linear(blue)


FLOODING_CLIENTS = 32
HEALTH_CHECKS = 5


def test_healthz_is_answered_while_pages_and_searches_are_flooded(library: Library) -> None:
    """32 clients ask for the page and for searches no cache holds, without pause; meanwhile
    every /healthz is answered while the flood is still going (not queued behind it), and
    every flooding request gets a page or a quick 503, never an error."""
    with serve_process(library.config) as (url, _process):
        statuses, health = asyncio.run(flood_and_check_health(url))
    assert [status for status, _ in health] == [200] * HEALTH_CHECKS
    answered_during_flood = [during for _, during in health]
    assert all(answered_during_flood)
    assert set(statuses) <= {200, 503}
    assert statuses.count(200) > HEALTH_CHECKS


async def flood_and_check_health(url: str) -> tuple[list[int], list[tuple[int, bool]]]:
    """Statuses of the flooding requests, and of each health check with whether the flood
    was still under way when it was answered."""
    stop = asyncio.Event()
    statuses: list[int] = []
    limits = httpx.Limits(max_connections=FLOODING_CLIENTS + 2)
    async with httpx.AsyncClient(base_url=url, timeout=60, limits=limits) as client:

        async def flood(client_number: int) -> None:
            request = 0
            while not stop.is_set():
                request += 1
                query = {} if request % 2 else {"q": f"car {client_number} {request}"}
                statuses.append((await client.get("/", params=query)).status_code)

        flooders = [asyncio.create_task(flood(number)) for number in range(FLOODING_CLIENTS)]
        while len(statuses) < FLOODING_CLIENTS:  # the flood is under way
            await asyncio.sleep(0)
        health = []
        for _ in range(HEALTH_CHECKS):
            answer = await client.get("/healthz")
            health.append((answer.status_code, not any(task.done() for task in flooders)))
        stop.set()
        await asyncio.gather(*flooders)
    return statuses, health
