"""One story, however many sources carry it: the same-story decision. Pure: values in, values out.

Two items are the same story when, in this order:
1. they are the same item of one feed (same GUID, else link, else content: see `entries.py`);
2. they share a canonical URL, from different feeds, unless the URL is generic (a site's home
   page, or a link several items of one feed share);
3. they are the same record by a strong identifier of their own (DOI, PMID, PMCID, NCT or EU CT
   number read from their link or GUID; a news item that mentions an NCT number is not the
   registry record);
4. their text is near-identical (a syndicated press release under a slightly different title),
   from different feeds, and nothing tells them apart: titles that differ in a number, an
   ordinal, a month or a trial number ("second quarter" vs "third quarter", "3 patients" vs
   "5 patients") are different stories, and so are items naming different records. A title
   that only leaves out a detail the other states is a shorter headline, not another story.

Near-identical text is found without comparing all pairs: MinHash signatures of word shingles,
banded into keys (locality-sensitive hashing), so only items sharing a key are compared. The
relation is symmetric and depends only on the two items, so stories (the connected groups of
linked items) do not depend on the order items arrive in.
"""

from __future__ import annotations

import hashlib
import re
import zlib
from array import array
from collections import defaultdict
from collections.abc import Collection, Iterable, Sequence
from dataclasses import dataclass, replace
from urllib.parse import urlsplit

from aggregator.normalise import canonical_url, mentioned_identifiers, own_identifiers

NEAR_DUPLICATE = 0.6  # Jaccard similarity of word shingles (title and summary)
SHINGLE_WORDS = 3
BANDS, ROWS = 6, 3  # 18 one-permutation MinHash bins (few stay empty in a 40-word text)
# A band shared by more items than this is boilerplate ("Read more on our website"), not a sign
# of a duplicate; following it would compare each new item with all of them (quadratic time).
MAX_BAND_ITEMS = 20
MAX_KEY_VALUE = 200  # the keys' column holds 300 characters
MIN_SHINGLES = 8  # about ten words: a headline alone is too little to call two items alike
_SIGNATURE_SIZE = BANDS * ROWS
_EMPTY_BIN = 1 << 32  # larger than any crc32
_WORD = re.compile(r"\w+")
_NUMBER = re.compile(r"\d+(?:[.,]\d+)*")
_DETAIL_WORDS = frozenset(
    "first second third fourth fifth sixth seventh eighth ninth tenth "
    "q1 q2 q3 q4 h1 h2 i ii iii iv "
    "january february march april may june july august september october november december "
    "jan feb mar apr jun jul aug sep sept oct nov dec".split()
)
_IDENTIFIER_KINDS = ("doi", "pmid", "pmcid", "nct", "euct")
_NO_IDS: frozenset[str] = frozenset()  # shared by every item without identifiers of its own


@dataclass(frozen=True, slots=True)
class Fingerprint:
    """What the same-story decision knows of one item.

    Compact, since every entry's fingerprint crosses from a parse worker and waits in memory
    for the store, and an empty set costs 216 bytes, each one its own object. Most items name no
    identifier, so empty kinds are left out and an item without identifiers shares one empty
    set; numbers and months of a title are a sorted tuple (a few words, often none). Five
    empty sets an item were a quarter of a parsed feed's memory.
    """

    item: str  # unique per item
    feed: str
    url: str | None  # canonical URL, None if the item has no link or the link is generic
    own_ids: frozenset[str]
    ids_by_kind: tuple[tuple[str, frozenset[str]], ...]  # own and mentioned; kinds it has
    title_details: tuple[str, ...]  # sorted
    packed_shingles: bytes  # 4 bytes a shingle hash: a tenth of a frozenset's memory
    index_keys: tuple[str, ...]  # only items sharing one of these are ever compared

    @property
    def shingles(self) -> frozenset[int]:
        return frozenset(array("I", self.packed_shingles))


def fingerprint(
    item: str,
    feed: str,
    *,
    link: str | None,
    guid: str | None,
    title: str,
    summary: str,
    link_is_shared: bool = False,
    identifiers: Collection[str] | None = None,
) -> Fingerprint:
    """The fingerprint of an item; `link_is_shared` when other items of its feed use its link.

    `identifiers` are the record's own as its entry found them (its source may state more than
    its link and GUID say); without them they are read from the link and GUID.
    """
    url = canonical_url(link) if link else None
    if url is not None and (link_is_shared or is_home_page(url)):
        url = None
    own = own_identifiers(link, guid) if identifiers is None else frozenset(identifiers)
    everything = own | mentioned_identifiers(f"{title} {summary}")
    shingles = _shingles(f"{title} {summary}")
    return Fingerprint(
        item=item,
        feed=feed,
        url=url,
        own_ids=own or _NO_IDS,
        ids_by_kind=_by_kind(everything),
        title_details=_details(title),
        packed_shingles=array("I", sorted(shingles)).tobytes(),
        index_keys=_index_keys(url, own, _minhash(shingles)),
    )


def with_shared_link(fp: Fingerprint) -> Fingerprint:
    """`fp` as `fingerprint(..., link_is_shared=True)` would have made it: whether other items
    of the feed use the same link is known only where items are stored, after the rest of the
    fingerprint was computed (in a parse worker)."""
    if fp.url is None:
        return fp
    url_key = _key("url", fp.url)
    return replace(fp, url=None, index_keys=tuple(k for k in fp.index_keys if k != url_key))


def is_home_page(canonical: str) -> bool:
    """A site's front page: many items link there, so sharing it proves nothing."""
    return urlsplit(f"//{canonical}").path in ("", "/") and "?" not in canonical


def same_story(a: Fingerprint, b: Fingerprint) -> str | None:
    """Why `a` and `b` are the same story ("same link", "same DOI ..."), or None if they are not."""
    if a.item == b.item:
        return "same item"
    if a.url is not None and a.url == b.url and a.feed != b.feed:
        return f"same link {a.url}"
    shared = a.own_ids & b.own_ids
    if shared:
        return f"same record {min(shared)}"
    if a.feed == b.feed or _conflicting_records(a, b) or _conflicting_details(a, b):
        return None
    similarity = jaccard(a.shingles, b.shingles)
    if similarity >= NEAR_DUPLICATE:
        return f"near-identical text ({similarity:.0%} alike)"
    return None


def jaccard(a: frozenset[int], b: frozenset[int]) -> float:
    if not a or not b:
        return 0.0
    return len(a & b) / len(a | b)


@dataclass(frozen=True, slots=True)
class Link:
    """Two items found to be the same story, and why."""

    item: str
    other: str
    reason: str


def find_links(new: Sequence[Fingerprint], known: Iterable[Fingerprint]) -> list[Link]:
    """Every same-story link from a `new` item to a known item or to another new item.

    `known` need only hold the items sharing an index key with a new one (the store finds
    those with one indexed query).
    """
    index: defaultdict[str, list[Fingerprint]] = defaultdict(list)
    for fp in known:
        for key in fp.index_keys:
            index[key].append(fp)
    links = []
    for fp in new:
        seen = {fp.item}
        for key in fp.index_keys:
            candidates = index[key]
            if key.startswith("band:") and len(candidates) > MAX_BAND_ITEMS:
                continue
            for other in candidates:
                if other.item in seen:
                    continue
                seen.add(other.item)
                if reason := same_story(fp, other):
                    links.append(Link(fp.item, other.item, reason))
        for key in fp.index_keys:
            index[key].append(fp)
    return links


class UnionFind:
    """Groups of nodes joined by links; the grouping does not depend on the order of unions."""

    def __init__(self) -> None:
        self._parent: dict[str, str] = {}

    def add(self, node: str) -> None:
        self._parent.setdefault(node, node)

    def union(self, a: str, b: str) -> None:
        root_a, root_b = self._root(a), self._root(b)
        if root_a != root_b:
            self._parent[max(root_a, root_b)] = min(root_a, root_b)

    def groups(self) -> list[frozenset[str]]:
        grouped: defaultdict[str, set[str]] = defaultdict(set)
        for node in self._parent:
            grouped[self._root(node)].add(node)
        return [frozenset(group) for group in grouped.values()]

    def _root(self, node: str) -> str:
        self.add(node)
        while self._parent[node] != node:
            self._parent[node] = self._parent[self._parent[node]]
            node = self._parent[node]
        return node


class StoryGraph:
    """Stories as groups of linked items, in memory (for benchmarks and checks; the store keeps
    the same structure in its tables)."""

    def __init__(self) -> None:
        self._groups = UnionFind()
        self._index: defaultdict[str, list[Fingerprint]] = defaultdict(list)

    def add(self, batch: Sequence[Fingerprint]) -> list[Link]:
        """Add items; return the links found for them."""
        candidates = {
            other.item: other
            for fp in batch
            for key in fp.index_keys
            if not (key.startswith("band:") and len(self._index.get(key, ())) > MAX_BAND_ITEMS)
            for other in self._index.get(key, ())
        }
        links = find_links(batch, candidates.values())
        for fp in batch:
            self._groups.add(fp.item)
            for key in fp.index_keys:
                self._index[key].append(fp)
        for link in links:
            self._groups.union(link.item, link.other)
        return links

    def stories(self) -> set[frozenset[str]]:
        return set(self._groups.groups())


def _by_kind(identifiers: frozenset[str]) -> tuple[tuple[str, frozenset[str]], ...]:
    """`identifiers` by kind, in `_IDENTIFIER_KINDS` order; kinds without any left out."""
    if not identifiers:
        return ()
    grouped = (
        (kind, frozenset(i for i in identifiers if i.startswith(f"{kind}:")))
        for kind in _IDENTIFIER_KINDS
    )
    return tuple((kind, ids) for kind, ids in grouped if ids)


def _conflicting_details(a: Fingerprint, b: Fingerprint) -> bool:
    """Each title has a detail the other lacks ("second quarter" and "third quarter", "3
    patients" and "5 patients"). A title that only leaves some out ("Kyverna doses first
    patient in KYSA-7 trial" beside "... KYSA-7 Trial of KYV-101") is a shorter headline of the
    same story, as a syndicated copy often is."""
    if a.title_details == b.title_details:
        return False
    ours, theirs = set(a.title_details), set(b.title_details)
    return not (ours <= theirs or theirs <= ours)


def _conflicting_records(a: Fingerprint, b: Fingerprint) -> bool:
    """Both name records of one kind, and not the same ones: two trials, two papers."""
    if not a.ids_by_kind or not b.ids_by_kind:
        return False
    theirs = dict(b.ids_by_kind)
    return any(kind in theirs and not ids & theirs[kind] for kind, ids in a.ids_by_kind)


def _index_keys(url: str | None, own: frozenset[str], signature: Sequence[int]) -> tuple[str, ...]:
    keys = [_key("url", url)] if url else []
    keys += [_key("id", identifier) for identifier in sorted(own)]
    for band in range(BANDS if signature else 0):
        rows = signature[band * ROWS : (band + 1) * ROWS]
        if _EMPTY_BIN not in rows:
            keys.append(f"band:{band}:" + ".".join(f"{value:x}" for value in rows))
    return tuple(keys)


def _key(kind: str, value: str) -> str:
    """An index key, short enough for any database's index (links run to thousands of
    characters): a long value stands in by its hash, which is equal exactly when it is."""
    if len(value) <= MAX_KEY_VALUE:
        return f"{kind}:{value}"
    return f"{kind}#sha256:{hashlib.sha256(value.encode()).hexdigest()}"


def _details(title: str) -> tuple[str, ...]:
    """The words of a title that tell templated titles apart: numbers, ordinals, months."""
    lowered = title.lower()
    words = {word for word in _WORD.findall(lowered) if word in _DETAIL_WORDS}
    numbers = {number.replace(",", "") for number in _NUMBER.findall(lowered)}
    return tuple(sorted(words | numbers))


def _shingles(text: str) -> frozenset[int]:
    words = _WORD.findall(text.lower())
    if len(words) < SHINGLE_WORDS:
        return frozenset(zlib.crc32(word.encode()) for word in words)
    return frozenset(
        zlib.crc32(" ".join(words[i : i + SHINGLE_WORDS]).encode())
        for i in range(len(words) - SHINGLE_WORDS + 1)
    )


def _minhash(shingles: frozenset[int]) -> tuple[int, ...]:
    """A MinHash signature by one-permutation hashing (Li, Owen and Zhang, 2012): each shingle's
    hash falls in one bin and each bin keeps its smallest; one hash per shingle instead of one
    per shingle and signature value. A bin no shingle fell in stays `_EMPTY_BIN`, and bands with
    one are not used as keys: filling them from a neighbour (densification) made bands out of a
    single common phrase, which unrelated items then shared.

    Texts too short to judge similarity by (under MIN_SHINGLES) get no signature.
    """
    if len(shingles) < MIN_SHINGLES:
        return ()
    bins = [_EMPTY_BIN] * _SIGNATURE_SIZE
    for shingle in shingles:
        slot = shingle % _SIGNATURE_SIZE
        if shingle < bins[slot]:
            bins[slot] = shingle
    return tuple(bins)
