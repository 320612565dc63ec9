"""The long-lived heap, kept out of the garbage collector's walks.

A full collection walks every object the collector tracks, and a server holds about 110,000
from its imports alone (SQLAlchemy, Starlette, Jinja, the config): each full collection took
about 60 ms on this project's 2-core machine, with the event loop answering nothing meanwhile.
Under a flood of page requests those pauses were the slowest answers /healthz gave (p99 about
90 ms; 20-30 ms with the heap frozen, bench/README.md). What exists once a process is set up
lives as long as the process, so the collector need not walk it again (`gc.freeze`, as CPython
documents for long-running servers).
"""

from __future__ import annotations

import gc


def freeze() -> None:
    """Collect what is garbage now, then put every object still alive out of the collector's
    walks. Calling it again (after a reload replaces the app) first gives the objects frozen
    before back to the collector, so what the reload let go is freed rather than kept forever.
    """
    gc.unfreeze()
    gc.collect()
    gc.freeze()
