"""Digests through a real SMTP server (aiosmtpd on 127.0.0.1), on SQLite and PostgreSQL.

Feeds come from the local feed server, stories are stored by `aggregator fetch`, and the digest
is sent by `aggregator digest` (in-process, or as real processes where crashes and races need
them). Messages are parsed back with the `email` package.
"""

from __future__ import annotations

import os
import signal
import ssl
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from datetime import timedelta
from email.message import EmailMessage
from pathlib import Path
from typing import Any

import httpx
import pytest
import trustme
from conftest import CliRunnerFunction, ConfigFactory, serving
from feed_server import FeedServer, Item, write_feed
from samples import TOPIC_RULES
from selenium.webdriver.common.by import By
from smtp_server import DROP, SmtpServer
from sqlalchemy import Engine

from aggregator.clock import utc_now
from aggregator.config import load_settings
from aggregator.publish.mailer import Mailer
from aggregator.publish.sending import DigestSender
from aggregator.store import Outbox, Repository
from aggregator.store.database import create_database_engine
from aggregator.web import create_app

READER = "reader@example.org"
SENDER = "CAR T digest <digest@news.example.org>"
FEEDS: dict[str, tuple[str, list[Item]]] = {
    "registry": (
        "registry",
        [
            (
                "NCT06384976",
                "https://clinicaltrials.gov/study/NCT06384976",
                "KYSA-7: CD19 CAR T in progressive MS, not yet recruiting",
                "A phase 2 trial of KYV-101 in multiple sclerosis.",
            )
        ],
    ),
    "journal": (
        "journal",
        [
            (
                "j1",
                "https://journal.example/ms-car-t",
                "CD19 CAR T cells in refractory multiple sclerosis",
                "Two patients with progressive MS received anti-CD19 CAR T cells.",
            ),
            (
                "j2",
                "https://journal.example/lupus",
                "CAR T for lupus: five-year follow-up",
                "Lupus nephritis stayed in remission.",
            ),
        ],
    ),
    "news": (
        "news",
        [
            (
                "n1",
                "https://journal.example/ms-car-t",  # the journal's paper: the same story
                "CAR T cells tried in MS for the first time",
                "A report on the paper.",
            ),
            ("n2", "https://news.example/ms-diet", "Diet and MS fatigue", "No cell therapy here."),
        ],
    ),
}
MS_TITLES = [
    "KYSA-7: CD19 CAR T in progressive MS, not yet recruiting",
    "CD19 CAR T cells in refractory multiple sclerosis",
]
LUPUS_TITLE = "CAR T for lupus: five-year follow-up"


@pytest.fixture
def smtp() -> Iterator[Callable[..., SmtpServer]]:
    """Start an SMTP server with the given options; every one is stopped afterwards."""
    servers: list[SmtpServer] = []

    def start(**options: Any) -> SmtpServer:
        server = SmtpServer(**options)
        servers.append(server)
        return server

    yield start
    for server in servers:
        server.stop()


class World:
    """Feeds on the local server, a config pointing at them and at an SMTP server, a database."""

    def __init__(
        self,
        database_url: str,
        make_config: ConfigFactory,
        run_cli: CliRunnerFunction,
        feed_server: FeedServer,
    ) -> None:
        self._database_url = database_url
        self._make_config = make_config
        self._run_cli = run_cli
        self.feed_server = feed_server
        self.config = Path()
        self.engines: list[Engine] = []
        # The feeds' items were published an hour before the test: this week's news.
        self.published = utc_now() - timedelta(hours=1)

    def configure(
        self,
        smtp: SmtpServer,
        *,
        digest: str = "",
        smtp_options: str = "",
        patience: str = 'timeout = "2s"\nretries = 1\nretry_delay = "0.1s"\n',
    ) -> None:
        feeds = ""
        for name, (kind, items) in FEEDS.items():
            path = write_feed(self.feed_server.root, name, items, published=self.published)
            feeds += f'[[feeds]]\nname = "{name}"\nurl = "{self.feed_server.url(path)}"\n'
            feeds += f'kind = "{kind}"\n\n'
        feeds += f'[[feeds]]\nname = "down"\nurl = "{self.feed_server.url("status/503")}"\n\n'
        self.config = self._make_config(
            self._database_url,
            extra=feeds
            + '[output]\nbase_url = "https://news.example.org/"\n'
            + f'[digest]\nfrom = "{SENDER}"\n{digest or f"to = [{READER!r}]"}\n'
            + f'[smtp]\nhost = "127.0.0.1"\nport = {smtp.port}\n'
            + (smtp_options or 'security = "none"\n')
            + patience
            + TOPIC_RULES,
        )
        assert self.cli("init").exit_code == 0
        self.fetch()

    def cli(self, *args: str) -> Any:
        return self._run_cli(self.config, *args)

    def fetch(self) -> None:
        result = self.cli("fetch", "--all")
        assert result.exit_code == 0, result.output

    def add_items(self, feed: str, items: list[Item]) -> None:
        """Publish `items` after the feed's own; an item with a known guid replaces it."""
        _, known = FEEDS[feed]
        write_feed(self.feed_server.root, feed, [*known, *items], published=self.published)
        self.fetch()

    def sender(self, environ: dict[str, str] | None = None) -> tuple[DigestSender, Outbox]:
        settings = load_settings(self.config, environ={})
        engine = create_database_engine(settings.database.url)
        self.engines.append(engine)
        outbox = Outbox(engine)
        mailer = Mailer(settings.smtp, environ or {})
        return DigestSender(settings, Repository(engine), outbox, mailer), outbox


@pytest.fixture
def world(
    database_url: str,
    make_config: ConfigFactory,
    run_cli: CliRunnerFunction,
    feed_server: FeedServer,
) -> Iterator[World]:
    world = World(database_url, make_config, run_cli, feed_server)
    yield world
    for engine in world.engines:
        engine.dispose()


def titles(message: EmailMessage) -> list[str]:
    """Story titles in the plain-text part, in order ("* Title" lines)."""
    body = message.get_body(("plain",))
    assert body is not None
    return [
        line[2:].removeprefix("Updated: ")
        for line in str(body.get_content()).splitlines()
        if line.startswith("* ")
    ]


def test_a_digest_is_delivered_once_with_every_new_story(
    world: World, smtp: Callable[..., SmtpServer]
) -> None:
    server = smtp()
    world.configure(server)

    first = world.cli("digest")
    assert first.exit_code == 0, first.output
    assert f"{READER}: sent 3 stories as <digest." in first.output
    [received] = server.received
    assert received.recipients == [READER]
    assert received.sender == "digest@news.example.org"
    message = received.message
    assert message.get_content_type() == "multipart/alternative"
    assert message["Subject"].startswith("3 new stories · ")
    assert message["From"] == SENDER
    one_click, mailto = message["List-Unsubscribe"].strip().split(", ")
    assert one_click.startswith("<https://news.example.org/unsubscribe/")
    assert mailto == "<mailto:digest@news.example.org?subject=unsubscribe>"
    assert message["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    assert titles(message) == [*MS_TITLES, LUPUS_TITLE]  # topic, then trials before papers
    text = str(message.get_body(("plain",)).get_content())  # type: ignore[union-attr]
    assert text.index("== CAR T in MS ==") < text.index("-- Trial updates --")
    assert text.index("-- Trial updates --") < text.index("-- Papers --")
    assert "Also reported by: news <https://journal.example/ms-car-t>" not in text
    assert "Also reported by: news" in text  # the news item is the same story as the paper
    assert "Diet and MS fatigue" not in text
    assert "- down: HTTP 503" in text  # the reader learns what they may be missing

    again = world.cli("digest")
    assert again.exit_code == 0
    assert "already sent" in again.output
    assert len(server.received) == 1

    settings = load_settings(world.config, environ={})
    engine = create_database_engine(settings.database.url)
    world.engines.append(engine)
    with serving(create_app(Repository(engine), Outbox(engine), settings)) as url:
        archive = httpx.get(url + "/digests/")
        assert message["Subject"] in archive.text
        assert "No digest has been sent yet" not in archive.text
        link = archive.text.split('href="/digests/')[1].split('"')[0]
        page = httpx.get(f"{url}/digests/{link}")
        assert page.status_code == 200
        assert MS_TITLES[0] in page.text
        assert 'href="/digests/">← Digest archive</a>' in page.text  # in the site's frame
        assert "/unsubscribe/" in str(message.get_body(("html",)).get_content())  # type: ignore[union-attr]
        assert "/unsubscribe/" not in page.text  # a reader's own links stay in their mail
        assert "/preferences/" not in page.text
        assert '<nav aria-label="Topics">' in page.text
        assert "'unsafe-inline'" in page.headers["content-security-policy"]  # an email's styles
        assert "script" not in page.headers["content-security-policy"]
        assert READER not in page.text  # the public archive does not show who got it
        assert httpx.get(url + "/digests/999999").status_code == 404


def test_each_run_brings_only_what_no_digest_has_carried(
    world: World, smtp: Callable[..., SmtpServer]
) -> None:
    server = smtp()
    world.configure(server)
    sender, _ = world.sender()
    reader = sender_reader(world)
    now = utc_now()
    [first] = sender.send(reader, now)
    assert first.outcome == "sent"
    assert first.stories == 3

    world.add_items(
        "news",
        [("n3", "https://news.example/kyv", "KYV-101 CAR T gets RMAT for MS", "CD19 CAR T.")],
    )
    next_week = now + timedelta(days=7)
    [second] = sender.send(reader, next_week)
    assert second.outcome == "sent"
    assert titles(server.received[1].message) == ["KYV-101 CAR T gets RMAT for MS"]

    in_two_weeks = now + timedelta(days=14)
    [third] = sender.send(reader, in_two_weeks)
    assert third.outcome == "empty"
    assert len(server.received) == 2

    # A trial record that changes is news again, once.
    record = FEEDS["registry"][1][0]
    write_feed(
        world.feed_server.root,
        "registry",
        [(record[0], record[1], "KYSA-7: CD19 CAR T in progressive MS, now recruiting", record[3])],
    )
    world.fetch()
    [fourth] = sender.send(reader, now + timedelta(days=21))
    assert fourth.outcome == "sent"
    [line] = [
        line
        for line in str(server.received[2].message.get_body(("plain",)).get_content()).splitlines()  # type: ignore[union-attr]
        if line.startswith("* ")
    ]
    assert line == "* Updated: KYSA-7: CD19 CAR T in progressive MS, now recruiting"
    assert sender.send(reader, now + timedelta(days=28))[0].outcome == "empty"


def test_a_sent_story_merged_into_another_is_not_sent_again(
    world: World, smtp: Callable[..., SmtpServer]
) -> None:
    server = smtp()
    world.configure(server)
    lecture = ("n9", "https://lectures.example/cell-therapy", "Cell therapy lecture", "Slides.")
    world.add_items("news", [lecture])  # about no topic: in no digest
    report = ("j9", "https://journal.example/case", "CD19 CAR T in MS: a case", "One patient.")
    world.add_items("journal", [report])
    sender, _ = world.sender()
    reader = sender_reader(world)
    now = utc_now()
    assert sender.send(reader, now)[0].stories == 4

    # The journal now links to the lecture page: the two stories become one, under the older
    # (the lecture's) id, which now matches the reader's topic but brings no news.
    world.add_items("journal", [(report[0], lecture[1], report[2], report[3])])
    assert sender.send(reader, now + timedelta(days=7))[0].outcome == "empty"
    assert len(server.received) == 1


def test_a_machine_waking_after_missed_runs_sends_one_digest(
    world: World, smtp: Callable[..., SmtpServer]
) -> None:
    server = smtp()
    world.configure(server)
    sender, _ = world.sender()
    reader = sender_reader(world)
    now = utc_now()
    assert sender.send(reader, now)[0].outcome == "sent"
    world.add_items("news", [("n5", "https://news.example/5", "CAR T trial in MS opens", "CD19")])
    asleep_for_three_weeks = now + timedelta(days=21)
    # However many missed runs a scheduler replays at wake-up, only the latest run is sent.
    outcomes = [sender.send(reader, asleep_for_three_weeks)[0].outcome for _ in range(3)]
    assert outcomes == ["sent", "already-sent", "already-sent"]
    assert len(server.received) == 2
    assert titles(server.received[1].message) == ["CAR T trial in MS opens"]


def sender_reader(world: World) -> Any:
    [reader] = load_settings(world.config, environ={}).all_subscribers
    return reader


def test_subscribers_get_their_own_topics_and_send_empty(
    world: World, smtp: Callable[..., SmtpServer]
) -> None:
    server = smtp()
    world.configure(
        server,
        digest=(
            "send_empty = true\n\n"
            '[[subscribers]]\nemail = "lupus@example.org"\ntopics = ["car-t-lupus"]\n\n'
            '[[subscribers]]\nemail = "quiet@example.org"\ntopics = ["car-t-ms"]\n'
            "send_empty = false\n"
        ),
    )
    result = world.cli("digest")
    assert result.exit_code == 0, result.output
    by_reader = {r.recipients[0]: r.message for r in server.received}
    assert titles(by_reader["lupus@example.org"]) == [LUPUS_TITLE]
    assert titles(by_reader["quiet@example.org"]) == MS_TITLES
    assert (
        by_reader["lupus@example.org"]["Message-ID"] != by_reader["quiet@example.org"]["Message-ID"]
    )

    sender, _ = world.sender()
    readers = load_settings(world.config, environ={}).all_subscribers
    reports = sender.send_all(readers, utc_now() + timedelta(days=7))
    assert {r.subscriber: r.outcome for r in reports} == {
        "lupus@example.org": "sent",  # send_empty: "No new stories" is news too
        "quiet@example.org": "empty",
    }
    assert titles(server.received[-1].message) == []
    assert server.received[-1].message["Subject"].startswith("No new stories")


def certificate_authority(tmp_path: Path) -> tuple[ssl.SSLContext, Path]:
    """A server context with a certificate for 127.0.0.1 from a throw-away CA, and the CA file."""
    ca = trustme.CA()
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ca.issue_cert("127.0.0.1").configure_cert(context)
    ca_file = tmp_path / "ca.pem"
    ca.cert_pem.write_to_path(str(ca_file))
    return context, ca_file


@pytest.mark.parametrize("security", ["starttls", "tls"])
def test_tls_and_login_with_the_password_from_the_environment(
    world: World,
    smtp: Callable[..., SmtpServer],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    security: str,
) -> None:
    context, ca_file = certificate_authority(tmp_path)
    tls = {"starttls": context} if security == "starttls" else {"implicit_tls": context}
    server = smtp(users={"digest": "s3cret"}, **tls)
    world.configure(
        server,
        smtp_options=(
            f'security = "{security}"\nusername = "digest"\n'
            f'password_env = "TEST_SMTP_PASSWORD"\nca_file = "{ca_file}"\n'
        ),
    )
    monkeypatch.setenv("TEST_SMTP_PASSWORD", "s3cret")
    result = world.cli("digest")
    assert result.exit_code == 0, result.output
    assert server.logins == [("digest", True)]
    assert len(server.received) == 1
    assert "s3cret" not in result.output


def test_an_untrusted_certificate_is_refused(
    world: World, smtp: Callable[..., SmtpServer], tmp_path: Path
) -> None:
    context, _ = certificate_authority(tmp_path)
    server = smtp(starttls=context)
    world.configure(server, smtp_options='security = "starttls"\n')  # the system's CAs only
    result = world.cli("digest")
    assert result.exit_code == 1
    assert "certificate is not trusted" in result.output
    assert server.received == []


def test_a_refused_login_fails_at_once_and_nothing_is_marked_sent(
    world: World,
    smtp: Callable[..., SmtpServer],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    context, ca_file = certificate_authority(tmp_path)
    server = smtp(users={"digest": "right"}, starttls=context)
    world.configure(
        server,
        smtp_options=f'security = "starttls"\nusername = "digest"\nca_file = "{ca_file}"\n',
    )
    monkeypatch.setenv("AGGREGATOR_SMTP_PASSWORD", "wrong")
    failed = world.cli("digest")
    assert failed.exit_code == 1
    assert "NOT SENT" in failed.output
    assert "refused the login of 'digest'" in failed.output
    # smtplib tries PLAIN, then LOGIN, in one session; a retry (retries = 1) would double that.
    assert server.logins == [("digest", False)] * 2
    [stored] = world.sender()[1].unsent(READER)
    assert stored.status == "failed"
    assert "535" in (stored.last_error or "")

    monkeypatch.setenv("AGGREGATOR_SMTP_PASSWORD", "right")
    fixed = world.cli("digest")
    assert fixed.exit_code == 0, fixed.output
    assert "resent unsent digest" in fixed.output
    [received] = server.received
    assert received.message["Message-ID"] == stored.message_id


def test_a_dropped_connection_is_retried_then_recorded_as_failed(
    world: World, smtp: Callable[..., SmtpServer]
) -> None:
    server = smtp()
    world.configure(server)
    server.on_data = lambda: DROP
    failed = world.cli("digest")
    assert failed.exit_code == 1
    assert "NOT SENT" in failed.output
    assert server.data_attempts == 2  # retries = 1
    assert server.received == []
    [stored] = world.sender()[1].unsent(READER)
    assert stored.status == "failed"

    server.on_data = None
    again = world.cli("digest")
    assert again.exit_code == 0, again.output
    [received] = server.received
    assert received.message["Message-ID"] == stored.message_id
    assert received.content.replace(b"\r\n", b"\n") == stored.message.replace(b"\r\n", b"\n")
    assert world.sender()[1].unsent(READER) == []


def digest_process(config: Path) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-m", "aggregator", "--config", str(config), "digest"],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        env=os.environ | {"PYTHONUNBUFFERED": "1"},
    )


def test_a_crash_between_sending_and_marking_resends_once_with_the_same_message_id(
    world: World, smtp: Callable[..., SmtpServer]
) -> None:
    server = smtp()
    # A short SMTP timeout and no retries make the lease of the killed sender short.
    world.configure(server, patience='timeout = "0.3s"\nretries = 0\n')
    process: subprocess.Popen[str] | None = None

    def kill_the_sender() -> None:
        assert process is not None
        os.kill(process.pid, signal.SIGKILL)  # the server has the message; no reply arrives

    server.on_data = kill_the_sender
    process = digest_process(world.config)
    process.communicate(timeout=60)
    assert process.returncode == -signal.SIGKILL
    server.on_data = None
    [delivered] = server.received

    # Until the dead sender's lease runs out, nobody else sends: it might still be alive.
    deadline = time.monotonic() + 60
    while True:
        result = world.cli("digest")
        if "another process is sending" not in result.output or time.monotonic() > deadline:
            break
        time.sleep(0.5)
    assert result.exit_code == 0, result.output
    assert "resent unsent digest" in result.output
    assert len(server.received) == 2
    resent = server.received[1]
    assert resent.message["Message-ID"] == delivered.message["Message-ID"]
    assert titles(resent.message) == titles(delivered.message) == [*MS_TITLES, LUPUS_TITLE]

    final = world.cli("digest")
    assert "already sent" in final.output
    assert len(server.received) == 2


def test_two_processes_asked_to_send_the_same_digest_send_it_once(
    world: World, smtp: Callable[..., SmtpServer]
) -> None:
    server = smtp(delay=1.5)  # a slow server: the second process arrives mid-send
    world.configure(server)
    processes = [digest_process(world.config) for _ in range(2)]
    outputs = [process.communicate(timeout=60)[0] for process in processes]
    assert [process.returncode for process in processes] == [0, 0], outputs
    assert len(server.received) == 1
    joined = "\n".join(outputs)
    assert joined.count(": sent 3 stories") == 1
    assert "another process is sending" in joined or "already sent" in joined


def test_the_html_part_reads_on_a_phone(
    world: World, smtp: Callable[..., SmtpServer], browser: Any, tmp_path: Path
) -> None:
    server = smtp()
    world.configure(server)
    assert world.cli("digest").exit_code == 0
    html = server.received[0].message.get_body(("html",))
    assert html is not None
    page = tmp_path / "digest.html"
    page.write_text(str(html.get_content()), encoding="utf-8")
    browser.set_window_size(390, 844)
    browser.get(page.as_uri())
    links = browser.find_elements(By.CSS_SELECTOR, "a.story-title")
    assert [link.text for link in links] == [*MS_TITLES, LUPUS_TITLE]
    width = browser.execute_script("return document.documentElement.clientWidth")
    for link in links:
        assert link.is_displayed()
        assert link.rect["x"] >= 0
        assert link.rect["x"] + link.rect["width"] <= width  # nothing runs off the screen
    assert browser.execute_script("return document.documentElement.scrollWidth") <= width
    font = browser.execute_script(
        "return parseFloat(getComputedStyle(arguments[0]).fontSize)", links[0]
    )
    assert font >= 16  # titles readable without zooming
    shot = tmp_path / "digest-phone.png"
    browser.save_screenshot(str(shot))
    assert shot.stat().st_size > 5_000


def test_previews_write_files_and_test_copies_record_nothing(
    world: World, smtp: Callable[..., SmtpServer], tmp_path: Path
) -> None:
    server = smtp()
    world.configure(server)
    for suffix in ("eml", "html", "txt"):
        result = world.cli("digest", "--dry-run", "--output", str(tmp_path / f"d.{suffix}"))
        assert result.exit_code == 0, result.output
        assert f"{READER}: 3 stories" in result.output
    assert b"Message-ID: <digest." in (tmp_path / "d.eml").read_bytes()
    assert "<table" in (tmp_path / "d.html").read_text()
    assert MS_TITLES[0] in (tmp_path / "d.txt").read_text()
    assert server.received == []

    copy = world.cli("digest", "--to", "editor@example.org")
    assert copy.exit_code == 0, copy.output
    [received] = server.received
    assert received.recipients == ["editor@example.org"]
    assert received.message["To"] == "editor@example.org"

    real = world.cli("digest")  # the test copy did not count as the reader's digest
    assert ": sent 3 stories" in real.output


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--subscriber", "nobody@example.org"], "no subscriber 'nobody@example.org'"),
        (["--to", "not an address"], "--to: expected an e-mail address"),
        (["--dry-run", "--output", "digest.pdf"], "--output: expected a .eml, .html or .txt"),
    ],
)
def test_digest_usage_errors_exit_2(
    world: World, smtp: Callable[..., SmtpServer], args: list[str], message: str
) -> None:
    world.configure(smtp())
    result = world.cli("digest", *args)
    assert result.exit_code == 2
    assert message in result.output


def test_without_subscribers_digest_says_so(
    world: World, smtp: Callable[..., SmtpServer], tmp_path: Path
) -> None:
    world.configure(smtp(), digest="to = []")
    result = world.cli("digest")
    assert result.exit_code == 2
    assert "nobody to send a digest to" in result.output
    preview = world.cli("digest", "--output", str(tmp_path / "preview.txt"))
    assert preview.exit_code == 0, preview.output
    assert LUPUS_TITLE in (tmp_path / "preview.txt").read_text()
