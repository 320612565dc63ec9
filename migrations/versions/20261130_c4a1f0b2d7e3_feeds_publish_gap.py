"""feeds: the typical gap between a feed's items, so a 304 schedules without reading items

Revision ID: c4a1f0b2d7e3
Revises: 83bf65f8d92a
Create Date: 2026-11-30 11:05:00.000000
"""

import itertools
from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "c4a1f0b2d7e3"
down_revision: str | None = "83bf65f8d92a"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# As the service computes it (aggregator.schedule.typical_gap), written out here so that this
# migration means the same thing whatever later versions of the code say.
_SAMPLE = 20
_ENOUGH_DATES = 3


def upgrade() -> None:
    with op.batch_alter_table("feeds", schema=None) as batch_op:
        batch_op.add_column(sa.Column("publish_gap_seconds", sa.Integer(), nullable=True))
    _backfill(op.get_bind())


def downgrade() -> None:
    with op.batch_alter_table("feeds", schema=None) as batch_op:
        batch_op.drop_column("publish_gap_seconds")


def _backfill(connection: sa.Connection) -> None:
    """Feeds already fetched keep the schedule their items give them."""
    feeds = sa.table("feeds", sa.column("id", sa.Integer), sa.column("publish_gap_seconds"))
    items = sa.table(
        "items",
        sa.column("feed_id", sa.Integer),
        sa.column("published_at", sa.DateTime(timezone=True)),
        sa.column("date_estimated", sa.Boolean),
    )
    for feed_id in connection.scalars(sa.select(feeds.c.id)).all():
        published = connection.scalars(
            sa.select(items.c.published_at)
            .where(items.c.feed_id == feed_id, items.c.date_estimated.is_(False))
            .order_by(items.c.published_at.desc())
            .limit(_SAMPLE)
        ).all()
        times = sorted(set(published))
        if len(times) < _ENOUGH_DATES:
            continue
        gaps = sorted(later - earlier for earlier, later in itertools.pairwise(times))
        seconds = int(gaps[len(gaps) // 2].total_seconds())
        connection.execute(
            sa.update(feeds).where(feeds.c.id == feed_id).values(publish_gap_seconds=seconds)
        )
