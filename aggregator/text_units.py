"""An item's text cut into the units a statement is made in. Pure.

"CAR T" and "MS" in the same sentence, or in the title, say something about each other; in two
sentences of a round-up, or in a press release's "About ..." paragraph, they do not. So matching
looks at units: the title whole, every sentence of the summary and content, and a list of short
labels (tags, keywords, "Condition: MS") as one unit, since its labels describe the item
together. What is not the item's own content is marked: a press release's boilerplate ("About
Kyverna: ...") and a page's navigation ("Related stories: ..."), to the end of their field,
and a credit ("Source: ...", "Copyright ...") wherever it stands.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from functools import lru_cache

from aggregator.normalise import html_blocks_only, sentences, text_from_html

LABEL_WORDS = 6  # list items this short are labels of the item, not sentences of their own
FIELD_WORDS = 12  # and a record's field lines, "Conditions: Relapsing MS, Progressive MS"
_BAR = re.compile(r"\s+\|\s+")  # "Trial news | Site name": parts of their own
_BARE_TAG = re.compile(r"<(/?)(\w+)>")  # as `html_blocks_only` leaves block tags
# Navigation a page adds around an item: what follows is other items' titles. Either
# introduced in a sentence ("Related stories: ..."), or a heading of its own over a list
# ("<h3>Related posts</h3>", "<p><strong>You may also like</strong></p>").
_NAVIGATION_PHRASES = (
    r"(?:related (?:stories|articles|news|posts|content|topics|links|reading|coverage)|"
    r"read (?:more|also|next)|also read|see also|more on this(?: topic)?|further reading|"
    r"you (?:may|might) also (?:like|be interested in)|recommended (?:for you|reading|articles)|"
    r"more (?:news|stories|articles)|other news|most (?:read|popular|viewed)|trending now|"
    r"(?:previous|next) (?:article|story|post)|"
    r"lire aussi|à lire aussi|voir aussi|à voir aussi|sur le même sujet|les plus lus|"
    r"articles similaires|dans la même rubrique|"
    r"lesen sie auch|mehr zum thema|weitere artikel|weitere nachrichten|meistgelesen|"
    r"das könnte sie auch interessieren|auch interessant|"
    r"noticias relacionadas|not[íi]cies relacionades|art[íi]culos relacionados|"
    r"te puede interesar|también te puede interesar|lo más leído|más noticias|"
    r"leggi anche|articoli correlati|potrebbe interessarti|ti potrebbe interessare|"
    r"i più letti|altre notizie|"
    r"lees ook|gerelateerd|meer nieuws|meest gelezen|ook interessant|"
    r"veja também|leia também|notícias relacionadas|mais lidas|"
    r"você também pode gostar)"
)
_NAVIGATION = re.compile(r"(?:^|\s)" + _NAVIGATION_PHRASES + r"\s*:", re.IGNORECASE)
_NAVIGATION_HEADING = re.compile(
    r"(?:" + _NAVIGATION_PHRASES + r"|related|more)\s*[:.\u2026]?", re.IGNORECASE
)
# A press release's boilerplate: "About Kyverna Therapeutics:" and its translations, at the
# start of a sentence, introduce the company's or product's standing description. Without a
# colon, it is a heading of its own ("<h3>About Kyverna Therapeutics, Inc.</h3>"), or a
# heading run into the description once markup is gone ("About KYV-101 KYV-101 is ...").
_ABOUT_WORD = r"(?i:about|über|à propos de|acerca de|sobre|informazioni su|over)\s+"
_NAME_WORDS = r"(?:,?\s+[A-Z0-9][\w\-\u2011.&]*){0,4}"
_ABOUT = re.compile(r"^" + _ABOUT_WORD + r"\w[\w\-\u2011.]*" + _NAME_WORDS + r"\s*:")
_ABOUT_HEADING = re.compile(_ABOUT_WORD + r"[A-Z0-9][\w\-\u2011.&]*" + _NAME_WORDS + r"\.?")
_ABOUT_RUN_ON = re.compile(
    r"^" + _ABOUT_WORD + r"([A-Z][\w\-\u2011.]*)(?:,?\s+[A-Z0-9][\w\-\u2011.&]*){0,4}?\s+\1\b"
)


# A menu written out in text, and how long one of its entries may be.
_MENU_SEPARATOR = re.compile(r"\s+[|»\u203a>]\s+")
_MENU_ENTRY_WORDS = 4
_SENTENCE_STOP = re.compile(r"[.!?](?:\s|$)")
# A site's menu, as a list of short links, starts with its home page.
_HOME_LABELS = frozenset(
    ["home", "homepage", "startseite", "accueil", "inicio", "início", "pagina iniziale"]
)
_HOME_PREFIXES = tuple(_HOME_LABELS)
_HOME_CHARS = 20  # enough to hold any of them after a little leading space
# One field of a record written out: a label of one to three words, a colon, its value.
_FIELD = re.compile(r"\s*\w[\w\-]*(?: [\w\-]+){0,2}\s*:\s*\S")
# Credits a page or a syndicated copy ends with: the name that follows is the publisher's.
# Some open a sentence ("Source: ...", "Continue reading at <site>", "This article was
# originally published on ..."; only there: after an excerpt's "[…]" it shares the
# excerpt's last sentence, and "the study, originally published in Neurology, ..." is the
# item's own); others stand anywhere in it, as WordPress's "The post <title> appeared first
# on <site>." in each site's language. Those are looked for as plain words: one pattern
# of many alternatives tried at every position cost the parse worker a tenth of its time.
_CREDIT_OPENING = re.compile(
    r"(?:©|\(c\)\s|(?i:copyright)\b|(?i:sources?|quelle|fuente|fonte|bron|credits?)\s*:)"
    r"|(?i:continue reading|read the full (?:story|article|post)"
    r"|(?:this (?:article|story|post) was )?originally (?:published|appeared) (?:on|in|at|by))"
    r"|L['\u2019]articolo .+ proviene da "
)
_CREDIT_PHRASES = (
    *("all rights reserved", "alle rechte vorbehalten", "tous droits réservés"),
    *("todos los derechos reservados", "tutti i diritti riservati", "alle rechten voorbehouden"),
    *("todos os direitos reservados", "appeared first on", "erschien zuerst auf"),
    *("est apparu en premier sur", "se publicó primero en", "apareció primero en"),
    *("verscheen eerst op", "apareceu primeiro em"),
)


@dataclass(frozen=True, slots=True)
class Unit:
    """One statement of an item: its field, its readable text (punctuation kept), whether it
    is the item's own content (False for boilerplate and navigation), and whether it is a list
    of labels ("Condition: MS; Intervention: CAR T cells")."""

    field: str
    text: str
    content: bool = True
    labels: bool = False


def units(fields: Mapping[str, str]) -> list[Unit]:
    """The units of an item's fields (title, summary, content), in order."""
    found: list[Unit] = []
    for name, text in fields.items():
        if text:
            found += _field_units(name, text)
    return found


# A feed's items are cut into units twice: for the sentences it repeats across its items, then
# for the items that may match. Markup costs the most to cut, so a feed's worth is kept.
@lru_cache(maxsize=256)
def _field_units(name: str, text: str) -> tuple[Unit, ...]:
    if name == "title":
        return (Unit(name, text_from_html(text)),)
    found: list[Unit] = []
    content = True
    for piece, labels in _pieces(text):
        if content and (
            _NAVIGATION_HEADING.fullmatch(piece)
            or _ABOUT_HEADING.fullmatch(piece)
            or _ABOUT_RUN_ON.match(piece)
        ):
            content = False
        elif content and ":" in piece and (_ABOUT.match(piece) or _NAVIGATION.search(piece)):
            content = False
            before = _NAVIGATION.split(piece, maxsplit=1)[0].strip()
            if before and not _ABOUT.match(piece):
                found.append(Unit(name, before))
        # A credit ("Source: ...") may open a summary too, and a site's menu ("Home; MS
        # research; Contact") any field: only they are not content.
        credit = content and _is_credit(piece)
        menu = labels and piece.partition(";")[0].strip().lower() in _HOME_LABELS
        found.append(Unit(name, piece, content and not credit and not menu, labels))
    return tuple(found)


def _is_credit(piece: str) -> bool:
    if _CREDIT_OPENING.match(piece):
        return True
    lowered = piece.lower()
    return any(phrase in lowered for phrase in _CREDIT_PHRASES)


def _pieces(text: str) -> Iterator[tuple[str, bool]]:
    """A field's sentences, and its lists of short labels each as one piece; (text, labels).
    A menu written out in text ("Home | News | MS research | ...") is a list of labels too."""
    for block, labels in _blocks(text):
        if labels:
            yield block, True
            continue
        if end := _menu_end(block):
            crumbs = (crumb.strip().rstrip(".!?") for crumb in _MENU_SEPARATOR.split(block[:end]))
            yield "; ".join(crumb for crumb in crumbs if crumb), True
            block = block[end:].strip()
        yield from ((sentence, _is_fields(sentence)) for sentence in _sentences(block))


def _menu_end(block: str) -> int:
    """Where a menu or breadcrumb that opens a block ends ("Home | News | MS research |
    Contact." before the item's text, or "Startseite > Forschung > ..."); 0 if none opens it.
    Its last entry ends where a sentence does, or where an entry runs longer than a link."""
    if not block[:_HOME_CHARS].lstrip().lower().startswith(_HOME_PREFIXES):
        return 0  # the common case, without reading the block for separators
    first = _MENU_SEPARATOR.search(block)
    if first is None or block[: first.start()].strip().lower() not in _HOME_LABELS:
        return 0
    end = first.end()
    while True:
        following = _MENU_SEPARATOR.search(block, end)
        entry = block[end : following.start() if following else len(block)]
        stop = _SENTENCE_STOP.search(entry)
        if len(entry[: stop.start() if stop else None].split()) > _MENU_ENTRY_WORDS:
            return end
        if stop:
            return end + stop.end()
        if following is None:
            return len(block)
        end = following.end()


def _is_fields(sentence: str) -> bool:
    """Whether a sentence is a record's fields written out, "Condition: Multiple Sclerosis;
    Intervention: KYV-101": labels of the item, as a list of tags is."""
    return ";" in sentence and all(map(_FIELD.match, sentence.split(";")))


def _sentences(block: str) -> Iterator[str]:
    """The sentences of a block of running text, a title's parts ("... | Site name") apart."""
    for part in _BAR.split(block) if "|" in block else (block,):
        yield from sentences(part)


def _blocks(text: str) -> Iterator[tuple[str, bool]]:
    """The field's blocks of text (paragraphs, list items), with consecutive short list items
    joined into one labels block, and so are consecutive lines of a record's fields
    ("Condition: Multiple Sclerosis<br>Intervention: KYV-101"); (text, is_labels)."""
    if "<" not in text:
        yield text_from_html(text), False
        return
    parts = _BARE_TAG.split(html_blocks_only(text))  # text, "/" or "", tag name, text, ...
    labels: list[str] = []
    for index in range(0, len(parts), 3):
        chunk = "" if parts[index].isspace() else text_from_html(parts[index])
        if chunk:
            if _is_label(
                chunk, in_item=index > 0 and parts[index - 1] == "li" and not parts[index - 2]
            ):
                labels.append(chunk)
            else:
                yield from _joined(labels)
                labels = []
                yield chunk, False
    yield from _joined(labels)


def _is_label(chunk: str, in_item: bool) -> bool:
    """Whether a block is a label of the item: a short list item, or a line of a record's fields
    ("Condition: Multiple Sclerosis"), whose value is a name or a short list, not a sentence
    ("Objective: To assess CD19 CAR T in MS." opens a structured abstract's section). A credit
    ("Source: ...") is no field of the item."""
    words = len(chunk.split())
    if in_item:
        return words <= LABEL_WORDS
    return (
        words <= FIELD_WORDS
        and _FIELD.match(chunk) is not None
        and not chunk.endswith((".", "!", "?"))
        and not _is_credit(chunk)
    )


def _joined(labels: list[str]) -> Iterator[tuple[str, bool]]:
    """A run of labels as one labels block; a field line alone is a block of text."""
    if len(labels) > 1 or (labels and _FIELD.match(labels[0]) is None):
        yield "; ".join(labels), True
    elif labels:
        yield labels[0], False
