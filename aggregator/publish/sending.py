"""One digest pass: for each subscriber, finish what an earlier run left unsent, then build this
run's digest, commit it to the outbox and send it.

A digest belongs to the latest scheduled run of its subscriber's cron schedule at or before
`now`; that run is its key, so a second pass in the same run (another process, a retry, a
scheduler waking late) finds it instead of making another. Content is every story about the
subscriber's topics whose news no digest of theirs has carried, so a story that arrives while
a digest is being built simply waits for the next one: nothing is skipped, nothing repeated.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from email.utils import parseaddr
from typing import Literal
from urllib.parse import urljoin

from aggregator import logs
from aggregator.config import Settings, Subscriber
from aggregator.publish.digest import (
    DigestContent,
    Envelope,
    ReaderLinks,
    build_content,
    compose,
    message_id,
    subject_line,
)
from aggregator.publish.mailer import DeliveryError, Mailer
from aggregator.schedule import cron_trigger, last_run_time
from aggregator.store import Repository
from aggregator.store.outbox import SENT, DigestDraft, Outbox, StoredDigest
from aggregator.tokens import Tokens

log = logs.get_logger(__name__)

PREVIEW_SENDER = "digest@localhost"

Outcome = Literal["sent", "resent", "failed", "empty", "already-sent", "busy", "not-yet"]


@dataclass(frozen=True, slots=True)
class DigestReport:
    """What happened to one subscriber's digest in this pass."""

    subscriber: str
    outcome: Outcome
    stories: int = 0
    message_id: str | None = None
    error: str | None = None


@dataclass(frozen=True, slots=True)
class PreparedDigest:
    """A digest built and rendered, not yet committed: what `--dry-run` shows."""

    subscriber: Subscriber
    run_at: datetime
    content: DigestContent
    envelope: Envelope
    message: bytes
    stories: Sequence[tuple[int, datetime]]


class DigestSender:
    """Builds and sends digests for the given subscribers, through the outbox. With `tokens`,
    a reader the database knows gets their own preferences and unsubscribe links."""

    def __init__(
        self,
        settings: Settings,
        repository: Repository,
        outbox: Outbox,
        mailer: Mailer,
        tokens: Tokens | None = None,
    ) -> None:
        self._settings = settings
        self._repository = repository
        self._outbox = outbox
        self._mailer = mailer
        self._tokens = tokens

    def prepare(self, subscriber: Subscriber, now: datetime) -> PreparedDigest:
        """This run's digest for `subscriber`, as it would be sent at `now`."""
        settings = self._settings
        trigger = cron_trigger(subscriber.schedule, subscriber.timezone)
        run_at = last_run_time(trigger, now)
        coverage = self._outbox.coverage(subscriber.key)
        if coverage is None:  # a new reader starts with one period's news, not the archive
            period = run_at - last_run_time(trigger, run_at - timedelta(seconds=1))
            since = period_start = now - period
        else:
            since, period_start = coverage
        due = self._outbox.due_stories(subscriber.key, subscriber.topics, since)
        sender = settings.digest.sender or PREVIEW_SENDER
        content = build_content(
            self._repository.stories_by_id([story_id for story_id, _ in due]),
            subscriber,
            title=settings.output.title,
            topic_titles=settings.topic_titles,
            period=(period_start, now),
            feeds=self._repository.list_feeds(),
            base_url=settings.output.base_url,
            contact=parseaddr(sender)[1],
        )
        content = replace(content, links=self._links(subscriber))
        envelope = Envelope(
            sender=sender,
            recipient=subscriber.email,
            message_id=message_id(subscriber.key, run_at, sender),
            subject=subject_line(settings.digest.subject, content, settings.output.title),
        )
        news_at = dict(due)
        return PreparedDigest(
            subscriber=subscriber,
            run_at=run_at,
            content=content,
            envelope=envelope,
            message=compose(content, envelope),
            stories=[(story_id, news_at[story_id]) for story_id in content.story_ids],
        )

    def send_all(self, subscribers: Sequence[Subscriber], now: datetime) -> list[DigestReport]:
        """Every subscriber's pass; one failing server or reader does not stop the others."""
        reports = []
        for subscriber in subscribers:
            reports += self.send(subscriber, now)
        for report in reports:
            _log_report(report)
        return reports

    def resend_unsent(self, subscriber: Subscriber, now: datetime) -> list[DigestReport]:
        """Send again what earlier runs committed but could not deliver (same message)."""
        return [
            self._resend(digest, subscriber.email, now)
            for digest in self._outbox.unsent(subscriber.key)
        ]

    def send(self, subscriber: Subscriber, now: datetime) -> list[DigestReport]:
        """Resend what is unsent, then send this run's digest unless it exists or is empty."""
        reports = self.resend_unsent(subscriber, now)
        run_at = last_run_time(cron_trigger(subscriber.schedule, subscriber.timezone), now)
        if subscriber.due_from is not None and run_at < subscriber.due_from:
            # They subscribed (or changed schedule) after this run: theirs is the next one.
            return [*reports, DigestReport(subscriber.email, "not-yet")]
        made = self._made_elsewhere(subscriber, run_at, reports)
        if made is not None:
            return [*reports, *made]
        prepared = self.prepare(subscriber, now)
        if not prepared.stories and not subscriber.send_empty:
            # Nothing left may mean another process just took this run's stories: say so.
            made = self._made_elsewhere(subscriber, run_at, reports)
            return [
                *reports,
                *(made if made is not None else [DigestReport(subscriber.email, "empty")]),
            ]
        report = DigestReport(
            subscriber.email, "sent", len(prepared.stories), prepared.envelope.message_id
        )
        digest_id = self._outbox.add(
            DigestDraft(
                subscriber=subscriber.key,
                run_at=prepared.run_at,
                period_start=prepared.content.period_start,
                period_end=prepared.content.period_end,
                topics=subscriber.topics,
                message_id=prepared.envelope.message_id,
                subject=prepared.envelope.subject,
                message=prepared.message,
                stories=prepared.stories,
            ),
            now,
            claimed_until=now + self._mailer.longest_send,
        )
        if digest_id is None:  # another process made this run's digest first
            return [*reports, replace(report, outcome="busy")]
        return [
            *reports,
            self._deliver(digest_id, prepared.message, subscriber.email, report, now),
        ]

    def _made_elsewhere(
        self, subscriber: Subscriber, run_at: datetime, reports: list[DigestReport]
    ) -> list[DigestReport] | None:
        """If this run's digest exists (sent, or in some process's hands), what to report of it:
        nothing more when this pass just resent it."""
        existing = self._outbox.find(subscriber.key, run_at)
        if existing is None:
            return None
        if existing.message_id in {report.message_id for report in reports}:
            return []
        outcome: Outcome = "already-sent" if existing.status == SENT else "busy"
        return [DigestReport(subscriber.email, outcome, existing.story_count, existing.message_id)]

    def send_copy(self, prepared: PreparedDigest, recipient: str) -> None:
        """Send a prepared digest to `recipient` as a test: nothing is recorded or marked."""
        envelope = replace(
            prepared.envelope,
            recipient=recipient,
            message_id=message_id(recipient, prepared.run_at, prepared.envelope.sender),
        )
        self._mailer.send(
            compose(prepared.content, envelope), parseaddr(envelope.sender)[1], [recipient]
        )

    def _links(self, subscriber: Subscriber) -> ReaderLinks | None:
        if self._tokens is None or subscriber.id is None:
            return None
        token = self._tokens.make("manage", subscriber.id)
        base = self._settings.output.base_url
        return ReaderLinks(
            preferences=urljoin(base, f"preferences/{token}"),
            unsubscribe=urljoin(base, f"unsubscribe/{token}"),
        )

    def _resend(self, digest: StoredDigest, recipient: str, now: datetime) -> DigestReport:
        report = DigestReport(recipient, "resent", digest.story_count, digest.message_id)
        if not self._outbox.claim(digest.id, now, now + self._mailer.longest_send):
            return replace(report, outcome="busy")
        return self._deliver(digest.id, digest.message, recipient, report, now)

    def _deliver(
        self, digest_id: int, message: bytes, recipient: str, report: DigestReport, now: datetime
    ) -> DigestReport:
        sender = parseaddr(self._settings.digest.sender or PREVIEW_SENDER)[1]
        try:
            self._mailer.send(message, sender, [recipient])
        except DeliveryError as error:
            self._outbox.mark_failed(digest_id, str(error))
            return replace(report, outcome="failed", error=str(error))
        self._outbox.mark_sent(digest_id, now)
        return report


def _log_report(report: DigestReport) -> None:
    """One line per digest, naming it by Message-ID: a reader's address is never logged."""
    fields = {"outcome": report.outcome, "stories": report.stories, "error": report.error}
    if report.outcome == "failed":
        log.warning("digest", message_id=report.message_id, **fields)
    else:
        log.info("digest", message_id=report.message_id, **fields)
