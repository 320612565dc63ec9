"""Creating and upgrading the schema with Alembic: `aggregator init`, and tests' databases.

Kept apart from `database.py` so that only what upgrades loads Alembic and the migration
scripts; every other command checks the revision with one query.
"""

from __future__ import annotations

from pathlib import Path

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from sqlalchemy import Engine

import aggregator
from aggregator.errors import AggregatorError


def migrations_dir() -> Path:
    """Where the Alembic scripts are: inside the wheel, or at the top of a source checkout."""
    package_dir = Path(aggregator.__file__).parent
    for candidate in (package_dir / "migrations", package_dir.parent / "migrations"):
        if (candidate / "env.py").is_file():
            return candidate
    raise AggregatorError(f"migrations not found next to {package_dir}")


def _alembic_config() -> Config:
    config = Config()
    config.set_main_option("script_location", str(migrations_dir()))
    return config


def upgrade_to_head(engine: Engine) -> tuple[str | None, str]:
    """Create or upgrade the schema; return the revisions before and after. Idempotent."""
    config = _alembic_config()
    with engine.begin() as connection:
        before = MigrationContext.configure(connection).get_current_revision()
        config.attributes["connection"] = connection
        command.upgrade(config, "head")
        after = MigrationContext.configure(connection).get_current_revision()
    return before, after or ""
