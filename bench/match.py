"""Matching throughput: the aggregator's matcher against one `re.search` per term.

Both run the shipped config's terms and topics over the same synthetic items (title and
summary), on one core, and report the median of several runs.
"""

from __future__ import annotations

import re
import statistics
import time
from collections.abc import Callable, Sequence
from pathlib import Path

from aggregator.config import Settings, load_settings
from aggregator.match import build_matcher
from aggregator.term_markers import split_marker
from bench.corpus import Item, make_items

CONFIG = Path(__file__).parent.parent / "config.toml"
TARGET_ITEMS_PER_SECOND = 50_000
TARGET_SPEEDUP = 10.0


def naive_matcher(settings: Settings) -> Callable[[Item], list[str]]:
    """The obvious implementation: a compiled word-bounded regex per term, tried on each field."""
    patterns = {
        group: [
            re.compile(rf"\b{re.escape(split_marker(term)[0])}\b", re.IGNORECASE) for term in terms
        ]
        for group, terms in settings.terms.items()
    }

    def match(item: Item) -> list[str]:
        groups = {
            group
            for group, regexes in patterns.items()
            for regex in regexes
            for text in (item.title, item.summary)
            if regex.search(text)
        }
        return [
            topic.id
            for topic in settings.topics
            if all(g in groups for g in topic.all)
            and (not topic.any or any(g in groups for g in topic.any))
            and not any(g in groups for g in topic.none)
        ]

    return match


def _rate(match: Callable[[Item], object], items: Sequence[Item], runs: int) -> float:
    rates = []
    for _ in range(runs):
        start = time.perf_counter()
        for item in items:
            match(item)
        rates.append(len(items) / (time.perf_counter() - start))
    return statistics.median(rates)


def run(items: int = 50_000, runs: int = 5, baseline_items: int = 10_000) -> list[str]:
    """Measure both and return the report's lines."""
    settings = load_settings(CONFIG, environ={})
    corpus = make_items(items)
    matcher = build_matcher(settings)
    ours = _rate(
        lambda item: matcher.match({"title": item.title, "summary": item.summary}), corpus, runs
    )
    naive = _rate(naive_matcher(settings), corpus[:baseline_items], runs)
    speedup = ours / naive
    terms = sum(len(terms) for terms in settings.terms.values())
    return [
        f"matching: {items:,} items (title + summary), {terms} terms, "
        f"{len(settings.topics)} topics; median of {runs} runs, one core",
        "",
        f"{'method':<38}{'items/s':>12}{'vs baseline':>14}",
        f"{'naive: re.search per term (baseline)':<38}{naive:>12,.0f}{1.0:>13.1f}x",
        f"{'aggregator Matcher':<38}{ours:>12,.0f}{speedup:>13.1f}x",
        "",
        f"target >= {TARGET_ITEMS_PER_SECOND:,} items/s: "
        f"{'met' if ours >= TARGET_ITEMS_PER_SECOND else 'NOT met'}; "
        f"target >= {TARGET_SPEEDUP:.0f}x baseline: "
        f"{'met' if speedup >= TARGET_SPEEDUP else 'NOT met'}",
        f"(baseline timed on the first {min(baseline_items, items):,} items: it is slow)",
    ]
