"""The site under load (`python -m bench --only site`): requests/s of the page, a story's page
and searches, and how long /healthz takes while the page and searches are flooded.

One database of STORIES on-topic stories, filled by `aggregator fetch` from a feed served on
127.0.0.1, served by `aggregator serve` in its own process, measured with wrk (Debian's `wrk`,
a C load generator). With `--site-baseline PATH` (a git worktree of an earlier version) the
same measurements run against that version's code too, alternating run by run, each with a
database its own `init` made; a route the earlier version lacks shows as "-".
"""

from __future__ import annotations

import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime
from functools import partial
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from xml.sax.saxutils import escape

from sqlalchemy import create_engine, text

from bench.corpus import make_feed_items
from bench.farm import ROOT, free_port, shipped_rules, wait_for

STORIES = 100
CONNECTIONS = 32
SECONDS = 3
PAGE_TARGET = 1_000  # requests/s, unconditional
SEARCH_TARGET = 300
HEALTH_TARGET_MS = 50  # p99 while flooded
SEARCH_WORDS = "car cells sclerosis trial patients therapy phase relapsing progressive cd19"
# A new search on every request: the words vary and `n` makes each address one no cache holds.
NEW_SEARCH_LUA = (
    "local words = {" + ", ".join(f'"{word}"' for word in SEARCH_WORDS.split()) + "}\n"
    """local n = 0
request = function()
  n = n + 1
  local query = words[n % #words + 1] .. "+" .. words[(n * 7) % #words + 1]
  return wrk.format("GET", "/?q=" .. query .. "&n=" .. n)
end
"""
)


def run(runs: int, database_url: str | None = None, baseline: Path | None = None) -> list[str]:
    """The table: each measurement's median over `runs`, for this code and the baseline's."""
    if shutil.which("wrk") is None:
        return ["site: needs wrk (apt install wrk)"]
    trees = {"this version": ROOT} | ({f"baseline ({baseline.name})": baseline} if baseline else {})
    results: dict[str, dict[str, list[float | None]]] = {name: {} for name in trees}
    with tempfile.TemporaryDirectory() as folder, _feed_server(Path(folder)) as feed_url:
        lua = Path(folder) / "new-search.lua"
        lua.write_text(NEW_SEARCH_LUA)
        for _ in range(runs):
            for name, tree in trees.items():  # alternating: drift on the machine hits both
                config = _filled_site(tree, Path(folder) / name, feed_url, database_url)
                for measure, value in _measure(tree, config, lua).items():
                    results[name].setdefault(measure, []).append(value)
    backend = "PostgreSQL" if database_url else "SQLite"
    lines = [
        f"site: {STORIES} stories, {backend}, wrk -c{CONNECTIONS} -d{SECONDS}s, median of {runs}",
        f"{'measurement':<44}" + "".join(f"{name:>22}" for name in trees) + "  target",
    ]
    for measure, target in TARGETS.items():
        cells = [_median(results[name].get(measure, [])) for name in trees]
        shown = "".join(f"{_cell(measure, cell):>22}" for cell in cells)
        lines.append(f"{measure:<44}{shown}  {_verdict(measure, target, cells[0])}")
    return lines


TARGETS = {
    "stories listed on /": STORIES,
    "/ (100 stories), unconditional": PAGE_TARGET,
    "/stories/ID, unconditional": PAGE_TARGET,
    "search, the same query again": SEARCH_TARGET,
    "search, a new query every request": SEARCH_TARGET,
    "/healthz p99 while / and search flooded": HEALTH_TARGET_MS,
}


def _measure(tree: Path, config: Path, lua: Path) -> dict[str, float | None]:
    with _serving(tree, config) as base:
        page = wait_for(base + "/").text
        _wait_for_render_workers(base)
        story = re.search(r'href="/stories/(\d+)"', page)
        story_path = f"/stories/{story[1]}" if story else "/stories/1"
        measured: dict[str, float | None] = {
            "stories listed on /": float(page.count("<article")),
            "/ (100 stories), unconditional": _rate(base + "/"),
            "/stories/ID, unconditional": _rate(base + story_path),
            "search, the same query again": _rate(base + "/?q=car+t+sclerosis"),
            "search, a new query every request": _rate(base + "/", "-s", str(lua)),
        }
        floods = [  # outlasting the health measurement at both ends
            subprocess.Popen(
                _wrk_command(base + "/", *options, seconds=SECONDS + 2), stdout=subprocess.DEVNULL
            )
            for options in ((), ("-s", str(lua)))
        ]
        health = _wrk(base + "/healthz", "--latency", connections=1)
        for flood in floods:
            flood.wait()
        measured["/healthz p99 while / and search flooded"] = _p99_ms(health)
    return measured


def _wait_for_render_workers(base: str) -> None:
    """Until /healthz says the page render workers are up (a version without them says
    nothing of them): the load measures a server that has been running, not its start."""
    for _ in range(300):
        if wait_for(base + "/healthz").json().get("render_workers", "ready") != "starting":
            return
        time.sleep(0.1)
    raise RuntimeError(f"{base}: the render workers did not start")


def _rate(url: str, *options: str) -> float | None:
    report = _wrk(url, *options)
    if "Non-2xx or 3xx responses" in report:
        return None  # a route this version does not have
    errors = re.search(r"connect (\d+), read (\d+), write (\d+)", report)
    if errors and any(int(count) for count in errors.groups()):
        raise RuntimeError(f"{url} failed under load:\n{report}")  # timeouts only count slow
    rate = re.search(r"Requests/sec:\s+([\d.]+)", report)
    assert rate is not None, report
    return float(rate[1])


def _wrk(url: str, *options: str, connections: int = CONNECTIONS) -> str:
    """wrk's report of SECONDS of requests to `url` from `connections` connections."""
    command = _wrk_command(url, *options, connections=connections)
    return subprocess.run(command, capture_output=True, text=True, check=True).stdout


def _wrk_command(
    url: str, *options: str, connections: int = CONNECTIONS, seconds: int = SECONDS
) -> list[str]:
    return ["wrk", "-t1", f"-c{connections}", f"-d{seconds}s", *options, url]


def _p99_ms(report: str) -> float | None:
    """The 99th percentile latency wrk reports, or None when nothing was answered at all."""
    if re.search(r"^\s+0 requests in", report, re.MULTILINE):
        return None
    found = re.search(r"^\s+99%\s+([\d.]+)(us|ms|s)\s*$", report, re.MULTILINE)
    assert found is not None, report
    scale = {"us": 0.001, "ms": 1.0, "s": 1000.0}[found[2]]
    return float(found[1]) * scale


def _filled_site(tree: Path, folder: Path, feed_url: str, database_url: str | None) -> Path:
    """A config and a database of STORIES stories fetched by `tree`'s own code."""
    shutil.rmtree(folder, ignore_errors=True)
    folder.mkdir(parents=True)
    url = database_url or f"sqlite:///{folder / 'site.db'}"
    if database_url:
        engine = create_engine(database_url)
        with engine.begin() as connection:
            connection.execute(text("DROP SCHEMA public CASCADE; CREATE SCHEMA public"))
        engine.dispose()
    config = folder / "config.toml"
    config.write_text(
        f'[database]\nurl = "{url}"\n[fetch]\nallow_private_addresses = true\n'
        f'[output]\ndir = "{folder / "public"}"\nmax_items = {STORIES}\n'
        f"[server]\nport = {free_port()}\n"
        f'[[feeds]]\nname = "news"\nurl = "{feed_url}"\n\n{shipped_rules()}'
    )
    for command in ("init", "fetch"):
        _aggregator(tree, config, command, *(["--all"] if command == "fetch" else []))
    return config


@contextmanager
def _serving(tree: Path, config: Path) -> Iterator[str]:
    server = subprocess.Popen(
        [sys.executable, "-m", "aggregator", "--config", str(config), "serve"],
        env=_environment(tree),
        cwd=tree,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    port = re.search(r"port = (\d+)", config.read_text())
    assert port is not None
    try:
        yield f"http://127.0.0.1:{port[1]}"
    finally:
        server.terminate()
        server.wait()


def _aggregator(tree: Path, config: Path, *args: str) -> None:
    subprocess.run(
        [sys.executable, "-m", "aggregator", "--config", str(config), *args],
        env=_environment(tree),
        cwd=tree,
        check=True,
        capture_output=True,
    )


def _environment(tree: Path) -> dict[str, str]:
    """Run `tree`'s code: its folder first on the import path (and the working directory,
    which `python -m` puts before it)."""
    return os.environ | {"PYTHONPATH": str(tree)}


@contextmanager
def _feed_server(folder: Path) -> Iterator[str]:
    """One RSS feed of STORIES on-topic items, a day apart, on 127.0.0.1."""
    now = datetime.now(UTC)
    entries = "".join(
        f"<item><title>{escape('CD19 CAR T cells in multiple sclerosis: ' + item.title)}</title>"
        f'<link>{escape(item.link)}</link><guid isPermaLink="false">{item.guid}</guid>'
        f"<description>{escape(item.summary)}</description>"
        f"<pubDate>{format_datetime(now - timedelta(days=n))}</pubDate></item>"
        for n, item in enumerate(make_feed_items(STORIES, duplicates=0))
    )
    (folder / "feed.xml").write_text(
        '<?xml version="1.0"?><rss version="2.0"><channel><title>news</title>'
        f"<link>https://news.example/</link><description>news</description>{entries}"
        "</channel></rss>"
    )
    handler = partial(_QuietHandler, directory=str(folder))
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        yield f"http://127.0.0.1:{server.server_port}/feed.xml"
    finally:
        server.shutdown()


class _QuietHandler(SimpleHTTPRequestHandler):
    def log_message(self, format: str, *args: object) -> None:
        """Quiet: a benchmark prints tables, not request logs."""


def _median(values: list[float | None]) -> float | None:
    present = [value for value in values if value is not None]
    return statistics.median(present) if present and len(present) == len(values) else None


def _cell(measure: str, value: float | None) -> str:
    if value is None:
        return "no answer" if measure.startswith("/healthz") else "-"
    if measure.startswith("stories"):
        return f"{value:.0f}"
    return f"{value:.1f} ms" if measure.startswith("/healthz") else f"{value:,.0f} req/s"


def _verdict(measure: str, target: float, value: float | None) -> str:
    if measure.startswith("stories"):
        return f"all {target:.0f}: {'yes' if value == target else 'NO'}"
    if measure.startswith("/healthz"):
        met = value is not None and value <= target
        return f"under {target:.0f} ms: {'met' if met else 'NOT MET'}"
    met = value is not None and value >= target
    return f"{target:,.0f} req/s: {'met' if met else 'NOT MET'}"
