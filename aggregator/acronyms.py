"""What a text says its acronyms stand for. Pure.

"mass spectrometry (MS)" and "median survival (MS)" make every later MS of that text mean
something other than the disease; "relapsing MS (RMS)" makes RMS mean it. Definitions are found
with Schwartz and Hearst's algorithm ("A simple algorithm for identifying abbreviation
definitions in biomedical text", PSB 2003): a short form in parentheses next to a long form
whose letters, read right to left, contain the short form's, the first at a word's start.
"""

from __future__ import annotations

import re
from collections.abc import Collection

# "long form (SF)" and "SF (long form)": a parenthesis of one short token, or one opened right
# after a short token.
_SHORT_IN_PARENTHESES = re.compile(r"\(\s*([^\W_][\w\-]{0,9})\s*[),;]")
_SHORT_BEFORE_PARENTHESES = re.compile(r"\b([^\W_][\w\-]{0,9})\s*\(([^()]{3,120})\)")
_WORD = re.compile(r"\S+")
_CLAUSE_END = re.compile(r"[.;:!?()\[\]]")
_WORD_PARTS = re.compile(r"[\s\-\u2010-\u2015/]+")
# Words an acronym leaves out, or keeps, as it pleases ("classification and regression tree",
# "spettrometria di massa").
_LINKING_WORDS = frozenset(
    "and of the in for on to a an de di del della la le des du et en y e und der die das "
    "van het do da".split()
)


def definitions(text: str, acronyms: Collection[str]) -> dict[str, str]:
    """The long form `text` gives each of `acronyms` it defines (the first definition wins)."""
    found: dict[str, str] = {}
    for match in _SHORT_IN_PARENTHESES.finditer(text):
        short = match[1]
        if short not in acronyms or short in found:
            continue
        before = _CLAUSE_END.split(text[: match.start()])[-1]
        words = _WORD.findall(before)[-min(len(short) + 5, len(short) * 2) :]
        if long := best_long_form(short, " ".join(words)) or _translated(short, words):
            found[short] = long
    # "SF (long form)" only with a long form of several words, as Schwartz and Hearst do: a
    # one-word aside in parentheses ("MS (mislabelled)", "MS (n=12)") defines nothing.
    for match in _SHORT_BEFORE_PARENTHESES.finditer(text):
        short, inside = match[1], match[2].strip()
        if short not in acronyms or short in found:
            continue
        long = best_long_form(short, inside)
        if long and len([word for word in _WORD_PARTS.split(long) if word]) > 1:
            found[short] = long
    return found


def spells(short: str, phrase: str) -> bool:
    """True when the words of `phrase` begin with the letters of `short`, in order ("mass
    spectrometry" for MS, "classification and regression tree" for CART, with or without its
    linking words), so that the phrase is what the acronym stands for. "LC-MS" is not."""
    letters = "".join(char.lower() for char in short if char.isalnum())
    words = [word.lower() for word in _WORD_PARTS.split(phrase) if word]
    every = "".join(word[0] for word in words)
    content = "".join(word[0] for word in words if word not in _LINKING_WORDS)
    return len(words) > 1 and letters in (every, content)


def _translated(short: str, words: list[str]) -> str | None:
    """The last words before a parenthesis whose initials are the short form's letters in
    another order: an English acronym kept after a translated term ("microscopía
    electrónica (EM)")."""
    letters = sorted(char.lower() for char in short if char.isalpha())
    content = [word for word in words if word.lower() not in _LINKING_WORDS]
    tail = content[-len(letters) :]
    if len(tail) == len(letters) and sorted(word[0].lower() for word in tail) == letters:
        return " ".join(words[words.index(tail[0]) :])
    return None


def best_long_form(short: str, candidate: str) -> str | None:
    """The shortest end of `candidate` that `short` abbreviates, or None: every letter and
    digit of `short` found in order, right to left, the first at the start of a word."""
    letters = [char.lower() for char in short if char.isalnum()]
    if not letters or not letters[0].isalpha():
        return None
    text = candidate.lower()
    position = len(text) - 1
    for index in range(len(letters) - 1, -1, -1):
        char = letters[index]
        while position >= 0 and (
            text[position] != char or (index == 0 and position > 0 and text[position - 1].isalnum())
        ):
            position -= 1
        if position < 0:
            return None
        position -= 1
    start = text.rfind(" ", 0, position + 2) + 1
    long = candidate[start:].strip(" ,-\u2013\u2014")
    # A long form longer than its short form, not the short form itself written in another case.
    if len(long) <= len(short) or long.lower() == short.lower():
        return None
    return long
