"""What commands show on a terminal: tables that fit its width, and a progress bar that stays
at the bottom while log lines print above it (rich does both). Piped or redirected, output is
plain: tables keep every character, and there is no bar, only the log lines. rich's tables
and bars are imported only for a terminal: a scheduled `fetch` writes to a log and would hold
them (0.8 MB) for nothing.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager

import click
from rich.console import Console

from aggregator import logs

LEADING_COLUMN_MAX = 32
COLUMN_GAP = 2  # between two columns: one space of padding, one of the (blank) rule


def print_table(
    headers: Sequence[str], rows: Sequence[Sequence[str]], console: Console | None = None
) -> None:
    """Columns under headers: cut to the terminal's width with an ellipsis (the last column
    gives way first), or whole when the output is not a terminal."""
    console = console or Console()
    if not console.is_terminal:
        _print_plain(headers, rows)
        return
    from rich import box
    from rich.table import Table

    table = Table(box=box.SIMPLE_HEAD, pad_edge=False, show_edge=False, padding=(0, 1, 0, 0))
    widths = [
        min(max([len(header), *(len(row[index]) for row in rows)]), LEADING_COLUMN_MAX)
        for index, header in enumerate(headers)
    ]
    # The leading columns (names, states, counts) keep their width up to LEADING_COLUMN_MAX;
    # the last (an error, a title) has what is left of the line, and gives way first.
    left = console.width - sum(widths[:-1]) - COLUMN_GAP * (len(headers) - 1)
    for index, header in enumerate(headers):
        last = index == len(headers) - 1
        table.add_column(
            header,
            no_wrap=True,
            overflow="ellipsis",
            width=max(left, len(header)) if last else widths[index],
        )
    for row in rows:
        table.add_row(*row)
    console.print(table)


@contextmanager
def progress(
    total: int, label: str, console: Console | None = None
) -> Iterator[Callable[[], None]]:
    """A bar counting to `total` on a terminal's standard error, log lines printed above it;
    yields the function that advances it (which does nothing off a terminal)."""
    console = console or Console(stderr=True)
    if not console.is_terminal:
        yield lambda: None
        return
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    bar = Progress(
        TextColumn(label),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        console=console,
        redirect_stderr=False,
        redirect_stdout=False,
    )
    task = bar.add_task(label, total=total)
    with bar, logs.writing_to(_AboveTheBar(console)):
        yield lambda: bar.advance(task)


class _AboveTheBar:
    """A stream for log lines that prints each above the live bar."""

    def __init__(self, console: Console) -> None:
        self._console = console

    def write(self, text: str) -> int:
        if text.strip():
            self._console.print(text.rstrip("\n"), markup=False, highlight=False, soft_wrap=True)
        return len(text)

    def flush(self) -> None:
        pass


def _print_plain(headers: Sequence[str], rows: Sequence[Sequence[str]]) -> None:
    widths = [max(len(str(cell)) for cell in column) for column in zip(headers, *rows, strict=True)]
    for cells in [headers, *rows]:
        click.echo(
            "  ".join(cell.ljust(width) for cell, width in zip(cells, widths, strict=True)).rstrip()
        )
