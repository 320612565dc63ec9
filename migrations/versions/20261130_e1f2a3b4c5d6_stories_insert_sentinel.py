"""stories: an insert sentinel, so new stories are inserted many to a statement on SQLite

SQLite cannot say which new row id belongs to which row of a multi-row INSERT .. RETURNING,
so without a column numbering the rows SQLAlchemy inserts stories one statement each there.

Revision ID: e1f2a3b4c5d6
Revises: d9e8f7a6b5c4
Create Date: 2026-11-30 16:25:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "e1f2a3b4c5d6"
down_revision: str | None = "d9e8f7a6b5c4"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.add_column("stories", sa.Column("_sentinel", sa.Integer(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("stories") as batch:
        batch.drop_column("_sentinel")
