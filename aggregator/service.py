"""`aggregator run`: the scheduler, the HTTP server and the process lifecycle.

APScheduler 3 runs the jobs, each a thin call into the pipeline, the digest or export:

- fetch, every `fetch.poll`: claim the feeds that are due and fetch them. A claim is a lease in
  the database (the feed's next due time moved forward, taken with SKIP LOCKED on PostgreSQL),
  so any number of processes on any number of machines share the feeds without fetching one
  twice. While a pass has feeds under way it claims what falls due every poll, so a feed
  hanging until its timeout holds up no other. Feeds that changed anything are exported as
  the pass goes.
- digest:EMAIL, on each subscriber's cron schedule in their time zone, and once at start.
  Jobs are coalesced and a digest belongs to the latest run at or before now, so a machine
  waking from sleep sends one digest, not one per missed run; the outbox makes sure only one
  process sends it.
- readers, every minute: the digests of readers who subscribed on the page (or whom the
  operator added), on the schedule of the frequency they chose; they come and go while the
  service runs, so one job looks at them all rather than a job each.
- resend, every ten minutes: digests a failure left unsent.

SIGHUP, or a change to the config file, reloads it: feeds added or removed, new topics and
terms, readers and schedules apply at once; an invalid edit is logged with its key and line and
the running config stays. The database and the server's address need a restart (it says so).

SIGTERM or SIGINT stops new work, lets feeds already under way be stored (bounded by
`service.shutdown_timeout`), closes the database and exits 0. Nothing depends on a clean stop:
every feed is stored in one transaction, and leases of a process killed outright run out (or,
on the same machine, are taken back at the next start).
"""

from __future__ import annotations

import asyncio
import logging
import os
import signal
import threading
import time
from collections.abc import Callable, Mapping
from datetime import datetime, timedelta
from pathlib import Path
from types import FrameType
from typing import Any

import uvicorn
from apscheduler.schedulers.background import BackgroundScheduler
from apscheduler.triggers.interval import IntervalTrigger
from sqlalchemy import Engine
from starlette.applications import Starlette
from starlette.types import Receive, Scope, Send

from aggregator import heap, logs
from aggregator.clock import utc_now
from aggregator.config import Settings, load_settings
from aggregator.config_watch import ConfigWatch
from aggregator.errors import ConfigError
from aggregator.match import build_matcher
from aggregator.metrics import Metrics
from aggregator.models import FeedState
from aggregator.pipeline.fetch_pass import FeedReport, TopUp, fetch_feeds, fetch_lease
from aggregator.pipeline.prepare import prepare
from aggregator.publish.export import export_all
from aggregator.publish.mailer import Mailer
from aggregator.publish.readers import digest_readers, signing_tokens
from aggregator.publish.sending import DigestReport, DigestSender
from aggregator.schedule import cron_trigger, last_run_time
from aggregator.store import Outbox, Repository
from aggregator.store.database import gone_from_this_host, single_service_process, this_process
from aggregator.store.services import ServiceRegistry
from aggregator.store.subscribers import Subscriptions
from aggregator.web import close_app, create_app, serve_until_stopped, server_config
from aggregator.web.subscribe import Subscribing

log = logs.get_logger(__name__)

RESEND_EVERY = timedelta(minutes=10)
READERS_EVERY = timedelta(minutes=1)  # how late a page reader's digest may leave
READER_DIGEST_JOB = "digest-for-"  # a subscriber's scheduled digest: digest-for-1, ...
SIGNAL_POLL_SECONDS = 0.1  # how soon the main thread notices a stop signal


class Service:
    """One service process: scheduler, HTTP server, or both."""

    def __init__(
        self,
        settings: Settings,
        engine: Engine,
        *,
        scheduler: bool = True,
        server: bool = True,
        environ: Mapping[str, str] = os.environ,
        config_file: Path | None = None,
    ) -> None:
        self._engine = engine
        self._environ = environ
        self._config_file = config_file
        self._repository = Repository(engine)
        self._outbox = Outbox(engine)
        self._subscriptions = Subscriptions(engine)
        self._registry = ServiceRegistry(engine)
        self._tokens = signing_tokens(self._subscriptions, environ)
        self._apply(settings)
        self._app: _CurrentApp | None = None
        self._handled_runs: dict[str, datetime] = {}  # a page reader's latest run dealt with
        self.metrics = Metrics(self._repository)
        self.owner = this_process()
        self.stopping = threading.Event()
        self._signalled: int | None = None
        self._scheduler = (
            BackgroundScheduler(
                timezone="UTC",
                job_defaults={"coalesce": True, "max_instances": 1, "misfire_grace_time": None},
            )
            if scheduler
            else None
        )
        self._serve = server
        self._running_jobs = 0
        self._fetching = threading.Lock()  # held by the pass under way
        self._idle = threading.Condition()

    def run(self) -> None:
        """Run until SIGTERM or SIGINT, then stop cleanly."""
        with single_service_process(self._engine):
            self._recover()
            uvicorn_server = self._http_server() if self._serve else None
            for stop_signal in (signal.SIGTERM, signal.SIGINT):
                signal.signal(stop_signal, self._on_signal)
            # Set up: what exists now lives as long as the service (frozen before the first
            # job, so none of a pass's passing objects is kept out of the collector's reach).
            heap.freeze()
            if self._scheduler is not None:
                self._schedule_jobs()
                self._scheduler.start()
            if self._config_file is not None:
                self._announce()
                ConfigWatch(self._config_file, self.reload, self.stopping, self._announce).start()
            log.info(
                "service_started",
                owner=self.owner,
                scheduler=self._scheduler is not None,
                server=uvicorn_server is not None,
                next_digest=self._next_digest(),
            )
            try:
                if uvicorn_server is not None:
                    serve_until_stopped(uvicorn_server)  # returns once a signal asked it to stop
                while self._signalled is None and not self.stopping.is_set():
                    time.sleep(SIGNAL_POLL_SECONDS)
                if self._signalled is not None:
                    log.info("stopping", signal=signal.Signals(self._signalled).name)
            finally:
                self._shut_down()

    def health(self) -> dict[str, Any]:
        """The scheduler's part of /healthz: its state and each job's next run."""
        if self._scheduler is None:
            return {"state": "off"}
        state = "running" if self._scheduler.running and not self.stopping.is_set() else "stopped"
        return {
            "state": state,
            "jobs": [
                {
                    "id": job.id,
                    "next_run": job.next_run_time.isoformat() if job.next_run_time else None,
                }
                for job in self._scheduler.get_jobs()
            ],
        }

    def fetch_due(self) -> None:
        """Claim the feeds that are due and fetch them, claiming more as they fall due while
        any is under way (one hanging until its timeout delays no other); export what
        changed as the pass goes and at its end."""
        if not self._fetching.acquire(blocking=False):
            return  # the pass under way takes what has fallen due
        try:
            self._fetch_pass()
        finally:
            self._fetching.release()

    def _fetch_pass(self) -> None:
        settings, matcher = self._settings, self._matcher
        first = self._claim_due(settings, 0)
        if not first:
            return
        claimed = {feed.name: feed.feed_id for feed in first}
        changed = threading.Event()

        def more(under_way: int) -> list[FeedState]:
            if changed.is_set():
                changed.clear()
                export_all(settings, self._repository)
            if self._settings is not settings:
                return []  # reloaded: this pass winds down, the next one fetches by the new rules
            feeds = self._claim_due(settings, under_way)
            claimed.update((feed.name, feed.feed_id) for feed in feeds)
            return feeds

        def done(report: FeedReport) -> None:
            self.metrics.record_fetches([report])
            if report.new or report.updated:
                changed.set()

        reports = asyncio.run(
            fetch_feeds(
                settings,
                self._repository,
                matcher,
                first,
                on_feed_done=done,
                stop=self.stopping,
                top_up=TopUp(more, settings.fetch.poll.total_seconds()),
            )
        )
        skipped = [claimed[report.name] for report in reports if report.status == "skipped"]
        self._repository.release_claims(skipped, utc_now())
        if changed.is_set():
            export_all(settings, self._repository)

    def _claim_due(self, settings: Settings, under_way: int) -> list[FeedState]:
        """Lease the feeds due now, up to what the pass has room for beside `under_way`.

        Only feeds `settings` names: one added to the database by a reload still under way
        (or by another process sharing the database, its config edited first) is given back
        for a pass that knows its settings."""
        fetch = settings.fetch
        room = fetch.concurrency * 2 - under_way
        if room <= 0:
            return []
        now = utc_now()
        claimed = self._repository.claim_feeds(
            now, lease_until=now + fetch_lease(fetch, room), owner=self.owner, limit=room
        )
        named = {feed.name for feed in settings.feeds}
        unknown = [feed.feed_id for feed in claimed if feed.name not in named]
        self._repository.release_claims(unknown, now)
        return [feed for feed in claimed if feed.name in named]

    def reload(self, reason: str) -> None:
        """Read the config file again and apply it; keep the running config if it is invalid."""
        assert self._config_file is not None
        try:
            settings = load_settings(self._config_file, self._environ)
        except ConfigError as error:
            log.warning("config_not_reloaded", reason=reason, error=str(error))
            return
        old = self._settings
        needs_restart = [
            key
            for key, before, after in (
                ("database", old.database, settings.database),
                ("server", old.server, settings.server),
            )
            if before != after
        ]
        now = utc_now()
        self._repository.sync_feeds(settings.feeds)
        self._subscriptions.sync_config([r.email for r in settings.all_subscribers], now)
        self._apply(settings)
        prepare(self._repository, self._matcher, now)  # stored items follow changed rules
        if self._scheduler is not None:
            self._scheduler.remove_all_jobs()
            self._schedule_jobs()
        if self._app is not None:
            replaced, self._app.current = self._app.current, self._site()
            close_app(replaced)
        export_all(settings, self._repository)
        heap.freeze()  # what the old settings, matcher and app held can be collected
        log.info(
            "config_reloaded",
            reason=reason,
            feeds=len(settings.feeds),
            topics=len(settings.topics),
            subscribers=len(settings.all_subscribers),
            needs_restart=",".join(needs_restart) or None,
        )

    def send_digests(self, emails: list[str] | None = None, *, resend_only: bool = False) -> None:
        """The digests of the config's readers (those of `emails`, or all), read afresh: one
        who left through a link gets nothing. `resend_only`: every reader's unsent ones."""
        started = time.monotonic()
        now = utc_now()
        readers = digest_readers(self._settings, self._subscriptions)
        if resend_only:
            reports = [r for reader in readers for r in self._digests.resend_unsent(reader, now)]
        else:
            wanted = None if emails is None else {email.lower() for email in emails}
            chosen = [
                reader
                for reader in readers
                if reader.from_config and (wanted is None or reader.email.lower() in wanted)
            ]
            reports = self._digests.send_all(chosen, now)
        self.metrics.record_digests(reports, time.monotonic() - started)

    def send_readers_digests(self) -> None:
        """Page readers whose schedule has reached a run not yet dealt with: their digest."""
        started = time.monotonic()
        now = utc_now()
        reports: list[DigestReport] = []
        for reader in digest_readers(self._settings, self._subscriptions):
            if reader.from_config:
                continue
            run_at = last_run_time(cron_trigger(reader.schedule, reader.timezone), now)
            if self._handled_runs.get(reader.key) == run_at:
                continue
            sent = self._digests.send_all([reader], now)
            if not any(report.outcome == "failed" for report in sent):
                self._handled_runs[reader.key] = run_at
            reports += sent
        if reports:
            self.metrics.record_digests(reports, time.monotonic() - started)

    def _recover(self) -> None:
        """Take back what a killed process left, apply changed rules, publish what is stored."""
        now = utc_now()
        if self._engine.dialect.name == "sqlite":
            # This process holds the only service lock, so every lease left is a dead one's.
            released = self._repository.release_dead_claims(now, lambda _owner: True)
        else:
            released = self._repository.release_dead_claims(now, gone_from_this_host)
        if released:
            log.info("leases_released", feeds=released)
        prepare(self._repository, self._matcher, now)
        export_all(self._settings, self._repository)

    def _schedule_jobs(self) -> None:
        assert self._scheduler is not None
        add = self._scheduler.add_job
        now = utc_now()
        poll = self._settings.fetch.poll.total_seconds()
        add(
            self._job(self.fetch_due),
            IntervalTrigger(seconds=poll),
            id="fetch",
            next_run_time=now,
            max_instances=2,  # a poll during a long pass returns at once, not as a warning
        )
        readers = self._settings.all_subscribers
        for number, reader in enumerate(readers, start=1):
            add(
                self._job(self.send_digests),
                cron_trigger(reader.schedule, reader.timezone),
                args=[[reader.email]],
                id=f"{READER_DIGEST_JOB}{number}",  # not the address: ids show in /healthz
            )
        if readers:
            add(self._job(self.send_digests), id="digest-catch-up", next_run_time=now)
        if self._subscribing is not None:  # readers can subscribe on the page
            add(
                self._job(self.send_readers_digests),
                IntervalTrigger(seconds=READERS_EVERY.total_seconds()),
                id="digest-readers",
                next_run_time=now,
            )
        if readers or self._subscribing is not None:
            add(
                self._job(self.send_digests),
                IntervalTrigger(seconds=RESEND_EVERY.total_seconds()),
                kwargs={"resend_only": True},
                id="digest-resend",
            )

    def _next_digest(self) -> str | None:
        """When the next scheduled digest goes out, for the start-up line."""
        if self._scheduler is None:
            return None
        times = [
            job.next_run_time
            for job in self._scheduler.get_jobs()
            if job.id.startswith(READER_DIGEST_JOB) and job.next_run_time
        ]
        return min(times).isoformat() if times else None

    def _job(self, work: Callable[..., None]) -> Callable[..., None]:
        """`work` as a job: skipped once stopping, counted while running, never raising."""

        def job(*args: Any, **kwargs: Any) -> None:
            if self.stopping.is_set():
                return
            with self._idle:
                self._running_jobs += 1
            try:
                work(*args, **kwargs)
            except Exception:
                log.exception("job_failed", job=work.__name__)
            finally:
                with self._idle:
                    self._running_jobs -= 1
                    self._idle.notify_all()

        job.__name__ = work.__name__
        return job

    def _apply(self, settings: Settings) -> None:
        """Make `settings` the ones every job and page from now on works with."""
        self._settings = settings
        self._matcher = build_matcher(settings)
        mailer = Mailer(settings.smtp, self._environ)
        self._digests = DigestSender(settings, self._repository, self._outbox, mailer, self._tokens)
        self._subscribing = (
            Subscribing(self._subscriptions, self._tokens, mailer)
            if settings.digest.sender
            else None
        )

    def _announce(self) -> None:
        """Tell `feeds add` and friends that this process runs with this config."""
        assert self._config_file is not None
        self._registry.announce(self.owner, self._config_file, utc_now())

    def _site(self) -> Starlette:
        return create_app(
            self._repository,
            self._outbox,
            self._settings,
            metrics=self.metrics,
            scheduler_health=self.health,
            subscribing=self._subscribing,
        )

    def _http_server(self) -> uvicorn.Server:
        self._app = _CurrentApp(self._site())
        server = self._settings.server
        return uvicorn.Server(server_config(self._app, server.host, server.port))

    def _on_signal(self, signum: int, _frame: FrameType | None) -> None:
        # Only an assignment: the handler runs between any two bytecodes of the main thread,
        # which may hold the very lock that logging or Event.set() would take (a SIGTERM
        # arriving as `run` entered Event.wait() once left a process deaf to it).
        self._signalled = signum

    def _shut_down(self) -> None:
        self.stopping.set()
        if self._scheduler is not None and self._scheduler.running:
            self._scheduler.shutdown(wait=False)
        timeout = self._settings.service.shutdown_timeout.total_seconds()
        with self._idle:
            finished = self._idle.wait_for(lambda: self._running_jobs == 0, timeout=timeout)
        if self._config_file is not None:
            self._registry.forget(self.owner)
        self._engine.dispose()
        if not finished:
            # Job threads cannot be interrupted; whatever they had not committed is rolled back
            # by the database, and their leases are taken back at the next start.
            log.warning("stopped_with_work_running", after_seconds=timeout)
            logging.shutdown()
            os._exit(0)
        log.info("stopped", owner=self.owner)


class _CurrentApp:
    """The site as an ASGI app uvicorn keeps for its whole life, serving whichever app the
    latest config built (a reload swaps it; requests under way finish on the old one)."""

    def __init__(self, app: Starlette) -> None:
        self.current = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        await self.current(scope, receive, send)
