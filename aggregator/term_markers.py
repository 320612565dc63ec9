"""How a configured term says where it counts: "SEP@fr" only in French text, "RMS@defined" only
where the text defines it. Pure, and apart from the config's models: the matcher reads markers
in parse workers, which need neither pydantic nor the config."""

from __future__ import annotations

TERM_MARKER = "@"
# What may follow "@" in a term: "defined", or a language the matcher tells apart.
TERM_MARKERS = frozenset({"defined", "en", "fr", "de", "es", "it", "nl", "pt"})


def split_marker(term: str) -> tuple[str, str | None]:
    """A configured term and its marker: ("SEP", "fr") for "SEP@fr", ("MS", None) for "MS"."""
    text, at, marker = term.rpartition(TERM_MARKER)
    return (text, marker) if at and text and marker.isalpha() else (term, None)
