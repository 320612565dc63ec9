"""Facts about the database as a whole, kept in the `meta` table: the version readers' pages
are validated against, and which matching rules the stored matches follow."""

from __future__ import annotations

import uuid

from sqlalchemy import select
from sqlalchemy.orm import Session

from aggregator.store.schema import Meta

RULES_KEY = "rules_fingerprint"
# Changes whenever what readers see of stories may have changed: the page's validator.
CONTENT_VERSION_KEY = "content_version"
CONTENT_VERSION = select(Meta.value).where(Meta.key == CONTENT_VERSION_KEY)


def new_content_version(session: Session) -> None:
    """Mark, in `session`'s transaction, that what readers see may have changed. A random
    token, not a counter: writers in several processes can never produce the same one."""
    session.merge(Meta(key=CONTENT_VERSION_KEY, value=uuid.uuid4().hex))
