"""Alembic migrations: an empty database upgrades to head, and migrations match the models."""

from __future__ import annotations

from alembic.autogenerate import compare_metadata
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import inspect

from aggregator.store.database import create_database_engine, migrations_dir, upgrade_to_head
from aggregator.store.schema import Base


def head_revision() -> str | None:
    config = Config()
    config.set_main_option("script_location", str(migrations_dir()))
    return ScriptDirectory.from_config(config).get_current_head()


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
            context = MigrationContext.configure(connection, opts={"compare_type": True})
            assert compare_metadata(context, Base.metadata) == []
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
