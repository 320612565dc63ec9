"""Engines for SQLite and PostgreSQL, the check that the schema is this version's, and the
one service slot of a SQLite file (upgrades are `upgrade.py`'s).

SQLite runs in WAL mode: readers (the web page) never block the writer (a fetch), and a crash
mid-transaction leaves the last committed state intact.
"""

from __future__ import annotations

import fcntl
import os
import socket
import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import timedelta
from functools import partial
from pathlib import Path
from typing import Any

from sqlalchemy import Engine, create_engine, event, inspect, text
from sqlalchemy.engine import URL, Dialect, make_url
from sqlalchemy.exc import InvalidatePoolError, OperationalError
from sqlalchemy.pool import ConnectionPoolEntry

from aggregator.errors import AggregatorError, DatabaseNotReadyError
from aggregator.store.sessions import first_line

# The newest migration in migrations/versions: what this version's code expects to find
# (tests/test_migrations.py keeps it equal to Alembic's head).
SCHEMA_REVISION = "c5d7e9f1a2b3"
DEFAULT_BUSY_TIMEOUT = timedelta(seconds=30)
# A PostgreSQL connection used less than this long ago is taken to be alive, and not pinged.
PING_AFTER_IDLE_SECONDS = 1.0
_LAST_USED = "last_used"
# The transaction that takes SQLite's write-ahead log past this many pages copies them back into
# the database file, syncing it, before its commit returns. At SQLite's default (1,000 pages,
# 4 MB) a cold ingest did that every few transactions; at 8,000 (32 MB of log) the pass
# takes about 4% less (bench/README.md, "the write-ahead log").
WAL_AUTOCHECKPOINT_PAGES = 8000
# Prepared statements each SQLite connection keeps (Python's default is 128). A batch's
# multi-row INSERT is one statement per row count, its program as big as its rows, and rarely
# met again: 128 of them held 10 MB of a cold ingest's peak. The few statements a pass repeats
# stay prepared with 16.
SQLITE_CACHED_STATEMENTS = 16


def create_database_engine(url: str, busy_timeout: timedelta = DEFAULT_BUSY_TIMEOUT) -> Engine:
    """An engine for `url` with the per-connection settings each backend needs.

    `busy_timeout` bounds how long a statement waits for a lock another process holds (SQLite's
    busy timeout, PostgreSQL's lock_timeout): past it the unit of work fails whole, is reported,
    and is tried again later, rather than hanging.
    """
    parsed = make_url(url)
    milliseconds = int(busy_timeout.total_seconds() * 1000)
    if parsed.drivername.startswith("sqlite"):
        if parsed.database and parsed.database != ":memory:":
            Path(parsed.database).parent.mkdir(parents=True, exist_ok=True)
        engine = create_engine(
            url,
            connect_args={
                "timeout": busy_timeout.total_seconds(),
                "cached_statements": SQLITE_CACHED_STATEMENTS,
            },
        )
        event.listen(engine, "connect", partial(_configure_sqlite, busy_ms=milliseconds))
        return engine
    engine = _postgresql_engine(parsed, lock_ms=milliseconds)
    event.listen(engine, "checkout", partial(_ping_if_idle, dialect=engine.dialect))
    event.listen(engine, "connect", _mark_used)
    event.listen(engine, "checkin", _mark_used)
    return engine


def _postgresql_engine(url: URL, *, lock_ms: int) -> Engine:
    """PostgreSQL, through psycopg 3's raw cursors where psycopg is the driver.

    psycopg rewrites its placeholders (%s) into PostgreSQL's ($1) before every statement, in
    Python, at about 10 us a parameter, and caches no statement of over 50 parameters: a
    stored batch's insert of 500 items has 9,000, and the rewriting was 40% of a first load's
    store time. SQLAlchemy can write PostgreSQL's own placeholders ("numeric_dollar"), which
    raw cursors send as they are.
    """
    connect_args: dict[str, Any] = {"options": f"-c lock_timeout={lock_ms}"}
    if url.get_driver_name() != "psycopg":
        return create_engine(url, connect_args=connect_args)
    import psycopg  # the postgres extra's: a SQLite install has no psycopg

    engine = create_engine(
        url,
        paramstyle="numeric_dollar",
        connect_args=connect_args | {"cursor_factory": psycopg.RawCursor},
    )

    @event.listens_for(engine, "connect")
    def raw_server_cursors(dbapi_connection: psycopg.Connection[Any], _record: Any) -> None:
        dbapi_connection.server_cursor_factory = psycopg.RawServerCursor

    return engine


def _ping_if_idle(
    dbapi_connection: Any, record: ConnectionPoolEntry, _proxy: Any, *, dialect: Dialect
) -> None:
    """Check a pooled connection that sat idle before handing it out, so a restarted server
    costs nothing but a reconnect (the pool then drops every connection made before).

    SQLAlchemy's `pool_pre_ping` pings on every checkout: a third of the page's time on a busy
    server. A connection in steady use is proven alive by its last use; one that has been
    idle, as after a restart in a quiet spell, is pinged.
    """
    if time.monotonic() - record.info.get(_LAST_USED, 0.0) < PING_AFTER_IDLE_SECONDS:
        return
    try:
        dialect.do_ping(dbapi_connection)
    except dialect.loaded_dbapi.Error as error:
        raise InvalidatePoolError(f"connection lost while idle: {error}") from error


def _mark_used(_dbapi_connection: Any, record: ConnectionPoolEntry) -> None:
    record.info[_LAST_USED] = time.monotonic()


def _configure_sqlite(dbapi_connection: Any, _record: Any, *, busy_ms: int) -> None:
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute(f"PRAGMA busy_timeout={busy_ms}")
    cursor.execute(f"PRAGMA wal_autocheckpoint={WAL_AUTOCHECKPOINT_PAGES}")
    cursor.close()


def this_process() -> str:
    """ "host:pid": who holds a lock or a lease, as other processes can check it."""
    return f"{socket.gethostname()}:{os.getpid()}"


def gone_from_this_host(owner: str) -> bool:
    """True if `owner` ("host:pid") was a process on this machine that no longer exists."""
    host, _, pid = owner.rpartition(":")
    if host != socket.gethostname() or not pid.isdigit() or int(pid) == os.getpid():
        return False
    try:
        os.kill(int(pid), 0)
    except ProcessLookupError:
        return True
    except PermissionError:
        return False
    return False


@contextmanager
def single_service_process(engine: Engine) -> Iterator[None]:
    """Hold the one service slot of a SQLite database; PostgreSQL needs none.

    SQLite has one writer at a time and no row locks to share feeds with, so a second
    `aggregator run` on the same file is refused, naming the process that holds it. The lock is
    the operating system's (flock): a killed holder releases it by dying.
    """
    if engine.dialect.name != "sqlite" or not engine.url.database:
        yield
        return
    path = Path(f"{engine.url.database}.service.lock")
    with path.open("a+", encoding="utf-8") as handle:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            handle.seek(0)
            holder = handle.read().strip() or "another process"
            raise AggregatorError(
                f"{engine.url.database} is in use by another `aggregator run` ({holder}); SQLite "
                "runs one service process: stop that one, or use PostgreSQL to run several"
            ) from None
        handle.seek(0)
        handle.truncate()
        handle.write(f"{this_process()}\n")
        handle.flush()
        yield


def check_schema_current(engine: Engine) -> None:
    """Raise DatabaseNotReadyError unless the database is at this version's schema revision.

    Every command that opens the database asks this, so it reads the one row Alembic keeps and
    compares it with SCHEMA_REVISION, rather than loading Alembic and every migration script
    (a quarter of a second before each command did anything).
    """
    try:
        with engine.connect() as connection:
            current = (
                connection.execute(text("SELECT version_num FROM alembic_version")).scalar()
                if inspect(connection).has_table("alembic_version")
                else None
            )
    except OperationalError as exc:
        raise DatabaseNotReadyError(f"cannot open the database: {first_line(exc)}") from None
    if current != SCHEMA_REVISION:
        state = (
            "is empty" if current is None else f"is at revision {current}, not {SCHEMA_REVISION}"
        )
        raise DatabaseNotReadyError(
            f"the database {state}; run `aggregator init` to create or upgrade it"
        )
