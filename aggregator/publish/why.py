"""Why a story is shown: the sentence that says it is about a topic, as every output quotes it.

A reader judges a story by what it says, so pages, feeds and digests quote the sentence (or
title) that made the match, with its matched words marked, rather than list words out of
context. A feed's own topic ("every item of an MS society's feed is about MS") is no word of
the story and is never shown as one.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from aggregator.models import TopicMatch
from aggregator.normalise import SEARCH_PREFIX_FROM


@dataclass(frozen=True, slots=True)
class Segment:
    """A run of quoted text, marked when it is one of the words that matched."""

    text: str
    matched: bool


@dataclass(frozen=True, slots=True)
class Why:
    """Why a story is about `topic`: the quoted sentence, cut into marked and plain runs
    (or, for a match stored before quotes were kept, just the words that made it)."""

    topic: str
    quote: tuple[Segment, ...]
    words: tuple[str, ...]

    @property
    def text(self) -> str:
        """The reason as one line of plain text (terminals, plain-text email)."""
        if self.quote:
            return "\u201c" + "".join(segment.text for segment in self.quote) + "\u201d"
        return ", ".join(self.words)


def why_shown(matches: Sequence[TopicMatch]) -> list[Why]:
    """One reason per topic; a sentence that makes several topics is quoted once, for the
    first of them."""
    reasons = []
    quoted: set[str] = set()
    for match in matches:
        if match.evidence in quoted:
            continue
        words = matched_words([match])
        if not match.evidence and not words:
            continue
        quoted.add(match.evidence)
        reasons.append(Why(match.topic, highlight(match.evidence, words), tuple(words)))
    return reasons


def matched_words(matches: Sequence[TopicMatch]) -> list[str]:
    """The words that made matches, as first written, once each whatever their case."""
    words: dict[str, str] = {}
    for match in matches:
        for hit in match.hits:
            if hit.field != "feed" and hit.text:
                words.setdefault(hit.text.casefold(), hit.text)
    return list(words.values())


def highlight(text: str, words: Sequence[str]) -> tuple[Segment, ...]:
    """Split `text` so that each occurrence of a matched word (any case, any separator
    between its parts: "CAR T" marks "CAR-T") is its own segment."""
    wanted = sorted({word for word in words if word.strip()}, key=len, reverse=True)
    if not text or not wanted:
        return (Segment(text, False),) if text else ()
    alternatives = (r"[\W_]*".join(map(re.escape, word.split())) for word in wanted)
    pattern = re.compile(r"(?<!\w)(" + "|".join(alternatives) + r")(?!\w)", re.IGNORECASE)
    return _marked_segments(text, pattern.finditer(text))


def search_marks(text: str, words: Sequence[str]) -> tuple[Segment, ...]:
    """Split `text` so that each word found by a search for `words` is its own segment: as
    search compares them (any case, accents ignored), a word of three letters or more also as
    the start of a longer one ("trial" marks "Trials")."""
    if not text or not words:
        return (Segment(text, False),) if text else ()
    folded = text.lower() if text.isascii() else text.translate(_FOLDED)  # positions hold
    alternatives = sorted(
        (
            re.escape(word) + (r"[^\W_]*" if len(word) >= SEARCH_PREFIX_FROM else "")
            for word in words
        ),
        key=len,
        reverse=True,
    )
    pattern = re.compile(r"(?<![^\W_])(?:" + "|".join(alternatives) + r")(?![^\W_])")
    return _marked_segments(text, pattern.finditer(folded))


def _marked_segments(text: str, found: Iterable[re.Match[str]]) -> tuple[Segment, ...]:
    """`text` cut at the spans `found` (in `text` or in a folding of it that keeps every
    position), those spans marked."""
    segments = []
    position = 0
    for span in found:
        if span.start() > position:
            segments.append(Segment(text[position : span.start()], False))
        segments.append(Segment(text[span.start() : span.end()], True))
        position = span.end()
    if position < len(text):
        segments.append(Segment(text[position:], False))
    return tuple(segments)


class _FoldTable(dict[int, str]):
    """A `str.translate` table of each character as search sees it, as one character (its
    base letter, lower case), filled as characters are first seen."""

    def __missing__(self, code: int) -> str:
        char = chr(code)
        folded = unicodedata.normalize("NFKD", char)[:1].casefold()[:1] or char
        self[code] = folded
        return folded


_FOLDED = _FoldTable()
