"""full-text search over items: SQLite FTS5, PostgreSQL tsvector

Written by hand: autogenerate knows neither FTS5 virtual tables nor expression indexes.
`aggregator.store.schema.SEARCH_OBJECTS` names them so migration checks leave them alone.

Revision ID: 5e4d3c2b1a09
Revises: 103cfc000f76
Create Date: 2026-11-22 00:05:00
"""

from collections.abc import Sequence

from alembic import op

revision: str = "5e4d3c2b1a09"
down_revision: str | None = "103cfc000f76"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    if op.get_bind().dialect.name == "sqlite":
        op.execute(
            "CREATE VIRTUAL TABLE items_search USING fts5(title, summary, content='items', "
            "content_rowid='id', tokenize='unicode61 remove_diacritics 2')"
        )
        op.execute(
            "CREATE TRIGGER items_search_insert AFTER INSERT ON items BEGIN "
            "INSERT INTO items_search(rowid, title, summary) "
            "VALUES (new.id, new.title, new.summary); END"
        )
        op.execute(
            "CREATE TRIGGER items_search_delete AFTER DELETE ON items BEGIN "
            "INSERT INTO items_search(items_search, rowid, title, summary) "
            "VALUES ('delete', old.id, old.title, old.summary); END"
        )
        op.execute(
            "CREATE TRIGGER items_search_update AFTER UPDATE OF title, summary ON items BEGIN "
            "INSERT INTO items_search(items_search, rowid, title, summary) "
            "VALUES ('delete', old.id, old.title, old.summary); "
            "INSERT INTO items_search(rowid, title, summary) "
            "VALUES (new.id, new.title, new.summary); END"
        )
        op.execute("INSERT INTO items_search(items_search) VALUES ('rebuild')")
    else:
        op.execute(
            "CREATE INDEX ix_items_search ON items "
            "USING gin (to_tsvector('english', title || ' ' || summary))"
        )


def downgrade() -> None:
    if op.get_bind().dialect.name == "sqlite":
        for trigger in ("insert", "delete", "update"):
            op.execute(f"DROP TRIGGER items_search_{trigger}")
        op.execute("DROP TABLE items_search")
    else:
        op.execute("DROP INDEX ix_items_search")
