"""Facts about the database as a whole, kept in the `meta` table: the version readers' pages
are validated against, and which matching rules the stored matches follow."""

from __future__ import annotations

import uuid

from sqlalchemy import select, text
from sqlalchemy.orm import Session

from aggregator.store.schema import Meta

RULES_KEY = "rules_fingerprint"
# Changes whenever what readers see of stories may have changed: the page's validator.
CONTENT_VERSION_KEY = "content_version"
CONTENT_VERSION = select(Meta.value).where(Meta.key == CONTENT_VERSION_KEY)
# An upsert, not a read then a write: two processes writing the same new key at once (two
# `fetch` runs applying new rules) would otherwise both insert it, and one would fail. Written
# once in the syntax SQLite and PostgreSQL share, not built per call from each dialect's own
# insert construct: 12 us a put against 86, and every transaction of a pass puts one.
_PUT = text(
    "INSERT INTO meta (key, value) VALUES (:key, :value)"
    " ON CONFLICT (key) DO UPDATE SET value = excluded.value"
)


def new_content_version(session: Session) -> None:
    """Mark, in `session`'s transaction, that what readers see may have changed. A random
    token, not a counter: writers in several processes can never produce the same one."""
    put_meta(session, CONTENT_VERSION_KEY, uuid.uuid4().hex)


def put_meta(session: Session, key: str, value: str) -> None:
    """Set `key` to `value` in one statement."""
    session.execute(_PUT, {"key": key, "value": value})
