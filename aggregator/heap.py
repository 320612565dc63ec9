"""The long-lived heap, kept out of the garbage collector's walks.

A full collection walks every object the collector tracks, and a server holds about 110,000
from its imports alone (SQLAlchemy, Starlette, Jinja, the config): each full collection took
about 60 ms on this project's 2-core machine, with the event loop answering nothing meanwhile.
Under a flood of page requests those pauses were the slowest answers /healthz gave (p99 about
90 ms; 20-30 ms with the heap frozen, bench/README.md). What exists once a process is set up
lives as long as the process, so the collector need not walk it again (`gc.freeze`, as CPython
documents for long-running servers).

A command pays for the same heap while it is built: its imports allocate so many objects that
the collector ran about 190 times while `stories list` started, a full walk among them, and
found nothing to free. So the collector waits until a command is set up, and then leaves what
was built out of its walks: `stories list` went from 0.35 to 0.28 s (bench/README.md).
"""

from __future__ import annotations

import gc
from collections.abc import Iterator
from contextlib import contextmanager


@contextmanager
def collector_paused() -> Iterator[None]:
    """Hold the collector until `settled()` (or the end of the block, whichever comes first):
    the block is a command being set up, whose imports and config live as long as it does."""
    gc.disable()
    try:
        yield
    finally:
        settled()


def settled() -> None:
    """End `collector_paused`: what was built meanwhile goes out of the collector's walks, and
    the collector runs again for what the command does next (a service runs for months)."""
    if not gc.isenabled():
        gc.freeze()
        gc.enable()


def freeze() -> None:
    """Collect what is garbage now, then put every object still alive out of the collector's
    walks. Calling it again (after a reload replaces the app) first gives the objects frozen
    before back to the collector, so what the reload let go is freed rather than kept forever.
    """
    gc.unfreeze()
    gc.collect()
    gc.freeze()
