"""The storage operations the pipeline and commands need, one unit of work per method.

`Repository` is composed of one part per concern, as reader composes its storage: feeds and
their leases (`feeds.py`), recording fetches (`fetches.py`), reading stories (`reading.py`) and
re-matching (`rematch.py`). Callers get and give plain values (`models.py`); sessions and rows
stay inside the store, so each method is one transaction that happens whole or not at all,
and a database that cannot do it raises `StoreUnavailableError`.
"""

from __future__ import annotations

from sqlalchemy import Engine

from aggregator.store.feeds import FeedStore
from aggregator.store.fetches import FetchRecorder
from aggregator.store.reading import StoryReader
from aggregator.store.rematch import Rematcher
from aggregator.store.sessions import Sessions


class Repository(FeedStore, FetchRecorder, StoryReader, Rematcher):
    """Storage for feeds, items and stories on one engine (SQLite or PostgreSQL)."""

    def __init__(self, engine: Engine) -> None:
        self._db = Sessions(engine)
