"""Terms and topics -> which topics an item is about, and why. Pure: text in, matches out.

How a term is written in config.toml (see README, "Topics and terms"):
- a phrase matches case-insensitively, as whole words: "CAR T" matches "car t" but not "cart";
- between words, spaces, hyphens, every Unicode dash and slash are the same: "CAR T" matches
  "CAR-T", "CAR\u2011T" (non-breaking hyphen), "CAR\u2013T" (en dash) and "CAR&nbsp;T"; soft
  hyphens and zero-width characters inside a word are ignored;
- the last word also matches its plural: "CAR T" matches "CAR Ts", "CAR-T's"; "trial" "trials";
- a phrase ending in "*" matches any word starting so: "demyelinat*" matches "demyelinating";
- a single word in capitals (two or more, digits allowed) is an acronym and matches only as that
  exact upper-case word: "MS" matches "MS" and "MS." but not "Ms.", "ms", "MSK", "MSc", "MS4A1";
- "SEP@fr": a term that counts only in text of that language (fr, de, es, it, nl, pt, en), or
  where the text defines it as a term of its group; "RMS@defined": only where the text defines
  it so ("relapsing MS (RMS)");
- a match right after "not" or "non" does not count ("non-MS controls", "not multiple sclerosis");
- no phrase, veto or negation reads across a clause mark followed by a space ("in MS. MS
  affects ..." is not "MS/MS");
- `[vetoes]` cancel a term where another phrase stands within two words of it: "MS" next to
  "LC-MS" or "MS/MS" is not multiple sclerosis; a veto that spells an acronym out ("mass
  spectrometry" for MS) makes it mean that anywhere in the item, as does the text's own
  definition ("median survival (MS)");
- `[requires]` make a term count only next to one of its cue words (CD19 as a therapy's target:
  "anti-CD19", "CD19-directed"), or as the subject of a title, unless a veto word marks it as
  a measure there or wherever the body names it.

Where terms stand decides as much as which terms: an item is about a topic when its title, or
one sentence of it (with the title), holds what the topic asks for. A press release's "About
..." boilerplate, a page's "Related stories", sentences the feed repeats under every item, and
passing mentions (a contrast, an example, an exclusion criterion, speculation, a name, a place,
a degree: `mentions.py`) do not count; a term named in a list of others counts only where the
title speaks of the topic too.

Text is normalised once (HTML stripped and entities decoded, however many times they were
escaped; Unicode NFKC; separators unified) and scanned with one Aho-Corasick automaton holding
every term and veto, so the cost per item does not grow with the vocabulary; only an item whose
terms could make a topic is read sentence by sentence.
"""

from __future__ import annotations

import hashlib
import json
import math
import re
import unicodedata
from collections import Counter, defaultdict
from collections.abc import Collection, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from functools import lru_cache
from typing import TYPE_CHECKING, NamedTuple

import ahocorasick

from aggregator import acronyms, mentions, text_units
from aggregator.language import FUNCTION_WORDS, guess_language
from aggregator.models import TermHit, TopicMatch
from aggregator.normalise import WordTable, clean_text, html_blocks_only, text_from_html
from aggregator.term_markers import split_marker

if TYPE_CHECKING:
    from aggregator.config import Settings

# Bump when the matching rules change (here, or in mentions.py, text_units.py, language.py),
# so stored matches are recomputed.
MATCHER_VERSION = 6
FIELD_WEIGHTS = {"title": 3.0, "summary": 2.0, "content": 1.0, "feed": 1.0}
NEGATIONS = ("not", "non")
# "and" in the readers' languages ("en" is Dutch "and", and "in" elsewhere: "CAR-T en EM").
_PAIRING_WORDS = frozenset("and & und et y e en".split())
_NEGATION_ENDINGS = tuple(f" {word}" for word in NEGATIONS)
VETO_WINDOW_WORDS = 2
REQUIRE_WINDOW_WORDS = 3  # how near a required cue word must stand
MAX_EVIDENCE = 300  # characters of the sentence a match quotes
# A sentence in this many of a feed's items, and this share of them, is the feed's boilerplate.
REPEATED_IN = 3
REPEATED_SHARE = 0.3
DEFINED = "defined"  # "RMS@defined"
_MAX_SHARED_HITS = 10_000
FIELD_END = "\x00"
# Punctuation that ends a sentence or parts a clause or a title ("... | MS News Today", "... -
# MS Society"), where a space follows it: there the normalised text has two spaces or more, so
# no phrase, veto or negation reads across it ("in MS. MS affects ..." is not "MS/MS").
# Elsewhere it parts words as any other mark does ("10.1056", "e.g", "CAR-T").
_BREAK = "\x01"
_BREAK_MARKS = ".,;:!?\u00a1\u00bf|\u2022\u00b7-\u2013\u2014"
# Every ASCII byte that is not a letter or digit separates words (NUL ends a field).
_ASCII_SEPARATORS = bytes(
    c if chr(c).isalnum() or c == 0 else 1 if chr(c) in _BREAK_MARKS else 32 for c in range(256)
)

# Social posts run a hashtag's words together and mark them with capitals instead.
_HASHTAG = re.compile(r"#(\w+)")
_LOWER, _UPPER = "a-zß-öø-ÿ", "A-ZÀ-ÖØ-Þ"
_CAMEL_HUMP = re.compile(
    rf"(?<=[{_LOWER}0-9])(?=[{_UPPER}])|(?<=[{_UPPER}])(?=[{_UPPER}][{_LOWER}])"
)
_SEPARATORS = WordTable(keep=FIELD_END)
_SEPARATORS.update({ord(mark): _BREAK for mark in _BREAK_MARKS})


@dataclass(frozen=True, slots=True)
class TopicRule:
    """A topic: all of the `all` groups, at least one `any` group (if any), none of `none`."""

    id: str
    all: tuple[str, ...] = ()
    any: tuple[str, ...] = ()
    none: tuple[str, ...] = ()

    def accepts(self, groups: set[str]) -> bool:
        return self.could_accept(groups) and groups.isdisjoint(self.none)

    def could_accept(self, groups: set[str]) -> bool:
        """Whether `groups` hold what the topic asks for (whatever else is there)."""
        return groups.issuperset(self.all) and (not self.any or not groups.isdisjoint(self.any))


@dataclass(frozen=True, slots=True)
class FeedContext:
    """What a feed adds to its items: groups every item matches, and the topics it serves."""

    assume: tuple[str, ...] = ()
    topics: tuple[str, ...] = ()  # empty: every topic


_NO_CONTEXT = FeedContext()


@dataclass(frozen=True, slots=True)
class _Term:
    text: str  # as configured, without its "@" marker
    groups: tuple[str, ...]
    acronym: str | None  # " MS": the exact upper-case form, with its leading space
    prefix: bool  # written with a trailing "*"
    plain: bool  # neither: a whole-word phrase, the common case
    language: str | None = None  # "SEP@fr": counts only in French (or where defined)
    defined_only: bool = False  # "RMS@defined": counts only where the text defines it
    requires: tuple[str, ...] = ()  # cue words one of which must stand near it
    vetoes: tuple[str, ...] = ()  # its veto phrases, normalised (for a title's measures)


@dataclass(slots=True)
class _Key:
    """Everything an automaton key stands for: terms, the terms it vetoes, and the acronyms it
    spells out."""

    length: int
    terms: list[_Term] = field(default_factory=list)
    vetoes: list[str] = field(default_factory=list)
    spells: list[str] = field(default_factory=list)
    cues: list[mentions.Mention] = field(default_factory=list)


class _Found(NamedTuple):  # hot: a NamedTuple builds several times faster than a frozen dataclass
    term: _Term
    unit: int  # which of the scanned texts (a field, or a sentence)
    start: int
    end: int
    text: str
    scanned: str  # the normalised text it was found in (start and end index it)


class _Cue(NamedTuple):
    kind: mentions.Mention
    unit: int
    start: int
    end: int


def item_fields(title: str, summary: str, content_html: str) -> dict[str, str]:
    """The fields of an item that are matched. The content is matched as markup: its text runs
    a heading into the paragraph under it ("<h2>KYV-101 in progressive MS</h2><p>MS researchers
    ..." reads "MS MS", a veto), where its blocks end sentences. A summary made from the
    content (its text, whole or cut short) takes the content's place, so nothing counts twice.
    """
    if not content_html:
        return {"title": title, "summary": summary}
    blocks = html_blocks_only(content_html)  # sanitised once, for every reading that follows
    if _is_text_of(summary, blocks):
        return {"title": title, "summary": blocks}
    return {"title": title, "summary": summary, "content": blocks}


def _is_text_of(summary: str, markup: str) -> bool:
    """Whether `summary` is the text of `markup`, or its start cut short with "…"."""
    content = text_from_html(markup)
    if summary.endswith("…"):
        return content.startswith(summary[:-1])
    return content == summary


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
    if "#" in joined:
        joined = _HASHTAG.sub(_hashtag_words, joined)
    if joined.isascii():
        joined = joined.encode("ascii").translate(_ASCII_SEPARATORS).decode("ascii")
    else:
        joined = unicodedata.normalize("NFKC", joined).translate(_SEPARATORS)
    # Every separator is now a plain space, so halving runs of spaces until none is left
    # collapses them (cheaper than splitting a summary into words and joining them again).
    spaced = f" {joined} "
    while "  " in spaced:
        spaced = spaced.replace("  ", " ")
    return _with_breaks(spaced) if _BREAK in spaced else spaced


def _hashtag_words(hashtag: re.Match[str]) -> str:
    """A hashtag's words apart, where its capitals and digits join them: "#MultipleSclerosis",
    "#MSResearch", "#CD19CART" read as "Multiple Sclerosis", "MS Research", "CD19 CART"."""
    return " " + _CAMEL_HUMP.sub(" ", hashtag[1])


def _with_breaks(spaced: str) -> str:
    """Clause marks made two spaces or more where a space follows them ("MS. MS", "MS ; MS",
    "MS?! MS"), and a single space where none does ("10.1056"): two plain replaces."""
    return spaced.replace(f"{_BREAK} ", "  ").replace(_BREAK, " ")


def _lower_same_length(spaced: str) -> str:
    """Lower-case without changing length, so positions in both texts line up."""
    lowered = spaced.lower()
    if len(lowered) == len(spaced):
        return lowered
    return "".join(char.lower() if len(char.lower()) == 1 else char for char in spaced)


class Matcher:
    """Compiled `[terms]`, `[vetoes]`, `[requires]` and `[[topics]]`; build once, call `match`
    per item."""

    def __init__(
        self,
        terms: Mapping[str, Sequence[str]],
        topics: Sequence[TopicRule],
        vetoes: Mapping[str, Sequence[str]] | None = None,
        feeds: Mapping[str, FeedContext] | None = None,
        requires: Mapping[str, Sequence[str]] | None = None,
    ) -> None:
        vetoes = vetoes or {}
        requires = requires or {}
        self._topics = tuple(topics)
        self._topics_need_terms = all(topic.all or topic.any for topic in self._topics)
        # Only the feeds that add something: a config may list thousands of feeds, most with
        # no context, and every process holds the matcher for its whole life.
        self._feeds = {name: c for name, c in (feeds or {}).items() if c != _NO_CONTEXT}
        self.fingerprint = _fingerprint(terms, topics, vetoes, self._feeds, requires)
        keys: dict[str, _Key] = {}
        self._terms: dict[str, _Term] = {}
        for written, groups in _groups_by_term(terms).items():
            term = _term(written, groups, requires, vetoes)
            self._terms[term.text] = term
            for key in _normalised_keys(term.text):
                keys.setdefault(key, _Key(len(key))).terms.append(term)
        for vetoed, phrases in vetoes.items():
            spelled = self._terms.get(vetoed)
            for phrase in phrases:
                spells = spelled is not None and spelled.acronym and acronyms.spells(vetoed, phrase)
                for key in _normalised_keys(phrase):
                    keys.setdefault(key, _Key(len(key))).vetoes.append(vetoed)
                    if spells:
                        keys[key].spells.append(vetoed)
        for kind, phrases in mentions.CUES.items():
            for phrase in phrases:
                for key in _normalised_keys(phrase):
                    keys.setdefault(key, _Key(len(key))).cues.append(kind)
        self._acronyms = frozenset(t.text for t in self._terms.values() if t.acronym)
        self._automaton = ahocorasick.Automaton()
        for key, value in keys.items():
            self._automaton.add_word(key, value)
        self._empty = not keys
        self._hits: dict[tuple[str, str, str, str], TermHit] = {}
        if keys:
            self._automaton.make_automaton()

    def match(
        self,
        fields: Mapping[str, str],
        *,
        feed: str | None = None,
        boilerplate: Collection[str] = frozenset(),
    ) -> tuple[TopicMatch, ...]:
        """The topics `fields` (title, summary, content) of an item of `feed` are about, and why.

        `boilerplate` holds sentences repeated across the feed's items (`repeated_sentences`):
        not the item's own content.
        """
        if not self._topics:
            return ()
        context = self._feeds.get(feed or "", _NO_CONTEXT)
        names = [name for name, text in fields.items() if text]
        title = names.index("title") if "title" in names else -1
        scan = self._scan([fields[name] for name in names], only=title)
        groups = scan.groups | set(context.assume)
        if not groups and self._topics_need_terms:  # no term at all: most general news
            return ()
        candidates = [
            topic
            for topic in self._topics
            if (not context.topics or topic.id in context.topics) and topic.could_accept(groups)
        ]
        if not candidates:  # the common case: nothing can match, whatever the sentences say
            return ()
        reading = _Reading(self, fields, scan, title, feed or "", context, boilerplate)
        return reading.matches(candidates)

    def _term_hit(self, key: tuple[str, str, str, str]) -> TermHit:
        """A shared TermHit for (group, term, field, text): the same few recur in item after
        item, and reusing the immutable value is several times faster than building it again."""
        hit = self._hits.get(key)
        if hit is None:
            if len(self._hits) >= _MAX_SHARED_HITS:
                self._hits.clear()
            hit = self._hits[key] = TermHit(*key)
        return hit

    def explain(
        self,
        fields: Mapping[str, str],
        *,
        feed: str | None = None,
        boilerplate: Collection[str] = frozenset(),
    ) -> tuple[Verdict, ...]:
        """What the rules made of every term found in an item, counted or not and why: how an
        operator finds which term and which guard made a mistake (`topics evaluate`)."""
        context = self._feeds.get(feed or "", _NO_CONTEXT)
        names = [name for name, text in fields.items() if text]
        dropped: list[tuple[_Found, str]] = []
        scan = self._scan([fields[name] for name in names], dropped)
        title = names.index("title") if "title" in names else -1
        reading = _Reading(self, fields, scan, title, feed or "", context, boilerplate)
        return reading.verdicts([(hit, why) for hit, why in dropped if hit.unit == title])

    def _scan(
        self,
        texts: Sequence[str],
        dropped: list[tuple[_Found, str]] | None = None,
        *,
        only: int | None = None,
    ) -> _Scan:
        """Every term found in `texts` (by index), vetoes and negations applied, in one
        automaton pass; and the terms a phrase spelling them out stands for, anywhere.
        `dropped`, if given, collects the terms a negation or a veto cancelled, and why.

        With `only` (an index, -1 for none), the terms and cues of that text alone are kept;
        of the others only the groups of the terms they hold, negated or vetoed or not: all
        `match` needs of them is which topics the item could be about (a superset is safe),
        and it reads the sentences of those it must again, one by one."""
        if self._empty:
            return _Scan([], set(), [], set())
        spaced = _normalise_fields(texts)
        lowered = _lower_same_length(spaced)
        low, high = (0, len(lowered)) if only is None else _span(lowered, only)
        found: list[_Found] = []
        vetoes: list[tuple[str, int, int]] = []
        spelled: set[str] = set()
        cues: list[_Cue] = []
        groups: set[str] = set()
        for last, key in self._automaton.iter(lowered):
            start = last - key.length + 1
            end = last + 1
            if key.spells:
                spelled.update(key.spells)
            bounded = lowered[end] == " "  # the key ends where a word does
            if not low <= start < high:  # in a text read for its groups only
                for term in key.terms:
                    if (term.plain and bounded) or _end_of_match(
                        term, spaced, lowered, start, end
                    ) is not None:
                        groups.update(term.groups)
                continue
            if key.vetoes:
                vetoes += [(vetoed, start, end) for vetoed in key.vetoes]
            if key.cues and bounded:
                index = lowered.count(FIELD_END, 0, start) if only is None else only
                cues += [_Cue(kind, index, start, end) for kind in key.cues]
            for term in key.terms:
                if term.plain and bounded:  # the common case, inline
                    match_end: int | None = end
                else:
                    match_end = _end_of_match(term, spaced, lowered, start, end)
                if match_end is None:
                    continue
                index = lowered.count(FIELD_END, 0, start) if only is None else only
                hit = _Found(term, index, start, match_end, spaced[start + 1 : match_end], spaced)
                if not lowered.endswith(_NEGATION_ENDINGS, 0, start):
                    found.append(hit)
                elif dropped is not None:
                    dropped.append((hit, "negated (after 'not' or 'non')"))
        if vetoes:
            kept = []
            for hit in found:
                veto = _veto_of(hit, vetoes, lowered)
                if veto is None:
                    kept.append(hit)
                elif dropped is not None:
                    dropped.append((hit, f"vetoed by {spaced[veto[0] + 1 : veto[1]]!r}"))
            found = kept
        groups.update(group for hit in found for group in hit.term.groups)
        return _Scan(found, spelled, cues, groups)

    def _groups_in(self, text: str) -> set[str]:
        """The groups whose terms `text` contains (what a definition's long form stands for)."""
        return self._scan([text]).groups


COUNTS = "counts"
LISTED = "one of a list: counts only beside a title on the topic"
_COUNTING = (COUNTS, LISTED)


@dataclass(frozen=True, slots=True)
class Verdict:
    """What the rules made of one term found in an item (see `Matcher.explain`)."""

    term: str
    groups: tuple[str, ...]
    field: str
    sentence: str
    why: str  # COUNTS, LISTED, or why it does not count

    @property
    def counts(self) -> bool:
        return self.why in _COUNTING


class _Scan(NamedTuple):
    terms: list[_Found]
    spelled: set[str]  # acronyms whose long form (a veto that spells them) stands in the text
    cues: list[_Cue]  # phrases that make a term near them a passing mention
    groups: set[str]  # of the terms found (with `only`, in the other texts too)


class _Reading:
    """One item read sentence by sentence, for the topics it may be about: the title first
    (its terms are already found), the rest only when the title does not settle a topic."""

    def __init__(
        self,
        matcher: Matcher,
        fields: Mapping[str, str],
        scan: _Scan,
        title_index: int,
        feed: str,
        context: FeedContext,
        boilerplate: Collection[str],
    ) -> None:
        self._matcher = matcher
        self._fields = fields
        self._feed = feed
        self._context = context
        self._boilerplate = boilerplate
        title = fields.get("title", "")
        self._units = [text_units.Unit("title", text_from_html(title))] if title else []
        self._title = 0 if title else -1  # the title is the first unit
        in_title = [hit for hit in scan.terms if hit.unit == title_index]
        self._found = in_title if title_index == 0 else [hit._replace(unit=0) for hit in in_title]
        self._cues: defaultdict[int, list[tuple[mentions.Mention, int, int]]] = defaultdict(list)
        if scan.cues:
            self._add_cues(scan.cues, title_index, 0)
        self._spelled = scan.spelled
        self._body_read = False
        self._language: str | None = None
        self._language_known = False
        self._definitions: dict[str, str] | None = None
        self._outside: dict[int, str] = {}  # units read only to explain: why they do not count
        self._dropped: list[tuple[_Found, str]] | None = None  # explaining: cancelled hits

    def _read_body(self) -> None:
        """Cut the fields after the title into sentences and find their terms. When
        explaining, the units that are not the item's own content are read too (and marked)."""
        if self._body_read:
            return
        self._body_read = True
        body = {name: text for name, text in self._fields.items() if name != "title"}
        units = []
        for unit in text_units.units(body):
            if not unit.content:
                why = "not the item's own content (boilerplate or navigation)"
            elif self._boilerplate and unit_key(unit.text) in self._boilerplate:
                why = "repeated across the feed's items"
            else:
                units.append(unit)
                continue
            if self._dropped is not None:
                self._outside[len(self._units) + len(units)] = why
                units.append(unit)
        offset = len(self._units)
        self._units += units
        dropped: list[tuple[_Found, str]] | None = [] if self._dropped is not None else None
        scan = self._matcher._scan([unit.text for unit in units], dropped)
        self._found += [_Found(hit.term, hit.unit + offset, *hit[2:]) for hit in scan.terms]
        for cue in scan.cues:
            self._cues[cue.unit + offset].append((cue.kind, cue.start, cue.end))
        if self._dropped is not None and dropped:
            self._dropped += [(hit._replace(unit=hit.unit + offset), why) for hit, why in dropped]

    def _add_cues(self, cues: Sequence[_Cue], scanned: int, unit: int) -> None:
        """Keep the cues found in the `scanned`th text as those of unit `unit`."""
        self._cues[unit] += [(cue.kind, cue.start, cue.end) for cue in cues if cue.unit == scanned]

    def verdicts(self, dropped_in_title: list[tuple[_Found, str]]) -> tuple[Verdict, ...]:
        """Every term found in the item, with whether it counts and why (see `explain`)."""
        self._dropped = [(hit._replace(unit=0), why) for hit, why in dropped_in_title]
        self._read_body()
        judged = [(hit, self._verdict(hit)) for hit in self._found] + self._dropped
        return tuple(
            Verdict(
                hit.term.text,
                hit.term.groups,
                self._units[hit.unit].field,
                self._units[hit.unit].text,
                why,
            )
            for hit, why in sorted(judged, key=lambda pair: (pair[0].unit, pair[0].start))
        )

    def matches(self, topics: Sequence[TopicRule]) -> tuple[TopicMatch, ...]:
        """The topics the item is about: those its title, or its title with one sentence,
        holds every group of (a listed term counting only beside a title that speaks of the
        topic too), with the feed's own groups everywhere. The body is read only for the
        topics the title does not settle."""
        title = {self._title}
        assumed = set(self._context.assume)
        title_valid = self._valid(list(self._found))
        title_groups = {g for hit, weak in title_valid if not weak for g in hit.term.groups}
        title_hits = [hit for hit, weak in title_valid if not weak or title_groups]
        in_title = {g for hit in title_hits for g in hit.term.groups} | assumed
        matches: list[TopicMatch] = []
        unsettled = []
        for topic in topics:
            if not topic.none and topic.accepts(in_title):
                matches.append(self._explained(topic, -1, title_hits))
            else:
                unsettled.append(topic)
        if not unsettled:
            return tuple(matches)
        self._read_body()
        by_unit: defaultdict[int, list[_Found]] = defaultdict(list)
        for hit, weak in self._valid(hit for hit in self._found if hit.unit not in title):
            if not weak or title_groups:
                by_unit[hit.unit].append(hit)
        everywhere = in_title | {
            g for hits in by_unit.values() for h in hits for g in h.term.groups
        }
        for topic in unsettled:
            if not everywhere.isdisjoint(topic.none):
                continue
            for index in [-1, *sorted(by_unit)]:
                hits = title_hits + (by_unit[index] if index >= 0 else [])
                if topic.accepts({g for hit in hits for g in hit.term.groups} | assumed):
                    matches.append(self._explained(topic, index, hits))
                    break
        return tuple(sorted(matches, key=lambda match: match.topic))

    def _valid(self, hits: Iterable[_Found]) -> list[tuple[_Found, bool]]:
        """The hits that count, each with whether it is weak (one of a list)."""
        judged = [(hit, self._verdict(hit)) for hit in hits]
        return [(hit, verdict == LISTED) for hit, verdict in judged if verdict in _COUNTING]

    def _explained(self, topic: TopicRule, index: int, hits: list[_Found]) -> TopicMatch:
        """The match: the terms that made it, where, its score (title hits weigh most), and
        the sentence that says it (the title when the title alone does)."""
        wanted = (*topic.all, *topic.any)
        reasons: dict[tuple[str, str, str, str], None] = {}  # in order, each once
        score = 0.0
        for hit in hits:
            field = self._units[hit.unit].field
            term = hit.term
            for group in term.groups:
                if group in wanted:
                    reasons[(group, term.text, field, hit.text)] = None
                    score += FIELD_WEIGHTS[field]
        for group in self._context.assume:
            if group in wanted:
                reasons[(group, "", "feed", self._feed)] = None
                score += FIELD_WEIGHTS["feed"]
        quoted = index if index >= 0 else self._title
        sentence = self._units[quoted].text if quoted >= 0 else ""  # units are clean text
        if len(sentence) > MAX_EVIDENCE:
            sentence = clean_text(sentence, MAX_EVIDENCE)
        return TopicMatch(topic.id, score, tuple(map(self._matcher._term_hit, reasons)), sentence)

    def _verdict(self, hit: _Found) -> str:
        """COUNTS, LISTED (counts only beside a title on the topic), or why it does not count."""
        term = hit.term
        unit = self._units[hit.unit]
        if hit.unit in self._outside:
            return self._outside[hit.unit]
        if term.acronym is not None:
            meaning = self._defined(term.text)
            if meaning is False:
                return "defined in the text as something else"
            if meaning is None and term.text in self._spelled:
                return "spelled out in the text as something else"
            if term.defined_only and meaning is not True:
                return "counts only where the text defines it"
            if term.language and meaning is not True and self._item_language() != term.language:
                return f"counts only in text in {term.language} (or where defined)"
        elif term.language and self._item_language() != term.language:
            return f"counts only in text in {term.language}"
        if term.requires and (untargeted := self._untargeted(hit, unit)):
            return untargeted
        cues = self._cues.get(hit.unit)
        another_use = False
        if cues:
            title = unit.field == "title"
            before = [other.start for other in self._found_before(hit)]
            cue = mentions.by_cue(
                cues,
                hit.scanned,
                hit.start,
                self._phrase_end(hit),
                title=title,
                terms_before=before,
                english=self._english,
            )
            if cue in mentions.CLAUSE_BOUND and not self._in_its_clause(hit, unit, cue):
                # "MS patients were treated; it remains to be seen whether ...", "people with
                # lupus were excluded, and ten people with MS were treated"
                cue = None
            # "Also tested in lupus and MS": one of a list of other uses (below). Alone ("also
            # tested in progressive MS") it may be what the item reports.
            another_use = cue is mentions.Mention.ANOTHER_USE
            if cue is not None and not another_use:
                return f"a passing mention: {cue.value}"
        # The same words may stand twice ("MS Society: CAR T for people with MS").
        earlier = 0
        if unit.text.count(hit.text) > 1:
            earlier = sum(other.text == hit.text for other in self._found_before(hit))
        located = _locate(unit.text, hit.text, earlier)
        if located is None:
            return COUNTS
        start, end = located
        form = mentions.by_form(unit.text, start, end, english=self._english)
        if form is not None:
            return f"a passing mention: {form.value}"
        # One of a list of others ("lupus, myositis and MS"), unless the list is the item's
        # labels or names several terms of the same group ("rese-cel, obe-cel, miv-cel").
        in_list = not unit.labels and mentions.in_enumeration(unit.text, start, end)
        if another_use and (in_list or mentions.after_and(unit.text, start)):
            return f"a passing mention: {mentions.Mention.ANOTHER_USE.value}"
        listed = (
            in_list
            and not any(
                other is not hit and other.unit == hit.unit and other.term.groups == term.groups
                for other in self._found
            )
            and not self._paired(hit)
        )
        return LISTED if listed else COUNTS

    def _in_its_clause(self, hit: _Found, unit: text_units.Unit, kind: mentions.Mention) -> bool:
        """Whether a cue of `kind` stands in the same clause as the term, where punctuation
        parts them (`mentions.clauses`: the normalised text the cues are found in keeps only
        the breaks marks leave, not which mark stood there).
        """
        clauses = mentions.clauses(unit.text)
        if len(clauses) == 1:
            return True
        phrases = {
            hit.scanned[start:end].strip()
            for cue, start, end in self._cues[hit.unit]
            if cue is kind
        }
        headed = False  # by criteria, which speak for the clauses after theirs too
        for clause in clauses:
            words = normalise_for_matching(clause)
            said = [phrase for phrase in phrases if f" {phrase} " in words]
            if f" {hit.text} " in words and (said or headed):
                return True
            headed = headed or any(map(mentions.names_criteria, said))
        return False

    def _paired(self, hit: _Found) -> bool:
        """Joined by "and" to a term of other groups ("CAR-T e sclerosi multipla, studio
        italiano", "CD19 and MS, a review"): the pair is what the sentence is about, not two
        elements of a list of others."""
        for other in self._found:
            if other.unit != hit.unit or not set(other.term.groups).isdisjoint(hit.term.groups):
                continue
            first, second = (other, hit) if other.end <= hit.start else (hit, other)
            if (
                second.start >= first.end
                and hit.scanned[first.end : second.start].strip().lower() in _PAIRING_WORDS
            ):
                return True
        return False

    def _phrase_end(self, hit: _Found) -> int:
        """Where the run of terms `hit` starts ends ("CD19 CAR T", "KYV-101 CAR T"): what is
        said after the run ("... was not studied") is said of each of its terms."""
        end = hit.end
        following = {o.start: o.end for o in self._found if o.unit == hit.unit and o.start >= end}
        while end in following:
            end = following[end]
        return end

    def _found_before(self, hit: _Found) -> list[_Found]:
        """The terms found before `hit` in its own unit."""
        return [o for o in self._found if o.unit == hit.unit and o.start < hit.start]

    def _untargeted(self, hit: _Found, unit: text_units.Unit) -> str | None:
        """Why a term that counts only as a therapy's target (CD19) is not one here, or None
        if it is: one of its cue words stands within a few words; or it is the subject of the
        title, which no veto word (a count, a marker panel) makes a measurement, and which the
        body does not name only as one ("Rituximab clears CD19+ B cells" over "CD19 counts
        fell under 1%")."""
        term = hit.term
        if any(_holds_any(window, term.requires) for window in _windows(unit.text, hit.text)):
            return None
        no_cue = f"no cue word ({', '.join(term.requires[:4])}, ...) near it"
        if unit.field != "title":
            return no_cue
        if _holds_any(normalise_for_matching(unit.text).lower(), term.vetoes):
            return no_cue
        if self._measured_in_body(term, hit.text):
            return f"{no_cue}, and the body names it only as a measurement"
        return None

    def _measured_in_body(self, term: _Term, surface: str) -> bool:
        """The body names the term (as `surface`), and each time as a measurement: a veto
        word near it, and none of its cue words."""
        self._read_body()
        windows = [
            window
            for index, unit in enumerate(self._units)
            if unit.field != "title" and index not in self._outside
            for window in _windows(unit.text, surface)
        ]
        return bool(windows) and all(
            _holds_any(window, term.vetoes) and not _holds_any(window, term.requires)
            for window in windows
        )

    def _defined(self, acronym: str) -> bool | None:
        """True if the text defines `acronym` as a term of its own groups, False if as
        something else, None if it does not define it."""
        if self._definitions is None:
            if any(
                f"({acronym}" in text or f"{acronym} (" in text
                for name, text in self._fields.items()
                if name != "title"
            ):
                self._read_body()
            self._definitions = {}
            for unit in self._units:
                if "(" in unit.text:
                    found = acronyms.definitions(unit.text, self._matcher._acronyms)
                    self._definitions = found | self._definitions
        meaning = self._definitions.get(acronym)
        if meaning is None:
            return None
        term = self._matcher._terms[acronym]
        return not self._matcher._groups_in(meaning).isdisjoint(term.groups)

    def _english(self) -> bool:
        return self._item_language() in (None, "en")

    def _item_language(self) -> str | None:
        if not self._language_known:
            self._language = guess_language(" ".join(self._fields.values()))
            self._language_known = True
        return self._language


def _windows(text: str, surface: str) -> Iterator[str]:
    """The words within REQUIRE_WINDOW_WORDS of each place `surface` (a term as found:
    already its normalised words) stands in `text`, lower case and padded with spaces."""
    words = normalise_for_matching(text).split()
    wanted = surface.split()
    for at in range(len(words) - len(wanted) + 1):
        if words[at : at + len(wanted)] == wanted:
            near = words[
                max(0, at - REQUIRE_WINDOW_WORDS) : at + len(wanted) + REQUIRE_WINDOW_WORDS
            ]
            yield " " + " ".join(near).lower() + " "


def _holds_any(window: str, phrases: Sequence[str]) -> bool:
    return any(f" {phrase} " in window for phrase in phrases)


def unit_key(text: str) -> str:
    """A sentence as compared across a feed's items: its words, lower-case."""
    return " ".join(normalise_for_matching(text).lower().split())


def repeated_sentences(items: Sequence[Mapping[str, str]]) -> frozenset[str]:
    """The sentences a feed repeats across its items (a sign-off, a disclaimer, a standing
    "About us"): text the feed puts under every item is not what an item says. Titles are
    never counted: they are what an item is."""
    if len(items) < REPEATED_IN:
        return frozenset()
    counts: Counter[str] = Counter()
    for fields in items:
        body = {name: text for name, text in fields.items() if name != "title"}
        counts.update({unit_key(unit.text) for unit in text_units.units(body)})
    needed = max(REPEATED_IN, math.ceil(len(items) * REPEATED_SHARE))
    return frozenset(key for key, count in counts.items() if count >= needed and key)


def _span(lowered: str, index: int) -> tuple[int, int]:
    """Where the `index`th of the texts `_normalise_fields` joined stands in `lowered`; an
    empty span for -1."""
    if index < 0:
        return 0, 0
    low = 0
    for _ in range(index):
        low = lowered.index(FIELD_END, low) + 1
    high = lowered.find(FIELD_END, low)
    return low, len(lowered) if high == -1 else high


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


def _veto_of(
    hit: _Found, vetoes: list[tuple[str, int, int]], lowered: str
) -> tuple[int, int] | None:
    """Where the veto phrase that cancels `hit` stands, or None if none does."""
    for vetoed, start, end in vetoes:
        if vetoed != hit.term.text:
            continue
        if start < hit.end and hit.start < end:
            return start, end
        # A key starts at the space before its first word: one more character shows a break.
        gap = lowered[min(end, hit.end) : max(start, hit.start) + 1]
        if FIELD_END not in gap and "  " not in gap and gap.count(" ") <= VETO_WINDOW_WORDS + 1:
            return start, end
    return None


def _groups_by_term(terms: Mapping[str, Sequence[str]]) -> dict[str, tuple[str, ...]]:
    groups: dict[str, list[str]] = defaultdict(list)
    for group, phrases in terms.items():
        for phrase in phrases:
            groups[phrase.strip()].append(group)
    return {phrase: tuple(names) for phrase, names in groups.items() if phrase}


def _normalised_key(phrase: str) -> str:
    """A phrase as the automaton stores it: normalised, lower-case, a leading space, no stars."""
    return _normalised_keys(phrase)[0]


def _normalised_keys(phrase: str) -> tuple[str, ...]:
    """`_normalised_key`, and for a phrase with a clause mark in it ("z. B.") its form with the
    break too: text writes it both ways ("z. B.", "z.B.")."""
    broken = _lower_same_length(normalise_for_matching(phrase.strip().rstrip("*"))).rstrip(" ")
    plain = " " + " ".join(broken.split())
    return (plain, broken) if broken != plain else (plain,)


def _term(
    written: str,
    groups: tuple[str, ...],
    requires: Mapping[str, Sequence[str]],
    vetoes: Mapping[str, Sequence[str]],
) -> _Term:
    """A configured term, its "@" marker read ("SEP@fr", "RMS@defined")."""
    stripped, marker = split_marker(written.strip())
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
        language=marker if marker in FUNCTION_WORDS else None,
        defined_only=marker == DEFINED,
        requires=tuple(_normalised_key(cue).strip() for cue in requires.get(stripped, ())),
        vetoes=tuple(_normalised_key(phrase).strip() for phrase in vetoes.get(stripped, ())),
    )


def _fingerprint(
    terms: Mapping[str, Sequence[str]],
    topics: Sequence[TopicRule],
    vetoes: Mapping[str, Sequence[str]],
    feeds: Mapping[str, FeedContext],
    requires: Mapping[str, Sequence[str]],
) -> str:
    document = {
        "version": MATCHER_VERSION,
        "feeds": {name: [c.assume, c.topics] for name, c in sorted(feeds.items())},
        "terms": {group: list(phrases) for group, phrases in sorted(terms.items())},
        "vetoes": {term: list(phrases) for term, phrases in sorted(vetoes.items())},
        "requires": {term: list(cues) for term, cues in sorted(requires.items())},
        "topics": [[topic.id, topic.all, topic.any, topic.none] for topic in topics],
    }
    return hashlib.sha256(json.dumps(document, sort_keys=True).encode()).hexdigest()


def _locate(sentence: str, written: str, earlier: int = 0) -> tuple[int, int] | None:
    """Where a term found as `written` (its words, as the normaliser left them) stands in the
    sentence as written, punctuation and all, after `earlier` other places it is written;
    None if it cannot be found again."""
    first = written.partition(" ")[0]
    at = sentence.find(first)
    while at != -1:  # str.find, then one anchored match: far cheaper than a regex search
        if not (at and sentence[at - 1].isalnum()):
            end = at + len(written)
            if sentence.startswith(written, at) and not sentence[end : end + 1].isalnum():
                found: tuple[int, int] | None = (at, end)  # written as found, the common case
            elif matched := _written_pattern(written).match(sentence, at):
                found = matched.start(), matched.end()
            else:
                found = None
            if found is not None:
                if not earlier:
                    return found
                earlier -= 1
        at = sentence.find(first, at + 1)
    return None


@lru_cache(maxsize=4096)
def _written_pattern(written: str) -> re.Pattern[str]:
    """The words of `written` with any separators between them, ending at a word's end."""
    words = map(re.escape, written.split())
    return re.compile(r"[\W_]*".join(words) + r"(?![^\W_])")


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
        requires=settings.requires,
    )
