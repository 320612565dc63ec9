"""Whether a term in a sentence is what the sentence is about, or a passing mention. Pure.

"CAR T in lupus; MS might one day be a candidate", "a condition distinct from multiple
sclerosis", "exclusion criteria: ... multiple sclerosis", "presented at the European Committee
for Treatment and Research in Multiple Sclerosis", "Tupelo, MS", "Dana Lee, RN, MS": the words
are there, the disease is not what is reported on. These rules read a sentence as written
(case and punctuation kept) around a term found in it; they are rules of the languages readers
write in, not of any one source.
"""

from __future__ import annotations

import re
from bisect import bisect_left
from collections.abc import Callable, Iterable, Sequence
from enum import Enum
from functools import lru_cache
from itertools import accumulate
from typing import NamedTuple

# How many words may stand between a cue and the term it speaks of ("unlike most forms of MS").
CONTRAST_GAP = 3
EXAMPLE_GAP = 2
# How many words before an example cue may name the kind of illness it gives examples of
# ("autoimmune diseases such as", "enfermedades autoinmunes, por ejemplo").
KIND_WORDS = 3
# How many words may stand between a term and the exclusion said after it ("MS, NMOSD or
# MOGAD are not eligible").
EXCLUSION_AFTER_GAP = 5
# ... and between a term and "cannot take part" said after it ("MS patients will not be
# enrolled"): further off, the words are another clause's.
NEGATED_AFTER_GAP = 2
# A sentence with more of its ordinary words capitalised than this is in headline case.
HEADLINE_SHARE = 2 / 3
# How far around a term the rules that read punctuation look, in characters.
NEAR = 80
NAME_HEAD_WORDS = 3  # how far after a term a name's head word may stand ("MS Research Foundation")


class Mention(Enum):
    """Why a term found in a sentence does not count."""

    CONTRAST = "a contrast"  # "distinct from MS", "unlike MS", "once regarded as MS"
    EXAMPLE = "an example"  # "diseases such as MS"
    EXCLUSION = "an exclusion criterion"  # "exclusion criteria: ... MS"
    SPECULATION = "speculation"  # "in future, MS might also ...", "remains to be seen"
    PROSPECT = "a use hoped for"  # "could eventually help in MS", "future applications: MS"
    ANOTHER_USE = "another use"  # "rese-cel is also being studied in lupus and MS"
    NAME = "part of a name"  # "Multiple Sclerosis News Today", "National MS Society"
    VENUE = "a venue or publisher"  # "published in Multiple Sclerosis and Related Disorders"
    PLACE = "a place"  # "Tupelo, MS"
    DEGREE = "a degree"  # "RN, MS"


# The hedges: passing mentions judged in summaries and content only (a title is the item's own
# claim).
HEDGES = frozenset({Mention.SPECULATION, Mention.PROSPECT, Mention.ANOTHER_USE})
# The passing mentions whose cue speaks only for its own clause: "people with lupus were
# excluded, and ten people with MS were treated" reports a treatment in MS.
CLAUSE_BOUND = HEDGES | {Mention.EXCLUSION}

# What a study left out, said right after the term: "MS was not studied", "la EM no se
# estudió". Before a term they speak of something else ("safety was not tested in people with
# MS"), and further after it of another subject ("MS: long-term safety was not studied").
_NOT_STUDIED_PHRASES = (
    *("not studied", "not included", "not investigated", "not examined", "not tested"),
    *("nicht untersucht", "nicht eingeschlossen", "nicht einbezogen", "pas été étudiée"),
    *("pas été étudié", "pas été étudiés", "pas été étudiées", "pas été inclus"),
    *("pas été incluse", "pas été incluses", "no se estudió", "no se incluyó"),
    *("no se incluyeron", "no fue estudiada", "no fue estudiado", "no fueron incluidos"),
    *("non è stata studiata", "non è stato studiato", "non sono stati inclusi"),
    *("non è stata inclusa", "niet onderzocht", "niet opgenomen", "não foi estudada"),
    *("não foi estudado", "não foram incluídos"),
    # "CAR T was not part of the study"
    *("not part of", "nicht Teil", "ne faisait pas partie", "ne faisaient pas partie"),
    *("no formó parte", "no formaron parte", "non faceva parte", "non facevano parte"),
    *("geen deel uit", "não fez parte", "não fizeram parte"),
)
_NOT_STUDIED = frozenset(phrase.lower() for phrase in _NOT_STUDIED_PHRASES)

# The head words of organisations' names, which mark a name where capitals cannot (German
# capitalises every noun): a term right before one ("Deutsche Multiple Sklerose Gesellschaft",
# "MS-Gesellschaft", "la revue Multiple Sclerosis Journal"), or capitalised a few name words
# after one ("Associazione Italiana Sclerosi Multipla", "Stichting MS Research").
_ORGANISATION_HEADS = (
    *("Journal", "Society", "Foundation", "Association", "Trust", "Federation", "Alliance"),
    *("News", "Magazine"),
    *("Gesellschaft", "Stiftung", "Verein", "Fondation", "Société", "Fédération", "Ligue"),
    *("Fundación", "Asociación", "Sociedad", "Federación", "Liga", "Fondazione"),
    *("Associazione", "Società", "Federazione", "Lega", "Stichting", "Vereniging", "Fonds"),
    *("Fundação", "Associação", "Sociedade", "Federação"),
)
# Words that may stand between a head and the term it names ("Ligue contre la SEP").
_ORGANISATION_LINKS = frozenset(
    "de des du der für di del della dei delle da do dos das van voor pour contre la le l "
    "per para sobre e y et und".split()
)
ORGANISATION_WORDS = 4  # words a name may hold between its head and the term

# The phrases that make a term nearby a passing mention, in the readers' languages. They are
# matched as terms are (whole words, case, accents and punctuation as the normaliser leaves
# them: "e.g." is "e g", "critères d'exclusion" is "critères d exclusion"), in the same pass.
CUES: dict[Mention, tuple[str, ...]] = {
    Mention.CONTRAST: (
        *("distinct from", "unlike", "rather than", "instead of", "other than"),
        *("as opposed to", "differ from", "differs from", "different from", "differing from"),
        *("distinguish from", "distinguished from", "distinguishing from", "taken for"),
        *("mistaken for", "misdiagnosed as", "confused with", "regarded as", "variant of"),
        *("mimic", "mimics", "mimicking", "im Gegensatz zu", "anders als"),
        *("contrairement à", "à la différence de", "a diferencia de", "a differenza di"),
        *("a differenza della", "a differenza del", "in tegenstelling tot"),
        *("ao contrário de", "ao contrário da", "in contrast to", "in contrast with"),
        *("im Unterschied zu", "par opposition à", "en contraste con", "al contrario de"),
        *("diversamente da", "al contrario di", "em contraste com", "diferentemente de"),
        # A likeness is a comparison with another disease too: "MOGAD, which resembles MS".
        *("similar to", "resembles", "resembling", "akin to", "ähnlich wie", "semblable à"),
        *("similaire à", "à l'instar de", "al igual que", "similar a", "simile a"),
        *("analogamente a", "net als", "vergelijkbaar met", "semelhante a"),
        # What a disease was once taken for: "NMOSD, once considered a form of MS".
        *("once considered", "once thought", "previously considered", "previously thought"),
        *("formerly considered", "formerly thought", "long considered", "once classified as"),
        *("previously classified as", "misclassified as", "galt früher als", "galt lange als"),
        *("autrefois considérée comme", "autrefois considéré comme"),
        *("longtemps considérée comme", "longtemps considéré comme", "antes considerada"),
        *("antes considerado", "antiguamente considerada", "un tempo considerata"),
        *("un tempo considerato", "a lungo considerata", "vroeger beschouwd als"),
        *("lang beschouwd als", "outrora considerada"),
    ),
    Mention.EXAMPLE: (
        *("such as", "e.g.", "for example", "for instance", "wie etwa", "z. B.", "zB"),
        *("beispielsweise", "par exemple", "notamment", "por ejemplo", "ad esempio", "zoals"),
        *("bijvoorbeeld", "por exemplo"),
    ),
    Mention.NAME: _ORGANISATION_HEADS,
    Mention.EXCLUSION: (
        *("exclusion criteria", "exclusion criterion", "exclude", "excluded", "excludes"),
        *("excluding", "Ausschlusskriterien", "Ausschlusskriterium", "ausgeschlossen"),
        *("critères d'exclusion", "critère d'exclusion", "criteres d'exclusion", "exclu"),
        *("exclus", "exclue", "exclues", "criterios de exclusión", "criterio de exclusión"),
        *("criterios de exclusion", "excluido", "excluida", "excluidos", "excluidas"),
        *("criteri di esclusione", "esclusi", "escluso", "exclusiecriteria"),
        *("exclusiecriterium", "uitgesloten", "critérios de exclusão", "critério de exclusão"),
        *("criterios de exclusao", "excluído", "excluída", "excluídos", "excluídas"),
        *("esclusa", "escluse", "not eligible", "ineligible", "non éligibles"),
        *("no elegibles", "non eleggibili", "não elegíveis"),
        # Who may not take part, said as such: "people with MS cannot take part".
        *("exclusions", "key exclusion", "cannot take part", "can not take part"),
        *("cannot participate", "cannot join", "not be enrolled", "not be included"),
        *("nicht teilnehmen", "ne peuvent pas participer", "ne pourront pas participer"),
        *("no pueden participar", "no podrán participar", "non possono partecipare"),
        *("non potranno partecipare", "kunnen niet deelnemen", "mogen niet deelnemen"),
        *("não podem participar", "não poderão participar"),
        # Who a study left out, named after the cue: "the trial did not include people with MS".
        *("did not include", "does not include", "did not enrol", "did not enroll"),
        *("n'incluait pas", "n'a pas inclus", "no incluyó", "non includeva", "non ha incluso"),
        *("não incluiu",),
        *_NOT_STUDIED_PHRASES,
    ),
    Mention.SPECULATION: (
        *("in future", "in the future", "one day", "someday", "some day", "years away"),
        *("might also", "could also", "may also", "might one day", "no company"),
        # A modal verb is speculation with "also", as in English: "could stop MS, two
        # patients' data show" reports a result.
        *("not planned", "not yet planned", "peut-être", "un jour", "pourrait aussi"),
        *("pourraient aussi", "pourrait également", "pourraient également", "vielleicht"),
        *("eines Tages", "könnte auch", "könnten auch", "quizá", "quizás", "algún día"),
        *("podría también", "podrían también", "forse", "un giorno", "potrebbe anche"),
        *("potrebbero anche", "misschien", "ooit", "talvez", "um dia", "poderia também"),
        *("poderiam também", "remains to be seen"),
        *("remain to be seen", "future studies", "future research"),
        *("future indication", "future indications", "speculate", "speculated", "speculates"),
        *("bleibt offen", "bleibt abzuwarten", "in Zukunft", "künftig", "zukünftig"),
        *("à l'avenir", "reste à voir", "en el futuro", "queda por ver", "está por ver"),
        *("in futuro", "resta da vedere", "in de toekomst", "valt nog te bezien", "no futuro"),
        *("resta saber",),
        # An outcome not known: "ob es bei MS hilft, ist noch offen", "whether it works in MS
        # remains unclear".
        *("remains open", "remains unclear", "unclear whether", "unknown whether"),
        *("not yet known", "noch offen", "bleibt unklar", "noch unklar", "reste à démontrer"),
        *("reste incertain", "aún no se sabe", "no está claro", "non è ancora chiaro"),
        *("resta da chiarire", "nog onduidelijk", "nog onzeker", "ainda não está claro"),
        *("ainda não se sabe",),
    ),
    # A use hoped for, named after it: "could eventually be extended to MS", "potential
    # future applications include MS". (After the term it hedges something else: "KYV-101
    # finished enrolling in MS and could eventually be approved". A time to come alone is no
    # hedge either: "in the coming years, 200 people with MS will be treated".)
    Mention.PROSPECT: (
        *("could eventually", "may eventually", "might eventually", "could ultimately"),
        *("may ultimately", "might ultimately", "future application"),
        *("future applications", "potential applications", "possible applications"),
        *("potential future", "possible future", "possible uses", "could be extended"),
        *("may be extended", "might be extended", "could be expanded", "could be applied"),
        *("might be applied", "künftige Anwendungen", "mögliche Anwendungen"),
        *("applications futures", "applications potentielles", "aplicaciones futuras"),
        *("posibles aplicaciones", "podría extenderse", "podría ampliarse", "podrían probarse"),
        *("podría probarse", "applicazioni future", "possibili applicazioni"),
        *("potrebbe estendersi", "toekomstige toepassingen", "mogelijke toepassingen"),
        *("aplicações futuras", "possíveis aplicações"),
    ),
    # What else a product is tried in, said after what the item reports: "KYV-101 is also
    # being tested in lupus and MS". (German puts the verb last, after the disease: not here.)
    Mention.ANOTHER_USE: (
        *("also being studied", "also being tested", "also being evaluated"),
        *("also being investigated", "also being developed", "also being explored"),
        *("also in development", "also under development", "also studied in"),
        *("also tested in", "also evaluated in", "also investigated in", "also developed for"),
        *("also in trials", "also in clinical trials", "also being trialled", "also being trialed"),
        *("également étudié", "également étudiée", "également étudiés", "également évalué"),
        *("également évaluée", "également évalués", "également testé", "également testée"),
        *("également testés", "également en développement", "aussi étudié", "aussi évalué"),
        *("aussi testé", "también se estudia", "también se está estudiando"),
        *("también se evalúa", "también se está evaluando", "también se prueba"),
        *("también en desarrollo", "también está en desarrollo", "studiato anche"),
        *("studiata anche", "valutato anche", "valutata anche", "anche in sviluppo"),
        *("in studio anche", "ook onderzocht", "ook getest", "ook ontwikkeld"),
        *("também está sendo estudado", "também está sendo estudada", "também é estudado"),
        *("também está sendo testado", "também em desenvolvimento"),
        # "Additional studies are under way in myositis and MS", "other indications, such as"
        *("additional studies", "additional trials", "further studies", "further trials"),
        *("other indications", "additional indications", "further indications"),
        *("d autres études", "études supplémentaires", "autres indications"),
        *("weitere Studien", "weitere Indikationen", "andere Indikationen"),
        *("otros estudios", "estudios adicionales", "otras indicaciones"),
        *("altri studi", "ulteriori studi", "altre indicazioni"),
        *("verdere studies", "aanvullende studies", "andere indicaties"),
        *("outros estudos", "estudos adicionais", "outras indicações"),
    ),
    # Where a paper appeared or a talk was given: the name that follows is a journal or a meeting.
    Mention.VENUE: (
        *("published in", "presented at", "publisher of", "reported in", "appeared in"),
        *("congress of", "meeting of", "conference of", "veröffentlicht in", "publié dans"),
        *("présenté au", "publicado en", "presentado en", "pubblicato su", "presentato al"),
        *("gepubliceerd in", "gepresenteerd op", "publicado na", "apresentado no"),
        *("veröffentlicht im", "publiée dans", "publiés dans", "publicados en"),
        *("pubblicati su", "pubblicato sulla", "publicados na"),
    ),
}


def by_cue(
    cues: Iterable[tuple[Mention, int, int]],
    text: str,
    start: int,
    end: int,
    *,
    title: bool,
    terms_before: Sequence[int] = (),
    english: Callable[[], bool],
) -> Mention | None:
    """Why a term is a passing mention by a cue phrase near it, or None.

    `text` is the term's sentence as normalised for matching (words, single spaces, and more
    where a clause mark stood; case kept), `cues` the (kind, start, end) of the cue phrases
    found in it, `start` and `end` where the term stands, and `terms_before` where the other
    terms before it start. A contrast is with the first term after its cue ("rather than HSCT
    for MS", "unlike ocrelizumab, CD19 CAR T"). Speculation, and a use hoped for or another use
    named after its cue, are judged in summaries and content only (a title is the item's own
    claim), and only in the term's own clause: "two people with MS were treated; whether it
    lasts remains to be seen" reports a treatment. So is an exclusion, in titles too ("people
    with lupus were excluded, but people with MS may join"), unless it heads criteria, which
    list what follows. An organisation's head word makes a term part of a name in text that
    is not English (`english`, asked only then); English names are read by `by_form`.
    """
    venue_end = -1
    for kind, cue_start, cue_end in cues:
        if kind is Mention.NAME:
            if _heads_its_name(text, start, end, cue_start, cue_end) and not english():
                return kind
            continue
        hedges = not title and kind in HEDGES
        if cue_end > start:
            if kind is Mention.SPECULATION and not title and _one_clause(text, end, cue_start):
                return kind
            if kind is Mention.EXCLUSION and _excluded_after(text, end, cue_start, cue_end):
                return kind
            continue
        gap = len(text[cue_end:start].split())
        if (
            kind is Mention.CONTRAST
            and gap <= CONTRAST_GAP
            and not any(cue_end <= other < start for other in terms_before)
        ):
            return kind
        if kind is Mention.EXAMPLE and gap <= EXAMPLE_GAP and _after_a_kind(text, cue_start):
            return kind
        if kind is Mention.EXCLUSION and _excluded_before(text, cue_start, cue_end, start):
            return kind
        if hedges and _one_clause(text, cue_end, start):
            return kind
        if kind is Mention.VENUE:
            venue_end = max(venue_end, cue_end)
    if venue_end >= 0 and _only_name_words(text[venue_end:start]):
        return Mention.VENUE
    return None


def _heads_its_name(text: str, start: int, end: int, cue_start: int, cue_end: int) -> bool:
    """Whether an organisation's head word (capitalised: not "the society we live in") makes
    the term part of its name: right after it, or a few capitalised name words before it."""
    if not text[cue_start + 1].isupper():
        return False
    if cue_start == end:
        return True
    between = text[cue_end:start].split()
    return (
        cue_end <= start
        and len(between) <= ORGANISATION_WORDS
        and all(map(_capitalised, text[start:end].split()))
        and all(_capitalised(word) or word in _ORGANISATION_LINKS for word in between)
    )


def clauses(sentence: str) -> list[str]:
    """The clauses of a sentence as written, where punctuation parts them: at a semicolon, and
    at a comma before a conjunction that opens a new clause (", and ten people with MS were
    treated", ", but ..."), not at one that ends a list ("lupus, myositis, and MS": a comma
    stands before it since the last part began)."""
    parts = []
    begin = 0
    for separator in _CLAUSE_SEPARATOR.finditer(sentence):
        if separator[0].startswith(",") and "," in sentence[begin : separator.start()]:
            continue
        parts.append(sentence[begin : separator.start()])
        begin = separator.end()
    return [*parts, sentence[begin:]]


def _one_clause(text: str, begin: int, end: int) -> bool:
    """No word between `begin` and `end` opens another clause ("which", "whether", "but",
    "ob", "mais", ...): a hedge there speaks of something else. (The text is normalised for
    matching: a semicolon leaves the spaces a list's comma does, so the words after it
    are what tells them apart.)"""
    return _CLAUSE_BREAKS.isdisjoint(text[begin:end].lower().split())


def _after_a_kind(text: str, cue_start: int) -> bool:
    """Whether an example cue follows a kind of illness ("diseases such as MS", "maladies
    auto-immunes, par exemple la SEP"): then what it names is one example of many. After anything
    else ("cell therapies such as KYV-101") the example is what the sentence is about."""
    words = text[max(0, cue_start - NEAR) : cue_start].lower().split()[-KIND_WORDS:]
    return any(word in _KINDS or word.endswith(_KIND_ENDINGS) for word in words)


def names_criteria(cue: str) -> bool:
    """An exclusion cue that heads a study's criteria ("exclusion criteria", "critères
    d'exclusion"): the list after it may run over semicolons and relative clauses ("criteria:
    CNS lupus; a demyelinating disease, including MS; ...")."""
    lowered = cue.lower()
    return "crit" in lowered or "krit" in lowered


def _excluded_before(text: str, cue_start: int, cue_end: int, start: int) -> bool:
    """Whether an exclusion cue before a term speaks of it: criteria of all they list ("exclusion
    criteria: any condition which affects the CNS, such as MS"), other cues of their own
    clause ("people with lupus were excluded, but people with MS may join"), and never one
    said of the term before it ("tolerability was not tested in people with MS")."""
    cue = _cue_phrase(text, cue_start, cue_end)
    if names_criteria(cue):
        return True
    return cue not in _NOT_STUDIED and _one_clause(text, cue_end, start)


def _cue_phrase(text: str, cue_start: int, cue_end: int) -> str:
    return text[cue_start:cue_end].strip().lower()


def _excluded_after(text: str, end: int, cue_start: int, cue_end: int) -> bool:
    """ "Patients with MS were excluded", "MS was an exclusion criterion": the term is what a
    study left out, said after it. A participle counts only after a passive auxiliary ("trials
    in MS excluded older patients" is about MS); criteria count as they are."""
    between = text[end:cue_start].split()
    if cue_start < end or len(between) > EXCLUSION_AFTER_GAP:
        return False
    cue = _cue_phrase(text, cue_start, cue_end)
    if names_criteria(cue):
        return True
    near = [word.lower() for word in between]
    if not _TAKING_PART.isdisjoint(cue.split()) or cue in _NOT_STUDIED:
        # "People with MS cannot take part", "MS patients will not be enrolled", "MS was not
        # studied"; not "people with MS who cannot take part in other trials", nor a later
        # clause's subject.
        return len(near) <= NEGATED_AFTER_GAP and _RELATIVES.isdisjoint(near)
    return bool(near) and near[-1] in _PASSIVE_AUXILIARIES


def by_form(sentence: str, start: int, end: int, *, english: Callable[[], bool]) -> Mention | None:
    """Why the term written at sentence[start:end] is a passing mention by how it is written
    (a place, a degree, part of a name), or None. Names are judged in English text only
    (`english` is asked only then: other languages capitalise differently, and there an
    organisation's head word marks a name: `by_cue`)."""
    if "," in sentence[max(0, start - NEAR) : end + 3]:  # places and degrees follow commas
        if _is_place(sentence, start, end):
            return Mention.PLACE
        if _is_degree(sentence, start, end):
            return Mention.DEGREE
    if _is_name(sentence, start, end) and english():
        return Mention.NAME
    return None


# Kinds of illness, in the readers' languages: what a term given as an example of them is one
# of. German compounds end in them ("Autoimmunerkrankungen").
_KINDS = frozenset(
    "disease diseases disorder disorders condition conditions illness illnesses indication "
    "indications maladie maladies pathologie pathologies affection affections enfermedad "
    "enfermedades patología patologías malattia malattie patologia patologie ziekte ziekten "
    "aandoening aandoeningen doença doenças indicaciones indicazioni indicações".split()
)
_KIND_ENDINGS = ("krankheit", "krankheiten", "erkrankung", "erkrankungen", "indikationen")
# The words a passive participle follows ("were excluded", "wurden ausgeschlossen", "ont été
# exclus", "étaient exclus", "fueron excluidos", "quedaron excluidos", "sono stati esclusi",
# "werden uitgesloten", "foram excluídos"), in the tenses news writes them in.
_PASSIVE_AUXILIARIES = frozenset(
    "is are was were be been being wird werden wurde wurden worden sind ist war waren été "
    "sont est seront était étaient fue fueron son es sido serán era eran estaban están "
    "quedan quedaron è sono stato stati stata state viene vengono erano furono saranno "
    "verranno werd zijn foi foram são eram estavam estão ficaram serão".split()
)
# The words of the cues that say, after the term, that it may not take part ("cannot take
# part", "not be enrolled"): not "not eligible", which a term may qualify ("people with MS
# not eligible for other therapies received CAR T").
_TAKING_PART = frozenset(
    "part participate join enrolled included teilnehmen participer participar partecipare "
    "deelnemen".split()
)
_RELATIVES = frozenset("who which that die der welche qui que quien quienes che wie".split())
# Words that open another clause, in the readers' languages.
_CLAUSE_BREAKS = frozenset(
    "which whether but however while whereas although though ob aber sondern während welche "
    "welcher welches mais tandis lequel laquelle pero mientras aunque ma mentre tuttavia maar "
    "terwijl hoewel mas enquanto embora".split()
)
_CREDENTIALS = frozenset(
    "RN MD PhD PharmD DO BSN MSN NP PA PA-C OCN MPH MBA BS BA MA MSc DPhil FRCP FACP CCRP "
    "CRNP APRN DNP RPh BCOP MBBS CNS".split()
)
# The words a publication's or an organisation's name ends in: a capitalised term right
# before one is part of that name. (Not meetings or centres: a CAR T talk at an MS meeting,
# or patients of an MS centre, are about MS.)
_NAME_HEADS = frozenset(_ORGANISATION_HEADS)
_BODY_HEADS = _NAME_HEADS - {"Journal", "News", "Magazine"}  # not a publication's
# Words that may stand between a venue cue and the venue's name ("in the journal ...").
_VENUE_WORDS = frozenset(
    "journal magazine newsletter online today issue revue revista rivista tijdschrift".split()
)
_NAME_LINKS = frozenset("and of in for on the & de des du der für".split())
_PUNCTUATION = ".,;:!?()[]{}\"'\u00ab\u00bb\u201c\u201d\u2018\u2019\u2026/|*"
_LIST_WORDS = frozenset("and or und oder et ou y e".split())
_ARTICLES = frozenset(
    "the le la les der die das den dem el los las il lo gli het de o a os as".split()
)
# Words that open a clause, not a list's next element ("patients with MS, as reported").
_CLAUSE_OPENERS = frozenset(
    "as which who whom whose that while whereas where when although though because since but "
    "if so comme qui dont lorsque mais wie welche welcher welches weil wenn aber como cual "
    "cuando pero porque come quale quali quando perché ma zoals welke wanneer maar omdat".split()
)
# Conjunctions after a comma that may open a new clause, in the readers' languages: those that
# join a list's elements, and "but" and its kin. Not Dutch "en" and "of", which are "in" and
# "of" in the others (", en particulier", ", of whom").
_CLAUSE_CONJUNCTIONS = _LIST_WORDS | frozenset(
    "but yet so aber sondern mais o pero sino ma maar mas".split()
)
_CLAUSE_SEPARATOR = re.compile(r";\s*|,\s+(?:" + "|".join(sorted(_CLAUSE_CONJUNCTIONS)) + r")\b\s*")
_SEPARATOR = r"\s*(?:,|;|\b(?:" + "|".join(sorted(_LIST_WORDS)) + r")\b)\s*"
_SEPARATOR_BEFORE = re.compile(_SEPARATOR + "$")
_SEPARATOR_AFTER = re.compile(_SEPARATOR)
_ELEMENT_BOUNDARY = re.compile(r"[,;:.()]|\band\b|\bor\b|\bund\b|\bet\b|\by\b")
_TOWN_BEFORE = re.compile(r"(?<![\w,(])[A-Z][a-z]+,\s*$")
_NOT_A_PLACE_AFTER = re.compile(r"\s*(?:patients?|lesions?|cohort)", re.IGNORECASE)
_CREDENTIAL_BEFORE = re.compile(r"([\w\-]+),\s*$")
_CREDENTIAL_AFTER = re.compile(r"\s*,\s*([\w\-]+)")


def in_enumeration(sentence: str, start: int, end: int) -> bool:
    """True when the term is one element of a list of several ("lupus, myositis and multiple
    sclerosis", "(SLE, MS)"): named among others, it is not the subject of its sentence."""
    opened = sentence.rfind("(", 0, start)
    if opened > sentence.rfind(")", 0, start) and (close := sentence.find(")", end)) != -1:
        inside = sentence[opened + 1 : close]
        if "," in inside or " and " in inside:
            return True
    before, after = _before(sentence, start), sentence[end : end + NEAR]
    if _separator_at(before.rstrip(), last=True):
        previous = _SEPARATOR_BEFORE.search(before)
        if previous and _short_element(before[: previous.start()], at_end=True):
            return True
    if not _separator_at(after.lstrip(), last=False):
        return False
    following = _SEPARATOR_AFTER.match(after)
    return following is not None and _short_element(after[following.end() :], at_end=False)


def after_and(sentence: str, start: int) -> bool:
    """Whether the term written at `start` follows "and" or "or" (in the readers' languages),
    perhaps with an article between: the last of several things named ("in systemic sclerosis
    and MS", "dans le lupus et la sclérose en plaques")."""
    words = _before(sentence, start).lower().split()
    if words and words[-1] in _ARTICLES:
        words.pop()
    return bool(words) and words[-1] in _LIST_WORDS


def _separator_at(text: str, *, last: bool) -> bool:
    """Whether `text` ends (`last`) or starts with a list separator: the cheap test before
    the list is read."""
    if not text:
        return False
    if (text[-1] if last else text[0]) in ",;":
        return True
    # Units are clean text: words are separated by single spaces.
    word = text[text.rfind(" ") + 1 :] if last else text.partition(" ")[0]
    return word in _LIST_WORDS


def _short_element(text: str, *, at_end: bool) -> bool:
    """Whether the list element next to a separator is short (at most four words up to the
    next separator or the clause's end): a list of names, not a clause."""
    parts = _ELEMENT_BOUNDARY.split(text)
    element = parts[-1] if at_end else parts[0]
    words = element.split()
    if words and words[0] in _CLAUSE_OPENERS:  # ", as published in Neurology": a clause
        return False
    return 0 < len(words) <= 4 and (len(parts) > 1 or not at_end)


def _only_name_words(between: str) -> bool:
    """Whether only the words of a name stand between a venue cue and a term ("published in
    Multiple Sclerosis Journal", "appeared in the journal Multiple Sclerosis"): the term is
    part of the journal's or meeting's name."""
    return all(
        word in _NAME_LINKS or word in _VENUE_WORDS or _capitalised(word)
        for word in between.split()
    )


def _is_place(sentence: str, start: int, end: int) -> bool:
    """ "Tupelo, MS" or "Jackson, MS 39201": a US state after a town, not the disease."""
    if end - start != 2:  # a state's code
        return False
    before = _before(sentence, start)
    if not before.rstrip().endswith(","):
        return False
    return bool(_TOWN_BEFORE.search(before)) and not _NOT_A_PLACE_AFTER.match(sentence, end)


def _is_degree(sentence: str, start: int, end: int) -> bool:
    """ "Dana Lee, RN, MS, OCN": a degree among a person's credentials."""
    if "," not in sentence[max(0, start - 3) : end + 3]:  # terms hold no comma
        return False
    before = _CREDENTIAL_BEFORE.search(_before(sentence, start))
    after = _CREDENTIAL_AFTER.match(sentence, end)
    return bool(before and before[1] in _CREDENTIALS) or bool(after and after[1] in _CREDENTIALS)


def _is_name(sentence: str, start: int, end: int) -> bool:
    """A term inside a capitalised name in sentence-case English text: "Multiple Sclerosis
    News Today", "the European Committee for Treatment and Research in Multiple Sclerosis",
    "National MS Society". Not at a sentence's start, where every word is capitalised, unless
    a name's head word follows it ("MS Society: ...")."""
    if not sentence[start].isupper() or not all(map(_capitalised, sentence[start:end].split())):
        return False  # the commonest quick answer: a term in lower case
    # The next quick answer: no word of a name stands next to it. (Units are clean text: one
    # space between words.)
    previous = sentence[sentence.rfind(" ", 0, max(0, start - 1)) + 1 : start].strip()
    following = sentence[end : end + NEAR].lstrip().partition(" ")[0].strip(_PUNCTUATION)
    if not (_name_word(previous.strip(_PUNCTUATION)) or _name_word(following)):
        return False
    # "Writing in Multiple Sclerosis Journal, ...", "Sponsor: MS Research Foundation". Where
    # every word is capitalised (a headline, a record's field), only an organisation's head
    # word ends a name: "CAR T In MS News Roundup" is news about MS.
    headline = _headline_case(sentence)
    if _head_follows(sentence, end, _BODY_HEADS if headline else _NAME_HEADS):
        return True
    if headline:
        return False  # capitals mark every word, not names
    shape = _shape(sentence)
    first, last = bisect_left(shape.starts, start), bisect_left(shape.starts, end)
    run_start, run_end = first, last  # the name: words run_start to run_end - 1
    while run_start > 1 and shape.in_name[run_start - 1]:
        run_start -= 1
    while run_end < len(shape.starts) and shape.in_name[run_end]:
        run_end += 1
    # Two capitalised words besides the term's own ("National MS Society"), not acronyms:
    # "European CAR-T study" and "CD19 CAR T in ..." are no names.
    named = shape.ordinary_capitalised
    if named[run_end] - named[last] + named[first] - named[run_start] < 2:
        return False
    if run_start == 0 and run_end == len(shape.starts):
        return False  # the whole sentence is capitalised: a heading, not a name in a sentence
    # The rest of the sentence (its first word aside) is in sentence case.
    ordinary, capitalised = shape.ordinary, shape.ordinary_capitalised
    rest = ordinary[-1] - ordinary[run_end] + ordinary[max(1, run_start)] - ordinary[1]
    upper = capitalised[-1] - capitalised[run_end] + capitalised[max(1, run_start)] - capitalised[1]
    return rest > 0 and upper <= rest / 3


def _head_follows(sentence: str, end: int, heads: frozenset[str]) -> bool:
    """Whether a name's head word ("Society", "Foundation") follows a term within the words of
    a name, and nothing but name words between ("MS Research Foundation")."""
    for word in sentence[end : end + NEAR].split()[:NAME_HEAD_WORDS]:
        bare = word.strip(_PUNCTUATION).removesuffix("'s").removesuffix("\u2019s")
        if bare in heads:
            return True
        if bare != word or not _part_of_name(bare):
            return False  # the name ends here
    return False


@lru_cache(maxsize=64)
def _headline_case(sentence: str) -> bool:
    """Whether most words are capitalised ("CAR T Therapy Shows Promise In MS"), as headlines
    often are: then capitals tell nothing about names. (Cheap: the full reading of a sentence's
    words is needed only for sentences in sentence case.)"""
    words = [word for word in sentence.split()[1:] if word.isalpha() and not word.isupper()]
    return sum(map(_capitalised, words)) > len(words) * HEADLINE_SHARE


class _Shape(NamedTuple):
    """How a sentence's words are written, read once for all the terms in it. `ordinary` and
    `ordinary_capitalised` count words before each index (prefix sums), so any stretch of the
    sentence is counted in constant time."""

    starts: list[int]  # where each word starts
    in_name: list[bool]  # could be part of a name: capitalised (not a number), or a link
    ordinary: list[int]  # words of letters not all in capitals (acronyms are neither)
    ordinary_capitalised: list[int]  # such words, capitalised


@lru_cache(maxsize=64)
def _shape(sentence: str) -> _Shape:
    tokens = sentence.split()
    if " ".join(tokens) == sentence:  # clean text, as units are: one space between words
        starts = [0, *accumulate(len(token) + 1 for token in tokens[:-1])]
    else:
        starts, at = [], 0
        for token in tokens:
            at = sentence.find(token, at)
            starts.append(at)
            at += len(token)
    words = [token.strip(_PUNCTUATION) for token in tokens]
    ordinary = [word.isalpha() and not word.isupper() for word in words]
    return _Shape(
        starts=starts,
        in_name=[
            word in _NAME_LINKS or (word[:1].isupper() and not word.isdigit()) for word in words
        ],
        ordinary=_counts(ordinary),
        ordinary_capitalised=_counts(
            plain and word[:1].isupper() for plain, word in zip(ordinary, words, strict=True)
        ),
    )


def _counts(flags: Iterable[bool]) -> list[int]:
    """Prefix sums: how many flags are set before each index (the last: in all)."""
    return [0, *accumulate(flags)]


def _before(sentence: str, start: int) -> str:
    """The words just before `start` (at most NEAR characters, whole words): what the rules
    that look back read, so their cost does not grow with the sentence."""
    if start <= NEAR:
        return sentence[:start]
    tail = sentence[start - NEAR : start]
    return tail[tail.find(" ") + 1 :]


def _capitalised(word: str) -> bool:
    return word[:1].isupper()


def _name_word(word: str) -> bool:
    """A linking word or a capitalised ordinary word ("Society", "of"); not an acronym: a
    name needs words besides "CD19 CAR T"."""
    return word in _NAME_LINKS or (word[:1].isupper() and word.isalpha() and not word.isupper())


def _part_of_name(word: str) -> bool:
    return word in _NAME_LINKS or (_capitalised(word) and not word.isdigit())
