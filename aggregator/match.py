"""Terms and topics -> which topics an item is about, and why. Pure: text in, matches out.

How a term is written in config.toml (see README, "Topics and terms"):
- a phrase matches case-insensitively, as whole words: "CAR T" matches "car t" but not "cart";
- between words, spaces, hyphens, every Unicode dash and slash are the same: "CAR T" matches
  "CAR-T", "CAR\u2011T" (non-breaking hyphen), "CAR\u2013T" (en dash) and "CAR&nbsp;T";
- the last word also matches its plural: "CAR T" matches "CAR Ts", "CAR-T's"; "trial" "trials";
- a phrase ending in "*" matches any word starting so: "demyelinat*" matches "demyelinating";
- a single word in capitals (two or more, digits allowed) is an acronym and matches only as that
  exact upper-case word: "MS" matches "MS" and "MS." but not "Ms.", "ms", "MSK", "MSc", "MS4A1";
- a match right after "not" or "non" does not count ("non-MS controls", "not multiple sclerosis");
- `[vetoes]` cancel a term where another phrase stands within two words of it: "MS" next to
  "mass spectrometry", "LC-MS" or "MS/MS" is not multiple sclerosis.

Text is normalised once per field (HTML stripped and entities decoded, however many times they
were escaped; Unicode NFKC; separators unified) and scanned once with an Aho-Corasick automaton
holding every term and veto, so the cost per item does not grow with the vocabulary.
"""

from __future__ import annotations

import hashlib
import json
import unicodedata
from collections import defaultdict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import NamedTuple

import ahocorasick

from aggregator.config import Settings
from aggregator.models import TermHit, TopicMatch
from aggregator.normalise import text_from_html

# Bump when the matching rules in this module change, so stored matches are recomputed.
MATCHER_VERSION = 1
FIELD_WEIGHTS = {"title": 3.0, "summary": 2.0, "content": 1.0, "feed": 1.0}
NEGATIONS = ("not", "non")
_NEGATION_ENDINGS = tuple(f" {word}" for word in NEGATIONS)
VETO_WINDOW_WORDS = 2
_MAX_SHARED_HITS = 10_000
FIELD_END = "\x00"
# Every ASCII byte that is not a letter or digit separates words (NUL ends a field).
_ASCII_SEPARATORS = bytes(c if chr(c).isalnum() or c == 0 else 32 for c in range(256))


@dataclass(frozen=True, slots=True)
class TopicRule:
    """A topic: all of the `all` groups, at least one `any` group (if any), none of `none`."""

    id: str
    all: tuple[str, ...] = ()
    any: tuple[str, ...] = ()
    none: tuple[str, ...] = ()

    def accepts(self, groups: set[str]) -> bool:
        return (
            groups.issuperset(self.all)
            and (not self.any or not groups.isdisjoint(self.any))
            and groups.isdisjoint(self.none)
        )


@dataclass(frozen=True, slots=True)
class FeedContext:
    """What a feed adds to its items: groups every item matches, and the topics it serves."""

    assume: tuple[str, ...] = ()
    topics: tuple[str, ...] = ()  # empty: every topic


_NO_CONTEXT = FeedContext()


@dataclass(frozen=True, slots=True)
class _Term:
    text: str  # as configured
    groups: tuple[str, ...]
    acronym: str | None  # " MS": the exact upper-case form, with its leading space
    prefix: bool  # written with a trailing "*"
    plain: bool  # neither: a whole-word phrase, the common case


@dataclass(slots=True)
class _Key:
    """Everything an automaton key stands for: terms, and the terms it vetoes."""

    length: int
    terms: list[_Term] = field(default_factory=list)
    vetoes: list[str] = field(default_factory=list)


class _Found(NamedTuple):  # hot: a NamedTuple builds several times faster than a frozen dataclass
    term: _Term
    field: str
    start: int
    end: int
    text: str


def item_fields(title: str, summary: str, content_html: str) -> dict[str, str]:
    """The fields of an item that are matched. The content counts only where it adds to the
    summary (a summary is often the content's first paragraph, and must not count twice)."""
    content = text_from_html(content_html) if content_html else ""
    fields = {"title": title, "summary": summary}
    if content and content != summary:
        fields["content"] = content
    return fields


def normalise_for_matching(text: str) -> str:
    """`text` as plain words separated by single spaces, padded with one space at each end.

    Feeds escape HTML once, twice or not at all ("CAR&amp;nbsp;T", "&lt;i&gt;CAR&lt;/i&gt;-T"),
    so markup is stripped and entities decoded until nothing changes.
    """
    return _normalise_fields([text])


def _normalise_fields(texts: Sequence[str]) -> str:
    """Several texts normalised at once, each followed by a NUL (a token of its own that no
    phrase contains, so no match spans two fields and the NULs before a match count its field).
    """
    separator = f" {FIELD_END} "
    joined = separator.join(texts)
    if "<" in joined or "&" in joined or joined.count(FIELD_END) != len(texts) - 1:
        joined = separator.join(text_from_html(text).replace(FIELD_END, "") for text in texts)
    if joined.isascii():
        joined = joined.encode("ascii").translate(_ASCII_SEPARATORS).decode("ascii")
    else:
        joined = "".join(
            char
            if char.isalnum() or char == FIELD_END
            else ""
            if unicodedata.category(char) == "Cf"  # a soft hyphen inside a word
            else " "
            for char in unicodedata.normalize("NFKC", joined)
        )
    return " " + " ".join(joined.split()) + " "


def _lower_same_length(spaced: str) -> str:
    """Lower-case without changing length, so positions in both texts line up."""
    lowered = spaced.lower()
    if len(lowered) == len(spaced):
        return lowered
    return "".join(char.lower() if len(char.lower()) == 1 else char for char in spaced)


class Matcher:
    """Compiled `[terms]`, `[vetoes]` and `[[topics]]`; build once, call `match` per item."""

    def __init__(
        self,
        terms: Mapping[str, Sequence[str]],
        topics: Sequence[TopicRule],
        vetoes: Mapping[str, Sequence[str]] | None = None,
        feeds: Mapping[str, FeedContext] | None = None,
    ) -> None:
        vetoes = vetoes or {}
        self._topics = tuple(topics)
        self._feeds = dict(feeds or {})
        self.fingerprint = _fingerprint(terms, topics, vetoes, self._feeds)
        keys: dict[str, _Key] = {}
        for term_text, groups in _groups_by_term(terms).items():
            key = _normalised_key(term_text)
            keys.setdefault(key, _Key(len(key))).terms.append(_term(term_text, groups))
        for vetoed, phrases in vetoes.items():
            for phrase in phrases:
                key = _normalised_key(phrase)
                keys.setdefault(key, _Key(len(key))).vetoes.append(vetoed)
        self._automaton = ahocorasick.Automaton()
        for key, value in keys.items():
            self._automaton.add_word(key, value)
        self._empty = not keys
        self._hits: dict[tuple[str, str, str, str], TermHit] = {}
        if keys:
            self._automaton.make_automaton()

    def match(
        self, fields: Mapping[str, str], *, feed: str | None = None
    ) -> tuple[TopicMatch, ...]:
        """The topics `fields` (title, summary, content) of an item of `feed` are about, and why."""
        if not self._topics:
            return ()
        context = self._feeds.get(feed or "", _NO_CONTEXT)
        found = self._scan(fields)
        groups = {group for hit in found for group in hit.term.groups}
        groups.update(context.assume)
        accepted = [
            topic
            for topic in self._topics
            if (not context.topics or topic.id in context.topics) and topic.accepts(groups)
        ]
        if not accepted:  # the common case: explanations are only built for matches
            return ()
        hits: dict[str, list[TermHit]] = defaultdict(list)
        for hit in found:
            for group in hit.term.groups:
                hits[group].append(self._term_hit(group, hit.term.text, hit.field, hit.text))
        for group in context.assume:
            hits[group].append(self._term_hit(group, "", "feed", feed or ""))
        matches = []
        for topic in accepted:
            reasons = tuple(
                dict.fromkeys(hit for group in (*topic.all, *topic.any) for hit in hits[group])
            )
            score = sum(FIELD_WEIGHTS[hit.field] for hit in reasons)
            matches.append(TopicMatch(topic.id, score, reasons))
        return tuple(matches)

    def _term_hit(self, group: str, term: str, field: str, text: str) -> TermHit:
        """A shared TermHit: the same few (term, field, spelling) recur in item after item, and
        reusing the immutable value is several times faster than building it again."""
        key = (group, term, field, text)
        hit = self._hits.get(key)
        if hit is None:
            if len(self._hits) >= _MAX_SHARED_HITS:
                self._hits.clear()
            hit = self._hits[key] = TermHit(group, term, field, text)
        return hit

    def _scan(self, fields: Mapping[str, str]) -> list[_Found]:
        """Every term found in `fields`, vetoes and negations applied, in one automaton pass."""
        if self._empty:
            return []
        names = [name for name, text in fields.items() if text]
        spaced = _normalise_fields([fields[name] for name in names])
        lowered = _lower_same_length(spaced)
        found: list[_Found] = []
        vetoes: list[tuple[str, int, int]] = []
        for last, key in self._automaton.iter(lowered):
            start = last - key.length + 1
            end = last + 1
            for vetoed in key.vetoes:
                vetoes.append((vetoed, start, end))
            for term in key.terms:
                if term.plain and lowered[end] == " ":  # the common case, inline
                    match_end: int | None = end
                else:
                    match_end = _end_of_match(term, spaced, lowered, start, end)
                if match_end is not None and not lowered.endswith(_NEGATION_ENDINGS, 0, start):
                    field_name = names[lowered.count(FIELD_END, 0, start)]
                    found.append(
                        _Found(term, field_name, start, match_end, spaced[start + 1 : match_end])
                    )
        if vetoes:
            found = [hit for hit in found if not _vetoed(hit, vetoes, lowered)]
        return found


def _end_of_match(term: _Term, spaced: str, lowered: str, start: int, end: int) -> int | None:
    """Where a key match really ends, or None if it is not a whole-word match of `term`."""
    if term.acronym is not None:
        exact = spaced[start:end] == term.acronym and spaced[end] == " "
        return end if exact else None
    if term.prefix:
        return lowered.index(" ", end)
    if lowered[end] == " ":
        return end
    for plural in ("s ", "es "):
        if lowered.startswith(plural, end):
            return end + len(plural) - 1
    return None


def _vetoed(hit: _Found, vetoes: list[tuple[str, int, int]], lowered: str) -> bool:
    for vetoed, start, end in vetoes:
        if vetoed != hit.term.text:
            continue
        if start < hit.end and hit.start < end:
            return True
        gap = lowered[min(end, hit.end) : max(start, hit.start)]
        if FIELD_END not in gap and gap.count(" ") <= VETO_WINDOW_WORDS:
            return True
    return False


def _groups_by_term(terms: Mapping[str, Sequence[str]]) -> dict[str, tuple[str, ...]]:
    groups: dict[str, list[str]] = defaultdict(list)
    for group, phrases in terms.items():
        for phrase in phrases:
            groups[phrase.strip()].append(group)
    return {phrase: tuple(names) for phrase, names in groups.items() if phrase}


def _normalised_key(phrase: str) -> str:
    """A phrase as the automaton stores it: normalised, lower-case, a leading space, no stars."""
    return _lower_same_length(normalise_for_matching(phrase.strip().rstrip("*"))).rstrip(" ")


def _term(text: str, groups: tuple[str, ...]) -> _Term:
    stripped = text.strip()
    is_acronym = (
        stripped.isalnum()
        and stripped.isascii()
        and stripped.upper() == stripped
        and sum(char.isupper() for char in stripped) >= 2
    )
    return _Term(
        text=stripped,
        groups=groups,
        acronym=f" {stripped}" if is_acronym else None,
        prefix=stripped.endswith("*"),
        plain=not is_acronym and not stripped.endswith("*"),
    )


def _fingerprint(
    terms: Mapping[str, Sequence[str]],
    topics: Sequence[TopicRule],
    vetoes: Mapping[str, Sequence[str]],
    feeds: Mapping[str, FeedContext],
) -> str:
    document = {
        "version": MATCHER_VERSION,
        "feeds": {name: [c.assume, c.topics] for name, c in sorted(feeds.items())},
        "terms": {group: list(phrases) for group, phrases in sorted(terms.items())},
        "vetoes": {term: list(phrases) for term, phrases in sorted(vetoes.items())},
        "topics": [[topic.id, topic.all, topic.any, topic.none] for topic in topics],
    }
    return hashlib.sha256(json.dumps(document, sort_keys=True).encode()).hexdigest()


def build_matcher(settings: Settings, feeds: Mapping[str, FeedContext] | None = None) -> Matcher:
    """The matcher for a configuration: its terms, vetoes, topics and feed contexts.

    `feeds` replaces the configured feed contexts (to evaluate labelled data from other feeds).
    """
    if feeds is None:
        feeds = {feed.name: FeedContext(feed.assume, feed.topics) for feed in settings.feeds}
    return Matcher(
        terms=settings.terms,
        topics=[TopicRule(t.id, t.all, t.any, t.none) for t in settings.topics],
        vetoes=settings.vetoes,
        feeds=feeds,
    )
