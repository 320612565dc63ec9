"""Readers subscribe, choose and leave by themselves: through the real HTTP server (uvicorn on
127.0.0.1), a real SMTP server (aiosmtpd) and the real database, SQLite and PostgreSQL.

A reader fills in the form in their browser (here httpx with a cookie jar, and chromium for
the screenshots), gets the confirmation email, confirms, gets digests with the headers mail
clients use for one-click unsubscribe, changes their topics and leaves. Digests are sent by the
same code the service runs, at chosen moments. The daily run is set twelve hours from the
test's start, so no run falls between the fixture's news and a reader's first digest, whenever
the suite runs (at Madrid's 07:00, news an hour old belonged to the run just gone).
"""

from __future__ import annotations

import json
import re
import time
from collections.abc import Callable, Iterator
from datetime import datetime, timedelta
from email.message import EmailMessage
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import httpx
import pytest
from browsing import assert_readable
from conftest import CliRunnerFunction, ConfigFactory, serving
from feed_server import FeedServer, Item, write_feed
from ports import free_port
from samples import TOPIC_RULES
from selenium.webdriver.common.by import By
from selenium.webdriver.support.wait import WebDriverWait
from smtp_server import SmtpServer
from sqlalchemy import Engine, update

from aggregator.clock import utc_now
from aggregator.config import Settings, load_settings
from aggregator.publish.mailer import Mailer
from aggregator.publish.readers import digest_readers, signing_tokens
from aggregator.publish.sending import DigestReport, DigestSender
from aggregator.schedule import cron_trigger
from aggregator.service import Service
from aggregator.store import Outbox, Repository
from aggregator.store.database import create_database_engine
from aggregator.store.schema import Subscription
from aggregator.store.subscribers import Choice, Subscriptions
from aggregator.tokens import Tokens
from aggregator.web import create_app
from aggregator.web.subscribe import POSTS_PER_CLIENT, subscribing

READER = "ana.reader@example.org"
READER_ZONE = "Europe/Madrid"
SENDER = "CAR T digest <digest@news.example.org>"
MS_TITLE = "CD19 CAR T cells in refractory multiple sclerosis"
LUPUS_TITLE = "CAR T for lupus: five-year follow-up"
NEW_MS_TITLE = "CD19 CAR T cells in progressive multiple sclerosis: one year on"
NEW_LUPUS_TITLE = "CAR T for lupus nephritis: a second cohort"
LINK = re.compile(r"https?://\S+/(?:confirm|unsubscribe|preferences)/[\w.-]+")


class Town:
    """One site with its feeds, mail server and database, and a reader's browser (httpx)."""

    def __init__(
        self,
        config: Path,
        smtp: SmtpServer,
        url: str,
        engine: Engine,
        publish: Callable[..., None],
    ) -> None:
        self.config = config
        self.publish = publish  # publish(item, ...): the journal adds items, and is fetched
        self.smtp = smtp
        self.url = url
        self.engine = engine
        self.settings: Settings = load_settings(config, environ={})
        self.browser = httpx.Client(base_url=url, follow_redirects=False)

    def subscribe(
        self, email: str, topics: tuple[str, ...] = ("car-t-ms",), frequency: str = "daily"
    ) -> httpx.Response:
        form = self.browser.get("/subscribe")
        assert form.status_code == 200
        return self.browser.post(
            "/subscribe",
            data={
                "csrf": _csrf(form.text),
                "email": email,
                "topic": list(topics),
                "frequency": frequency,
                "timezone": READER_ZONE,
            },
        )

    def mail(self, count: int) -> EmailMessage:
        """The `count`th message the mail server accepted (waiting for it)."""
        return self.smtp.wait_for(count)[count - 1].message

    def send_digests(self, at: datetime) -> list[DigestReport]:
        """What the service's digest jobs do at `at`: every current reader's digest."""
        subscriptions = Subscriptions(self.engine)
        sender = DigestSender(
            self.settings,
            Repository(self.engine),
            Outbox(self.engine),
            Mailer(self.settings.smtp, {}),
            signing_tokens(subscriptions, {}),
        )
        return sender.send_all(digest_readers(self.settings, subscriptions), at)

    def next_daily_run(self, after: datetime) -> datetime:
        """Just after the next daily digest run (in Madrid) following `after`."""
        trigger = cron_trigger(self.settings.digest.daily_schedule, READER_ZONE)
        when = trigger.get_next_fire_time(None, after)
        assert when is not None
        return when + timedelta(minutes=1)


@pytest.fixture
def town(
    database_url: str,
    make_config: ConfigFactory,
    run_cli: CliRunnerFunction,
    feed_server: FeedServer,
) -> Iterator[Town]:
    smtp = SmtpServer()
    port = free_port()
    daily_hour = (utc_now().astimezone(ZoneInfo(READER_ZONE)).hour + 12) % 24
    items: list[Item] = [
        ("j1", "https://journal.example/ms", MS_TITLE, "Anti-CD19 CAR T cells in MS."),
        ("j2", "https://journal.example/lupus", LUPUS_TITLE, "Lupus stayed in remission."),
    ]
    path = write_feed(feed_server.root, "journal", items, published=utc_now() - timedelta(hours=1))

    def publish(*new: Item) -> None:
        items.extend(new)
        write_feed(feed_server.root, "journal", items, published=utc_now())
        assert run_cli(config, "fetch", "--all").exit_code == 0

    config = make_config(
        database_url,
        [("journal", feed_server.url(path))],
        extra=f'[output]\nbase_url = "http://127.0.0.1:{port}/"\n'
        f'[digest]\nfrom = "{SENDER}"\ndaily_schedule = "0 {daily_hour} * * *"\n'
        f'[smtp]\nhost = "127.0.0.1"\nport = {smtp.port}\nsecurity = "none"\n'
        'timeout = "2s"\nretries = 0\n' + TOPIC_RULES,
    )
    assert run_cli(config, "init").exit_code == 0
    assert run_cli(config, "fetch", "--all").exit_code == 0
    settings = load_settings(config, environ={})
    engine = create_database_engine(settings.database.url)
    app = create_app(
        Repository(engine),
        Outbox(engine),
        settings,
        subscribing=subscribing(settings, engine, {}),
    )
    with serving(app, port) as url:
        town = Town(config, smtp, url, engine, publish)
        yield town
        town.browser.close()
    smtp.stop()
    engine.dispose()


def test_a_reader_subscribes_confirms_reads_and_leaves_with_one_click(
    town: Town, run_cli: CliRunnerFunction, caplog: pytest.LogCaptureFixture
) -> None:
    answer = town.subscribe(READER)
    assert answer.status_code == 200
    assert "Check your inbox" in answer.text
    assert READER not in answer.text  # the address is not echoed on a page

    confirmation = town.mail(1)
    assert confirmation["To"] == READER
    assert confirmation["Subject"].startswith("Confirm your subscription")
    text = str(confirmation.get_content())
    assert "every day, about CAR T in MS" in text
    [confirm_link] = LINK.findall(text)

    # Following the link (as a mail scanner would) changes nothing; pressing the button does.
    page = httpx.get(confirm_link)
    assert page.status_code == 200
    assert "<button" in page.text
    assert page.headers["Cache-Control"] == "no-store"
    assert page.headers["Referrer-Policy"] == "no-referrer"
    assert town.send_digests(town.next_daily_run(utc_now())) == []
    confirmed = httpx.post(confirm_link)
    assert confirmed.status_code == 200
    assert "You are subscribed" in confirmed.text
    daily_at = f"{town.next_daily_run(utc_now()).astimezone(ZoneInfo(READER_ZONE)):%H}:00"
    assert f"{daily_at} ({READER_ZONE})" in confirmed.text
    listed = _subscribers(run_cli, town.config)
    assert [(s["email"], s["state"], s["topics"], s["frequency"]) for s in listed] == [
        (READER, "active", ["car-t-ms"], "daily")
    ]

    # The next daily run brings one period's news on their topic only, with both headers.
    run = town.next_daily_run(utc_now())
    [report] = town.send_digests(run)
    assert report.outcome == "sent"
    digest = town.mail(2)
    assert digest["To"] == READER
    body = str(digest.get_body(("plain",)).get_content())  # type: ignore[union-attr]
    assert MS_TITLE in body
    assert LUPUS_TITLE not in body
    one_click, mailto = digest["List-Unsubscribe"].strip().split(", ")
    assert mailto.startswith("<mailto:digest@news.example.org")
    assert digest["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    unsubscribe = one_click.strip("<>")
    assert unsubscribe in LINK.findall(body)  # the same link in the text, for people

    # A mail client's one-click POST (RFC 8058): no cookie, no form, done at once.
    left = httpx.post(
        unsubscribe,
        content=b"List-Unsubscribe=One-Click",
        headers={"Content-Type": "application/x-www-form-urlencoded"},
    )
    assert left.status_code == 200
    assert "You are unsubscribed" in left.text
    assert _subscribers(run_cli, town.config) == []  # the address is gone
    assert town.send_digests(town.next_daily_run(run)) == []
    assert len(town.smtp.received) == 2

    # Their links now lead nowhere, and asking again starts a fresh double opt-in.
    preferences = httpx.get(unsubscribe.replace("/unsubscribe/", "/preferences/"))
    assert preferences.status_code == 410
    # Nothing but their own page ever showed the address: no log line, no metric.
    ours = [r for r in caplog.records if r.name.startswith(("aggregator", "uvicorn"))]
    assert ours
    assert not [record for record in ours if READER in record.getMessage()]
    assert READER not in httpx.get(town.url + "/metrics").text

    subscriptions = Subscriptions(town.engine)
    choice = Choice(("car-t-ms",), "weekly", "UTC")
    assert subscriptions.request(READER, choice, utc_now()) is None  # within the hour: quiet
    later = subscriptions.request(READER, choice, utc_now() + timedelta(hours=1))
    assert later is not None
    assert subscriptions.get(later) is None  # pending until they confirm again


def test_the_form_posted_twenty_times_sends_one_confirmation(town: Town) -> None:
    answers = [town.subscribe(READER) for _ in range(POSTS_PER_CLIENT)]
    assert {answer.status_code for answer in answers} == {200}
    assert len({_main(answer.text) for answer in answers}) == 1
    limited = [town.subscribe(READER) for _ in range(20 - POSTS_PER_CLIENT)]
    assert {answer.status_code for answer in limited} == {429}  # past the per-client limit
    assert "Too many requests" in limited[0].text
    # The connection serves a request only once the one before (and its email) is done.
    assert town.browser.get("/subscribe").status_code == 200
    assert [message.recipients for message in town.smtp.wait_for(1)] == [[READER]]
    assert len(town.smtp.received) == 1


def test_a_known_address_gets_the_same_page_and_no_email(town: Town) -> None:
    first = town.subscribe(READER)
    [confirm_link] = LINK.findall(str(town.mail(1).get_content()))
    httpx.post(confirm_link)
    again = town.subscribe(READER)
    unknown = town.subscribe("someone.else@example.org")
    town.mail(2)  # the stranger's confirmation
    assert _main(again.text) == _main(unknown.text) == _main(first.text)
    assert [m.recipients for m in town.smtp.received] == [[READER], ["someone.else@example.org"]]


def test_forms_without_their_cookie_or_with_bad_input_change_nothing(town: Town) -> None:
    form = town.browser.get("/subscribe")
    filled = {
        "csrf": _csrf(form.text),
        "email": READER,
        "topic": "car-t-ms",
        "frequency": "weekly",
        "timezone": "UTC",
    }
    forged = httpx.post(town.url + "/subscribe", data=filled)  # another site's page: no cookie
    assert forged.status_code == 400
    assert "came from another site" in forged.text
    bad = town.browser.post("/subscribe", data=filled | {"email": "not an address"})
    assert bad.status_code == 400
    assert "Enter an email address" in bad.text
    no_topic = town.browser.post("/subscribe", data=filled | {"topic": []})
    assert "Choose at least one topic" in no_topic.text
    huge = town.browser.post("/subscribe", content=b"email=" + b"a" * 100_000)
    assert huge.status_code == 413
    assert town.smtp.received == []


def test_tampered_or_expired_links_get_a_clear_page(town: Town) -> None:
    town.subscribe(READER)
    [confirm_link] = LINK.findall(str(town.mail(1).get_content()))
    tampered = confirm_link[:-3] + ("AAA" if not confirm_link.endswith("AAA") else "BBB")
    page = httpx.post(tampered)
    assert page.status_code == 400
    assert "Link not valid" in page.text
    key = Subscriptions(town.engine).secret_key()
    subscriber_id = Tokens(key).subscriber("confirm", confirm_link.rsplit("/", 1)[1])
    three_days_ago = time.time() - 3 * 24 * 3600
    old = Tokens(key, clock=lambda: three_days_ago).make("confirm", subscriber_id)
    expired = httpx.post(f"{town.url}/confirm/{old}")
    assert expired.status_code == 400
    assert "Link expired" in expired.text
    # A confirm link is no unsubscribe link, and an unsubscribe GET asks before acting.
    not_for_this = httpx.post(confirm_link.replace("/confirm/", "/unsubscribe/"))
    assert not_for_this.status_code == 400
    assert httpx.post(confirm_link).status_code == 200
    assert Subscriptions(town.engine).get(subscriber_id) is not None


def test_changed_topics_shape_the_next_digest_and_new_readers_wait_for_their_first_run(
    town: Town,
) -> None:
    town.subscribe(READER, topics=("car-t-ms",))
    [confirm_link] = LINK.findall(str(town.mail(1).get_content()))
    httpx.post(confirm_link)
    confirmed_at = utc_now()
    # The run before they confirmed is not theirs, even if a late scheduler sends it now.
    assert [report.outcome for report in town.send_digests(confirmed_at)] == ["not-yet"]

    run = town.next_daily_run(confirmed_at)
    assert [report.outcome for report in town.send_digests(run)] == ["sent"]
    first = _plain(town.mail(2))
    assert MS_TITLE in first
    assert LUPUS_TITLE not in first
    [preferences_link] = [link for link in LINK.findall(first) if "/preferences/" in link]
    with httpx.Client() as browser:
        page = browser.get(preferences_link)
        assert READER in page.text  # their own page is the one that shows the address
        saved = browser.post(
            preferences_link,
            data={
                "csrf": _csrf(page.text),
                "topic": ["car-t-lupus"],
                "frequency": "daily",
                "timezone": READER_ZONE,
            },
        )
        assert saved.status_code == 200
        assert "Saved." in saved.text

        town.publish(
            ("j3", "https://journal.example/lupus-2", NEW_LUPUS_TITLE, "CAR T in lupus again."),
            ("j4", "https://journal.example/ms-2", NEW_MS_TITLE, "CD19 CAR T cells in MS again."),
        )
        second_run = town.next_daily_run(run)
        assert [report.outcome for report in town.send_digests(second_run)] == ["sent"]
        second = _plain(town.mail(3))
        assert NEW_LUPUS_TITLE in second
        assert NEW_MS_TITLE not in second  # no longer their topic

        paused = browser.post(
            preferences_link,
            data={
                "csrf": _csrf(saved.text),
                "topic": ["car-t-lupus"],
                "frequency": "daily",
                "timezone": READER_ZONE,
                "paused": "yes",
            },
        )
        assert "are paused" in paused.text
        assert town.send_digests(town.next_daily_run(second_run)) == []


def test_subscription_pages_at_phone_width(
    town: Town, browser: Any, screenshot: Callable[[str], Path]
) -> None:
    browser.set_window_size(390, 844)
    browser.get(town.url + "/subscribe")
    _wait_for_heading(browser, "Get the digest by email")
    assert_readable(browser)
    screenshot("subscribe")
    browser.find_element(By.ID, "email").send_keys(READER)
    browser.find_element(By.CSS_SELECTOR, "form.reader button").click()
    _wait_for_heading(browser, "Check your inbox")
    screenshot("check-inbox")
    [confirm_link] = LINK.findall(str(town.mail(1).get_content()))
    browser.get(confirm_link)
    screenshot("confirm")
    browser.find_element(By.CSS_SELECTOR, "form.reader button").click()
    _wait_for_heading(browser, "You are subscribed")
    browser.find_element(By.LINK_TEXT, "Your preferences").click()
    _wait_for_heading(browser, "Your preferences")
    boxes = browser.find_elements(By.CSS_SELECTOR, "input[name=topic]")
    assert [box.is_selected() for box in boxes] == [True, True]  # the form's default: all
    boxes[1].click()
    browser.find_element(By.CSS_SELECTOR, "form.reader button").click()
    saved = "//*[@role='status'][normalize-space()='Saved.']"  # found and read at once
    WebDriverWait(browser, 10).until(lambda page: page.find_elements(By.XPATH, saved))
    assert_readable(browser)
    screenshot("preferences")
    record = Subscriptions(town.engine).find(READER)
    assert record is not None
    assert record.topics == ("car-t-ms",)


def _wait_for_heading(browser: Any, heading: str) -> None:
    """Until the page the browser shows (after a click, the next one) has this heading.

    Found and compared in one command: reading the text of an h1 found a moment before can
    land in the next document while it loads, which chromium reports as an unknown error
    ("Node with given id does not belong to the document"), not as a stale element."""
    quote = '"' if "'" in heading else "'"
    wanted = f"//h1[normalize-space()={quote}{heading}{quote}]"
    WebDriverWait(browser, 10).until(lambda page: page.find_elements(By.XPATH, wanted))


def _csrf(page: str) -> str:
    found = re.search(r'name="csrf" value="([^"]+)"', page)
    assert found, "the page has no form token"
    return found[1]


def _main(page: str) -> str:
    return page.split("<main", 1)[1].split("</main>", 1)[0]


def _plain(message: EmailMessage) -> str:
    body = message.get_body(("plain",))
    assert body is not None
    return str(body.get_content())


def _subscribers(run_cli: CliRunnerFunction, config: Path) -> list[dict[str, Any]]:
    result = run_cli(config, "subscribers", "list", "--json")
    assert result.exit_code == 0, result.output
    return list(json.loads(result.stdout))  # log lines, from anything running, go to stderr


def test_the_service_sends_page_readers_their_digest_once_per_run(town: Town) -> None:
    subscriptions = Subscriptions(town.engine)
    record = subscriptions.add(READER, Choice(("car-t-ms",), "daily", "UTC"), utc_now())
    service = Service(town.settings, town.engine, scheduler=False, server=False, environ={})
    service.send_readers_digests()  # added after today's run: nothing yet
    assert town.smtp.received == []

    # As if they had subscribed yesterday: today's run is theirs, sent once however often the
    # job looks (every minute), and from the outbox if another process looks too.
    with town.engine.begin() as connection:
        connection.execute(
            update(Subscription)
            .where(Subscription.id == record.id)
            .values(due_from=utc_now() - timedelta(days=1))
        )
    service = Service(town.settings, town.engine, scheduler=False, server=False, environ={})
    service.send_readers_digests()
    service.send_readers_digests()
    other = Service(town.settings, town.engine, scheduler=False, server=False, environ={})
    other.send_readers_digests()
    [digest] = town.smtp.wait_for(1)
    assert digest.recipients == [READER]
    assert MS_TITLE in _plain(digest.message)
    assert len(town.smtp.received) == 1


def test_the_operator_lists_adds_and_removes_readers(
    town: Town, run_cli: CliRunnerFunction
) -> None:
    added = run_cli(town.config, "subscribers", "add", READER, "--topic", "car-t-ms")
    assert added.exit_code == 0, added.output
    assert f"Added {READER} (weekly, car-t-ms)" in added.output
    already = run_cli(town.config, "subscribers", "add", READER)
    assert already.exit_code == 1
    assert "already a subscriber" in already.output
    unknown_topic = run_cli(town.config, "subscribers", "add", "b@example.org", "--topic", "x")
    assert unknown_topic.exit_code == 2
    assert "no topic with id 'x'" in unknown_topic.output
    table = run_cli(town.config, "subscribers", "list")
    assert READER in table.output
    assert "operator" in table.output

    removed = run_cli(town.config, "subscribers", "remove", READER)
    assert removed.exit_code == 0
    assert _subscribers(run_cli, town.config) == []
    again = run_cli(town.config, "subscribers", "add", READER)
    assert again.exit_code == 1
    assert "only they can subscribe again" in again.output
