"""Which of the readers' languages a text is written in, from its function words. Pure.

Short acronyms mean the disease only in their own language: SEP is "sclérose en plaques" in a
French text and a septum elsewhere, EM "esclerosis múltiple" in Spanish and electron microscopy
in English. A title and a summary are enough to tell, because every language leans on a few
short words ("le, les, des, pour", "der, die, und, mit") that the others rarely use.
"""

from __future__ import annotations

from collections import Counter

from aggregator.normalise import WordTable

# Words frequent in one language and rare in the others (words two languages share, such as
# "de" or "la", are left out: they would not tell the languages apart).
FUNCTION_WORDS: dict[str, frozenset[str]] = {
    "en": frozenset(
        "the and of with for from this that these were was are has have been which their "
        "who after into about".split()
    ),
    "fr": frozenset(
        "le les du une et est dans pour avec sur aux au ont été sont qui cette chez "
        "selon leur pas à où atteint atteinte atteints traité traitée traités premier "
        "première nouveau nouvelle deuxième par contre après ses ces mais leurs très premiers "
        "premières nouveaux nouvelles essai essais résultats données".split()
    ),
    "de": frozenset(
        "der die und mit bei von im ist ein eine einer einem den dem für wurde "
        "werden nicht auch sich erste ersten erhält erhalten neue neuen zur zum gegen nach "
        "oder sind wird wurden zwischen durch auf aus zu kann können soll sollen wie warum "
        "nur noch schon dass ob unter hat haben kein keine".split()
    ),
    "es": frozenset(
        "el los las del y es fue son su sus se tras según ante pacientes tratamiento "
        "primer nuevo nueva ensayo ensayos pero desde hasta muy también primeros primeras "
        "nuevos nuevas datos estudio".split()
    ),
    "it": frozenset(
        "il gli dei della delle degli nel nella per che è sono di alla dal pazienti "
        "primo prima nuovo nuova studio paziente trattato trattata trattati malattia questo "
        "questa anche contro sulla sul dopo nei negli agli dello alle sulle dalla tra più "
        "già perché ancora senza primi nuovi nuove dati studi risultati".split()
    ),
    "nl": frozenset(
        "het een van bij met voor zijn werd worden niet ook naar over dat deze eerste "
        "nieuwe patiënt patiënten wordt hebben heeft tussen behandeld behandeling nieuw "
        "resultaten gegevens".split()
    ),
    "pt": frozenset(
        "os em um uma com foi são não também primeiros primeiras doentes ensaio pelo "
        "pela após tratamento estudo ao aos nas pelos pelas quem pode podem dados novos "
        "novas".split()
    ),
}
# Letters only one of the languages writes (counted once each when present).
LETTERS: dict[str, str] = {"fr": "çèêùœâîû", "de": "äöüß", "es": "ñ¿¡", "it": "òì", "pt": "ãõ"}
# Word endings only one of the languages writes, counted per word: its nouns of action and its
# past tense ("investigación", "trataron"; "investigação", "trataram"; "approvazione",
# "trattarono"). Where function words are few (a registry's or a wire's terse sentence), the
# words that carry the news still tell Spanish from Portuguese and Italian.
ENDINGS: dict[str, tuple[str, ...]] = {
    "es": ("ción", "ciones", "aron", "ieron"),
    "pt": ("ção", "ções", "aram", "eram"),
    "it": ("zione", "zioni", "arono", "erono"),
}
_WORDS_ONLY = WordTable()
MIN_EVIDENCE = 2  # function words (letters, endings) needed before a language is named
# A title alone may hold a single one ("Pacientes con EM reciben células CAR-T"): in a text
# this short, one is enough when no other language has any.
SHORT_TEXT_WORDS = 10
# French sets a space before a colon, a question or exclamation mark ("SEP : un essai").
_FRENCH_SPACED_PUNCTUATION = (" :", " ?", " !", "\u00a0:", "\u202f:", "\u00a0?", "\u202f?")
SAMPLE = 1000  # characters read: a title and a summary's start tell the language


_LANGUAGE_OF = {word: language for language, words in FUNCTION_WORDS.items() for word in words}
_LANGUAGE_OF_LETTER = {
    letter: language for language, letters in LETTERS.items() for letter in letters
}
_ENDINGS = tuple((ending, language) for language, endings in ENDINGS.items() for ending in endings)
_ANY_ENDING = tuple(ending for ending, _ in _ENDINGS)


def guess_language(text: str) -> str | None:
    """The ISO 639-1 code of the language `text` is most likely in, or None if it cannot
    tell (too few function words, or a tie)."""
    text = text[:SAMPLE]
    # Upper-case tokens are acronyms ("EM", "SEP"), not words of a language.
    words = [word.lower() for word in text.translate(_WORDS_ONLY).split() if not word.isupper()]
    scores = Counter(map(_LANGUAGE_OF.get, words))
    scores.update(map(_language_by_ending, words))
    scores.update(map(_LANGUAGE_OF_LETTER.get, _LANGUAGE_OF_LETTER.keys() & set(text.lower())))
    if any(mark in text for mark in _FRENCH_SPACED_PUNCTUATION):
        scores["fr"] += 1
    del scores[None]
    ranked = [*scores.most_common(2), ("", 0), ("", 0)]
    (best, score), (_, runner_up) = ranked[0], ranked[1]
    if score == runner_up:
        return None
    if score < MIN_EVIDENCE and (runner_up or len(words) > SHORT_TEXT_WORDS):
        return None
    return best


def _language_by_ending(word: str) -> str | None:
    if not word.endswith(_ANY_ENDING):  # most words: one call at C speed
        return None
    for ending, language in _ENDINGS:
        if word.endswith(ending):
            return language
    return None
