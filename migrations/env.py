"""Alembic environment for the aggregator.

`aggregator init` passes an open connection in `config.attributes["connection"]`. Run by hand
(`alembic -c pyproject.toml upgrade head`), it uses $AGGREGATOR_DATABASE_URL or the config file.
"""

from __future__ import annotations

from typing import Any

from alembic import context
from alembic.autogenerate.api import AutogenContext
from sqlalchemy import Connection

from aggregator.config import config_path, load_settings
from aggregator.store.database import create_database_engine
from aggregator.store.schema import Base, UTCDateTime, is_search_object


def _render_item(kind: str, value: Any, _context: AutogenContext) -> str | bool:
    """Render UTCDateTime as DateTime(timezone=True), so migrations never import app code."""
    if kind == "type" and isinstance(value, UTCDateTime):
        return "sa.DateTime(timezone=True)"
    return False


def _include(_object: Any, name: str | None, _type: str, _reflected: bool, _compare: Any) -> bool:
    return not is_search_object(name)


def _run(connection: Connection) -> None:
    context.configure(
        connection=connection,
        target_metadata=Base.metadata,
        render_as_batch=connection.dialect.name == "sqlite",  # SQLite cannot ALTER most things
        compare_type=True,
        render_item=_render_item,
        include_object=_include,
    )
    with context.begin_transaction():
        context.run_migrations()


connection = context.config.attributes.get("connection")
if connection is not None:
    _run(connection)
else:
    engine = create_database_engine(load_settings(config_path(None)).database.url)
    with engine.begin() as own_connection:
        _run(own_connection)
    engine.dispose()
