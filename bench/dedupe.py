"""Dedupe throughput as the corpus grows: it must stay linear (never all pairs).

Fingerprints every item and groups it with `StoryGraph` in feed-sized batches of 50, as fetches
would, then checks the stories found against the ones the corpus was generated with.
"""

from __future__ import annotations

import gc
import statistics
import time
from collections import defaultdict

import aggregator.dedupe
from aggregator.dedupe import StoryGraph, fingerprint
from bench.corpus import FeedItem, make_feed_items

SIZES = (10_000, 50_000, 100_000)
BATCH = 50


class _CountingComparisons:
    """Counts same-story comparisons: work per item that stays flat is linear time, whatever
    the machine's noise does to the seconds."""

    def __init__(self) -> None:
        self.count = 0
        self._compare = aggregator.dedupe.same_story

    def __call__(
        self, a: aggregator.dedupe.Fingerprint, b: aggregator.dedupe.Fingerprint
    ) -> str | None:
        self.count += 1
        return self._compare(a, b)


def _comparisons_per_item(items: list[FeedItem]) -> float:
    counter = _CountingComparisons()
    aggregator.dedupe.same_story = counter
    try:
        _group(items)
    finally:
        aggregator.dedupe.same_story = counter._compare
    return counter.count / len(items)


def _group(items: list[FeedItem]) -> tuple[float, StoryGraph]:
    start = time.perf_counter()
    graph = StoryGraph()
    for offset in range(0, len(items), BATCH):
        graph.add(
            [
                fingerprint(
                    f"{item.feed}/{item.guid}",
                    item.feed,
                    link=item.link,
                    guid=item.guid,
                    title=item.title,
                    summary=item.summary,
                )
                for item in items[offset : offset + BATCH]
            ]
        )
    return time.perf_counter() - start, graph


def _accuracy(items: list[FeedItem], graph: StoryGraph) -> tuple[int, int, int]:
    """(stories expected, stories found, stories found that mix two expected ones)."""
    expected: defaultdict[int, set[str]] = defaultdict(set)
    for item in items:
        expected[item.story].add(f"{item.feed}/{item.guid}")
    story_of = {key: story for story, keys in expected.items() for key in keys}
    found = graph.stories()
    mixed = sum(1 for group in found if len({story_of[key] for key in group}) > 1)
    return len(expected), len(found), mixed


def run(runs: int = 3) -> list[str]:
    lines = [
        f"dedupe: items with 20% duplicates (syndicated, tracking links, DOI, NCT); "
        f"median of {runs} runs, one core",
        "",
        f"{'items':>9}{'items/s':>11}{'time (s)':>10}{'compared/item':>15}"
        f"{'stories':>10}{'expected':>10}{'mixed':>7}",
    ]
    rates = {}
    for size in SIZES:
        items = make_feed_items(size)
        # The corpus is input, not dedupe's work: keep the collector from walking it each time.
        gc.collect()
        gc.freeze()
        timings = []
        for _ in range(runs):
            gc.collect()
            elapsed, graph = _group(items)
            timings.append(elapsed)
            expected, found, mixed = _accuracy(items, graph)
            del graph  # garbage before the next run starts
        compared = _comparisons_per_item(items)
        gc.unfreeze()
        elapsed = statistics.median(timings)
        rates[size] = size / elapsed
        lines.append(
            f"{size:>9,}{rates[size]:>11,.0f}{elapsed:>10.2f}{compared:>15.2f}"
            f"{found:>10,}{expected:>10,}{mixed:>7}"
        )
        del items
    ratio = rates[SIZES[-1]] / rates[SIZES[0]]
    lines += [
        "",
        f"items/s at {SIZES[-1]:,} vs {SIZES[0]:,}: {ratio:.2f} (1.00 is perfectly linear); "
        "comparisons per item should stay flat as the corpus grows",
    ]
    return lines
