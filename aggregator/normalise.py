"""Pure helpers that turn what feeds publish into values we can trust.

Nothing here reads a clock, a file or the network: the caller passes `now` in, so every rule can be
checked with a table of real-world cases.
"""

from __future__ import annotations

import html
import re
import unicodedata
from collections.abc import Iterable, Iterator
from datetime import UTC, datetime, timedelta
from urllib.parse import parse_qsl, unquote, urlencode, urljoin, urlsplit

import nh3

# Before this nobody published a web feed; anything earlier is a parse accident or a placeholder.
EARLIEST_PLAUSIBLE_DATE = datetime(1990, 1, 1, tzinfo=UTC)
# Clock skew and time zones mistakes are common; a date further ahead than this is wrong.
FUTURE_TOLERANCE = timedelta(days=1)

_TEXT_ONLY = nh3.Cleaner(tags=set(), clean_content_tags={"script", "style"}, strip_comments=True)
# Tags that end a run of words: dropping them must leave a space ("<li>MS</li><li>CD19</li>").
_BLOCK_TAG = re.compile(
    r"</?(?:p|br|li|ul|ol|div|h[1-6]|tr|td|th|dt|dd|dl|table|thead|tbody|blockquote|pre|hr"
    r"|section|article|header|footer|aside|nav|figure|figcaption|caption|address)\b[^>]*>",
    re.IGNORECASE,
)
# The tags a field's text is cut into blocks at, to be read one by one (`text_units`).
_BLOCK_NAMES = frozenset(
    "p br li ul ol div h1 h2 h3 h4 h5 h6 tr td th dd dt blockquote section article".split()
)
_BLOCKS_ONLY = nh3.Cleaner(
    tags=set(_BLOCK_NAMES),
    attributes={},
    clean_content_tags={"script", "style"},
    strip_comments=True,
    link_rel=None,
)
_TAG = re.compile(r"<[^<>]*>")
_BARE_BLOCK_TAGS = frozenset(f"<{slash}{name}>" for name in _BLOCK_NAMES for slash in ("", "/"))
# What is left after one round of stripping and decoding that may still be markup: a whole tag
# or an entity (a feed that escaped its HTML once more than it should).
_STILL_MARKUP = re.compile(r"</?[A-Za-z][^<>]*>|&(?:#\d+|#x[0-9A-Fa-f]+|[A-Za-z][A-Za-z0-9]*);")
_MAX_UNESCAPE_ROUNDS = 3
UNTITLED = "Untitled item"  # an item with neither a title, nor text, nor a link

_NOT_PRINTABLE_ASCII = re.compile(r"[^\t\n\r\x20-\x7e]")
# Controls, formatting characters (soft hyphens, zero-width and bidi controls: invisible, and
# they split words for matching and search), surrogates, private use, unassigned.
_UNPRINTABLE_CATEGORIES = frozenset(("Cc", "Cf", "Cs", "Co", "Cn"))


def _drop_unprintable(found: re.Match[str]) -> str:
    char = found.group()
    return "" if unicodedata.category(char) in _UNPRINTABLE_CATEGORIES else char


class WordTable(dict[int, str | None]):
    """A `str.translate` table that leaves only words: letters and digits (and `keep`) stay,
    characters of the `drop` categories go (formatting characters: a soft hyphen inside a
    word), anything else becomes a space. Filled as characters are first seen, so translating
    reads it at C speed afterwards."""

    def __init__(self, keep: str = "", drop: frozenset[str] = frozenset({"Cf"})) -> None:
        super().__init__()
        self._keep = keep
        self._drop = drop

    def __missing__(self, code: int) -> str | None:
        char = chr(code)
        if char.isalnum() or char in self._keep:
            kept: str | None = char
        else:
            kept = None if unicodedata.category(char) in self._drop else " "
        self[code] = kept
        return kept


# Letters a searched word needs before it also matches longer words ("trial" finds "trials").
SEARCH_PREFIX_FROM = 3
# Search folds accents away: the combining marks NFKD splits off are dropped with the rest.
_SEARCH_TABLE = WordTable(drop=frozenset({"Cf", "Mn"}))


def search_words(text: str) -> list[str]:
    """The words of `text` as search compares them: lower case, accents and punctuation gone
    ("Sclérose en plaques" -> sclerose, en, plaques; "NCT06138132", "10.1056/NEJMoa2207" ->
    10, 1056, nejmoa2207). Stored text and a reader's query are folded alike, so both
    databases' full-text indexes see the same plain words."""
    if not text.isascii():
        text = unicodedata.normalize("NFKD", text)
    return text.casefold().translate(_SEARCH_TABLE).split()


def clean_text(text: str, max_length: int | None = None) -> str:
    """Plain text safe to store and show: no control or non-characters, whitespace collapsed.

    Text fields are displayed in pages, feeds and email headers, where a stray control character
    breaks XML and a CR/LF could forge a header.
    """
    # Printable ASCII is always kept; only other characters are looked up (the profile of a cold
    # ingest showed a per-character lookup costing a tenth of the whole ingest).
    kept = _NOT_PRINTABLE_ASCII.sub(_drop_unprintable, text)
    result = " ".join(kept.split())  # str.split() and re's \s know the same whitespace
    if max_length is not None and len(result) > max_length:
        result = result[: max_length - 1].rstrip() + "…"
    return result


def text_from_html(markup: str, max_length: int | None = None) -> str:
    """The readable text of an HTML fragment: tags and scripts dropped, entities decoded, and a
    space where a block ended (a paragraph, a line break, a list item), so words never glue.

    Feeds put markup in fields that are meant to be text, and escape it once, twice or not at
    all: E-utilities' titles carry "&lt;i&gt;EBV&lt;/i&gt;". Stripping and decoding repeat
    until no tag or entity is left (a few rounds at most), so escaped markup ends as text too.
    """
    if "<" not in markup and "&" not in markup:
        return clean_text(markup, max_length)
    text = markup
    for _ in range(_MAX_UNESCAPE_ROUNDS):
        if _only_bare_blocks(text):  # what `html_blocks_only` leaves needs no sanitiser
            text = _TAG.sub(" ", text)
        else:
            text = _TEXT_ONLY.clean(_BLOCK_TAG.sub(r" \g<0> ", text))
        text = html.unescape(text)
        if not _STILL_MARKUP.search(text):
            break
    return clean_text(text, max_length)


def html_blocks_only(markup: str) -> str:
    """`markup` with no tags left but those of `_BLOCK_NAMES`, and a space where any block tag
    stood. A field read block by block is sanitised once, not once a block: its blocks' text
    then holds entities only."""
    if _only_bare_blocks(markup):
        return markup
    return _BLOCKS_ONLY.clean(_BLOCK_TAG.sub(r" \g<0> ", markup))


def _only_bare_blocks(markup: str) -> bool:
    """Whether every tag in `markup` is a block tag without attributes, and every "<" opens
    one: text with no "<" at all, or markup `html_blocks_only` has already made. Ordinary
    markup is answered at its first tag with attributes or inline: the sanitiser follows."""
    tags = 0
    for tag in _TAG.finditer(markup):
        if tag[0] not in _BARE_BLOCK_TAGS:
            return False
        tags += 1
    return tags == markup.count("<")


# Where a sentence ends: the space after . ! ? (and a closing mark) before a capital, a digit
# or an opening mark. The pattern starts with the stop, so the engine skips to the next one.
_SENTENCE_END = re.compile(r"[.!?][\"'\u201d\u2019)]*(\s+)(?=[\"'\u201c\u2018(¿¡«]?[A-Z0-9À-ÝĀ-Ž])")
# Abbreviations whose stop does not end a sentence, in the readers' languages: "diseases, e.g.
# MS", "z. B. MS", "the U.S. Food and Drug Administration", "Prof. Dr. med. Georg Schett",
# "dr. Jansen", "la FDA de EE. UU.", "Kyverna Therapeutics, Inc. (Nasdaq: KYTX)", "Smith et
# al. Neurology"; a lone lower-case letter is one too ("d. h. Patienten"). "Ms." is a title
# only so written: "MS." ends a sentence.
_ABBREVIATION = re.compile(
    r"(?:^|[\s(,])(?:(?i:e\.g|i\.e|dr|drs|dra|prof|med|doz|dott|sr|sra)|vs|cf|ca|approx|incl|"
    r"resp|Mr|Mrs|Ms|St|Fig|No|Nr|et al|bzw|sog|Inc|Ltd|Corp|U\.S|U\.K|EE|z\. ?B|"
    r"[a-z])\.$"
)
# The text an abbreviation is looked for in: the longest ("approx.", 7) and the character before.
_ABBREVIATION_CHARS = 8
# How far a parenthesis may still close for a stop inside it to end nothing: a citation
# ("(Mackensen et al., Nat. Med. 2022)"), not a bracket a source left open.
_ASIDE_CHARS = 200


def sentences(text: str) -> Iterator[str]:
    """The sentences of running text, where a stop before a capital ends one, and neither an
    abbreviation's nor one inside parentheses does."""
    start = 0
    for end in _SENTENCE_END.finditer(text):
        stop = end.start() + 1
        if _after_abbreviation(text, stop) or _inside_aside(text, start, stop):
            continue
        if sentence := text[start : end.start(1)].strip():
            yield sentence
        start = end.end(1)
    if sentence := text[start:].strip():
        yield sentence


def _after_abbreviation(text: str, stop: int) -> bool:
    return _ABBREVIATION.search(text[max(0, stop - _ABBREVIATION_CHARS) : stop]) is not None


def _inside_aside(text: str, start: int, stop: int) -> bool:
    """Whether a parenthesis opened since `start` is still open at `stop`, and closes soon."""
    opened = text.count("(", start, stop) > text.count(")", start, stop)
    return opened and text.find(")", stop, stop + _ASIDE_CHARS) >= 0


def fallback_title(markup: str, link: str | None, max_length: int = 120) -> str:
    """A title for an item that has none (valid RSS 2.0: a Mastodon post, a short note): the
    first sentence of its first paragraph, cut at a word when long, else its link. Every page,
    feed and digest needs something to show and to link, and Atom requires a title."""
    blocks = (text_from_html(block) for block in _BLOCK_TAG.split(markup))
    first = next((block for block in blocks if block), "")
    sentence = next(sentences(first), "").rstrip(" ,;:")
    if len(sentence) > max_length:
        cut = sentence[: max_length - 1].rsplit(" ", 1)[0] or sentence[: max_length - 1]
        sentence = cut.rstrip(" ,.;:") + "…"
    return sentence or link or UNTITLED


def safe_link(link: str | None, base_url: str) -> str | None:
    """An absolute http(s) URL, or None: relative links are resolved, other schemes refused.

    A `javascript:` or `data:` link in a feed must never become a clickable link for a reader.
    Tabs and line breaks inside a link are dropped, as browsers do (a link wrapped across
    lines is one link); a host with a space in it is no host. The scheme comes out lower-case.
    """
    if not link:
        return None
    cleaned = clean_text(link.translate(_TABS_AND_LINE_BREAKS))
    try:
        parts = urlsplit(cleaned)
        # Most links are absolute already, and urljoin, which gives them back the same (but
        # for a path's empty ";" parameters), costs a fifth of building an entry.
        if parts.scheme not in ("http", "https") or not parts.netloc or ";" in cleaned:
            parts = urlsplit(urljoin(base_url, cleaned))
    except ValueError:  # "http://[" and other URLs that do not parse are no links
        return None
    if parts.scheme not in ("http", "https") or not parts.netloc or " " in parts.netloc:
        return None
    return parts.geturl()


_TABS_AND_LINE_BREAKS = str.maketrans("", "", "\t\n\r")


def plausible_date(value: datetime | None, now: datetime) -> datetime | None:
    """`value` in UTC if it could be a real publication date, else None.

    Dates before 1990 or more than a day ahead of `now` come from broken feeds; trusting them
    would sort an item to the top of every list for years.
    """
    if value is None:
        return None
    value = value.astimezone(UTC) if value.tzinfo else value.replace(tzinfo=UTC)
    if value < EARLIEST_PLAUSIBLE_DATE or value > now + FUTURE_TOLERANCE:
        return None
    return value


# Query parameters that only track the reader; they never change what a URL points to.
TRACKING_PARAMETERS = frozenset(
    {
        "fbclid",
        "gclid",
        "dclid",
        "gbraid",
        "wbraid",
        "msclkid",
        "yclid",
        "igshid",
        "twclid",
        "mc_cid",
        "mc_eid",
        "_hsenc",
        "_hsmi",
        "mkt_tok",
        "ref_src",
        "oly_anon_id",
        "oly_enc_id",
        "vero_id",
        "wt_mc",
        "cmpid",
    }
)
TRACKING_PREFIXES = ("utm_",)
# Parameters that track only on certain hosts (PubMed's search-context parameters).
HOST_TRACKING_PARAMETERS = {"pubmed.ncbi.nlm.nih.gov": frozenset({"fc", "ff", "v"})}

_DOI = re.compile(r"\b10\.\d{4,9}/[^\s\"'<>&?#]+", re.IGNORECASE)
# What publishers append to a DOI in their page links: ".full", ".abstract", ".full.pdf+html",
# ".article-info" (bioRxiv and medRxiv), possibly several.
_DOI_PAGE_SUFFIX = re.compile(
    r"(?:\.(?:full|abstract|short|pdf|full-text|article-info|article-metrics"
    r"|supplementary-material)|\+html)+$",
    re.IGNORECASE,
)
_DOI_VERSION = re.compile(r"(?<=\d)v\d{1,2}$")
_PMID_TEXT = re.compile(r"\bPMID:?\s*(\d{1,9})\b")
_PMID_PATH = re.compile(r"^/(?:pubmed/)?(\d{1,9})/?$")
# PubMed's record paths by host, with its older address, which pages still link to:
# ncbi.nlm.nih.gov/pubmed/123.
_PUBMED_PATHS = {
    "pubmed.ncbi.nlm.nih.gov": _PMID_PATH,
    "ncbi.nlm.nih.gov": re.compile(r"^/pubmed/(\d{1,9})/?$"),
}
_EUROPEPMC_PATH = re.compile(r"/(?:article|abstract)/(MED|PMC)/(\d{1,9}|PMC\d{1,9})/?$", re.I)
_PMCID = re.compile(r"\bPMC(\d{4,9})\b")
_DECLARED_PMID = re.compile(r"(?:pmid|pubmed|med)\s*[:/]?\s*(\d{1,9})", re.IGNORECASE)
# bioRxiv and medRxiv feed links: /cgi/content/short/2026.11.18.26300123v1, whose DOI is
# 10.1101/2026.11.18.26300123 (every version shares it).
_RXIV_PATH = re.compile(r"^/cgi/content/(?:short|abstract|full)/(\d{4}\.\d{2}\.\d{2}\.\d{5,})")
_RXIV_HOSTS = ("medrxiv.org", "biorxiv.org")
_NCT = re.compile(r"\bNCT(\d{8})\b", re.IGNORECASE)
_EUCT = re.compile(r"\b(\d{4}-5\d{5}-\d{2}-\d{2}|\d{4}-\d{6}-\d{2})\b")


def canonical_url(url: str) -> str:
    """The form of `url` under which two links to the same page compare equal.

    Scheme, `www.`, host case, default ports, fragments, trailing slashes, tracking parameters and
    the order of query parameters are all ignored. The result is for comparing, not for linking.
    """
    try:
        parts = urlsplit(url.strip())
    except ValueError:  # not a URL at all: it can only equal itself
        return url.strip()
    host = (parts.hostname or "").lower().removeprefix("www.")
    try:
        port = parts.port
    except ValueError:
        port = None
    netloc = host if port in (None, 80, 443) else f"{host}:{port}"
    path = re.sub(r"/{2,}", "/", parts.path).rstrip("/")
    noise = HOST_TRACKING_PARAMETERS.get(host, frozenset())
    query = sorted(
        (name, value)
        for name, value in parse_qsl(parts.query, keep_blank_values=True)
        if name.lower() not in TRACKING_PARAMETERS
        and not name.lower().startswith(TRACKING_PREFIXES)
        and name not in noise
    )
    return netloc + path + ("?" + urlencode(query) if query else "")


def doi(text: str) -> str | None:
    """The first DOI in `text`, lower-case, without page or version suffix (v1, v2...)."""
    match = _DOI.search(text)
    if match is None:
        return None
    value = match[0].rstrip(".,;:)]}")
    value = _DOI_VERSION.sub("", _DOI_PAGE_SUFFIX.sub("", value))
    return value.lower()


def own_identifiers(link: str | None, guid: str | None) -> frozenset[str]:
    """Strong identifiers of the record an item *is*: read from its link and GUID only.

    A news item that mentions a trial's NCT number in its text is not the registry record; the
    registry's own item links to it. Values look like "doi:10.1177/x", "pmid:123", "nct:NCT0...".
    """
    found: set[str] = set()
    for value in (link or "", guid or ""):
        # A link may carry a DOI percent-encoded ("doi.org/10.1002%2Fana.12345").
        if found_doi := doi(unquote(value) if "%" in value else value):
            found.add(f"doi:{found_doi}")
        found.update(f"pmcid:PMC{number}" for number in _PMCID.findall(value))
    if link:
        parts = urlsplit(link)
        host = (parts.hostname or "").lower().removeprefix("www.")
        if (pmid_path := _PUBMED_PATHS.get(host)) and (match := pmid_path.match(parts.path)):
            found.add(f"pmid:{match[1]}")
        if host == "europepmc.org" and (match := _EUROPEPMC_PATH.match(parts.path)):
            source, number = match[1].upper(), match[2]
            if source == "MED":
                found.add(f"pmid:{number}")
            elif source == "PMC":
                found.add(f"pmcid:{number.upper()}")
        if host in _RXIV_HOSTS and (match := _RXIV_PATH.match(parts.path)):
            found.add(f"doi:10.1101/{match[1]}")
        if host.endswith("clinicaltrials.gov"):
            found.update(f"nct:NCT{number}" for number in _NCT.findall(link))
        if host.endswith(("euclinicaltrials.eu", "clinicaltrialsregister.eu")):
            found.update(f"euct:{number}" for number in _EUCT.findall(link))
    if guid:
        if match := re.fullmatch(r"(?:pubmed|pmid):(\d{1,9})", guid.strip(), re.IGNORECASE):
            found.add(f"pmid:{match[1]}")
        found.update(f"nct:NCT{number}" for number in _NCT.findall(guid))
    return frozenset(found)


def declared_identifiers(values: Iterable[str]) -> frozenset[str]:
    """Strong identifiers a source states as a record's own, however it writes them: RSS 1.0's
    dc:identifier ("doi:10.1038/x", "info:doi/10.1038/x", a doi.org URL), prism:doi (a bare
    DOI), or an API's fields passed as "pmid:123", "PMC123", "NCT01234567"."""
    found: set[str] = set()
    for value in (value.strip() for value in values):
        if match := _DECLARED_PMID.fullmatch(value):
            found.add(f"pmid:{match[1]}")
        elif found_doi := doi(value):
            found.add(f"doi:{found_doi}")
        elif match := re.fullmatch(r"(?:pmcid:)?PMC(\d{1,9})", value, re.IGNORECASE):
            found.add(f"pmcid:PMC{match[1]}")
        elif match := _NCT.fullmatch(value):
            found.add(f"nct:NCT{match[1]}")
    return frozenset(found)


def mentioned_identifiers(text: str) -> frozenset[str]:
    """Strong identifiers a text mentions (DOI, PMID, PMCID, NCT, EU CT numbers)."""
    found: set[str] = set()
    # Each pattern runs only when its marker is present: most texts mention no identifier.
    if "nct" in text or "NCT" in text:
        found.update(f"nct:NCT{number}" for number in _NCT.findall(text))
    if "PMID" in text:
        found.update(f"pmid:{number}" for number in _PMID_TEXT.findall(text))
    if "PMC" in text:
        found.update(f"pmcid:PMC{number}" for number in _PMCID.findall(text))
    if "-" in text:
        found.update(f"euct:{number}" for number in _EUCT.findall(text))
    if "10." in text and (found_doi := doi(text)):
        found.add(f"doi:{found_doi}")
    return frozenset(found)
