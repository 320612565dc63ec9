"""Storage: SQLAlchemy on SQLite or PostgreSQL, behind two faces: `Repository` (feeds, items,
stories, matches) and `Outbox` (digests). The rest of the code gets and gives `models` values."""

from aggregator.store.fetches import FeedFetch
from aggregator.store.outbox import Outbox
from aggregator.store.repository import Repository

__all__ = ["FeedFetch", "Outbox", "Repository"]
