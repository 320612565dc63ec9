"""Prometheus metrics for /metrics: what the service did (counters, durations) and what the
store holds (read at scrape time, so they are right whichever process did the work)."""

from __future__ import annotations

from collections import Counter as Tally
from collections.abc import Iterator, Sequence
from typing import TYPE_CHECKING

from prometheus_client import (
    CollectorRegistry,
    Counter,
    Histogram,
    ProcessCollector,
    generate_latest,
)
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from aggregator import logs
from aggregator.store import Repository

if TYPE_CHECKING:  # `serve` and its render workers neither fetch nor send (httpx, smtplib)
    from aggregator.pipeline.fetch_pass import FeedReport
    from aggregator.publish.sending import DigestReport

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"
log = logs.get_logger(__name__)


class Metrics:
    """One registry per process (never the global one, so tests and apps stay apart)."""

    def __init__(self, repository: Repository) -> None:
        self.registry = CollectorRegistry()
        self._fetches = Counter(
            "aggregator_fetches", "Feed fetches by outcome.", ["status"], registry=self.registry
        )
        self._items = Counter(
            "aggregator_items", "Items stored, new or updated.", ["change"], registry=self.registry
        )
        self._fetch_seconds = Histogram(
            "aggregator_fetch_seconds",
            "Time to fetch and store one feed.",
            buckets=(0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60),
            registry=self.registry,
        )
        self._digests = Counter(
            "aggregator_digests", "Digest sends by outcome.", ["outcome"], registry=self.registry
        )
        self._digest_seconds = Histogram(
            "aggregator_digest_pass_seconds", "Time of one digest pass.", registry=self.registry
        )
        self.registry.register(_StoreCollector(repository))
        ProcessCollector(registry=self.registry)  # memory, CPU, open files of this process

    def record_fetches(self, reports: Sequence[FeedReport]) -> None:
        for report in reports:
            if report.status == "skipped":
                continue
            self._fetches.labels(label(report.status)).inc()
            self._items.labels("new").inc(report.new)
            self._items.labels("updated").inc(report.updated)
            self._fetch_seconds.observe(report.seconds)

    def record_digests(self, reports: Sequence[DigestReport], seconds: float) -> None:
        for outcome, count in Tally(report.outcome for report in reports).items():
            self._digests.labels(outcome).inc(count)
        self._digest_seconds.observe(seconds)

    def exposition(self) -> bytes:
        return generate_latest(self.registry)


def label(value: str) -> str:
    """A label value as scrapers and dashboards expect it: one word ("not modified" ->
    "not_modified")."""
    return value.replace(" ", "_")


class _StoreCollector(Collector):
    """Gauges read from the database when scraped: stories, feeds by status, last success."""

    def __init__(self, repository: Repository) -> None:
        self._repository = repository

    def collect(self) -> Iterator[Metric]:
        try:
            feeds = self._repository.list_feeds()
            stories = self._repository.count_stories()
        except Exception:  # a scrape must not fail because the database is briefly away
            log.warning("metrics_not_read", reason="cannot read the database", exc_info=True)
            return
        yield GaugeMetricFamily("aggregator_stories", "Stories stored.", value=stories)
        by_status = GaugeMetricFamily(
            "aggregator_feeds", "Active feeds by status.", labels=["status"]
        )
        for status, count in sorted(Tally(feed.status for feed in feeds).items()):
            by_status.add_metric([label(status)], count)
        yield by_status
        successes = [feed.last_success_at for feed in feeds if feed.last_success_at]
        if successes:
            yield GaugeMetricFamily(
                "aggregator_last_successful_fetch_timestamp_seconds",
                "When a feed was last fetched successfully (Unix time).",
                value=max(successes).timestamp(),
            )
