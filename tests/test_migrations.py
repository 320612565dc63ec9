"""Alembic migrations: an empty database upgrades to head, and migrations match the models."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Engine, inspect, text

from aggregator.store import Repository
from aggregator.store.database import SCHEMA_REVISION, create_database_engine
from aggregator.store.schema import Base, is_search_object
from aggregator.store.upgrade import migrations_dir, upgrade_to_head


def head_revision() -> str | None:
    config = Config()
    config.set_main_option("script_location", str(migrations_dir()))
    return ScriptDirectory.from_config(config).get_current_head()


def upgrade_to(engine: Engine, revision: str) -> None:
    """Bring an empty database to an older revision, as a past release would have left it."""
    config = Config()
    config.set_main_option("script_location", str(migrations_dir()))
    with engine.begin() as connection:
        config.attributes["connection"] = connection
        command.upgrade(config, revision)


def test_the_code_expects_the_newest_migration() -> None:
    """SCHEMA_REVISION is what every command checks the database against; a new migration
    without it would make every command refuse a freshly upgraded database."""
    assert head_revision() == SCHEMA_REVISION


def test_empty_database_upgrades_to_head(database_url: str) -> None:
    engine = create_database_engine(database_url)
    try:
        before, after = upgrade_to_head(engine)
        assert before is None
        assert after == head_revision()
        assert {"feeds", "items", "alembic_version"} <= set(inspect(engine).get_table_names())
        assert upgrade_to_head(engine) == (after, after)
    finally:
        engine.dispose()


def test_migrations_match_the_models(database_url: str) -> None:
    engine = create_database_engine(database_url)
    try:
        upgrade_to_head(engine)
        with engine.connect() as connection:
            context = MigrationContext.configure(
                connection,
                opts={
                    "compare_type": True,
                    "include_object": lambda _o, name, *_: not is_search_object(name),
                },
            )
            assert compare_metadata(context, Base.metadata) == []
    finally:
        engine.dispose()


def test_the_indexes_the_models_declare_plainly_keep_their_kind_and_condition(
    database_url: str,
) -> None:
    """The models declare two indexes without their dialect options (which would import
    PostgreSQL's dialect into every command), and Alembic's comparison does not read those
    options: the database itself must have them. A btree on canonical URLs cannot hold the
    longest links on PostgreSQL; an index over every item would be read on every pass."""
    engine = create_database_engine(database_url)
    try:
        upgrade_to_head(engine)
        with engine.connect() as connection:
            if engine.dialect.name == "postgresql":
                query = "SELECT indexname, indexdef FROM pg_indexes WHERE tablename = 'items'"
            else:
                query = "SELECT name, sql FROM sqlite_master WHERE tbl_name = 'items'"
            made = {name: str(sql) for name, sql in connection.execute(text(query))}
        assert "WHERE" in made["ix_items_unindexed"]
        assert "search_text = ''" in made["ix_items_unindexed"].replace("''::text", "''")
        if engine.dialect.name == "postgresql":
            assert "USING hash" in made["ix_items_canonical_url"]
    finally:
        engine.dispose()


def test_sqlite_runs_in_wal_mode(tmp_path: object) -> None:
    engine = create_database_engine(f"sqlite:///{tmp_path}/wal.db")
    try:
        with engine.connect() as connection:
            assert connection.exec_driver_sql("PRAGMA journal_mode").scalar() == "wal"
            assert connection.exec_driver_sql("PRAGMA foreign_keys").scalar() == 1
    finally:
        engine.dispose()


def test_items_stored_before_stories_existed_are_grouped_after_upgrade(database_url: str) -> None:
    engine = create_database_engine(database_url)
    try:
        upgrade_to(engine, "fefaec887c1b")  # matches and meta, before stories
        now = datetime(2026, 11, 1, tzinfo=UTC)
        with engine.begin() as connection:
            connection.execute(
                text(
                    "INSERT INTO feeds (id, name, url, type, active, status, consecutive_failures)"
                    " VALUES (1, 'a', 'https://a.example/f', 'rss', true, 'ok', 0),"
                    " (2, 'b', 'https://b.example/f', 'rss', true, 'ok', 0)"
                )
            )
            for item_id, feed_id in ((1, 1), (2, 2), (3, 2)):
                link = "https://n.example/same" if item_id < 3 else "https://n.example/other"
                connection.execute(
                    text(
                        "INSERT INTO items (id, feed_id, identity, guid, link, title, summary,"
                        " content_html, authors, categories, published_at, date_estimated,"
                        " content_hash, first_seen_at, last_seen_at) VALUES (:id, :feed, :identity,"
                        " :guid, :link, :title, '', '', '[]', '[]', :now, false, 'h', :now, :now)"
                    ),
                    {
                        "id": item_id,
                        "feed": feed_id,
                        "identity": f"g{item_id}",
                        "guid": f"g{item_id}",
                        "link": link,
                        "title": f"Item {item_id}",
                        "now": now,
                    },
                )
        upgrade_to_head(engine)
        repository = Repository(engine)
        assert repository.group_unassigned_items(now) == 3
        stories = repository.list_stories(10, matched_only=False)
        assert sorted(len(story.sources) for story in stories) == [1, 2]
        assert repository.group_unassigned_items(now) == 0
        assert repository.index_unindexed_items() == 3  # stored before search read them
        found = repository.list_stories(10, matched_only=False, search="item 3")
        assert [story.title for story in found] == ["Item 3"]
        assert repository.index_unindexed_items() == 0
    finally:
        engine.dispose()


def test_feeds_fetched_before_the_upgrade_keep_their_publishing_rhythm(database_url: str) -> None:
    engine = create_database_engine(database_url)
    try:
        upgrade_to(engine, "83bf65f8d92a")  # before feeds kept their publishing gap
        noon = datetime(2026, 11, 1, 12, tzinfo=UTC)
        with engine.begin() as connection:
            connection.execute(
                text(
                    "INSERT INTO feeds (id, name, url, type, active, status, consecutive_failures)"
                    " VALUES (1, 'six-hourly', 'https://a.example/f', 'rss', true, 'ok', 0),"
                    " (2, 'quiet', 'https://b.example/f', 'rss', true, 'ok', 0)"
                )
            )
            for item_id, feed_id, hours_ago in ((1, 1, 0), (2, 1, 6), (3, 1, 12), (4, 2, 0)):
                published = noon - timedelta(hours=hours_ago)
                connection.execute(
                    text(
                        "INSERT INTO items (id, feed_id, identity, title, summary, content_html,"
                        " authors, categories, published_at, date_estimated, content_hash,"
                        " first_seen_at, last_seen_at) VALUES (:id, :feed, :identity, 't', '',"
                        " '', '[]', '[]', :published, false, 'h', :published, :published)"
                    ),
                    {
                        "id": item_id,
                        "feed": feed_id,
                        "identity": f"g{item_id}",
                        "published": published,
                    },
                )
        upgrade_to_head(engine)
        feeds = Repository(engine).feeds_to_fetch(noon, include_not_due=True)
        assert {feed.name: feed.publish_gap for feed in feeds} == {
            "six-hourly": timedelta(hours=6),
            "quiet": None,  # too few dates to tell: the default interval
        }
    finally:
        engine.dispose()


def test_items_indexed_before_the_stored_search_vector_are_found_after_upgrade(
    database_url: str,
) -> None:
    engine = create_database_engine(database_url)
    try:
        upgrade_to(engine, "b4439ed9676a")  # search_text filled, parsed at every search
        now = datetime(2026, 11, 1, tzinfo=UTC)
        with engine.begin() as connection:
            connection.execute(
                text(
                    "INSERT INTO feeds (id, name, url, type, active, status, consecutive_failures)"
                    " VALUES (1, 'a', 'https://a.example/f', 'rss', true, 'ok', 0)"
                )
            )
            connection.execute(
                text(
                    "INSERT INTO items (id, feed_id, identity, guid, link, title, summary,"
                    " content_html, authors, categories, published_at, date_estimated,"
                    " content_hash, first_seen_at, last_seen_at, search_text) VALUES (1, 1, 'g1',"
                    " 'g1', 'https://n.example/1', 'Trial NCT01234567', '', '', '[]', '[]', :now,"
                    " false, 'h', :now, :now, 'trial nct01234567 a')"
                ),
                {"now": now},
            )
        upgrade_to_head(engine)
        repository = Repository(engine)
        repository.group_unassigned_items(now)
        assert repository.index_unindexed_items() == 0  # nothing to fill again
        found = repository.list_stories(10, matched_only=False, search="NCT01234567")
        assert [story.title for story in found] == ["Trial NCT01234567"]
    finally:
        engine.dispose()
