"""items: search_text, the folded words search reads (text, identifiers, source), indexed the
same way on both databases

Search read only titles and summaries, with PostgreSQL stemming English and parsing "OR" while
SQLite did neither: one query meant two things. Now the application folds each item's words
(lower case, no accents, no punctuation: `aggregator.normalise.search_words`) into
`search_text`, and both indexes only split it on spaces: FTS5 over it on SQLite, a 'simple'
tsvector on PostgreSQL. Existing rows are filled by the application (`aggregator init` or the
next fetch), which owns the folding; a partial index finds the rows still to fill.

Written by hand: autogenerate knows neither FTS5 virtual tables nor expression indexes.

Revision ID: b81f4c2e9a31
Revises: a7c3e9d14f20
Create Date: 2026-12-02 12:20:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "b81f4c2e9a31"
down_revision: str | None = "a7c3e9d14f20"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    sqlite = op.get_bind().dialect.name == "sqlite"
    if sqlite:
        for trigger in ("insert", "delete", "update"):
            op.execute(f"DROP TRIGGER items_search_{trigger}")
        op.execute("DROP TABLE items_search")
    else:
        op.execute("DROP INDEX ix_items_search")
    op.add_column("items", sa.Column("search_text", sa.Text(), nullable=False, server_default=""))
    op.create_index(
        "ix_items_unindexed",
        "items",
        ["id"],
        sqlite_where=sa.text("search_text = ''"),
        postgresql_where=sa.text("search_text = ''"),
    )
    if sqlite:
        op.execute(
            "CREATE VIRTUAL TABLE items_search USING fts5(search_text, content='items', "
            "content_rowid='id', tokenize='unicode61 remove_diacritics 0')"
        )
        # The index must hold every existing row as it stands (empty), or the update trigger's
        # 'delete' of a row it never held corrupts it when the application fills the row.
        op.execute("INSERT INTO items_search(items_search) VALUES ('rebuild')")
        op.execute(
            "CREATE TRIGGER items_search_insert AFTER INSERT ON items BEGIN "
            "INSERT INTO items_search(rowid, search_text) VALUES (new.id, new.search_text); END"
        )
        op.execute(
            "CREATE TRIGGER items_search_delete AFTER DELETE ON items BEGIN "
            "INSERT INTO items_search(items_search, rowid, search_text) "
            "VALUES ('delete', old.id, old.search_text); END"
        )
        op.execute(
            "CREATE TRIGGER items_search_update AFTER UPDATE OF search_text ON items BEGIN "
            "INSERT INTO items_search(items_search, rowid, search_text) "
            "VALUES ('delete', old.id, old.search_text); "
            "INSERT INTO items_search(rowid, search_text) VALUES (new.id, new.search_text); END"
        )
    else:
        op.execute(
            "CREATE INDEX ix_items_search ON items "
            "USING gin (to_tsvector('simple'::regconfig, search_text))"
        )


def downgrade() -> None:
    sqlite = op.get_bind().dialect.name == "sqlite"
    if sqlite:
        for trigger in ("insert", "delete", "update"):
            op.execute(f"DROP TRIGGER items_search_{trigger}")
        op.execute("DROP TABLE items_search")
    else:
        op.execute("DROP INDEX ix_items_search")
    op.drop_index("ix_items_unindexed", table_name="items")
    with op.batch_alter_table("items") as batch:
        batch.drop_column("search_text")
    if sqlite:
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
