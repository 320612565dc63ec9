"""Which stored items a new item is compared with: those sharing a key, boilerplate aside."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta

from samples import analysed_entries
from sqlalchemy import insert, select
from sqlalchemy.orm import Session

from aggregator.config import FeedSettings
from aggregator.dedupe import MAX_BAND_ITEMS, fingerprint
from aggregator.models import FetchOutcome
from aggregator.sources.entries import RawEntry
from aggregator.store import FeedFetch, Repository
from aggregator.store.database import create_database_engine
from aggregator.store.schema import DedupeKey, Item
from aggregator.store.stories import _candidates
from aggregator.store.upgrade import upgrade_to_head

NOW = datetime(2026, 11, 30, 12, tzinfo=UTC)


def test_a_band_shared_by_too_many_items_finds_none_of_them(database_url: str) -> None:
    """A band shared by more than MAX_BAND_ITEMS items is boilerplate ("Read more on our
    website"): following it would compare each new item with all of them. Other keys (links,
    identifiers) are followed however many items share them."""
    engine = create_database_engine(database_url)
    upgrade_to_head(engine)
    repository = Repository(engine)
    repository.sync_feeds([FeedSettings(name="society", url="https://society.example/feed")])
    [feed] = repository.feeds_to_fetch(NOW, include_not_due=True)
    raws = [RawEntry(guid=f"s{n}", link=None, title=f"Update {n}") for n in range(50)]
    entries = analysed_entries("society", raws, NOW)
    outcome = FetchOutcome(status="ok", fetched_at=NOW, next_fetch_at=NOW + timedelta(hours=1))
    repository.record_fetches([FeedFetch(feed.feed_id, outcome, entries)])
    boiler, rare, common = "band:0:boilerplate", "band:1:rare", "doi:10.1177/common"
    with Session(engine) as session:
        ids = list(session.scalars(select(Item.id).order_by(Item.id)))
        boilerplate_items = ids[: MAX_BAND_ITEMS + 1]
        rare_item = ids[MAX_BAND_ITEMS + 1]
        common_items = ids[MAX_BAND_ITEMS + 2 : 2 * MAX_BAND_ITEMS + 4]
        rows = [
            *({"key": boiler, "item_id": item} for item in boilerplate_items),
            {"key": rare, "item_id": rare_item},
            *({"key": common, "item_id": item} for item in common_items),
        ]
        session.execute(insert(DedupeKey), rows)
        new = fingerprint("new", "wire", link=None, guid=None, title="A new item", summary="")

        found = _candidates(session, [replace(new, index_keys=(boiler, rare, common))], set())
    engine.dispose()

    assert len(common_items) > MAX_BAND_ITEMS
    assert found == {rare_item, *common_items}
