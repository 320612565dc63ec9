"""Whether this Python's XML parser may be given feeds at all: checked when a command starts,
so it imports nothing but the parser's version."""

from __future__ import annotations

from xml.parsers import expat as pyexpat

from aggregator.errors import AggregatorError

# Expat 2.4.0 added protection against entity amplification ("billion laughs").
SAFE_EXPAT = (2, 4, 0)


def require_safe_expat(version: tuple[int, int, int] | None = None) -> None:
    """Refuse to run on an expat without entity-amplification protection.

    feedparser parses with the standard library's expat; before 2.4.0 one small feed of nested
    entities could exhaust the machine's memory.
    """
    version = version or pyexpat.version_info
    if version < SAFE_EXPAT:
        raise AggregatorError(
            f"this Python's XML parser is expat {'.'.join(map(str, version))}, which does not "
            "stop entity expansion attacks; expat 2.4.0 or newer is required (upgrade Python "
            "or the system's libexpat)"
        )
