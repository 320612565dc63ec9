"""The whole service at scale: a synthetic feed farm on 127.0.0.1 and every pass over it.

N feeds x M items of realistic size and vocabulary (`make_feed_items`: long-tailed words, 20%
of stories carried by several feeds, some on the default topics), served with ETag and gzip.
Each scenario is timed against the floor measured in the same run: fetching every feed with
httpx and parsing it with feedparser, and doing nothing else.
"""

from __future__ import annotations

import asyncio
import gzip
import hashlib
import importlib.metadata
import json
import multiprocessing
import os
import re
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from multiprocessing.connection import Connection
from pathlib import Path
from typing import NamedTuple
from xml.sax.saxutils import escape

import feedparser
import httpx
from sqlalchemy import text

from aggregator import heap
from aggregator.config import Settings, load_settings
from aggregator.match import build_matcher
from aggregator.pipeline.fetch_pass import fetch_feeds
from aggregator.publish.digest import Envelope, build_content, compose
from aggregator.publish.export import export_all
from aggregator.store import Outbox, Repository
from aggregator.store.database import create_database_engine
from aggregator.store.upgrade import upgrade_to_head
from bench.corpus import FeedItem, make_feed_items
from bench.cpu import BENCH_THREAD, FARM, CpuSplit
from bench.installed import as_installed

ROOT = Path(__file__).parent.parent
# The targets (issue "Ingest ahead of every peer") on a 2-core machine.
COLD_TARGET = {"SQLite": 1.2, "PostgreSQL": 1.5}  # times the floor's wall time
MEMORY_TARGET_MB = 100
FLAT_FEEDS = 5_000  # peak memory stays flat from the bench's feeds (1,000) up to this many
WARM_TARGET_PER_400 = 0.5  # seconds for 400 feeds, every feed answering 304
IDENTICAL_TARGET_PER_400 = 1.0  # seconds for 400 feeds, every feed resending the same body
REQUESTS_TARGET = 1_000  # per second, conditional requests


class Farm:
    """The feeds, served from a process of their own until `stop()`.

    Real sources answer from other machines; a server in the benchmark's own process would
    take the GIL and a core from the service it measures (a thread per request), and its
    share would count against the service. The floor is measured against the same server.
    """

    def __init__(self, feeds: int, items: int) -> None:
        self.feeds = feeds
        context = multiprocessing.get_context("spawn")
        self._control, child_end = context.Pipe()
        self._process = context.Process(
            target=_serve_farm, args=(child_end, feeds, items), daemon=True
        )
        self._process.start()
        self._port: int = self._control.recv()
        assert self._process.pid is not None  # started, and answered
        self.pid: int = self._process.pid

    def url(self, feed: int) -> str:
        return f"http://127.0.0.1:{self._port}/feed-{feed}.xml"

    def ignore_validators(self, ignore: bool) -> None:
        """Resend every body with a fresh ETag (True), as servers that ignore them do."""
        self._call("ignore_validators", ignore)

    def add_new_items(self, share: float, round_number: int) -> None:
        """Give every feed `share` more items (new stories at the top), as a busy day would."""
        self._call("add_new_items", share, round_number)

    def stop(self) -> None:
        self._call("stop")
        self._process.join()

    def _call(self, command: str, *args: object) -> None:
        self._control.send((command, *args))
        self._control.recv()  # done: the next pass sees the change


class _FarmServer(ThreadingHTTPServer):
    daemon_threads = True
    # socketserver's default backlog is 5: a client opening 16 connections at once had the
    # rest of its SYNs dropped and retried a second later, in every pass. Servers use 511+.
    request_queue_size = 1024


def _serve_farm(control: Connection, feeds: int, items: int) -> None:
    """The farm process: serve `FarmFeeds` and apply the commands `Farm` sends until "stop"."""
    farm = FarmFeeds(feeds, items)

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"
        # Headers and body leave in two writes: with Nagle's algorithm on, each response on a
        # kept-alive connection waited 40 ms for the client's delayed ACK. Web servers set
        # TCP_NODELAY.
        disable_nagle_algorithm = True

        def log_message(self, format: str, *args: object) -> None:
            """Quiet: a benchmark prints tables, not request logs."""

        def do_GET(self) -> None:
            farm.serve(self)

    server = _FarmServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    control.send(server.server_port)
    while True:
        command, *args = control.recv()
        if command == "stop":
            break
        if command == "ignore_validators":
            farm.ignore_validators = args[0]
        elif command == "add_new_items":
            farm.add_new_items(*args)
        else:
            raise ValueError(f"unknown farm command {command!r}")
        control.send(None)
    server.shutdown()
    control.send(None)


class FarmFeeds:
    """Feed bodies in memory, answering with ETag and gzip; `ignore_validators` resends all."""

    def __init__(self, feeds: int, items: int) -> None:
        self.feeds = feeds
        self._items: list[list[FeedItem]] = [[] for _ in range(feeds)]
        for index, item in enumerate(make_feed_items(feeds * items)):
            self._items[index % feeds].append(_on_topic(item) if item.story % 10 == 0 else item)
        self.ignore_validators = False
        self._bodies = self._render()

    def add_new_items(self, share: float, round_number: int) -> None:
        per_feed = max(1, round(len(self._items[0]) * share))
        fresh = make_feed_items(self.feeds * per_feed, seed=1000 + round_number)
        for index, item in enumerate(fresh):
            renamed = FeedItem(
                item.feed,
                item.link + f"?r{round_number}",
                item.guid + f"-r{round_number}",
                item.title,
                item.summary,
                item.story,
            )
            self._items[index % self.feeds].insert(0, renamed)
        self._bodies = self._render()

    def serve(self, handler: BaseHTTPRequestHandler) -> None:
        feed = int(handler.path.removeprefix("/feed-").removesuffix(".xml"))
        plain, gzipped, etag = self._bodies[feed]
        if self.ignore_validators:
            etag = f'"{time.monotonic_ns()}"'
        elif handler.headers.get("If-None-Match") == etag:
            handler.send_response(304)
            handler.send_header("ETag", etag)
            handler.send_header("Content-Length", "0")
            handler.end_headers()
            return
        body = gzipped if "gzip" in handler.headers.get("Accept-Encoding", "") else plain
        handler.send_response(200)
        handler.send_header("Content-Type", "application/rss+xml; charset=utf-8")
        handler.send_header("ETag", etag)
        handler.send_header("Content-Length", str(len(body)))
        if body is gzipped:
            handler.send_header("Content-Encoding", "gzip")
        handler.end_headers()
        handler.wfile.write(body)

    def _render(self) -> list[tuple[bytes, bytes, str]]:
        published = datetime(2026, 11, 1, tzinfo=UTC)
        bodies = []
        for feed, items in enumerate(self._items):
            entries = "".join(
                f"<item><title>{escape(item.title)}</title><link>{escape(item.link)}</link>"
                f'<guid isPermaLink="false">{escape(item.guid)}</guid>'
                f"<pubDate>{format_datetime(published - timedelta(hours=n))}</pubDate>"
                f"<description>{escape(item.summary)}</description></item>"
                for n, item in enumerate(items)
            )
            plain = (
                f'<?xml version="1.0" encoding="utf-8"?><rss version="2.0"><channel>'
                f"<title>Feed {feed}</title><link>https://feed{feed}.example/</link>"
                f"<description>bench</description>{entries}</channel></rss>"
            ).encode()
            etag = '"' + hashlib.sha256(plain).hexdigest()[:16] + '"'
            bodies.append((plain, gzip.compress(plain, 6), etag))
        return bodies


def _on_topic(item: FeedItem) -> FeedItem:
    """One story in ten is about the default topic, as in a well-chosen set of sources."""
    return FeedItem(
        item.feed,
        item.link,
        item.guid,
        "CD19 CAR T cells in multiple sclerosis: " + item.title,
        item.summary,
        item.story,
    )


def floor(farm: Farm, concurrency: int = 16) -> float:
    """Fetch every feed with httpx and parse it with feedparser; nothing else. Seconds."""

    async def run() -> None:
        limit = asyncio.Semaphore(concurrency)
        async with httpx.AsyncClient(timeout=30) as client:

            async def one(feed: int) -> None:
                async with limit:
                    response = await client.get(farm.url(feed))
                feedparser.parse(response.content)

            await asyncio.gather(*(one(feed) for feed in range(farm.feeds)))

    started = time.perf_counter()
    asyncio.run(run())
    return time.perf_counter() - started


def refresh_floor(farm: Farm, runs: int, concurrency: int = 16) -> float:
    """The median of `runs` passes asking httpx alone for every feed with its ETag, reading
    whatever comes back (a 304, or the same body again where the farm ignores validators):
    what a refresh costs before anything of ours runs. Seconds."""

    async def passes() -> list[float]:
        limit = asyncio.Semaphore(concurrency)
        etags: dict[int, str] = {}
        limits = httpx.Limits(max_connections=concurrency)
        async with httpx.AsyncClient(timeout=30, limits=limits) as client:

            async def one(feed: int) -> None:
                headers = {"If-None-Match": etags[feed]} if feed in etags else {}
                async with limit:
                    response = await client.get(farm.url(feed), headers=headers)
                etags[feed] = response.headers["ETag"]

            async def one_pass() -> float:
                started = time.perf_counter()
                await asyncio.gather(*(one(feed) for feed in range(farm.feeds)))
                return time.perf_counter() - started

            await one_pass()  # learns the ETags
            return [await one_pass() for _ in range(runs)]

    return statistics.median(asyncio.run(passes()))


class PeerRun(NamedTuple):
    """lemon24/reader's `update_feeds` on the same farm, in a process of its own."""

    cold: float  # seconds, every feed new
    warm: float  # seconds, every feed answering 304
    peak_mb: float


def peer_version() -> str | None:
    """The installed reader's version (the `bench` extra), or None."""
    try:
        return importlib.metadata.version("reader")
    except importlib.metadata.PackageNotFoundError:
        return None


def peer(farm: Farm, database: Path) -> PeerRun:
    """reader ingesting the farm cold into `database`, then refreshing it (`bench/peer.py`)."""
    urls = json.dumps([farm.url(feed) for feed in range(farm.feeds)])
    done = subprocess.run(
        [sys.executable, "-m", "bench.peer", str(database)],
        input=urls,
        capture_output=True,
        text=True,
        check=True,
        cwd=ROOT,
    )
    return PeerRun(**json.loads(done.stdout))


def command_peak_mb(farm: Farm, database_url: str | None, folder: Path) -> float:
    """The peak resident memory of `aggregator fetch --all` ingesting the farm cold, run as an
    operator runs it, in a process of its own and with only the packages an install has
    (`installed.py`): what the service holds, without what this one does (the bench's own
    modules, Alembic to create its databases, the floor's parser).

    Read from wait4's usage of that process, which also covers the parse workers it reaped
    (a third of its size). Linux carries a process's peak across exec, so the command is
    started from a small launcher, not from this process: its peak would be this one's."""
    service = Service(farm, database_url, folder)
    service.engine.dispose()
    command = [sys.executable, "-m", "aggregator", "--config", str(service.config)]
    done = subprocess.run(
        [sys.executable, "-c", _LAUNCHER, *command, "fetch", "--all"],
        capture_output=True,
        text=True,
        check=True,
        env=as_installed(folder / "installed"),
    )
    return int(done.stdout) / 1024


def peak_at_many_feeds(items: int, database_url: str | None, folder: Path) -> float:
    """`command_peak_mb` on a farm of FLAT_FEEDS feeds: what a pass holds at a time is meant
    not to grow with its feeds, so the service's peak should not either."""
    farm = Farm(FLAT_FEEDS, items)
    try:
        return command_peak_mb(farm, database_url, folder)
    finally:
        farm.stop()


_LAUNCHER = """
import os, sys
quiet = [(os.POSIX_SPAWN_OPEN, 1, os.devnull, os.O_WRONLY, 0)]
pid = os.posix_spawn(sys.argv[1], sys.argv[1:], os.environ, file_actions=quiet)
_, status, usage = os.wait4(pid, 0)
if os.waitstatus_to_exitcode(status) != 0:
    sys.exit("aggregator fetch --all failed")
print(usage.ru_maxrss)
"""


class Service:
    """A fresh database and the settings `aggregator` would run with against the farm."""

    def __init__(self, farm: Farm, database_url: str | None, folder: Path) -> None:
        url = database_url or f"sqlite:///{folder / 'bench.db'}"
        feeds = "".join(
            f'[[feeds]]\nname = "feed-{n}"\nurl = "{farm.url(n)}"\n' for n in range(farm.feeds)
        )
        folder.mkdir(parents=True, exist_ok=True)
        self.config = folder / "config.toml"
        self.config.write_text(
            f'[database]\nurl = "{url}"\n[fetch]\nallow_private_addresses = true\n'
            # Every farm feed is on one host; real sources are spread over many, so the
            # per-host politeness limit is lifted to the overall one (as the floor has it).
            f'timeout = "60s"\nmax_bytes = "50MB"\nper_host = 16\n'
            f'[output]\ndir = "{folder / "public"}"\n'
            f"[server]\nport = {free_port()}\n"
            f'[digest]\nfrom = "bench@localhost"\nto = ["reader@localhost"]\n'
            f"{feeds}\n{shipped_rules()}"
        )
        self.settings: Settings = load_settings(self.config, environ={})
        self.engine = create_database_engine(self.settings.database.url)
        if database_url:  # each cold ingest starts from an empty database, as SQLite's do
            with self.engine.begin() as connection:
                connection.execute(text("DROP SCHEMA public CASCADE; CREATE SCHEMA public"))
        upgrade_to_head(self.engine)
        self.repository = Repository(self.engine)
        self.repository.sync_feeds(self.settings.feeds)
        self.matcher = build_matcher(self.settings)
        self.digest_stories = 0
        # Set up: `aggregator run` and `aggregator fetch` freeze what they built before their
        # first pass too, so a pass's full collections walk only what the pass made.
        heap.freeze()

    def fetch_all(self) -> float:
        now = datetime.now(UTC)
        feeds = self.repository.feeds_to_fetch(now, include_not_due=True)
        started = time.perf_counter()
        asyncio.run(fetch_feeds(self.settings, self.repository, self.matcher, feeds))
        return time.perf_counter() - started

    def export(self) -> float:
        started = time.perf_counter()
        export_all(self.settings, self.repository)
        return time.perf_counter() - started

    def digest(self, stories: int = 1_000) -> float:
        """Select the stories a reader is due, take `stories` of them, build, render, compose."""
        [reader] = self.settings.all_subscribers
        now = datetime.now(UTC)
        started = time.perf_counter()
        due = Outbox(self.engine).due_stories(
            reader.email, reader.topics, now - timedelta(days=3650)
        )
        rows = self.repository.stories_by_id([story_id for story_id, _ in due[:stories]])
        content = build_content(
            rows,
            reader,
            title=self.settings.output.title,
            topic_titles=self.settings.topic_titles,
            period=(now - timedelta(days=7), now),
            feeds=self.repository.list_feeds(),
            base_url=self.settings.output.base_url,
            contact="bench@localhost",
        )
        compose(content, Envelope("bench@localhost", reader.email, "<bench@localhost>", "bench"))
        self.digest_stories = content.count
        return time.perf_counter() - started


def requests_per_second(config: Path, path: str, runs: int, connections: int = 32) -> float | None:
    """Median requests/s of conditional GETs of `path` from `connections` concurrent clients
    against `aggregator serve` in its own process, or None without wrk (Debian's `wrk`), a C
    load generator on one thread: a Python client saturated before the server did."""
    wrk = shutil.which("wrk")
    if wrk is None:
        return None
    port = load_settings(config, environ={}).server.port
    url = f"http://127.0.0.1:{port}{path}"
    server = subprocess.Popen(
        [sys.executable, "-m", "aggregator", "--config", str(config), "serve"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        conditional = f"If-None-Match: {wait_for(url).headers.get('etag', '')}"
        rates = []
        for _ in range(runs):
            command = [wrk, "-t1", f"-c{connections}", "-d3s", "-H", conditional, url]
            report = subprocess.run(command, capture_output=True, text=True, check=True).stdout
            if "Non-2xx or 3xx responses" in report or "Socket errors" in report:
                raise RuntimeError(f"{url} failed under load:\n{report}")
            rate = re.search(r"Requests/sec:\s+([\d.]+)", report)
            assert rate is not None, report
            rates.append(float(rate.group(1)))
    finally:
        server.terminate()
        server.wait()
    return statistics.median(rates)


def shipped_rules() -> str:
    """The shipped config.toml's terms, vetoes and topics: what every benchmark matches by."""
    shipped = (ROOT / "config.toml").read_text()
    return shipped[shipped.index("[terms]") : shipped.index("\n[digest]")]


def wait_for(url: str) -> httpx.Response:
    for _ in range(300):
        try:
            return httpx.get(url)
        except httpx.TransportError:
            time.sleep(0.1)
    raise RuntimeError(f"{url} did not come up")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def _median(measure: Callable[[], float], runs: int) -> float:
    return statistics.median(measure() for _ in range(runs))


def imports_mb(folder: Path) -> float:
    """The peak resident memory of a fresh process that imports what `aggregator fetch` does
    (the command, its pipeline, the store), with only the packages an install has and
    without the imports the command leaves out, and does nothing: the floor under the
    command's peak.
    Read from VmHWM, which counts from the exec: ru_maxrss would keep this process's peak,
    which a forked child inherits."""
    script = (
        "import re, pathlib, aggregator.cli; aggregator.cli.leave_out_unused_imports();"
        "import aggregator.cli.app, aggregator.cli.fetch, aggregator.store;"
        "status = pathlib.Path('/proc/self/status').read_text();"
        r"print(int(re.search(r'VmHWM:\s+(\d+)', status)[1]) / 1024)"
    )
    done = subprocess.run(
        [sys.executable, "-c", script],
        capture_output=True,
        text=True,
        check=True,
        cwd=ROOT,
        env=as_installed(folder),
    )
    return float(done.stdout)


class ChildPeaks:
    """The largest peak resident memory of any child of this process while in use but one
    (the farm's): the parse workers. Read from /proc (VmHWM), which counts from the child's
    exec; the kernel's RUSAGE_CHILDREN would also count the farm, and every child's moments as
    a fork of this process before its exec."""

    def __init__(self, besides: int | None, interval: float = 0.5) -> None:
        self.peak_mb = 0.0
        self._besides = str(besides)
        self._done = threading.Event()
        self._watcher = threading.Thread(
            target=self._watch, args=(interval,), name=f"{BENCH_THREAD}peaks", daemon=True
        )

    def __enter__(self) -> ChildPeaks:
        self._watcher.start()
        return self

    def __exit__(self, *_exc: object) -> None:
        self._done.set()
        self._watcher.join()

    def _watch(self, interval: float) -> None:
        parent = str(os.getpid())
        while not self._done.wait(interval):
            for status in Path("/proc").glob("[0-9]*/status"):
                try:
                    fields = dict(line.split(":\t", 1) for line in status.read_text().splitlines())
                except (OSError, ValueError):
                    continue  # gone meanwhile
                if (
                    fields.get("PPid") == parent
                    and fields.get("Pid") != self._besides
                    and "VmHWM" in fields
                ):
                    self.peak_mb = max(self.peak_mb, int(fields["VmHWM"].split()[0]) / 1024)


def run(feeds: int, items: int, runs: int, database_url: str | None = None) -> list[str]:
    """Every scenario at `feeds` x `items`; the table as lines, then where a missed target's
    time went."""
    farm = Farm(feeds, items)
    backend = "PostgreSQL" if database_url else "SQLite"
    version = peer_version()
    rows: list[tuple[str, str, str, str]] = []
    try:
        floors: list[float] = []
        cold: list[tuple[float, CpuSplit]] = []
        peers: list[PeerRun] = []
        workers_mb = 0.0
        with tempfile.TemporaryDirectory() as folder:
            # First: on PostgreSQL it fills the one database, which each cold ingest empties.
            many_peak = None
            if feeds < FLAT_FEEDS:
                many_peak = peak_at_many_feeds(items, database_url, Path(folder) / "many")
            for attempt in range(runs):  # alternating: the floor, the peer, the service
                floors.append(floor(farm))
                if version is not None:
                    peers.append(peer(farm, Path(folder) / f"reader-{attempt}.sqlite"))
                service = Service(farm, database_url, Path(folder) / str(attempt))
                with ChildPeaks(besides=farm.pid) as workers, CpuSplit(farm.pid) as split:
                    cold.append((service.fetch_all(), split))
                workers_mb = max(workers_mb, workers.peak_mb)
                if attempt < runs - 1:
                    service.engine.dispose()
            floor_seconds = statistics.median(floors)
            rows.append(("floor: httpx + feedparser only", f"{floor_seconds:.1f} s", "1.00x", ""))
            cold_seconds, cold_split = sorted(cold, key=lambda run: run[0])[len(cold) // 2]
            cold_ratio = cold_seconds / floor_seconds
            total = feeds * items
            rows.append(
                (
                    f"cold ingest ({total:,} items)",
                    f"{cold_seconds:.1f} s, {total / cold_seconds:,.0f} items/s",
                    f"{cold_ratio:.2f}x",
                    verdict(f"{COLD_TARGET[backend]}x", cold_ratio <= COLD_TARGET[backend]),
                )
            )
            peak = command_peak_mb(farm, database_url, Path(folder) / "command")
            imports = imports_mb(Path(folder) / "installed")
            rows.append(("floor: the command's imports alone", f"{imports:.0f} MB", "", ""))
            rows.append(
                (
                    "peak memory: fetch --all as installed (worker)",
                    f"{peak:.1f} MB ({workers_mb:.0f} MB)",
                    "",
                    verdict(f"{MEMORY_TARGET_MB} MB", peak < MEMORY_TARGET_MB),
                )
            )
            if many_peak is not None:
                rows.append(
                    (
                        f"peak memory: the same, {FLAT_FEEDS:,} feeds (one run)",
                        f"{many_peak:.1f} MB, {_kb_a_feed(many_peak - peak, feeds)} a feed more",
                        "",
                        verdict(f"flat, {MEMORY_TARGET_MB} MB", many_peak < MEMORY_TARGET_MB),
                    )
                )
            warm = _median(service.fetch_all, runs)
            warm_target = WARM_TARGET_PER_400 * feeds / 400
            httpx_warm = refresh_floor(farm, runs)
            rows.append(("floor: httpx only, every feed 304", f"{httpx_warm:.2f} s", "", ""))
            rows.append(
                (
                    "warm refresh, every feed 304",
                    f"{warm:.2f} s",
                    f"{warm / httpx_warm:.2f}x",
                    verdict(f"{warm_target:.2g} s", warm < warm_target),
                )
            )
            farm.ignore_validators(True)
            same = _median(service.fetch_all, runs)
            httpx_same = refresh_floor(farm, runs)
            farm.ignore_validators(False)
            same_target = IDENTICAL_TARGET_PER_400 * feeds / 400
            rows.append(("floor: httpx only, every body resent", f"{httpx_same:.2f} s", "", ""))
            rows.append(
                (
                    "refresh, identical bodies resent",
                    f"{same:.2f} s",
                    f"{same / httpx_same:.2f}x",
                    verdict(f"{same_target:.2g} s", same < same_target),
                )
            )
            theirs = _median_peer(peers) if version is not None else None
            rows += _peer_rows(version, theirs, floor_seconds, cold_seconds, warm, peak)
            fresh: list[float] = []
            for round_number in range(runs):
                farm.add_new_items(0.05, round_number)
                fresh.append(service.fetch_all())
            changed = statistics.median(fresh)
            rows.append(
                (
                    "refresh with 5% new items",
                    f"{changed:.1f} s",
                    f"{changed / floor_seconds:.2f}x",
                    "",
                )
            )
            export = _median(service.export, runs)
            rows.append(("export (every feed file)", f"{export:.2f} s", "", ""))
            digest_seconds = _median(service.digest, runs)
            rows.append(
                (
                    f"digest build, {service.digest_stories:,} stories",
                    f"{digest_seconds:.2f} s",
                    "",
                    "",
                )
            )
            for name, path in (("/feed.xml", "/feed.xml"), ("/ (the page)", "/")):
                rate = requests_per_second(service.config, path, runs)
                rows.append(
                    (
                        f"{name}, conditional, 32 clients",
                        "needs wrk (apt install wrk)" if rate is None else f"{rate:,.0f} req/s",
                        "",
                        verdict(
                            f"{REQUESTS_TARGET:,} req/s",
                            rate is not None and rate > REQUESTS_TARGET,
                        ),
                    )
                )
            service.engine.dispose()
    finally:
        farm.stop()
    width = max(len(name) for name, _, _, _ in rows)
    lines = [
        f"feed farm: {feeds:,} feeds x {items} items, {backend}, median of {runs} run(s)",
        f"{'scenario':<{width}}  {'result':>28}  {'vs floor':>8}  target",
    ]
    lines += [
        f"{name:<{width}}  {result:>28}  {ratio:>8}  {aim}".rstrip()
        for name, result, ratio, aim in rows
    ]
    return [
        *lines,
        *_cold_cpu_lines(cold_seconds, cold_split, floor_seconds, COLD_TARGET[backend]),
        *_memory_lines(peak, imports, theirs),
        *_flat_memory_lines(peak, many_peak, feeds),
    ]


def _median_peer(peers: list[PeerRun]) -> PeerRun:
    return PeerRun(*(statistics.median(values) for values in zip(*peers, strict=True)))


def _peer_rows(
    version: str | None,
    theirs: PeerRun | None,
    floor_seconds: float,
    cold: float,
    warm: float,
    peak: float,
) -> list[tuple[str, str, str, str]]:
    """reader's rows, each beside ours: the target is to be ahead of it."""
    if version is None or theirs is None:
        return [("peer: reader", "needs the bench extra (pip install -e '.[bench]')", "", "")]
    return [
        (
            f"peer: reader {version}, cold ingest",
            f"{theirs.cold:.1f} s",
            f"{theirs.cold / floor_seconds:.2f}x",
            verdict("ahead of it", cold < theirs.cold),
        ),
        (
            f"peer: reader {version}, warm refresh",
            f"{theirs.warm:.2f} s",
            "",
            verdict("ahead of it", warm < theirs.warm),
        ),
        (
            f"peer: reader {version}, peak memory",
            f"{theirs.peak_mb:.0f} MB",
            "",
            verdict("ahead of it", peak < theirs.peak_mb),
        ),
    ]


def _memory_lines(peak: float, imports: float, theirs: PeerRun | None) -> list[str]:
    """Why a missed memory target is missed: the command's imports (a floor no pass goes
    under) against what its pass added."""
    targets = [(f"{MEMORY_TARGET_MB} MB", float(MEMORY_TARGET_MB))]
    if theirs is not None:
        targets.append((f"reader's peak ({theirs.peak_mb:.0f} MB)", theirs.peak_mb))
    missed = [(name, limit) for name, limit in targets if peak >= limit]
    if not missed:
        return []
    lines = [
        "",
        f"peak memory {peak:.1f} MB: the command's imports {imports:.1f} MB,"
        f" its pass {peak - imports:.1f} MB more",
    ]
    for name, limit in missed:
        if imports >= limit:
            lines.append(
                f"  not met, under {name}: the imports alone are over it; to meet it, a fetch"
                f" that imports over {imports - limit:.1f} MB less"
            )
        else:
            lines.append(
                f"  not met, under {name}: to meet it, a pass that adds under"
                f" {limit - imports:.1f} MB (or imports that much less)"
            )
    return lines


def _flat_memory_lines(peak: float, many_peak: float | None, feeds: int) -> list[str]:
    """Why peak memory is not flat: what each feed beyond the bench's own added, against
    what the target leaves."""
    if many_peak is None or many_peak < MEMORY_TARGET_MB:
        return []
    room = MEMORY_TARGET_MB - peak
    if room > 0:
        to_meet = f"under {_kb_a_feed(room, feeds)} a feed more"
    else:  # the fewer feeds are over it already
        to_meet = f"first under {MEMORY_TARGET_MB} MB at {feeds:,} feeds (above)"
    return [
        "",
        f"peak memory {peak:.1f} MB at {feeds:,} feeds, {many_peak:.1f} MB at {FLAT_FEEDS:,}:"
        f" {_kb_a_feed(many_peak - peak, feeds)} for each feed more",
        f"  not met, flat under {MEMORY_TARGET_MB} MB: to meet it, {to_meet}",
    ]


def _kb_a_feed(megabytes: float, feeds: int) -> str:
    """`megabytes` shared among the feeds FLAT_FEEDS has beyond `feeds`."""
    return f"{megabytes * 1024 / (FLAT_FEEDS - feeds):.1f} KB"


def verdict(target: str, met: bool) -> str:
    return f"{target}: {'met' if met else 'NOT MET'}"


def _cold_cpu_lines(
    wall: float, split: CpuSplit, floor_seconds: float, target_ratio: float
) -> list[str]:
    """The median cold ingest's CPU by part: a missed target is explained by the parts that
    cannot share a core. The service process's threads take turns holding one interpreter
    lock, so its CPU is about the least wall time it can take however the rest is spread."""
    lines = [
        "",
        f"cold ingest, CPU by part (the median run: {wall:.1f} s wall, {os.cpu_count()} cores;"
        f" {target_ratio}x the floor is {target_ratio * floor_seconds:.1f} s)",
    ]
    for part, seconds in sorted(split.parts.items(), key=lambda part: -part[1]):
        lines.append(f"  {part:<46} {seconds:6.1f} s")
    lines.append(f"  {'this process (shares one GIL)':<46} {split.this_process:6.1f} s")
    cores = os.cpu_count() or 1
    total = sum(split.parts.values())
    # However well spread, the pass cannot end before its CPU is spent: this process's share
    # on one core (one interpreter lock), everyone's on all of them.
    least = max(split.this_process, total / cores)
    lines.append(f"  {'all parts':<46} {total:6.1f} s")
    lines.append(f"  {f'least wall time this CPU allows on {cores} cores':<46} {least:6.1f} s")
    target = target_ratio * floor_seconds
    if wall <= target:
        return lines
    return lines + _cold_budget_lines(split, total, floor_seconds, target, cores)


def _cold_budget_lines(
    split: CpuSplit, total: float, floor_seconds: float, target: float, cores: int
) -> list[str]:
    """What a missed cold-ingest target would take: the CPU the pass may use to end in time,
    beside what it used. The floor's own work (fetching, feedparser) is in every pass, and the
    farm serves it the same bodies; the rest is the service's, and is what must shrink."""
    budget = target * cores
    farm = split.parts.get(FARM, 0.0)
    ours = total - floor_seconds - farm
    ours_budget = budget - floor_seconds - farm
    used = {
        "the floor's work (fetching, feedparser)": floor_seconds,
        "the farm serving it": farm,
        "the service's own (analysis, storing, ...)": ours,
    }
    lines = [
        f"not met: ending in {target:.1f} s on {cores} cores allows {budget:.1f} s of CPU,"
        f" {target:.1f} s of it in this process (one interpreter lock); used:",
        *(f"  {part:<46} {seconds:6.1f} s" for part, seconds in used.items()),
    ]
    if ours_budget <= 0:
        lines.append("  to meet it: a parser faster than feedparser (the floor's alone is over it)")
    elif ours > ours_budget:
        lines.append(
            f"  to meet it: the service's own under {ours_budget:.1f} s"
            f" ({1 - ours_budget / ours:.0%} less)"
        )
    if split.this_process > target:
        lines.append(
            f"  to meet it: this process under {target:.1f} s"
            f" ({1 - target / split.this_process:.0%} less than {split.this_process:.1f} s)"
        )
    lines.append("  where the service's own time goes, and what would cut it: bench/README.md")
    return lines
