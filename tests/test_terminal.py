"""What a person at a terminal sees: tables that fit, a progress bar under the log lines."""

from __future__ import annotations

import io
import logging
from collections.abc import Iterator

import pytest
from rich.console import Console

from aggregator import logs
from aggregator.terminal import print_table, progress

HEADERS = ["feed", "status", "error"]
ROWS = [
    ["ms-society-news", "error", "HTTP 503 Service Unavailable: " + "the server said no " * 8],
    ["kysa-trials", "ok", ""],
]


def terminal(width: int) -> tuple[Console, io.StringIO]:
    screen = io.StringIO()
    return Console(file=screen, force_terminal=True, width=width, color_system=None), screen


def test_a_table_fits_the_terminal_with_an_ellipsis() -> None:
    console, screen = terminal(60)
    print_table(HEADERS, ROWS, console)
    lines = screen.getvalue().splitlines()
    assert lines
    assert max(len(line) for line in lines) <= 60
    assert any("…" in line for line in lines)
    assert any(line.lstrip().startswith("ms-society-news") for line in lines)  # names stay whole


def test_off_a_terminal_a_table_keeps_every_character(capsys: pytest.CaptureFixture[str]) -> None:
    print_table(HEADERS, ROWS, Console(file=io.StringIO(), force_terminal=False))
    printed = capsys.readouterr().out
    assert ROWS[0][2].rstrip() in printed
    assert "…" not in printed


@pytest.fixture
def logging_restored() -> Iterator[None]:
    root = logging.getLogger()
    handlers, level = root.handlers[:], root.level
    yield
    root.handlers, root.level = handlers, level


@pytest.mark.usefixtures("logging_restored")
def test_log_lines_print_above_the_progress_bar() -> None:
    stderr = io.StringIO()
    logs.configure(logging.WARNING, stream=stderr)
    console, screen = terminal(80)
    log = logs.get_logger("aggregator.test")
    with progress(2, "Fetching feeds", console) as advance:
        advance()
        log.warning("feed_failed", feed="down", error="HTTP 503")
        advance()
    shown = screen.getvalue()
    assert "event=feed_failed feed=down" in shown
    assert shown.index("event=feed_failed") < shown.rindex("2/2")  # the bar ends below it
    assert stderr.getvalue() == ""  # nothing written past the bar, under it
    log.warning("after_the_bar")
    assert "event=after_the_bar" in stderr.getvalue()  # logs go back where they went
