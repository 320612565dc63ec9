"""What every command shares: the config, the database, logging."""

from __future__ import annotations

import logging
import sys
from dataclasses import dataclass, field
from pathlib import Path

import click
from sqlalchemy import Engine

from aggregator import heap, logs
from aggregator.clock import utc_now
from aggregator.config import Settings, TopicSettings, config_path, load_settings
from aggregator.errors import ConfigError
from aggregator.sources.expat import require_safe_expat
from aggregator.store import Repository
from aggregator.store.database import check_schema_current, create_database_engine
from aggregator.store.subscribers import Subscriptions

log = logs.get_logger("aggregator.cli")


@dataclass
class App:
    """What every command shares: the config and the database, opened only when a command needs
    them and closed when it ends."""

    config_file: Path
    verbose: int = 0
    _settings: Settings | None = field(default=None, repr=False)
    _engine: Engine | None = field(default=None, repr=False)

    @classmethod
    def for_config(cls, config_file: Path | None, verbose: int) -> App:
        """The app of `--config` (else $AGGREGATOR_CONFIG, else ./config.toml), on a Python
        whose XML parser is safe to give feeds to."""
        require_safe_expat()
        return cls(config_path(config_file), verbose)

    @property
    def settings(self) -> Settings:
        if self._settings is None:
            self._settings = load_settings(self.config_file)
        return self._settings

    @property
    def engine(self) -> Engine:
        if self._engine is None:
            database = self.settings.database
            self._engine = create_database_engine(database.url, database.busy_timeout)
        return self._engine

    def warn_about_settings(self) -> None:
        """Log what in the config works but should be otherwise (before fetching)."""
        for key, why in self.settings.warnings():
            log.warning("config_warning", key=key, reason=why)

    def repository(self) -> Repository:
        """The store, checked to be at the current schema and synced with the config's feeds."""
        check_schema_current(self.engine)
        repository = Repository(self.engine)
        repository.sync_feeds(self.settings.feeds)
        self.subscriptions().sync_config(
            [reader.email for reader in self.settings.all_subscribers], utc_now()
        )
        heap.settled()  # the command is set up: its libraries, the config, the database's driver
        return repository

    def subscriptions(self) -> Subscriptions:
        return Subscriptions(self.engine)

    def topic(self, topic_id: str) -> TopicSettings:
        """The configured topic `topic_id`; a ConfigError lists the ids there are."""
        for topic in self.settings.topics:
            if topic.id == topic_id:
                return topic
        ids = ", ".join(topic.id for topic in self.settings.topics) or "none"
        raise ConfigError(f"no topic with id {topic_id!r} (topics: {ids})")

    def close(self) -> None:
        if self._engine is not None:
            self._engine.dispose()


pass_app = click.make_pass_decorator(App)


def configure_logging(verbose: int) -> None:
    # On a terminal the progress bar tells the story; elsewhere (cron, systemd) log lines do.
    quiet = sys.stderr.isatty() and verbose == 0
    logs.configure(
        logging.DEBUG if verbose > 1 else logging.WARNING if quiet else logging.INFO,
        requests=verbose > 0,
    )
