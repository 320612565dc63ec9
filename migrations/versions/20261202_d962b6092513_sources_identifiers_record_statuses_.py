"""items: their sources' own identifiers and a registry record's status (and its history);
stories: when they were published

Revision ID: d962b6092513
Revises: e1f2a3b4c5d6
Create Date: 2026-12-02 08:55:39.000042
"""

from collections import defaultdict
from collections.abc import Sequence
from datetime import datetime

import sqlalchemy as sa
from alembic import op

revision: str = "d962b6092513"
down_revision: str | None = "e1f2a3b4c5d6"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# As ClinicalTrials.gov words its statuses (aggregator.sources.clinicaltrials.STATUS_LABELS),
# written out so that this migration means the same whatever later versions of the code say.
_STATUS_LABELS = {
    "NOT_YET_RECRUITING": "Not yet recruiting",
    "RECRUITING": "Recruiting",
    "ENROLLING_BY_INVITATION": "Enrolling by invitation",
    "ACTIVE_NOT_RECRUITING": "Active, not recruiting",
    "SUSPENDED": "Suspended",
    "TERMINATED": "Terminated",
    "COMPLETED": "Completed",
    "WITHDRAWN": "Withdrawn",
    "UNKNOWN": "Unknown status",
}


def upgrade() -> None:
    op.create_table(
        "record_statuses",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("item_id", sa.Integer(), nullable=False),
        sa.Column("status", sa.String(length=64), nullable=False),
        sa.Column("as_of", sa.DateTime(timezone=True), nullable=False),
        sa.Column("seen_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["item_id"],
            ["items.id"],
            name=op.f("fk_record_statuses_item_id_items"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_record_statuses")),
    )
    with op.batch_alter_table("record_statuses", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_record_statuses_item_id"), ["item_id"], unique=False)
    with op.batch_alter_table("items", schema=None) as batch_op:
        batch_op.add_column(sa.Column("identifiers", sa.JSON(), nullable=True))
        batch_op.add_column(sa.Column("status", sa.String(length=64), nullable=True))
    with op.batch_alter_table("stories", schema=None) as batch_op:
        batch_op.add_column(sa.Column("published_at", sa.DateTime(timezone=True), nullable=True))
        batch_op.add_column(sa.Column("published_estimated", sa.Boolean(), nullable=True))
    connection = op.get_bind()
    _backfill_statuses(connection)
    _backfill_published(connection)
    with op.batch_alter_table("stories", schema=None) as batch_op:
        batch_op.alter_column("published_at", nullable=False)
        batch_op.alter_column("published_estimated", nullable=False)
        batch_op.create_index(batch_op.f("ix_stories_published_at"), ["published_at"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("stories", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_stories_published_at"))
        batch_op.drop_column("published_estimated")
        batch_op.drop_column("published_at")
    with op.batch_alter_table("items", schema=None) as batch_op:
        batch_op.drop_column("status")
        batch_op.drop_column("identifiers")
    with op.batch_alter_table("record_statuses", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_record_statuses_item_id"))
    op.drop_table("record_statuses")


_ITEMS = sa.table(
    "items",
    sa.column("id", sa.Integer),
    sa.column("story_id", sa.Integer),
    sa.column("link", sa.Text),
    sa.column("categories", sa.JSON),
    sa.column("status", sa.String),
    sa.column("published_at", sa.DateTime(timezone=True)),
    sa.column("date_estimated", sa.Boolean),
    sa.column("first_seen_at", sa.DateTime(timezone=True)),
)


def _backfill_statuses(connection: sa.Connection) -> None:
    """ClinicalTrials.gov items kept their status as a category ("status:RECRUITING"): it
    becomes their status and the first entry of their history."""
    statuses = sa.table(
        "record_statuses",
        sa.column("item_id", sa.Integer),
        sa.column("status", sa.String),
        sa.column("as_of", sa.DateTime(timezone=True)),
        sa.column("seen_at", sa.DateTime(timezone=True)),
    )
    query = sa.select(_ITEMS.c.id, _ITEMS.c.categories, _ITEMS.c.published_at).where(
        _ITEMS.c.link.like("%clinicaltrials.gov/study/%")
    )
    for item_id, categories, published_at in connection.execute(query).all():
        codes = [c.removeprefix("status:") for c in categories or [] if c.startswith("status:")]
        if not codes:
            continue
        label = _STATUS_LABELS.get(codes[0], codes[0].replace("_", " ").capitalize())
        connection.execute(sa.update(_ITEMS).where(_ITEMS.c.id == item_id).values(status=label))
        connection.execute(
            sa.insert(statuses).values(
                item_id=item_id, status=label, as_of=published_at, seen_at=published_at
            )
        )


def _backfill_published(connection: sa.Connection) -> None:
    """A story's publication date from its items: a registry record's latest version, else the
    earliest real date of any source, else (estimated) when it was first seen. The next change
    to a story recomputes it the service's own way."""
    stories = sa.table(
        "stories",
        sa.column("id", sa.Integer),
        sa.column("first_seen_at", sa.DateTime(timezone=True)),
        sa.column("published_at", sa.DateTime(timezone=True)),
        sa.column("published_estimated", sa.Boolean),
    )
    dates: defaultdict[int, list[tuple[bool, datetime]]] = defaultdict(list)
    query = sa.select(
        _ITEMS.c.story_id, _ITEMS.c.link, _ITEMS.c.published_at, _ITEMS.c.date_estimated
    ).where(_ITEMS.c.story_id.is_not(None), _ITEMS.c.date_estimated.is_(False))
    for story_id, link, published_at, _ in connection.execute(query):
        dates[story_id].append(("clinicaltrials.gov/study/" in (link or ""), published_at))
    for story_id, first_seen in connection.execute(
        sa.select(stories.c.id, stories.c.first_seen_at)
    ):
        known = dates.get(story_id)
        registry = [published for is_registry, published in known or [] if is_registry]
        if registry:
            published, estimated = max(registry), False
        elif known:
            published, estimated = min(published for _, published in known), False
        else:
            published, estimated = first_seen, True
        connection.execute(
            sa.update(stories)
            .where(stories.c.id == story_id)
            .values(published_at=published, published_estimated=estimated)
        )
