"""Shared by tests: a syndicated press release, a results template, topic rules, and the
shipped config's matcher with the entries it makes, as a parse worker hands them to the store."""

from collections.abc import Iterable
from datetime import datetime
from pathlib import Path

from aggregator.analyse import AnalysedEntry, analyse
from aggregator.config import load_settings
from aggregator.match import build_matcher
from aggregator.sources.entries import RawEntry, build_entries

SHIPPED_MATCHER = build_matcher(
    load_settings(Path(__file__).parent.parent / "config.toml", environ={})
)

PRESS_RELEASE = (
    "Kyverna Therapeutics today announced that the U.S. Food and Drug Administration granted "
    "Regenerative Medicine Advanced Therapy designation to KYV-101, its fully human CD19 CAR T "
    "cell therapy, for the treatment of progressive multiple sclerosis, based on early data."
)
TEMPLATE = (
    "Acme Bio reported financial results and business highlights, including progress of its "
    "CD19 CAR T programme in autoimmune disease and cash runway into the next decade."
)

# Rules for a small world of CAR T news in MS and in lupus (titles are what the page shows).
TOPIC_RULES = """
[terms]
car_t = ["CAR T", "chimeric antigen receptor"]
cd19 = ["CD19"]
ms = ["multiple sclerosis", "MS"]
lupus = ["lupus"]

[vetoes]
MS = ["LC-MS", "mass spectrometry"]

[[topics]]
id = "car-t-ms"
title = "CAR T in MS"
all = ["ms"]
any = ["car_t", "cd19"]

[[topics]]
id = "car-t-lupus"
title = "CAR T in lupus"
all = ["lupus", "car_t"]
"""


def analysed_entries(
    feed: str, raws: Iterable[RawEntry], fetched_at: datetime
) -> tuple[AnalysedEntry, ...]:
    """`raws` of `feed` (at https://<feed>.example/feed) cleaned, matched by the shipped rules
    and fingerprinted."""
    entries = build_entries(raws, f"https://{feed}.example/feed", fetched_at)
    return tuple(analyse(entries, feed, SHIPPED_MATCHER))
