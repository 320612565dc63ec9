"""Before a fetch pass (and at a service's start): stored items are brought up to date with
the code and the rules, so what a pass adds is grouped and matched like what was there."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from functools import partial

from aggregator import logs
from aggregator.match import Matcher, item_fields
from aggregator.models import ItemText, MatchChange, TopicMatch
from aggregator.store import Repository

log = logs.get_logger(__name__)


@dataclass(frozen=True, slots=True)
class Prepared:
    """What preparing changed: items grouped into stories, and topic matches added or removed
    (None when the stored matches already followed the rules)."""

    grouped: int
    changes: list[MatchChange] | None


def prepare(repository: Repository, matcher: Matcher, now: datetime) -> Prepared:
    """Group items stored before stories existed, then re-match stored items if the rules
    changed since they were matched."""
    grouped = repository.group_unassigned_items(now)
    return Prepared(grouped, apply_rule_changes(repository, matcher))


def match_item(matcher: Matcher, item: ItemText) -> tuple[TopicMatch, ...]:
    """The topics a stored item is about under `matcher`'s rules."""
    fields = item_fields(item.title, item.summary, item.content_html)
    return matcher.match(fields, feed=item.feed)


def apply_rule_changes(repository: Repository, matcher: Matcher) -> list[MatchChange] | None:
    """Re-match every stored item if the matching rules changed since they were matched.

    Returns the changes, or None when the stored matches already follow these rules.
    """
    if repository.rules_fingerprint() == matcher.fingerprint:
        return None
    changes = repository.rematch(matcher.fingerprint, partial(match_item, matcher))
    added = sum(change.added for change in changes)
    log.info("rules_applied", added=added, removed=len(changes) - added)
    return changes
