"""The engine's connections outlive a PostgreSQL restart, without a ping before every use."""

from __future__ import annotations

import time

import pytest
from sqlalchemy import create_engine, text
from sqlalchemy.pool import NullPool

from aggregator.errors import StoreUnavailableError
from aggregator.store import Repository
from aggregator.store.database import PING_AFTER_IDLE_SECONDS, create_database_engine
from aggregator.store.upgrade import upgrade_to_head


def _drop_connections_like_a_restart(database_url: str) -> None:
    """End every other session on the database, as a server restart does, and wait for it."""
    admin = create_engine(database_url, poolclass=NullPool, isolation_level="AUTOCOMMIT")
    others = "FROM pg_stat_activity WHERE datname = current_database() AND pid <> pg_backend_pid()"
    with admin.connect() as connection:
        connection.execute(text(f"SELECT pg_terminate_backend(pid) {others}"))
        deadline = time.monotonic() + 10
        while connection.scalar(text(f"SELECT count(*) {others}")):
            assert time.monotonic() < deadline, "sessions did not end"
            time.sleep(0.05)
    admin.dispose()


def test_connections_lost_while_idle_are_replaced_unnoticed(postgres_database_url: str) -> None:
    engine = create_database_engine(postgres_database_url)
    upgrade_to_head(engine)
    repository = Repository(engine)
    try:
        version = repository.content_version()  # the pool now holds live connections
        _drop_connections_like_a_restart(postgres_database_url)
        time.sleep(PING_AFTER_IDLE_SECONDS + 0.2)

        assert repository.content_version() == version
        assert repository.count_stories() == 0
    finally:
        engine.dispose()


def test_a_connection_lost_in_steady_use_fails_one_unit_of_work_only(
    postgres_database_url: str,
) -> None:
    """The price of not pinging a connection used a moment ago: the one unit of work that
    finds it gone fails, as any database error does (a fetch is retried, a page request
    answered 500), and the pool is rebuilt for the next."""
    engine = create_database_engine(postgres_database_url)
    upgrade_to_head(engine)
    repository = Repository(engine)
    try:
        repository.count_stories()
        _drop_connections_like_a_restart(postgres_database_url)

        with pytest.raises(StoreUnavailableError):
            repository.count_stories()
        assert repository.count_stories() == 0
    finally:
        engine.dispose()
