"""The store thread's queue: parsed feeds written several to a transaction, on one thread.

Storing a feed's items costs a few statements and a commit however many items it has, so at 50
items a feed a third of the store's time went to what ten feeds could share. The event loop
hands each parsed feed over and awaits its counts; the store thread takes every feed waiting
when it gets to them (up to MAX_ITEMS). When fewer than FILL_ITEMS wait, it gives them up to
FILL_SECONDS to be joined by the next feeds the parse workers finish: in a first load the
store kept pace with the workers a feed at a time, paying for each feed's transaction alone.
"""

from __future__ import annotations

import asyncio
import threading
import time
from collections import deque
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import NamedTuple

from aggregator import free_pages, logs
from aggregator.analyse import AnalysedEntry
from aggregator.errors import StoreUnavailableError
from aggregator.models import FetchOutcome
from aggregator.store import FeedFetch, Repository

log = logs.get_logger(__name__)
# Items in one transaction at most: beyond a couple of hundred the statements saved are few
# (250 and 500 cost the store the same CPU), each item waiting holds memory, and a longer
# transaction holds SQLite's write lock longer for other processes.
MAX_ITEMS = 250
# A transaction of one 40-item feed cost the store 40-85% more per item than one of three
# feeds (bench/README.md). Fewer items than this wait, up to FILL_SECONDS from the first
# one's arrival, for more: about what a parse worker takes for two or three feeds.
FILL_ITEMS = 120
FILL_SECONDS = 0.03
Counts = tuple[int, int]


class _Waiting(NamedTuple):
    fetch: FeedFetch
    items: int
    counts: asyncio.Future[Counts]
    arrived: float  # time.monotonic()


class StoreQueue:
    """The store thread's queue of parsed feeds. `record` is called from the event loop."""

    def __init__(
        self, repository: Repository, store_thread: ThreadPoolExecutor, max_items: int = MAX_ITEMS
    ) -> None:
        self._repository = repository
        self._store_thread = store_thread
        self._max_items = max_items
        self._waiting: deque[_Waiting] = deque()
        self._arrival = threading.Condition()  # a feed was added to `_waiting`
        self._pages_returned_at = time.monotonic()

    async def record(
        self, feed_id: int, outcome: FetchOutcome, entries: Sequence[AnalysedEntry]
    ) -> Counts:
        """Store the feed with whichever others are waiting; (new, updated) item counts.

        Raises what storing it raised: StoreUnavailableError when the database refused the batch,
        anything else only if this feed's own data failed when stored alone.
        """
        loop = asyncio.get_running_loop()
        counts: asyncio.Future[Counts] = loop.create_future()
        waiting = _Waiting(
            FeedFetch(feed_id, outcome, entries), len(entries), counts, time.monotonic()
        )
        with self._arrival:
            self._waiting.append(waiting)
            self._arrival.notify()
        # One call per feed: each finds its feed stored already or stores it with the rest.
        await loop.run_in_executor(self._store_thread, self._store_waiting, loop)
        return await counts

    def _store_waiting(self, loop: asyncio.AbstractEventLoop) -> None:
        self._return_free_pages()
        batch = self._next_batch()
        if not batch:
            return
        try:
            results = self._repository.record_fetches([waiting.fetch for waiting in batch])
        except StoreUnavailableError as error:  # the database refused: every feed is tried again
            for waiting in batch:
                loop.call_soon_threadsafe(_fail, waiting.counts, error)
            return
        except Exception as error:
            if len(batch) == 1:
                loop.call_soon_threadsafe(_fail, batch[0].counts, error)
                return
            log.warning("batch_not_stored", feeds=len(batch), error=repr(error), then="each alone")
            for waiting in batch:
                self._store_alone(loop, waiting)
            return
        for waiting, result in zip(batch, results, strict=True):
            loop.call_soon_threadsafe(_succeed, waiting.counts, result)

    def _return_free_pages(self) -> None:
        """Now and then, on this thread rather than the event loop's: see `free_pages.py`."""
        now = time.monotonic()
        if now - self._pages_returned_at >= free_pages.EVERY_SECONDS:
            free_pages.return_to_system()
            self._pages_returned_at = now

    def _next_batch(self) -> list[_Waiting]:
        """The feeds to store together: those waiting, once FILL_ITEMS wait or the first has
        waited FILL_SECONDS, up to MAX_ITEMS (a single feed may hold more)."""
        batch: list[_Waiting] = []
        with self._arrival:
            if self._waiting:
                deadline = self._waiting[0].arrived + FILL_SECONDS
                self._arrival.wait_for(
                    lambda: sum(w.items for w in self._waiting) >= FILL_ITEMS,
                    deadline - time.monotonic(),
                )
            items = 0
            while self._waiting and (
                not batch or items + self._waiting[0].items <= self._max_items
            ):
                batch.append(self._waiting.popleft())
                items += batch[-1].items
        return batch

    def _store_alone(self, loop: asyncio.AbstractEventLoop, waiting: _Waiting) -> None:
        """One feed of a failed batch in a transaction of its own, so only a feed whose data
        cannot be stored fails."""
        try:
            result = self._repository.record_fetches([waiting.fetch])[0]
        except Exception as error:
            loop.call_soon_threadsafe(_fail, waiting.counts, error)
        else:
            loop.call_soon_threadsafe(_succeed, waiting.counts, result)


def _succeed(counts: asyncio.Future[Counts], result: Counts) -> None:
    if not counts.done():
        counts.set_result(result)


def _fail(counts: asyncio.Future[Counts], error: BaseException) -> None:
    if not counts.done():
        counts.set_exception(error)
