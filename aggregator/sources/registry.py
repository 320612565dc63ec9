"""The `[[feeds]] type`s there are. Adding one is a module in `sources/` (with `download` and
`parse`, see `base.py`) and one line here.

Modules are imported when first used: the config only needs the names and default kinds, and
a parse worker only the types it is handed.
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass
from functools import cache

from aggregator.models import SourceKind
from aggregator.sources.base import SourceType


@dataclass(frozen=True, slots=True)
class Registered:
    """Where a type's code lives, and what its items are unless a feed says (`kind`)."""

    module: str
    kind: SourceKind | None = None


TYPES: dict[str, Registered] = {
    "rss": Registered("aggregator.sources.rss"),
    "clinicaltrials": Registered("aggregator.sources.clinicaltrials", "registry"),
    "pubmed": Registered("aggregator.sources.pubmed", "journal"),
    "europepmc": Registered("aggregator.sources.europepmc", "journal"),
}


@cache
def source_type(name: str) -> SourceType:
    """The download and parse functions of the type called `name` (a key of TYPES)."""
    module = importlib.import_module(TYPES[name].module)
    return SourceType(module.download, module.parse)
