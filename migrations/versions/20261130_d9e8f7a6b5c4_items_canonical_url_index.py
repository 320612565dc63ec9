"""items: an index on the canonical URL, so finding the links a feed's items share is a lookup

Revision ID: d9e8f7a6b5c4
Revises: c4a1f0b2d7e3
Create Date: 2026-11-30 13:55:00.000000
"""

from collections.abc import Sequence

from alembic import op

revision: str = "d9e8f7a6b5c4"
down_revision: str | None = "c4a1f0b2d7e3"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    # A hash index on PostgreSQL: a btree entry cannot hold the longest links.
    op.create_index("ix_items_canonical_url", "items", ["canonical_url"], postgresql_using="hash")


def downgrade() -> None:
    op.drop_index("ix_items_canonical_url", table_name="items")
