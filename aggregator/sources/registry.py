"""The `[[feeds]] type`s there are, and the module behind each."""

from __future__ import annotations

from aggregator.sources import SourceType, clinicaltrials, europepmc, pubmed, rss

SOURCE_TYPES: dict[str, SourceType] = {
    "rss": SourceType(rss.download, rss.parse),
    "clinicaltrials": SourceType(clinicaltrials.download, clinicaltrials.parse),
    "pubmed": SourceType(pubmed.download, pubmed.parse),
    "europepmc": SourceType(europepmc.download, europepmc.parse),
}
