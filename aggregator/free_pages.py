"""Freed memory handed back to the system while a pass runs, and as it ends.

A pass frees as much as it allocates, yet its resident size grew all through it: over a
5,000-feed pass, glibc's heap held the same 21 MB in use from start to end while the free
space inside it grew from 4 to 17 MB (`mallinfo2`, bench/README.md). glibc gives back only
the free memory at the top of its heap on its own; whole pages freed below a chunk still in
use stay resident until `malloc_trim` returns them. So the store thread returns them now and
then, and the peak stops growing with the feeds a pass has fetched; and the pass returns
them as it ends, so that neither `fetch`'s export nor an idle service sits on them.

Elsewhere than glibc (musl, macOS) there is no `malloc_trim`, and this does nothing.
"""

from __future__ import annotations

import ctypes
from collections.abc import Callable

# Each call walks the heap's free chunks: about a millisecond here (bench/README.md), so
# calls a second apart cost a pass nothing it would notice.
EVERY_SECONDS = 1.0


def _malloc_trim() -> Callable[[int], int] | None:
    try:
        return ctypes.CDLL(None).malloc_trim
    except (AttributeError, OSError):
        return None


_TRIM = _malloc_trim()


def return_to_system() -> None:
    """Give the whole free pages in the C heap back to the system (glibc only)."""
    if _TRIM is not None:
        _TRIM(0)
