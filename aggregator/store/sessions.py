"""Units of work on one engine, and the one place database errors become the project's own.

Every store method runs inside `transaction()` or `reading()`; an OperationalError (a lock held
past the busy timeout, a full disk, a lost server) leaves them as `StoreUnavailableError`, so
the pipeline, the commands and the service handle "the database could not do it" without
knowing which database, driver or library was behind it.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import AbstractContextManager, contextmanager
from typing import TypeVar

from sqlalchemy import Connection, Engine
from sqlalchemy.exc import OperationalError
from sqlalchemy.orm import Session, sessionmaker

from aggregator.errors import StoreUnavailableError

_T = TypeVar("_T")


class Sessions:
    """Transactions and reads on `engine`, with the database's errors translated."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self.dialect = engine.dialect.name
        self._sessions = sessionmaker(engine, expire_on_commit=False)
        # The pages' reads need no transaction: at PostgreSQL's READ COMMITTED each statement
        # sees its own snapshot inside one all the same, and BEGIN and ROLLBACK were two of the
        # version check's three round trips. On SQLite, where they cost no round trip,
        # switching a connection's mode and back costs more than it saves.
        self._plain_reads = (
            engine.execution_options(isolation_level="AUTOCOMMIT")
            if self.dialect == "postgresql"
            else engine
        )

    def transaction(self) -> AbstractContextManager[Session]:
        """A session whose work is committed together when the block ends, or not at all."""
        return _translated(self._sessions.begin())

    def reading(self) -> AbstractContextManager[Session]:
        """A session for reads; nothing it does is committed."""
        return _translated(self._sessions())

    def plain_reads(self) -> AbstractContextManager[Connection]:
        """A plain connection for reads outside any transaction: each statement sees what was
        committed when it ran."""
        return _translated(self._plain_reads.connect())


@contextmanager
def _translated(context: AbstractContextManager[_T]) -> Iterator[_T]:
    with unavailable_as_error(), context as value:
        yield value


@contextmanager
def unavailable_as_error() -> Iterator[None]:
    """Raise StoreUnavailableError, naming the database's complaint, for an OperationalError."""
    try:
        yield
    except OperationalError as error:
        raise StoreUnavailableError(first_line(error)) from error


def first_line(error: OperationalError) -> str:
    """The database's own words for what went wrong, without SQLAlchemy's statement dump."""
    return str(error.orig or error).strip().splitlines()[0]
