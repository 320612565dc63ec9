"""Cutting a large RSS or Atom document into small well-formed ones.

feedparser holds a whole parsed document in memory, about seven times the size of its bytes, so
a 50 MB feed would cost hundreds of megabytes before the first item is stored. Cut into parts of
a few hundred items, each with the original document's head (XML declaration, DOCTYPE, channel
fields) and tail, the feed is parsed one part at a time and memory stays flat whatever its size.
"""

from __future__ import annotations

from collections.abc import Iterator
from xml.parsers import expat as pyexpat

_ITEM_NAMES = ("item", "entry")
# RSS 2.0 items sit at depth 3 (rss/channel/item); RSS 1.0 items and Atom entries at depth 2.
_ITEM_DEPTHS = (2, 3)
_WIDE_ENCODING_MARKS = (b"\xff\xfe", b"\xfe\xff", b"\x00<", b"<\x00")
_SCAN_CHUNK = 64 * 1024


def split_feed(body: bytes, items_per_part: int) -> Iterator[bytes] | None:
    """Documents of at most `items_per_part` items each, made one at a time; None when the body
    is not worth cutting or cannot be cut safely (malformed XML, a UTF-16 document), in which
    case it is parsed whole as before."""
    spans = _item_spans(body)
    if spans is None or len(spans) <= items_per_part:
        return None
    head, tail = body[: spans[0][0]], body[spans[-1][1] :]
    return (
        head
        + b"".join(body[start:end] for start, end in spans[first : first + items_per_part])
        + tail
        for first in range(0, len(spans), items_per_part)
    )


def _item_spans(body: bytes) -> list[tuple[int, int]] | None:
    """Byte ranges of the document's items, from the opening `<` to the closing `>`.

    Only for encodings where `>` is one byte of its own (UTF-8, ASCII, Latin-1 and the like).
    Entities declared outside the document (`&nbsp;` in a feed with no DTD) are skipped, not
    errors, as a feed reader would; nothing external is ever fetched.
    """
    if body.startswith(_WIDE_ENCODING_MARKS):
        return None
    parser = pyexpat.ParserCreate()
    parser.UseForeignDTD(True)
    spans: list[tuple[int, int]] = []
    depth = item_depth = start = 0

    def on_start(name: str, _attributes: object) -> None:
        nonlocal depth, item_depth, start
        depth += 1
        if not item_depth and depth in _ITEM_DEPTHS and name.rpartition(":")[2] in _ITEM_NAMES:
            item_depth, start = depth, parser.CurrentByteIndex

    def on_end(name: str) -> None:
        nonlocal depth, item_depth
        if depth == item_depth:
            at = parser.CurrentByteIndex  # the item's end tag, or just past its `/>` if empty
            closed_by_tag = body.startswith(b"</" + name.encode(), at)
            spans.append((start, body.index(b">", at) + 1 if closed_by_tag else at))
            item_depth = 0
        depth -= 1

    parser.StartElementHandler = on_start
    parser.EndElementHandler = on_end
    view = memoryview(body)
    try:
        for start_of_chunk in range(0, len(body), _SCAN_CHUNK):  # expat copies what it is given
            parser.Parse(view[start_of_chunk : start_of_chunk + _SCAN_CHUNK], False)
        parser.Parse(b"", True)
    except (pyexpat.ExpatError, ValueError):
        return None
    return spans
