"""Shared fixtures: a real feed server, real databases (SQLite and PostgreSQL), configs, the CLI."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx
import pytest
import uvicorn
from click.testing import CliRunner, Result
from feed_server import FeedServer
from pg_cluster import PostgresCluster, PostgresUnavailable
from ports import free_port
from selenium import webdriver
from selenium.webdriver.chrome.service import Service
from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url

from aggregator.cli import cli

DATA_DIR = Path(__file__).parent / "data"
FEEDS_DIR = DATA_DIR / "feeds"
# What a person would look at after a run: screenshots of every page the browser tests visit.
ARTEFACTS_DIR = Path(__file__).parent.parent / "test-artefacts"

ConfigFactory = Callable[..., Path]
CliRunnerFunction = Callable[..., Result]


@pytest.fixture
def feed_server(tmp_path: Path) -> Iterator[FeedServer]:
    """Serves a copy of tests/data/feeds, so a test may edit files between fetches."""
    with serve_feeds(tmp_path) as server:
        yield server


@contextmanager
def serve_feeds(folder: Path) -> Iterator[FeedServer]:
    """A feed server on a copy of tests/data/feeds in `folder`, for the block."""
    root = folder / "site"
    shutil.copytree(FEEDS_DIR, root)
    server = FeedServer(root)
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture(scope="session")
def postgres_admin_url() -> Iterator[str]:
    """A superuser URL: $AGGREGATOR_TEST_POSTGRES_URL, else a throw-away local cluster.

    Outside CI a machine without PostgreSQL skips these tests; in CI (CI=true) that is a failure.
    """
    if url := os.environ.get("AGGREGATOR_TEST_POSTGRES_URL"):
        yield url
        return
    try:
        cluster = PostgresCluster()
        cluster.start()
    except (PostgresUnavailable, KeyError, subprocess.CalledProcessError) as exc:
        detail = getattr(exc, "stderr", b"") or b""
        message = f"PostgreSQL unavailable: {exc} {detail.decode(errors='replace')}"
        if os.environ.get("CI") == "true":
            pytest.fail(message)
        pytest.skip(message)
    yield cluster.admin_url
    cluster.stop()


@pytest.fixture(params=["sqlite", "postgresql"])
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """An empty database, once on SQLite and once on PostgreSQL."""
    with empty_database(request, tmp_path) as url:
        yield url


@contextmanager
def empty_database(request: pytest.FixtureRequest, folder: Path) -> Iterator[str]:
    """The URL of an empty database of the kind `request.param` names, for the block."""
    if request.param == "sqlite":
        yield f"sqlite:///{folder / 'aggregator.db'}"
    else:
        yield from _postgres_database(request)


@pytest.fixture
def another_database_url(
    request: pytest.FixtureRequest, database_url: str, tmp_path: Path
) -> Iterator[str]:
    """A second empty database of the same kind as `database_url`."""
    if database_url.startswith("sqlite"):
        yield f"sqlite:///{tmp_path / 'another.db'}"
    else:
        yield from _postgres_database(request)


@pytest.fixture
def postgres_database_url(request: pytest.FixtureRequest) -> Iterator[str]:
    """An empty PostgreSQL database, for what only PostgreSQL does (several service processes)."""
    yield from _postgres_database(request)


def _postgres_database(request: pytest.FixtureRequest) -> Iterator[str]:
    """A fresh database in the session's cluster, dropped afterwards."""
    admin_url = request.getfixturevalue("postgres_admin_url")
    name = f"test_{uuid.uuid4().hex[:12]}"
    admin = create_engine(admin_url, isolation_level="AUTOCOMMIT")
    with admin.connect() as connection:
        connection.execute(text(f'CREATE DATABASE "{name}"'))
    yield make_url(admin_url).set(database=name).render_as_string(hide_password=False)
    with admin.connect() as connection:
        connection.execute(text(f'DROP DATABASE "{name}" WITH (FORCE)'))
    admin.dispose()


@pytest.fixture
def make_config(tmp_path: Path) -> ConfigFactory:
    """Write a config.toml for tests: local feeds allowed, short timeouts, the given feeds."""
    return config_factory(tmp_path)


def config_factory(folder: Path) -> ConfigFactory:
    """`make_config` writing into `folder`."""

    def make(
        database_url: str,
        feeds: Sequence[tuple[str, str]] = (),
        *,
        extra: str = "",
        fetch: str = 'timeout = "5s"',
    ) -> Path:
        feed_tables = "".join(
            f'\n[[feeds]]\nname = "{name}"\nurl = "{url}"\n' for name, url in feeds
        )
        path = folder / "config.toml"
        path.write_text(
            f'[database]\nurl = "{database_url}"\n\n'
            f"[fetch]\nallow_private_addresses = true\n{fetch}\n"
            f"{feed_tables}\n{extra}",
            encoding="utf-8",
        )
        return path

    return make


@pytest.fixture
def run_cli() -> CliRunnerFunction:
    """Run `aggregator --config CONFIG ARGS...` in-process; returns click's Result."""
    return invoke_cli


def invoke_cli(config: Path, *args: str) -> Result:
    """`run_cli` for fixtures wider than a test."""
    return CliRunner().invoke(cli, ["--config", str(config), *args], catch_exceptions=False)


CHROMIUM = Path("/usr/bin/chromium")
CHROMEDRIVER = Path("/usr/bin/chromedriver")


@pytest.fixture
def browser(tmp_path: Path) -> Iterator[Any]:
    """Debian's headless chromium, driven through chromium-driver (nothing is downloaded)."""
    if not (CHROMIUM.exists() and CHROMEDRIVER.exists()):
        message = (
            "chromium and chromium-driver are needed (apt-get install chromium chromium-driver)"
        )
        if os.environ.get("CI") == "true":
            pytest.fail(message)
        pytest.skip(message)
    options = webdriver.ChromeOptions()
    options.binary_location = str(CHROMIUM)
    for flag in (
        "--headless=new",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-quic",
        "--no-first-run",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--disable-dev-shm-usage",
        f"--user-data-dir={tmp_path / 'profile'}",
    ):
        options.add_argument(flag)
    driver = webdriver.Chrome(service=Service(str(CHROMEDRIVER)), options=options)
    yield driver
    driver.quit()


@pytest.fixture
def screenshot(browser: Any, request: pytest.FixtureRequest) -> Callable[[str], Path]:
    """Save what the browser shows as test-artefacts/screenshots/<test>[<params>]-<name>.png,
    kept after the run for a person to look at; returns the file."""
    folder = ARTEFACTS_DIR / "screenshots"
    folder.mkdir(parents=True, exist_ok=True)
    test = request.node.name.removeprefix("test_")

    def save(name: str) -> Path:
        path = folder / f"{test}-{name}.png"
        browser.save_screenshot(str(path))
        assert path.stat().st_size > 5_000  # a page, not a blank
        return path

    return save


@contextmanager
def serve_process(config: Path) -> Iterator[tuple[str, subprocess.Popen[bytes]]]:
    """`aggregator serve` in a process of its own on a free port, once it answers; yields its
    base URL and the process, and stops it (SIGTERM) afterwards. Its log goes to a file beside
    the config (a pipe nobody reads would fill and stall it)."""
    port = free_port()
    command = [sys.executable, "-m", "aggregator", "--config", str(config), "serve"]
    log = (config.parent / "serve.log").open("wb")
    with (
        log,
        subprocess.Popen(
            [*command, "--port", str(port)], stdout=subprocess.DEVNULL, stderr=log
        ) as process,
    ):
        url = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + 20
        while True:
            try:
                httpx.get(url + "/healthz")
                break
            except httpx.ConnectError:
                assert process.poll() is None, "aggregator serve exited early"
                assert time.monotonic() < deadline, "aggregator serve did not start"
                time.sleep(0.1)
        try:
            yield url, process
        finally:
            if process.poll() is None:
                process.terminate()
            process.wait(timeout=10)


@contextmanager
def serving(app: Any, port: int | None = None) -> Iterator[str]:
    """Run an ASGI app with uvicorn on 127.0.0.1 (on `port`, or a free one) in a thread;
    yields its base URL."""
    port = port or free_port()
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_config=None))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not server.started and time.monotonic() < deadline:
        time.sleep(0.02)
    yield f"http://127.0.0.1:{port}"
    server.should_exit = True
    thread.join(timeout=10)
