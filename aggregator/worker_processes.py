"""Worker process pools for CPU-bound work (parsing feeds, rendering pages), so it runs on
every core and leaves the starting process's interpreter lock to its own threads.

Workers are spawned, not forked: the service has threads (scheduler, server, store), and a
child forked from a threaded process can inherit a lock held mid-operation. Each worker logs as
its parent does, and ends when its parent does, even by `kill -9`.
"""

from __future__ import annotations

import logging
import multiprocessing
import os
import threading
from collections.abc import Callable
from concurrent.futures import ProcessPoolExecutor
from typing import Any

from aggregator import logs


def spawn_pool(workers: int, setup: Callable[..., None], *args: Any) -> ProcessPoolExecutor:
    """`workers` processes, each running `setup(*args)` (a module-level function: it is sent
    to them by name) before its first task."""
    return ProcessPoolExecutor(
        workers,
        mp_context=multiprocessing.get_context("spawn"),
        initializer=_start_worker,
        initargs=(logging.getLogger().getEffectiveLevel(), setup, args),
    )


def default_workers() -> int:
    """One worker per core but one: the starting process needs a core of its own."""
    return max(1, (os.cpu_count() or 1) - 1)


def _start_worker(log_level: int, setup: Callable[..., None], args: tuple[Any, ...]) -> None:
    logs.configure(log_level)
    _exit_with_parent()
    setup(*args)


def _exit_with_parent() -> None:
    """End this worker when the process that started it is gone, even by `kill -9`: a worker
    waits on a queue it holds both ends of, so it would never notice, and it would keep the
    service's log pipe (and its memory) forever."""
    parent = multiprocessing.parent_process()
    if parent is None:
        return

    def watch() -> None:
        parent.join()
        os._exit(1)

    threading.Thread(target=watch, name="exit-with-parent", daemon=True).start()
