"""What a fetched entry is about and what it is like, worked out where the feed is parsed.

Matching topics and fingerprinting for dedupe are pure and cost as much as a third of parsing,
so they run with it, in a parse worker when a pass has one: the store thread, which every
entry of every feed passes through, is left with writing.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from itertools import chain, islice

from aggregator.dedupe import Fingerprint, fingerprint
from aggregator.match import Matcher, item_fields, repeated_sentences
from aggregator.models import Entry, TopicMatch
from aggregator.normalise import canonical_url


@dataclass(frozen=True, slots=True)
class AnalysedEntry:
    """An entry with its topic matches and its dedupe fingerprint.

    The fingerprint's `item` is the entry's identity until it is stored, and it takes the
    entry's link as the entry's own (see `dedupe.with_shared_link`).
    """

    entry: Entry
    matches: tuple[TopicMatch, ...]
    fingerprint: Fingerprint
    canonical_url: str | None  # of the link, even a generic one (the fingerprint drops those)


# A feed's boilerplate is learned from its first entries this many (memory stays bounded).
LEARN_FROM = 200


def _fields(entry: Entry) -> dict[str, str]:
    return item_fields(entry.title, entry.summary, entry.content_html)


def analyse(entries: Iterable[Entry], feed: str, matcher: Matcher) -> Iterator[AnalysedEntry]:
    """Each entry of `feed` analysed. The sentences the feed repeats under its entries (a
    sign-off, a standing "About us") are learned from its first LEARN_FROM entries and not
    read as any entry's content."""
    stream = iter(entries)
    head = list(islice(stream, LEARN_FROM))
    head_fields = [_fields(entry) for entry in head]  # each sanitised once, for both
    boilerplate = repeated_sentences(head_fields)
    read = chain(zip(head, head_fields, strict=True), ((e, _fields(e)) for e in stream))
    for entry, fields in read:
        found = fingerprint(
            entry.identity,
            feed,
            link=entry.link,
            guid=entry.guid,
            title=entry.title,
            summary=entry.summary,
            identifiers=entry.identifiers,
        )
        # The fingerprint's URL is the canonical one unless the link is generic: only then
        # is it worked out again.
        url = found.url or (canonical_url(entry.link) if entry.link else None)
        matches = matcher.match(fields, feed=feed, boilerplate=boilerplate)
        yield AnalysedEntry(entry, matches, found, url)
