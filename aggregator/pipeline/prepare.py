"""Before a fetch pass (and at a service's start): stored items are brought up to date with
the code and the rules, so what a pass adds is grouped and matched like what was there."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from functools import partial

from aggregator import logs
from aggregator.analyse import LEARN_FROM
from aggregator.match import Matcher, item_fields, repeated_sentences
from aggregator.models import ItemText, MatchChange, TopicMatch
from aggregator.store import Repository
from aggregator.store.rematch import ItemMatcher

log = logs.get_logger(__name__)


@dataclass(frozen=True, slots=True)
class Prepared:
    """What preparing changed: items grouped into stories, and topic matches added or removed
    (None when the stored matches already followed the rules)."""

    grouped: int
    changes: list[MatchChange] | None


def prepare(repository: Repository, matcher: Matcher, now: datetime) -> Prepared:
    """Group items stored before stories existed and index those stored before search read
    them, then re-match stored items if the rules changed since they were matched."""
    grouped = repository.group_unassigned_items(now)
    repository.index_unindexed_items()
    return Prepared(grouped, apply_rule_changes(repository, matcher))


def match_item(
    matcher: Matcher, boilerplate: Mapping[str, frozenset[str]], item: ItemText
) -> tuple[TopicMatch, ...]:
    """The topics a stored item is about under `matcher`'s rules; `boilerplate` holds each
    feed's repeated sentences (`feed_boilerplate`)."""
    fields = item_fields(item.title, item.summary, item.content_html)
    return matcher.match(fields, feed=item.feed, boilerplate=boilerplate.get(item.feed, ()))


def stored_item_matcher(repository: Repository, matcher: Matcher) -> ItemMatcher:
    """Matching for stored items, each feed's boilerplate learned from its latest items as a
    fetch learns it from a body's first entries."""
    texts = repository.latest_item_texts(LEARN_FROM)
    boilerplate = {
        feed: repeated_sentences(
            [item_fields(text.title, text.summary, text.content_html) for text in items]
        )
        for feed, items in texts.items()
    }
    return partial(match_item, matcher, boilerplate)


def apply_rule_changes(repository: Repository, matcher: Matcher) -> list[MatchChange] | None:
    """Re-match every stored item if the matching rules changed since they were matched.

    Returns the changes, or None when the stored matches already follow these rules.
    """
    if repository.rules_fingerprint() == matcher.fingerprint:
        return None
    changes = repository.rematch(matcher.fingerprint, stored_item_matcher(repository, matcher))
    added = sum(change.added for change in changes)
    log.info("rules_applied", added=added, removed=len(changes) - added)
    return changes
