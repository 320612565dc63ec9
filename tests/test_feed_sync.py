"""The store's feeds follow the config at every command, and a config that changed nothing
changes nothing stored: not the feeds' validators, not what readers see."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import replace
from datetime import UTC, datetime

import pytest
from sqlalchemy import Engine, update

from aggregator.config import FeedSettings
from aggregator.store import Repository
from aggregator.store.database import create_database_engine
from aggregator.store.schema import Feed
from aggregator.store.upgrade import upgrade_to_head

JOURNAL = FeedSettings(name="journal", url="https://journal.example/feed", kind="journal")
SOCIETY = FeedSettings(name="society", url="https://society.example/feed")


@pytest.fixture
def engine(database_url: str) -> Iterator[Engine]:
    engine = create_database_engine(database_url)
    upgrade_to_head(engine)
    yield engine
    engine.dispose()


def _etags(repository: Repository) -> dict[str, str | None]:
    feeds = repository.feeds_to_fetch(datetime.now(UTC), include_not_due=True)
    return {feed.name: feed.etag for feed in feeds}


def test_an_unchanged_config_keeps_validators_and_what_readers_see(engine: Engine) -> None:
    repository = Repository(engine)
    repository.sync_feeds([JOURNAL, SOCIETY])
    with engine.begin() as connection:  # as a fetch would leave them
        connection.execute(update(Feed).values(etag='"v1"'))
    version = repository.content_version()

    repository.sync_feeds([JOURNAL, SOCIETY])

    assert [feed.name for feed in repository.list_feeds()] == ["journal", "society"]
    assert _etags(repository) == {"journal": '"v1"', "society": '"v1"'}
    assert repository.content_version() == version


def test_config_changes_reach_the_stored_feeds(engine: Engine) -> None:
    repository = Repository(engine)
    repository.sync_feeds([JOURNAL, SOCIETY])
    with engine.begin() as connection:
        connection.execute(update(Feed).values(etag='"v1"'))
    version = repository.content_version()

    moved = replace(JOURNAL, url="https://journal.example/new-feed")
    repository.sync_feeds([moved, SOCIETY])
    assert _etags(repository) == {"journal": None, "society": '"v1"'}  # a new resource
    assert repository.content_version() != version

    retitled = replace(SOCIETY, title="MS Society")
    repository.sync_feeds([moved, retitled])
    assert repository.list_feeds()[1].title == "MS Society"
    retitled = replace(retitled, kind="society")
    repository.sync_feeds([moved, retitled])
    assert repository.list_feeds()[1].kind == "society"

    repository.sync_feeds([moved])
    assert [feed.name for feed in repository.list_feeds()] == ["journal"]
    repository.sync_feeds([moved, retitled])
    assert [feed.name for feed in repository.list_feeds()] == ["journal", "society"]
