"""matches: the sentence that makes each match (what digests and pages quote)

Rows stored before keep an empty quote until the next fetch re-matches them (the matcher's
version changed with this revision, so every stored item is re-matched).

Revision ID: a7c3e9d14f20
Revises: d962b6092513
Create Date: 2026-12-02 10:50:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "a7c3e9d14f20"
down_revision: str | None = "d962b6092513"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("matches") as batch:
        batch.add_column(sa.Column("evidence", sa.Text(), nullable=False, server_default=""))


def downgrade() -> None:
    with op.batch_alter_table("matches") as batch:
        batch.drop_column("evidence")
