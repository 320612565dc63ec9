"""The background service: per-feed scheduling, pauses, leases shared by processes, and
`aggregator run` as a real process (signals, kill -9, several processes on one database)."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator, Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from conftest import CliRunnerFunction, ConfigFactory
from feed_server import FeedServer, write_feed
from ports import free_port
from samples import TOPIC_RULES
from smtp_server import SmtpServer
from sqlalchemy import Engine

from aggregator import __version__
from aggregator.config import Settings, load_settings
from aggregator.errors import StoreUnavailableError
from aggregator.match import build_matcher
from aggregator.models import FeedState
from aggregator.pipeline.fetch_pass import FeedReport, TopUp, fetch_feeds
from aggregator.service import Service
from aggregator.store import Repository
from aggregator.store.database import create_database_engine

T0 = datetime(2026, 11, 22, 12, 0, tzinfo=UTC)
MINUTE = timedelta(minutes=1)


class Store:
    """A configured, initialised database with direct access to the repository."""

    def __init__(self, config: Path) -> None:
        self.config = config
        self.settings: Settings = load_settings(config, environ={})
        self.engine: Engine = create_database_engine(self.settings.database.url)
        self.repository = Repository(self.engine)

    def fetch(self, names: list[str], at: datetime) -> list[Any]:
        feeds = self.repository.feeds_to_fetch(at, names=names)
        return asyncio.run(
            fetch_feeds(
                self.settings,
                self.repository,
                build_matcher(self.settings),
                feeds,
                clock=lambda: at,
                jitter=lambda: 0.0,
            )
        )

    def feed(self, name: str) -> Any:
        return next(feed for feed in self.repository.list_feeds() if feed.name == name)


@pytest.fixture
def store(
    database_url: str, make_config: ConfigFactory, run_cli: CliRunnerFunction
) -> Iterator[Callable[..., Store]]:
    made: list[Store] = []

    def make(feeds: list[tuple[str, str]], fetch: str = 'timeout = "5s"', extra: str = "") -> Store:
        config = make_config(database_url, feeds, fetch=fetch, extra=extra)
        assert run_cli(config, "init").exit_code == 0
        made.append(Store(config))
        return made[-1]

    yield make
    for each in made:
        each.engine.dispose()


def test_a_pass_takes_more_feeds_while_one_hangs_and_outlives_a_failed_top_up(
    store: Callable[..., Store], feed_server: FeedServer
) -> None:
    feeds = [("held", "hold/rss20.xml"), ("later", "mixed-topics.xml")]
    stored = store([(name, feed_server.url(path)) for name, path in feeds])
    [held] = stored.repository.feeds_to_fetch(T0, names=["held"])
    [later] = stored.repository.feeds_to_fetch(T0, names=["later"])
    asked: list[int] = []

    def more(under_way: int) -> list[FeedState]:
        asked.append(under_way)
        if len(asked) == 1:
            raise StoreUnavailableError("database is locked")
        if len(asked) == 2:
            feed_server.released.set()  # the held feed answers once the other is taken
            return [later]
        return []

    reports = asyncio.run(
        fetch_feeds(
            stored.settings,
            stored.repository,
            build_matcher(stored.settings),
            [held],
            clock=lambda: T0,
            top_up=TopUp(more, every=0.01),
        )
    )
    assert [(report.name, report.status, report.new) for report in reports] == [
        ("held", "ok", 2),
        ("later", "ok", 4),
    ]
    assert asked[:2] == [1, 1]  # asked with the held feed under way, again after the failure


def test_a_stopped_pass_finishes_the_feeds_it_started_and_leaves_the_rest_unfetched(
    store: Callable[..., Store], feed_server: FeedServer
) -> None:
    """Concurrency 2 keeps four feeds in flight: "a", then three that hang until released."""
    paths = {"a": "rss20.xml", "b-held": "hold/atom10.xml", "c-held": "hold/rss20.xml?copy=2"}
    paths |= {"d-held": "hold/rss10.rdf", "e": "mixed-topics.xml", "f": "feed.json"}
    paths |= {"g": "rss091.xml"}
    stored = store(
        [(name, feed_server.url(path)) for name, path in paths.items()],
        fetch='timeout = "5s"\nconcurrency = 2',
    )
    stop = threading.Event()

    def stop_after_the_first(report: FeedReport) -> None:
        stop.set()  # with three feeds hanging, and "e" started in the place "a" left
        feed_server.released.set()

    reports = asyncio.run(
        fetch_feeds(
            stored.settings,
            stored.repository,
            build_matcher(stored.settings),
            stored.repository.feeds_to_fetch(T0, names=list(paths)),
            clock=lambda: T0,
            on_feed_done=stop_after_the_first,
            stop=stop,
        )
    )
    started, skipped = ["a", "b-held", "c-held", "d-held", "e"], ["f", "g"]
    assert [(report.name, report.status) for report in reports] == [
        *((name, "ok") for name in started),
        *((name, "skipped") for name in skipped),
    ]
    assert [stored.feed(name).last_fetched_at is not None for name in paths] == [
        name in started for name in paths
    ]
    assert not [request for request in feed_server.requests if "rss091" in request.path]


def test_claims_give_each_due_feed_to_one_owner_until_its_lease_ends(
    store: Callable[..., Store],
) -> None:
    s = store([(f"feed{n}", f"https://example.org/{n}.xml") for n in range(5)])
    claim = s.repository.claim_feeds
    first = claim(T0, lease_until=T0 + MINUTE, owner="a:1", limit=3)
    second = claim(T0, lease_until=T0 + MINUTE, owner="b:2", limit=3)
    assert len(first) == 3
    assert len(second) == 2
    assert {f.name for f in first}.isdisjoint(f.name for f in second)
    assert claim(T0, lease_until=T0 + MINUTE, owner="c:3", limit=10) == []

    later = T0 + 2 * MINUTE  # both owners vanished without recording anything
    assert len(claim(later, lease_until=later + MINUTE, owner="c:3", limit=10)) == 5

    assert s.repository.release_dead_claims(later, lambda owner: owner == "c:3") == 5
    assert len(claim(later, lease_until=later + MINUTE, owner="d:4", limit=10)) == 5
    s.repository.release_claims([f.feed_id for f in first], later)
    assert len(claim(later, lease_until=later + MINUTE, owner="e:5", limit=10)) == 3


def test_processes_claiming_at_once_never_share_a_feed(store: Callable[..., Store]) -> None:
    s = store([(f"feed{n:02}", f"https://example.org/{n}.xml") for n in range(60)])
    engines = [create_database_engine(s.settings.database.url) for _ in range(4)]
    claimed: list[list[str]] = [[] for _ in engines]
    start = threading.Barrier(len(engines))

    def claim(index: int) -> None:
        repository = Repository(engines[index])
        start.wait()
        for _ in range(5):
            got = repository.claim_feeds(T0, lease_until=T0 + MINUTE, owner=f"p:{index}", limit=4)
            claimed[index] += [feed.name for feed in got]

    threads = [threading.Thread(target=claim, args=(i,)) for i in range(len(engines))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    for engine in engines:
        engine.dispose()
    every = [name for names in claimed for name in names]
    assert len(every) == len(set(every))  # nobody got a feed somebody else had
    assert len(every) == 60


def test_the_next_fetch_waits_for_its_interval_ttl_max_age_and_retry_after(
    store: Callable[..., Store], feed_server: FeedServer
) -> None:
    (feed_server.root / "ttl.xml").write_text(
        '<?xml version="1.0"?><rss version="2.0"><channel><title>t</title><ttl>180</ttl>'
        "<item><guid>1</guid><title>CAR T in MS</title></item></channel></rss>"
    )
    s = store(
        [
            ("plain", feed_server.url("rss20.xml")),
            ("ttl", feed_server.url("ttl.xml")),
            ("max-age", feed_server.url("max-age/7200/rss20.xml")),
            ("busy", feed_server.url("status/429?retry-after=14400")),
        ],
        fetch='timeout = "5s"\ninterval = "1h"\nadaptive = false',
        extra=f'[[feeds]]\nname = "own"\nurl = "{feed_server.url("atom10.xml")}"\ninterval = "5h"',
    )
    s.fetch(["plain", "ttl", "max-age", "busy", "own"], T0)
    due = {feed.name: feed.next_fetch_at - T0 for feed in s.repository.list_feeds()}
    assert due == {
        "plain": timedelta(hours=1),
        "own": timedelta(hours=5),  # its own interval, over the fetch section's
        "ttl": timedelta(hours=3),
        "max-age": timedelta(hours=2),
        "busy": timedelta(hours=4),  # Retry-After, beyond the doubled interval
    }
    later = T0 + timedelta(hours=4)  # a 304 brings no <ttl>: the stored one still counts
    s.fetch(["ttl"], later)
    assert s.feed("ttl").status == "not modified"
    assert s.feed("ttl").next_fetch_at - later == timedelta(hours=3)


def test_a_feed_failing_for_days_is_paused_reported_and_resumable(
    store: Callable[..., Store], feed_server: FeedServer, run_cli: CliRunnerFunction
) -> None:
    s = store(
        [("flaky", feed_server.url("status/503")), ("gone", feed_server.url("status/410"))],
        fetch='timeout = "5s"\npause_after = "3d"',
    )
    s.fetch(["flaky", "gone"], T0)
    assert s.feed("gone").status == "paused"  # 410 Gone: no point asking again
    assert s.feed("flaky").status == "error"
    s.fetch(["flaky"], T0 + timedelta(days=2))
    assert s.feed("flaky").status == "error"
    s.fetch(["flaky"], T0 + timedelta(days=3, minutes=1))
    assert s.feed("flaky").status == "paused"

    far_later = T0 + timedelta(days=30)
    assert s.repository.feeds_to_fetch(far_later) == []  # paused feeds are not fetched
    assert s.repository.claim_feeds(far_later, lease_until=far_later, owner="x:1", limit=9) == []
    listed = json.loads(run_cli(s.config, "feeds", "list", "--json").stdout)
    assert {feed["name"]: feed["status"] for feed in listed} == {
        "flaky": "paused",
        "gone": "paused",
    }

    resumed = run_cli(s.config, "feeds", "resume", "flaky")
    assert resumed.exit_code == 0, resumed.output
    assert [feed.name for feed in s.repository.feeds_to_fetch(far_later)] == ["flaky"]
    again = run_cli(s.config, "feeds", "resume", "flaky")
    assert again.exit_code == 2
    assert "is not paused" in again.output


# --- `aggregator run` as a real process ----------------------------------------------------


def run_config(
    make_config: ConfigFactory,
    database_url: str,
    feeds: list[tuple[str, str]],
    *,
    port: int,
    extra: str = "",
    interval: str = "2s",
    timeout: str = "3s",
    adaptive: bool = True,
) -> Path:
    fetch = f'timeout = "{timeout}"\ninterval = "{interval}"\nmin_interval = "1s"\npoll = "0.3s"'
    return make_config(
        database_url,
        feeds,
        fetch=fetch + f"\nadaptive = {str(adaptive).lower()}",
        extra=f'[server]\nport = {port}\n\n[service]\nshutdown_timeout = "8s"\n\n'
        + extra
        + TOPIC_RULES,
    )


class ServiceProcess:
    """`aggregator run` as a child process, its output read line by line as it comes, so a
    test can wait for the event it needs ("event=service_started") instead of sleeping."""

    def __init__(self, config: Path, *args: str) -> None:
        self.process = subprocess.Popen(
            [sys.executable, "-m", "aggregator", "--config", str(config), "run", *args],
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            env=os.environ | {"PYTHONUNBUFFERED": "1"},
        )
        self._lines: list[str] = []
        self._changed = threading.Condition()
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        assert self.process.stdout is not None
        with self.process.stdout as stdout:
            for line in stdout:
                with self._changed:
                    self._lines.append(line)
                    self._changed.notify_all()
        with self._changed:
            self._changed.notify_all()

    @property
    def output(self) -> str:
        with self._changed:
            return "".join(self._lines)

    @property
    def returncode(self) -> int | None:
        return self.process.returncode

    def wait_for_line(self, text: str, timeout: float = 60) -> None:
        """Until a line containing `text` is written; fails if the process ends first."""
        with self._changed:
            found = self._changed.wait_for(
                lambda: any(text in line for line in self._lines) or not self._reader.is_alive(),
                timeout=timeout,
            )
            if not found or not any(text in line for line in self._lines):
                raise AssertionError(f"no line with {text!r}:\n{''.join(self._lines)}")

    def wait(self, timeout: float) -> str:
        """The whole output once the process has exited by itself."""
        self.process.wait(timeout=timeout)
        self._reader.join(timeout=10)
        return self.output


def start(config: Path, *args: str) -> ServiceProcess:
    return ServiceProcess(config, *args)


def wait_for(condition: Callable[[], Any], timeout: float = 30, what: str = "") -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if result := condition():
                return result
        except httpx.HTTPError:
            pass
        time.sleep(0.1)
    raise AssertionError(f"timed out waiting for {what or condition}")


def stop(service: ServiceProcess) -> str:
    """SIGTERM, and the process's output once it exits. One that has not exited after the
    service's shutdown_timeout (30 s) and a margin is killed, failing the test with its log."""
    [output] = stop_all([service])
    return output


def stop_all(services: Sequence[ServiceProcess]) -> list[str]:
    """`stop` for several processes at once, as a machine shutting down stops them."""
    for service in services:
        if service.process.poll() is None:
            service.process.send_signal(signal.SIGTERM)
    deadline = time.monotonic() + 40
    for service in services:
        try:
            service.process.wait(timeout=max(0, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            for each in services:
                each.process.kill()
            stuck = f"pid {service.process.pid} ignored SIGTERM for 40 s:\n{service.wait(10)}"
            raise AssertionError(stuck) from None
    return [service.wait(10) for service in services]


def test_aggregator_run_fetches_publishes_serves_and_stops_on_sigterm(
    database_url: str,
    make_config: ConfigFactory,
    run_cli: CliRunnerFunction,
    feed_server: FeedServer,
    tmp_path: Path,
) -> None:
    port = free_port()
    config = run_config(
        make_config,
        database_url,
        [("mixed", feed_server.url("mixed-topics.xml")), ("down", feed_server.url("status/503"))],
        port=port,
    )
    assert run_cli(config, "init").exit_code == 0
    process = start(config)
    try:
        base = f"http://127.0.0.1:{port}"
        wait_for(lambda: (tmp_path / "public" / "feed.xml").exists(), what="the feed file")
        health = wait_for(
            lambda: (
                (h := httpx.get(base + "/healthz").json())["last_successful_fetch"]
                and h["failing_feeds"]
                and h
            ),
            what="a successful fetch and a failed one",
        )
        assert health["scheduler"]["state"] == "running"
        assert {job["id"] for job in health["scheduler"]["jobs"]} == {"fetch"}
        assert [feed["name"] for feed in health["failing_feeds"]] == ["down"]
        # The fetch is recorded before the export that follows it is written: wait for that.
        feed = wait_for(
            lambda: (
                (f := httpx.get(base + "/feed.xml")).status_code == 200
                and b"Anti-CD19 CAR" in f.content
                and f
            ),
            what="the fetched story in the served feed",
        )
        again = httpx.get(base + "/feed.xml", headers={"If-None-Match": feed.headers["etag"]})
        assert again.status_code == 304
        # Fetched again on its own schedule (2s): the server sees conditional requests.
        wait_for(
            lambda: sum(r.path == "/mixed-topics.xml" for r in feed_server.requests) >= 2,
            what="a second scheduled fetch",
        )
        metrics = wait_for(
            lambda: (m := httpx.get(base + "/metrics").text) and "not_modified" in m and m,
            what="the second fetch counted",
        )
        assert 'aggregator_fetches_total{status="not_modified"}' in metrics  # one word
        assert "process_resident_memory_bytes" in metrics
        assert "process_open_fds" in metrics
        assert 'aggregator_fetches_total{status="ok"} 1.0' in metrics
        assert 'aggregator_fetches_total{status="error"}' in metrics
        assert 'aggregator_items_total{change="new"} 4.0' in metrics
        assert "aggregator_stories 4.0" in metrics
        assert "aggregator_fetch_seconds_count" in metrics
    finally:
        stopped_at = time.monotonic()
        output = stop(process)
    assert process.returncode == 0, output
    assert time.monotonic() - stopped_at < 10
    assert "event=stopping signal=SIGTERM" in output
    assert "event=stopped" in output
    assert f"event=starting version={__version__} config={config} database=" in output
    assert "feeds=2 topics=2 subscribers=0" in output


def test_kill_9_mid_fetch_loses_and_duplicates_nothing(
    database_url: str,
    make_config: ConfigFactory,
    run_cli: CliRunnerFunction,
    feed_server: FeedServer,
) -> None:
    port = free_port()
    config = run_config(
        make_config,
        database_url,
        [
            ("slow", feed_server.url("delay/1500/rss20.xml")),
            ("mixed", feed_server.url("mixed-topics.xml")),
        ],
        port=port,
        interval="1h",
    )
    assert run_cli(config, "init").exit_code == 0
    first = start(config, "--no-server")
    wait_for(lambda: any(r.path.startswith("/delay/") for r in feed_server.requests), what="slow")
    first.process.kill()  # mid-fetch: the slow feed's response has not arrived yet
    first.wait(timeout=20)

    second = start(config)
    try:
        settings = load_settings(config, environ={})
        engine = create_database_engine(settings.database.url)
        repository = Repository(engine)
        feeds = wait_for(
            lambda: (
                (rows := repository.list_feeds()) and all(f.last_success_at for f in rows) and rows
            ),
            what="both feeds fetched after the restart",
        )
        stories = repository.list_stories(100, matched_only=False)
        engine.dispose()
    finally:
        output = stop(second)
    assert second.returncode == 0, output
    assert {feed.name: feed.items for feed in feeds} == {"slow": 2, "mixed": 4}
    titles = [story.title for story in stories]
    assert len(titles) == len(set(titles)) == 6


def test_a_feed_hanging_until_its_timeout_holds_up_no_other_feed(
    database_url: str,
    make_config: ConfigFactory,
    run_cli: CliRunnerFunction,
    feed_server: FeedServer,
) -> None:
    hanging, quick = "hold/rss20.xml", "mixed-topics.xml"
    config = run_config(
        make_config,
        database_url,
        [("hanging", feed_server.url(hanging)), ("quick", feed_server.url(quick))],
        port=free_port(),
        interval="1s",
        timeout="60s",
        adaptive=False,  # every second, however rarely the feed publishes
    )
    assert run_cli(config, "init").exit_code == 0
    process = start(config, "--no-server")
    try:
        wait_for(
            lambda: len(feed_server.requests_for(quick)) >= 3,
            what="the quick feed fetched on its schedule while the other hangs",
        )
        assert len(feed_server.requests_for(hanging)) == 1  # one request, still unanswered
        assert not feed_server.released.is_set()
    finally:
        feed_server.released.set()
        output = stop(process)  # feeds under way are stored before it exits
    assert process.returncode == 0, output
    listed = run_cli(config, "feeds", "list", "--json")
    items = {feed["name"]: feed["items"] for feed in json.loads(listed.stdout)}
    assert items == {"hanging": 2, "quick": 4}


def test_sqlite_runs_one_service_process_postgresql_several(
    database_url: str, make_config: ConfigFactory, run_cli: CliRunnerFunction
) -> None:
    config = run_config(make_config, database_url, [], port=free_port())
    assert run_cli(config, "init").exit_code == 0
    first = start(config, "--no-server")
    try:
        first.wait_for_line("event=service_started")  # it holds whatever it holds
        second = start(config, "--no-server")
        if database_url.startswith("sqlite"):
            output = second.wait(timeout=30)
            assert second.returncode == 1
            assert "in use by another `aggregator run`" in output
            assert "use PostgreSQL to run several" in output
        else:
            second.wait_for_line("event=service_started")  # running beside the first
            assert "event=stopped" in stop(second)
    finally:
        stop(first)
    assert first.returncode == 0


def test_three_processes_share_fifty_feeds_and_send_one_digest(
    postgres_database_url: str,
    make_config: ConfigFactory,
    run_cli: CliRunnerFunction,
    feed_server: FeedServer,
) -> None:
    names = [f"source{n:02}" for n in range(50)]
    for name in names:
        write_feed(
            feed_server.root,
            name,
            [(f"{name}-1", None, f"CAR T in MS, told by {name}")],
            published=datetime.now(UTC) - timedelta(hours=1),  # this week's news
        )
    smtp = SmtpServer()
    try:
        config = run_config(
            make_config,
            postgres_database_url,
            [(name, feed_server.url(f"{name}.xml")) for name in names],
            port=free_port(),
            interval="10s",
            extra=(
                '[digest]\nfrom = "Digest <d@x.org>"\nto = ["reader@example.org"]\n\n'
                f'[smtp]\nhost = "127.0.0.1"\nport = {smtp.port}\nsecurity = "none"\n\n'
            ),
        )
        assert run_cli(config, "init").exit_code == 0
        assert run_cli(config, "fetch", "--all").exit_code == 0  # stories for the digest
        feed_server.requests.clear()
        processes = [start(config, "--no-server") for _ in range(3)]

        def fetches() -> Counter[str]:
            return Counter(
                r.path.removeprefix("/").removesuffix(".xml") for r in list(feed_server.requests)
            )

        try:
            # Every feed fetched a second time, 10-11 s after its first: by then a feed
            # fetched by two processes at once would show three fetches or more.
            fetched = wait_for(
                lambda: len(seen := fetches()) == 50 and min(seen.values()) >= 2 and seen,
                timeout=60,
                what="every feed fetched twice",
            )
            wait_for(lambda: smtp.received, what="the digest")
        finally:
            outputs = stop_all(processes)
    finally:
        smtp.stop()
    assert [process.returncode for process in processes] == [0, 0, 0], outputs
    assert all("event=stopped owner=" in output for output in outputs), outputs
    # The start-up line says when the next digest goes; no line names the reader.
    assert all("next_digest=20" in output for output in outputs), outputs
    assert not any("reader@example.org" in output for output in outputs), outputs
    assert set(fetched) == set(names)
    assert max(fetched.values()) <= 3, fetched
    assert len(smtp.received) == 1
    assert "\n".join(outputs).count("outcome=sent") == 1


def test_roles_split_no_scheduler_serves_without_fetching(
    database_url: str,
    make_config: ConfigFactory,
    run_cli: CliRunnerFunction,
    feed_server: FeedServer,
) -> None:
    port = free_port()
    config = run_config(
        make_config, database_url, [("mixed", feed_server.url("mixed-topics.xml"))], port=port
    )
    assert run_cli(config, "init").exit_code == 0
    nothing = run_cli(config, "run", "--no-server", "--no-scheduler")
    assert nothing.exit_code == 2
    assert "leave nothing to run" in nothing.output

    web_only = start(config, "--no-scheduler")
    try:
        health = wait_for(lambda: httpx.get(f"http://127.0.0.1:{port}/healthz").json())
        assert health["scheduler"] == {"state": "off"}
        # Nothing to wait for but time: three poll intervals, in which a scheduler would fetch.
        time.sleep(1)
        assert feed_server.requests == []
    finally:
        output = stop(web_only)
    assert web_only.returncode == 0, output


def test_two_overlapping_fetches_store_everything_and_fetch_each_feed_once(
    database_url: str,
    make_config: ConfigFactory,
    run_cli: CliRunnerFunction,
    feed_server: FeedServer,
) -> None:
    """A cron job's `fetch --all` overlapping another (or `run`): each feed is fetched by one
    of them, the other says so, and no feed is recorded as failing."""
    names = [f"source{n:02}" for n in range(12)]
    for name in names:
        write_feed(
            feed_server.root,
            name,
            [(f"{name}-{n}", None, f"CAR T in MS, report {n} by {name}") for n in range(3)],
            published=datetime.now(UTC) - timedelta(hours=1),
        )
    config = make_config(
        database_url,
        [(name, feed_server.url(f"delay/800/{name}.xml")) for name in names],
        fetch='timeout = "5s"\nconcurrency = 2',
        extra=TOPIC_RULES,
    )
    assert run_cli(config, "init").exit_code == 0
    command = [sys.executable, "-m", "aggregator", "--config", str(config), "fetch", "--all"]
    both = [
        subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        for _ in range(2)
    ]
    outputs = [process.communicate(timeout=60)[0] for process in both]
    assert [process.returncode for process in both] == [0, 0], outputs
    fetched = Counter(r.path.rsplit("/", 1)[1].removesuffix(".xml") for r in feed_server.requests)
    assert fetched == Counter(names), outputs  # each feed once, by one process or the other
    listed = json.loads(run_cli(config, "feeds", "list", "--json").stdout)
    assert [feed["last_error"] for feed in listed] == [None] * len(names)
    assert sum(feed["items"] for feed in listed) == 3 * len(names)
    assert any("left to the process fetching them now" in output for output in outputs), outputs


def test_a_process_leaves_a_feed_its_config_does_not_name_yet_to_one_that_does(
    database_url: str,
    make_config: ConfigFactory,
    run_cli: CliRunnerFunction,
    feed_server: FeedServer,
) -> None:
    """A feed added while a pass runs reaches the database before the pass's settings know
    it (a reload under way; another process sharing the database, its config edited first).
    The pass fetches what it knows, and the new feed stays due for one that knows it."""
    for name in ("first", "second"):
        write_feed(feed_server.root, name, [(f"{name}-1", None, f"CAR T in MS, by {name}")])
    urls = [(name, feed_server.url(f"{name}.xml")) for name in ("first", "second")]
    edited = make_config(database_url, urls, extra=TOPIC_RULES)
    assert run_cli(edited, "init").exit_code == 0  # both feeds stored, both due
    not_yet = load_settings(make_config(database_url, urls[:1], extra=TOPIC_RULES), environ={})
    engine = create_database_engine(database_url)
    try:
        Service(not_yet, engine, scheduler=False, server=False, environ={}).fetch_due()
    finally:
        engine.dispose()
    assert [request.path for request in feed_server.requests] == ["/first.xml"]

    make_config(database_url, urls, extra=TOPIC_RULES)  # its config catches up
    fetched = run_cli(edited, "fetch")  # the due feeds
    assert fetched.exit_code == 0, fetched.output
    listed = json.loads(run_cli(edited, "feeds", "list", "--json").stdout)
    assert {feed["name"]: (feed["items"], feed["last_error"]) for feed in listed} == {
        "first": (1, None),
        "second": (1, None),
    }


def test_run_applies_config_edits_and_sighup_and_keeps_running_on_a_bad_edit(
    database_url: str,
    make_config: ConfigFactory,
    run_cli: CliRunnerFunction,
    feed_server: FeedServer,
) -> None:
    for name in ("first", "second"):
        write_feed(feed_server.root, name, [(f"{name}-1", None, f"CAR T in MS, by {name}")])
    config = run_config(
        make_config, database_url, [("first", feed_server.url("first.xml"))], port=free_port()
    )
    assert run_cli(config, "init").exit_code == 0
    idle = run_cli(config, "feeds", "add", "early", feed_server.url("first.xml?early"))
    assert "no `aggregator run` uses this config now" in idle.output
    run_cli(config, "feeds", "remove", "early")
    service = start(config, "--no-server")
    try:
        service.wait_for_line("event=service_started")
        added = run_cli(config, "feeds", "add", "second", feed_server.url("second.xml"))
        assert added.exit_code == 0, added.output
        assert "the running service (" in added.output
        assert "applies this within seconds" in added.output
        service.wait_for_line("event=config_reloaded reason=")
        wait_for(lambda: feed_server.requests_for("/second.xml"), what="the new feed fetched")

        good = config.read_text(encoding="utf-8")
        config.write_text(good.replace('timeout = "3s"', 'timeout = "soon"'), encoding="utf-8")
        service.wait_for_line("event=config_not_reloaded")
        assert "fetch.timeout" in service.output  # the key and line that are wrong
        assert service.process.poll() is None  # still running, on the config it had

        config.write_text(good, encoding="utf-8")
        service.wait_for_line('config_reloaded reason="file changed"')
        service.process.send_signal(signal.SIGHUP)
        service.wait_for_line("event=config_reloaded reason=SIGHUP")
    finally:
        output = stop(service)
    assert service.returncode == 0, output
    listed = json.loads(run_cli(config, "feeds", "list", "--json").stdout)
    assert {feed["name"]: feed["items"] for feed in listed} == {"first": 1, "second": 1}, output
