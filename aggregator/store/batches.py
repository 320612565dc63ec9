"""Work on many rows a bounded batch at a time.

SQLite allows 32,766 bound parameters per statement, and smaller batches keep memory flat
however many items a feed or a re-match brings.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from itertools import islice
from typing import TypeVar

BATCH_SIZE = 500
_T = TypeVar("_T")


def batches(values: Iterable[_T], size: int = BATCH_SIZE) -> Iterator[list[_T]]:
    """`values` in lists of at most `size`, read lazily."""
    remaining = iter(values)
    while batch := list(islice(remaining, size)):
        yield batch
