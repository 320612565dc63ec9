"""Facts about the database as a whole, kept in the `meta` table: the version readers' pages
are validated against, and which matching rules the stored matches follow."""

from __future__ import annotations

import uuid
from typing import TYPE_CHECKING

from sqlalchemy import select
from sqlalchemy.orm import Session

from aggregator.store.schema import Meta

if TYPE_CHECKING:
    from sqlalchemy.dialects import postgresql, sqlite

RULES_KEY = "rules_fingerprint"
# Changes whenever what readers see of stories may have changed: the page's validator.
CONTENT_VERSION_KEY = "content_version"
CONTENT_VERSION = select(Meta.value).where(Meta.key == CONTENT_VERSION_KEY)


def new_content_version(session: Session) -> None:
    """Mark, in `session`'s transaction, that what readers see may have changed. A random
    token, not a counter: writers in several processes can never produce the same one."""
    put_meta(session, CONTENT_VERSION_KEY, uuid.uuid4().hex)


def put_meta(session: Session, key: str, value: str) -> None:
    """Set `key` to `value` in one statement. An upsert, not a read then a write: two
    processes writing the same new key at once (two `fetch` runs applying new rules) would
    otherwise both insert it, and one would fail."""
    # Each dialect's own upsert, imported when used: PostgreSQL's dialect costs every command
    # on SQLite 20 ms to import.
    statement: postgresql.Insert | sqlite.Insert
    if session.get_bind().dialect.name == "postgresql":
        from sqlalchemy.dialects.postgresql import insert as postgresql_insert

        statement = postgresql_insert(Meta)
    else:
        from sqlalchemy.dialects.sqlite import insert as sqlite_insert

        statement = sqlite_insert(Meta)
    session.execute(
        statement.values(key=key, value=value).on_conflict_do_update(
            index_elements=[Meta.key], set_={"value": value}
        )
    )
