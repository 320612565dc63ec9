"""The `aggregator` command: parse arguments, call the pipeline or the store, print results.

Exit codes (product contract): 0 success, 1 runtime failure, 2 usage or configuration error.
Feeds that fail during a fetch are a warning in the summary, not a failure of the command.
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import signal
import sys
import zoneinfo
from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

import click
import uvicorn
from pydantic import ValidationError
from sqlalchemy import Engine
from sqlalchemy.exc import SQLAlchemyError

from aggregator import __version__, logs
from aggregator.clock import utc_now
from aggregator.config import (
    EMAIL_ADDRESS,
    FeedSettings,
    Settings,
    Subscriber,
    TopicSettings,
    config_path,
    load_settings,
)
from aggregator.config_edit import add_feeds, remove_feed
from aggregator.errors import AggregatorError, ConfigError, StoreUnavailableError
from aggregator.evaluate import by_why, evaluate, read_labelled
from aggregator.match import FeedContext, TopicRule, build_matcher
from aggregator.models import StoryRow
from aggregator.opml import Exported, name_for, read_opml, reader_urls, write_opml
from aggregator.pipeline.check import CheckReport, check_feed
from aggregator.pipeline.fetch_pass import FeedReport, fetch_feeds, fetch_lease
from aggregator.pipeline.prepare import prepare, stored_item_matcher
from aggregator.publish.digest import render_html, render_text
from aggregator.publish.export import export_all, export_one
from aggregator.publish.feeds import FORMATS, Format
from aggregator.publish.mailer import Mailer
from aggregator.publish.readers import FREQUENCIES, digest_readers, signing_tokens
from aggregator.publish.sending import DigestSender, PreparedDigest
from aggregator.publish.why import matched_words, why_shown
from aggregator.redact import redacted
from aggregator.service import Service
from aggregator.sources.rss import require_safe_expat
from aggregator.store import Outbox, Repository
from aggregator.store.database import (
    check_schema_current,
    create_database_engine,
    gone_from_this_host,
    this_process,
    upgrade_to_head,
)
from aggregator.store.search import query_words
from aggregator.store.services import ServiceRegistry
from aggregator.store.subscribers import Choice, SubscriberRecord, Subscriptions
from aggregator.terminal import print_table, progress
from aggregator.web import create_app, serve_until_stopped, server_config
from aggregator.web.subscribe import subscribing

log = logs.get_logger("aggregator.cli")
PREVIEW_READER = "reader@localhost"  # whom a preview is for when no subscriber is configured


class _Failure(click.ClickException):
    """An AggregatorError on its way out, with the exit code the contract gives it."""

    def __init__(self, error: AggregatorError) -> None:
        super().__init__(str(error))
        self.exit_code = 2 if isinstance(error, ConfigError) else 1  # type: ignore[misc]


class _Commands(click.Group):
    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except StoreUnavailableError as error:
            # Locked, unreachable, full: what was committed stays; the command can be re-run.
            raise _Failure(
                AggregatorError(f"database error, nothing half-done was kept: {error}")
            ) from error
        except AggregatorError as error:
            raise _Failure(error) from error


@dataclass
class _App:
    """What every command shares: the config and the database, opened only when a command needs
    them and closed when it ends."""

    config_file: Path
    verbose: int = 0
    _settings: Settings | None = field(default=None, repr=False)
    _engine: Engine | None = field(default=None, repr=False)

    @property
    def settings(self) -> Settings:
        if self._settings is None:
            self._settings = load_settings(self.config_file)
        return self._settings

    @property
    def engine(self) -> Engine:
        if self._engine is None:
            database = self.settings.database
            self._engine = create_database_engine(database.url, database.busy_timeout)
        return self._engine

    def warn_about_settings(self) -> None:
        """Log what in the config works but should be otherwise (before fetching)."""
        for key, why in self.settings.warnings():
            log.warning("config_warning", key=key, reason=why)

    def repository(self) -> Repository:
        """The store, checked to be at the current schema and synced with the config's feeds."""
        check_schema_current(self.engine)
        repository = Repository(self.engine)
        repository.sync_feeds(self.settings.feeds)
        self.subscriptions().sync_config(
            [reader.email for reader in self.settings.all_subscribers], utc_now()
        )
        return repository

    def subscriptions(self) -> Subscriptions:
        return Subscriptions(self.engine)

    def topic(self, topic_id: str) -> TopicSettings:
        """The configured topic `topic_id`; a ConfigError lists the ids there are."""
        for topic in self.settings.topics:
            if topic.id == topic_id:
                return topic
        ids = ", ".join(topic.id for topic in self.settings.topics) or "none"
        raise ConfigError(f"no topic with id {topic_id!r} (topics: {ids})")

    def close(self) -> None:
        if self._engine is not None:
            self._engine.dispose()


pass_app = click.make_pass_decorator(_App)


@click.group(cls=_Commands, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="aggregator")
@click.option(
    "--config",
    "config_file",
    type=click.Path(dir_okay=False, path_type=Path),
    help="Config file (default: $AGGREGATOR_CONFIG, else ./config.toml).",
)
@click.option("-v", "--verbose", count=True, help="More log lines (-vv for debug).")
@click.pass_context
def cli(ctx: click.Context, config_file: Path | None, verbose: int) -> None:
    """Research news on CAR T-cell therapy in multiple sclerosis: fetch, match, publish."""
    _configure_logging(verbose)
    require_safe_expat()
    ctx.obj = _App(config_path(config_file), verbose)
    ctx.call_on_close(ctx.obj.close)


def main() -> None:
    cli(prog_name="aggregator")


@cli.command()
@pass_app
def init(app: _App) -> None:
    """Create the database, or upgrade it to this version's schema."""
    before, after = upgrade_to_head(app.engine)
    repository = app.repository()
    app.subscriptions().secret_key()  # made now, unless AGGREGATOR_SECRET_KEY is set
    if before == after:
        click.echo(f"database is up to date (revision {after})")
    else:
        click.echo(f"database {'created' if before is None else 'upgraded'} at revision {after}")
    if titled := repository.title_untitled_items(utc_now()):
        click.echo(f"gave {titled} untitled items a title from their text")
    if indexed := repository.index_unindexed_items():
        click.echo(f"indexed {indexed} stored items for search")


@cli.command()
@click.option(
    "--feed", "names", multiple=True, metavar="NAME", help="Fetch this feed now (repeatable)."
)
@click.option("--all", "fetch_all", is_flag=True, help="Fetch every feed, due or not.")
@pass_app
def fetch(app: _App, names: tuple[str, ...], fetch_all: bool) -> None:
    """Fetch due feeds once, and store what is new or changed."""
    for name in names:
        app.settings.feed(name)
    app.warn_about_settings()
    repository = app.repository()
    matcher = build_matcher(app.settings)
    prepared = prepare(repository, matcher, utc_now())
    if prepared.grouped:
        click.echo(f"grouped {prepared.grouped} items stored before stories existed into stories")
    if changes := prepared.changes:
        added = sum(change.added for change in changes)
        click.echo(
            f"matching rules applied to stored items: {added} topic matches added, "
            f"{len(changes) - added} removed"
        )
    # Claimed like `run` claims them, so a fetch overlapping the service (or another fetch)
    # leaves feeds in another process's hands to it instead of storing them twice.
    now, owner, wanted = utc_now(), this_process(), names or None
    # A fetch on this machine that died (killed, or its disk full) left leases: take them back.
    repository.release_dead_claims(now, gone_from_this_host)
    candidates = repository.feeds_to_fetch(now, names=wanted, include_not_due=fetch_all)
    feeds = repository.claim_feeds(
        now,
        lease_until=now + fetch_lease(app.settings.fetch, len(candidates)),
        owner=owner,
        names=wanted,
        include_not_due=fetch_all,
    )
    if busy := sorted({feed.name for feed in candidates} - {feed.name for feed in feeds}):
        click.echo(f"left to the process fetching them now: {', '.join(busy)}")
    reports: list[FeedReport] = []
    if feeds:
        with progress(len(feeds), "Fetching feeds") as advance:
            reports = asyncio.run(
                fetch_feeds(
                    app.settings, repository, matcher, feeds, on_feed_done=lambda _: advance()
                )
            )
        _print_fetch_summary(reports)
    elif not busy:
        click.echo("no feeds are due (use --all to fetch every feed now)")
    if changes or any(report.new or report.updated for report in reports):
        written = export_all(app.settings, repository)
        click.echo(f"updated {len(written)} feed files in {app.settings.output.dir}")


@cli.command()
@click.option("--format", "fmt", type=click.Choice(FORMATS), help="Only this format.")
@click.option("--topic", help="Only this topic's feed (default: all topics, and each topic).")
@click.option(
    "--output",
    type=click.Path(dir_okay=False, path_type=Path),
    help="Write one feed to this file (format from --format or the suffix: .xml .atom .json).",
)
@pass_app
def export(app: _App, fmt: Format | None, topic: str | None, output: Path | None) -> None:
    """Write the output feeds (RSS, Atom, JSON Feed) to [output] dir, or one feed to --output."""
    if topic is not None:
        app.topic(topic)
    repository = app.repository()
    if output is not None:
        chosen = fmt or _SUFFIX_FORMATS.get(output.suffix.lower())
        if chosen is None:
            raise ConfigError(
                f"--output {output}: name a .xml, .rss, .atom or .json file, or give --format"
            )
        export_one(app.settings, repository, chosen, topic, output)
        click.echo(f"wrote {output}")
        return
    formats = (fmt,) if fmt else FORMATS
    written = export_all(app.settings, repository, topic=topic, formats=formats)
    click.echo(f"updated {len(written)} feed files in {app.settings.output.dir}")


_SUFFIX_FORMATS: dict[str, Format] = {
    ".xml": "rss",
    ".rss": "rss",
    ".atom": "atom",
    ".json": "json",
}


@cli.command()
@click.option("--dry-run", is_flag=True, help="Build the digests and report them; send nothing.")
@click.option(
    "--output",
    type=click.Path(dir_okay=False, path_type=Path),
    help="Write the digest to FILE (.eml, .html or .txt by suffix) instead of sending it.",
)
@click.option(
    "--to",
    "recipient",
    metavar="ADDR",
    help="Send a test copy to ADDR instead of the subscribers; nothing is recorded.",
)
@click.option("--subscriber", "email", metavar="EMAIL", help="Only this subscriber's digest.")
@pass_app
def digest(
    app: _App, dry_run: bool, output: Path | None, recipient: str | None, email: str | None
) -> None:
    """Send each subscriber the stories no digest has brought them yet, once per scheduled run."""
    preview = dry_run or output is not None or recipient is not None
    if recipient is not None and not EMAIL_ADDRESS.fullmatch(recipient):
        raise ConfigError(f"--to: expected an e-mail address, got {recipient!r}")
    if output is not None and output.suffix.lower() not in _DIGEST_WRITERS:
        raise ConfigError(f"--output: expected a .eml, .html or .txt file, got {str(output)!r}")
    repository = app.repository()
    subscriptions = app.subscriptions()
    readers = _digest_readers(
        app.settings,
        digest_readers(app.settings, subscriptions),
        email,
        preview=preview,
        recipient=recipient,
    )
    if output is not None and len(readers) > 1:
        raise ConfigError("--output writes one digest: choose whose with --subscriber EMAIL")
    sender = DigestSender(
        app.settings,
        repository,
        Outbox(app.engine),
        Mailer(app.settings.smtp, os.environ),
        signing_tokens(subscriptions, os.environ),
    )
    now = utc_now()
    if preview:
        for reader in readers:
            prepared = sender.prepare(reader, now)
            click.echo(
                f"{reader.email}: {prepared.content.count} stories, "
                f"subject {prepared.envelope.subject!r}"
            )
            if output is not None:
                output.write_bytes(_DIGEST_WRITERS[output.suffix.lower()](prepared))
                click.echo(f"wrote {output}")
            if recipient is not None and not dry_run:
                sender.send_copy(prepared, recipient)
                click.echo(f"sent a copy to {recipient}")
        return
    reports = sender.send_all(readers, now)
    for report in reports:
        click.echo(_DIGEST_OUTCOMES[report.outcome].format(report=report))
    failed = [report for report in reports if report.outcome == "failed"]
    if failed:
        raise AggregatorError(f"{len(failed)} digest(s) not sent; the next run tries again")


_DIGEST_WRITERS: dict[str, Callable[[PreparedDigest], bytes]] = {
    ".eml": lambda prepared: prepared.message,
    ".html": lambda prepared: render_html(prepared.content).encode("utf-8"),
    ".txt": lambda prepared: render_text(prepared.content).encode("utf-8"),
}
_DIGEST_OUTCOMES: dict[str, str] = {
    "sent": "{report.subscriber}: sent {report.stories} stories as {report.message_id}",
    "resent": "{report.subscriber}: resent unsent digest {report.message_id} "
    "({report.stories} stories)",
    "failed": "{report.subscriber}: NOT SENT, tried again on the next run: {report.error}",
    "empty": "{report.subscriber}: no new stories since the last digest; nothing sent",
    "already-sent": "{report.subscriber}: this run's digest was already sent ({report.message_id})",
    "busy": "{report.subscriber}: another process is sending {report.message_id}; left to it",
    "not-yet": "{report.subscriber}: subscribed after this run; their first digest is the next",
}


def _digest_readers(
    settings: Settings,
    everyone: list[Subscriber],
    email: str | None,
    *,
    preview: bool,
    recipient: str | None,
) -> list[Subscriber]:
    """The subscribers to work on; a preview with none configured shows every topic's digest."""
    readers = everyone
    if email is not None:
        readers = [reader for reader in readers if reader.email.lower() == email.lower()]
        if not readers:
            raise ConfigError(
                f"no subscriber {email!r} (see `aggregator subscribers list` for who reads)"
            )
    if readers:
        return readers
    if not preview:
        raise ConfigError(
            "nobody to send a digest to: add addresses to digest.to or [[subscribers]] "
            "in the config, or `aggregator subscribers add`"
        )
    return [settings.reader_of_everything(recipient or PREVIEW_READER)]


@cli.command()
@click.option("--no-server", is_flag=True, help="Only the scheduler: fetch, publish, send.")
@click.option("--no-scheduler", is_flag=True, help="Only the HTTP server.")
@pass_app
def run(app: _App, no_server: bool, no_scheduler: bool) -> None:
    """The background service: scheduled fetches and digests, and the HTTP server."""
    if no_server and no_scheduler:
        raise ConfigError("--no-server and --no-scheduler together leave nothing to run")
    if app.verbose == 0:
        logging.getLogger().setLevel(app.settings.service.log_level.upper())
    settings = app.settings
    app.repository()  # the schema is current and the feeds follow the config
    log.info(
        "starting",
        version=__version__,
        config=str(app.config_file),
        database=redacted(settings.database.url),
        feeds=len(settings.feeds),
        topics=len(settings.topics),
        subscribers=len(digest_readers(settings, app.subscriptions())),
    )
    app.warn_about_settings()
    Service(
        settings,
        app.engine,
        scheduler=not no_scheduler,
        server=not no_server,
        config_file=app.config_file,
    ).run()


@cli.command()
@click.option("--host", help="Address to listen on (default: [server] host).")
@click.option("--port", type=click.IntRange(1, 65535), help="Port (default: [server] port).")
@pass_app
def serve(app: _App, host: str | None, port: int | None) -> None:
    """Serve the output feeds and /healthz over HTTP until interrupted."""
    repository = app.repository()
    export_all(app.settings, repository)
    server = app.settings.server
    # uvicorn shuts down gracefully on SIGTERM/SIGINT, then raises the signal again for the
    # handler it found; ours turns that into the clean exit 0 the contract promises.
    for stop_signal in (signal.SIGTERM, signal.SIGINT):
        signal.signal(stop_signal, _exit_cleanly)
    site = create_app(
        repository,
        Outbox(app.engine),
        app.settings,
        subscribing=subscribing(app.settings, app.engine, os.environ),
    )
    serve_until_stopped(
        uvicorn.Server(server_config(site, host or server.host, port or server.port))
    )


def _exit_cleanly(_signal: int, _frame: object) -> None:
    raise SystemExit(0)


@cli.group()
def feeds() -> None:
    """List, add, remove and check feeds; import and export OPML."""


@feeds.command("list")
@click.option("--json", "as_json", is_flag=True, help="Print a JSON array.")
@pass_app
def feeds_list(app: _App, as_json: bool) -> None:
    """Every feed with its fetch state."""
    rows = app.repository().list_feeds()
    if as_json:
        _print_json([asdict(row) for row in rows])
        return
    print_table(
        ["feed", "status", "items", "last fetched", "next fetch", "error"],
        [
            [
                row.name,
                row.status,
                str(row.items),
                _when(row.last_fetched_at),
                _when(row.next_fetch_at),
                row.last_error or "",
            ]
            for row in rows
        ],
    )


@feeds.command("add")
@click.argument("name")
@click.argument("url")
@click.option("--type", "feed_type", default="rss", show_default=True, help="Source type.")
@click.option("--interval", help="How often to fetch, e.g. 2h (default: [fetch] interval).")
@click.option("--assume", multiple=True, metavar="GROUP", help="Term group every item matches.")
@click.option("--topic", "topics", multiple=True, metavar="ID", help="Only these topics.")
@pass_app
def feeds_add(
    app: _App,
    name: str,
    url: str,
    feed_type: str,
    interval: str | None,
    assume: tuple[str, ...],
    topics: tuple[str, ...],
) -> None:
    """Add a feed to config.toml (comments and layout are kept)."""
    feed: dict[str, Any] = {"name": name, "url": url, "type": feed_type}
    if interval:
        feed["interval"] = interval
    if assume:
        feed["assume"] = assume
    if topics:
        feed["topics"] = topics
    add_feeds(app.config_file, [feed])
    click.echo(f"added feed {name} ({url}) to {app.config_file}")
    _say_who_applies_it(app)


@feeds.command("resume")
@click.argument("name")
@pass_app
def feeds_resume(app: _App, name: str) -> None:
    """Fetch a paused feed again (one failing too long, or gone), starting with a clean slate."""
    app.settings.feed(name)
    if not app.repository().resume_feed(name):
        raise ConfigError(f"feed {name!r} is not paused")
    click.echo(f"resumed feed {name}: it is fetched at the next run")


@feeds.command("remove")
@click.argument("name")
@pass_app
def feeds_remove(app: _App, name: str) -> None:
    """Remove a feed from config.toml; items already stored are kept."""
    remove_feed(app.config_file, name)
    click.echo(f"removed feed {name} from {app.config_file}")
    _say_who_applies_it(app)


@feeds.command("check")
@click.argument("names", nargs=-1)
@pass_app
def feeds_check(app: _App, names: tuple[str, ...]) -> None:
    """Fetch and parse feeds without storing anything, to see that they work."""
    chosen = [app.settings.feed(name) for name in names] or list(app.settings.feeds)
    reports = asyncio.run(_check_all(app.settings, chosen))
    print_table(
        ["feed", "status", "items", "title or error"],
        [[r.name, r.status, str(r.items), r.error or r.title] for r in reports],
    )
    if failing := [report.name for report in reports if report.error is not None]:
        raise AggregatorError(
            f"{len(failing)} of {len(reports)} feeds failing: {', '.join(failing)}"
        )


async def _check_all(settings: Settings, feeds: Sequence[FeedSettings]) -> list[CheckReport]:
    checks = (check_feed(settings, feed.name, feed.url, feed.type) for feed in feeds)
    return list(await asyncio.gather(*checks))


@feeds.command("import-opml")
@click.argument("file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@pass_app
def feeds_import_opml(app: _App, file: Path) -> None:
    """Add every feed of an OPML file that is not already configured, with its title, and its
    folder as its kind (or a tag)."""
    known_urls = {feed.url for feed in app.settings.feeds}
    taken = {feed.name for feed in app.settings.feeds}
    additions: list[dict[str, Any]] = []
    already = 0
    for outline in read_opml(file.read_bytes()):
        if outline.url in known_urls:
            already += 1
            continue
        feed: dict[str, Any] = {
            "name": name_for(outline.title, taken),
            "url": outline.url,
            "type": "rss",
            "title": outline.title,
        }
        if outline.kind:
            feed["kind"] = outline.kind
        if outline.tags:
            feed["tags"] = outline.tags
        if problem := _feed_problem(feed):
            log.warning("opml_outline_skipped", outline=outline.title, url=outline.url, why=problem)
            click.echo(f"skipped {outline.title!r} ({outline.url}): {problem}", err=True)
            continue
        taken.add(feed["name"])
        known_urls.add(outline.url)
        additions.append(feed)
    if additions:
        add_feeds(app.config_file, additions)
    click.echo(
        f"imported {len(additions)} feeds from {file} into {app.config_file}"
        + (f"; {already} {'was' if already == 1 else 'were'} already there" if already else "")
    )
    if additions:
        _say_who_applies_it(app)


def _feed_problem(feed: Mapping[str, Any]) -> str | None:
    """Why `feed` would not be a valid [[feeds]] table, in the config's own words."""
    try:
        FeedSettings.model_validate(feed)
    except ValidationError as error:
        first = error.errors()[0]
        return str(first["msg"]).removeprefix("Value error, ")
    return None


@feeds.command("export-opml")
@click.option(
    "--output", type=click.Path(dir_okay=False, path_type=Path), help="File (default: stdout)."
)
@pass_app
def feeds_export_opml(app: _App, output: Path | None) -> None:
    """Write the configured feeds as OPML for any feed reader: titles, sites, folders by kind;
    API-only sources are left out with a comment."""
    titles = _stored_titles(app)
    exported = [
        Exported(
            name=feed.name,
            title=feed.title or titles.get(feed.name) or feed.name,
            url=feed.url,
            type=feed.type,
            kind=feed.kind,
            tags=feed.tags,
        )
        for feed in app.settings.feeds
    ]
    document = write_opml(exported, title=app.settings.output.title, now=utc_now())
    readable = sum(1 for feed in exported if reader_urls(feed) is not None)
    if output is None:
        click.echo(document.decode(), nl=False)
    else:
        output.write_bytes(document)
    left_out = len(exported) - readable
    click.echo(
        f"wrote {readable} feeds"
        + (f" to {output}" if output else "")
        + (f"; left out {left_out} API-only sources (see the comments)" if left_out else ""),
        err=True,
    )


def _stored_titles(app: _App) -> dict[str, str]:
    """What each feed calls itself, from the database when there is one yet."""
    try:
        return {row.name: row.title for row in app.repository().list_feeds() if row.title}
    except (AggregatorError, SQLAlchemyError):
        return {}


@cli.group()
def stories() -> None:
    """List the stories collected so far."""


@stories.command("list")
@click.option("--topic", help="Only stories about this topic id.")
@click.option("--all", "include_unmatched", is_flag=True, help="Include stories matching no topic.")
@click.option("--json", "as_json", is_flag=True, help="Print a JSON array.")
@click.option("--limit", default=50, show_default=True, type=click.IntRange(min=1))
@pass_app
def stories_list(
    app: _App, topic: str | None, include_unmatched: bool, as_json: bool, limit: int
) -> None:
    """The newest stories first, with their sources and why they matched."""
    if topic is not None:
        app.topic(topic)
    rows = app.repository().list_stories(limit, topic=topic, matched_only=not include_unmatched)
    _print_stories(rows, as_json)


@stories.command("search")
@click.argument("query")
@click.option("--topic", help="Only stories about this topic id.")
@click.option("--json", "as_json", is_flag=True, help="Print a JSON array.")
@click.option("--limit", default=20, show_default=True, type=click.IntRange(min=1))
@pass_app
def stories_search(app: _App, query: str, topic: str | None, as_json: bool, limit: int) -> None:
    """Stories whose words, identifiers (NCT, DOI, PMID) or sources match QUERY, best first:
    every word must be there (as on the page's search)."""
    if topic is not None:
        app.topic(topic)
    if not query_words(query):
        raise ConfigError(f"nothing to search for in {query!r}: give a word or an identifier")
    _print_stories(app.repository().list_stories(limit, topic=topic, search=query), as_json)


def _print_stories(rows: Sequence[StoryRow], as_json: bool) -> None:
    if as_json:
        _print_json([_story_json(row) for row in rows])
        return
    print_table(
        ["id", "published", "sources", "topics", "title", "why"],
        [
            [
                str(row.id),
                _when(row.published) + ("*" if row.published_estimated else ""),
                ", ".join(dict.fromkeys(source.feed for source in row.sources)),
                ",".join(match.topic for match in row.matches),
                row.title[:80],
                ", ".join(matched_words(row.matches)),
            ]
            for row in rows
        ],
    )


@stories.command("show")
@click.argument("story_id", type=int)
@click.option("--json", "as_json", is_flag=True, help="Print a JSON object.")
@pass_app
def stories_show(app: _App, story_id: int, as_json: bool) -> None:
    """A story's sources, and why they were taken for one story."""
    found = app.repository().show_story(story_id)
    if found is None:
        raise click.BadParameter(f"no story with id {story_id}", param_hint="STORY_ID")
    row, reasons = found
    if as_json:
        _print_json(_story_json(row) | {"merged": [asdict(reason) for reason in reasons]})
        return
    click.echo(f"#{row.id} {row.title}")
    click.echo(f"link: {row.link or '-'}")
    estimated = " (no source gave a date: first seen)" if row.published_estimated else ""
    click.echo(f"published {_when(row.published)}{estimated}; first seen {_when(row.first_seen)}")
    if row.statuses:
        history = " → ".join(f"{seen.status} ({seen.as_of:%Y-%m-%d})" for seen in row.statuses)
        click.echo(f"status: {history}")
    click.echo(f"topics: {', '.join(match.topic for match in row.matches) or 'none'}")
    shown = why_shown(row.matches)
    click.echo("why it matched:" if shown else "why it matched: -")
    for why in shown:
        click.echo(f"  {why.topic}: {why.text}")
    click.echo(f"sources ({len(row.sources)}):")
    for source in row.sources:
        click.echo(f"  [{source.item_id}] {source.feed}: {source.title} <{source.link or '-'}>")
    if reasons:
        click.echo("why these are one story:")
    for reason in reasons:
        click.echo(f"  [{reason.item_id}] and [{reason.other_item_id}]: {reason.reason}")


def _story_json(row: StoryRow) -> dict[str, object]:
    return {
        "id": row.id,
        "title": row.title,
        "link": row.link,
        "published": row.published,
        "published_estimated": row.published_estimated,
        "first_seen": row.first_seen,
        "news_at": row.news_at,
        "statuses": [{"status": seen.status, "as_of": seen.as_of} for seen in row.statuses],
        "summary": row.summary,
        "topics": [match.topic for match in row.matches],
        "sources": [
            {
                "name": s.feed,
                "kind": s.kind,
                "title": s.title,
                "link": s.link,
                "published": s.published,
            }
            for s in row.sources
        ],
        "matches": [asdict(match) for match in row.matches],
    }


@cli.group()
def subscribers() -> None:
    """List, add and remove digest readers (those in config.toml are listed, not changed)."""


@subscribers.command("list")
@click.option("--json", "as_json", is_flag=True, help="Print a JSON array.")
@pass_app
def subscribers_list(app: _App, as_json: bool) -> None:
    """Every reader with an address: from the page, added here, or in the config."""
    app.repository()  # the config's readers have their rows
    records = app.subscriptions().listed()
    if as_json:
        _print_json([_subscriber_json(record) for record in records])
        return
    print_table(
        ["email", "state", "managed by", "topics", "frequency", "time zone", "since"],
        [
            [
                record.email or "",
                record.state,
                record.source,
                ", ".join(record.topics) or "all",
                record.frequency,
                record.timezone,
                _when(record.confirmed_at or record.created_at),
            ]
            for record in records
        ],
    )


@subscribers.command("add")
@click.argument("email")
@click.option("--topic", "topics", multiple=True, metavar="ID", help="Only these topics.")
@click.option("--frequency", type=click.Choice(FREQUENCIES), default="weekly", show_default=True)
@click.option("--timezone", help="Their time zone (default: [digest] timezone).")
@pass_app
def subscribers_add(
    app: _App, email: str, topics: tuple[str, ...], frequency: str, timezone: str | None
) -> None:
    """Add a reader who asked you to, active at once (no confirmation email)."""
    if not EMAIL_ADDRESS.fullmatch(email):
        raise ConfigError(f"expected an e-mail address, got {email!r}")
    for topic in topics:
        app.topic(topic)
    zone = timezone or app.settings.digest.timezone
    if zone not in zoneinfo.available_timezones():
        raise ConfigError(f"--timezone: unknown time zone {zone!r}")
    app.repository()
    record = app.subscriptions().add(email, Choice(topics, frequency, zone), utc_now())
    click.echo(f"Added {email} ({frequency}, {', '.join(record.topics) or 'all topics'})")


@subscribers.command("remove")
@click.argument("email")
@pass_app
def subscribers_remove(app: _App, email: str) -> None:
    """Unsubscribe a reader now and delete their address (only its hash is kept)."""
    app.repository()
    subscriptions = app.subscriptions()
    record = subscriptions.find(email)
    if record is None or record.state == "unsubscribed":
        raise ConfigError(f"no subscriber {email!r}")
    if record.source == "config":
        raise ConfigError(f"{email} is listed in {app.config_file}: remove it there")
    subscriptions.unsubscribe(record.id)
    click.echo(f"Removed {email}; its address is deleted")


def _subscriber_json(record: SubscriberRecord) -> dict[str, object]:
    return {
        "id": record.id,
        "email": record.email,
        "state": record.state,
        "source": record.source,
        "topics": list(record.topics),
        "frequency": record.frequency,
        "timezone": record.timezone,
        "created_at": record.created_at,
        "confirmed_at": record.confirmed_at,
    }


@cli.group()
def topics() -> None:
    """Preview rule changes and measure them against labelled items."""


@topics.command("test")
@click.option("--topic", help="Only this topic id.")
@pass_app
def topics_test(app: _App, topic: str | None) -> None:
    """Show what the rules in the config would add to and remove from topics, without applying."""
    if topic is not None:
        app.topic(topic)
    matcher = build_matcher(app.settings)
    repository = app.repository()
    changes = [
        change
        for change in repository.preview_rematch(stored_item_matcher(repository, matcher))
        if topic is None or change.topic == topic
    ]
    for change in changes:
        click.echo(
            f"{'+' if change.added else '-'} {change.topic}  #{change.item_id}  {change.title}"
        )
    added = sum(change.added for change in changes)
    click.echo(
        f"{added} would be added, {len(changes) - added} removed "
        "(applied by the next `aggregator fetch`)"
    )


@topics.command("evaluate")
@click.argument("file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--topic", help="Topic id (default: car-t-ms, else the first topic).")
@click.option(
    "--assume",
    "assumptions",
    multiple=True,
    metavar="FEED=GROUP",
    help="Every item of FEED matches term group GROUP (repeatable).",
)
@pass_app
def topics_evaluate(app: _App, file: Path, topic: str | None, assumptions: tuple[str, ...]) -> None:
    """Precision and recall of a topic on labelled items (JSON lines, as relevance_dev.jsonl)."""
    settings = app.settings
    if not settings.topics:
        raise ConfigError("no [[topics]] configured", path=str(app.config_file))
    topic_id = topic or (
        "car-t-ms" if "car-t-ms" in {t.id for t in settings.topics} else settings.topics[0].id
    )
    chosen = app.topic(topic_id)
    matcher = build_matcher(settings, feeds=_feed_contexts(assumptions, settings.terms))
    rule = TopicRule(chosen.id, chosen.all, chosen.any, chosen.none)
    result = evaluate(matcher, read_labelled(file), rule)
    click.echo(f"topic {topic_id}: {result.total} items, {result.relevant} labelled relevant")
    click.echo(f"precision {_ratio(result.precision)}  recall {_ratio(result.recall)}")
    click.echo(
        f"true positives {result.true_positives}, false positives {result.false_positives}, "
        f"false negatives {result.false_negatives}, true negatives {result.true_negatives}"
    )
    if not result.misclassified:
        click.echo("misclassified: none")
        return
    click.echo("errors by why:")
    for why, mistakes in by_why(result.misclassified).items():
        click.echo(f"  {len(mistakes)} x {why}")
        for mistake in mistakes:
            click.echo(f"      {mistake.item.id} [{mistake.item.feed}] {mistake.item.title}")


def _feed_contexts(
    assumptions: Sequence[str], terms: Mapping[str, object]
) -> dict[str, FeedContext]:
    groups: dict[str, list[str]] = {}
    for assumption in assumptions:
        feed, _, group = assumption.partition("=")
        if not feed or not group:
            raise click.BadParameter(
                f"expected FEED=GROUP, got {assumption!r}", param_hint="--assume"
            )
        if group not in terms:
            raise click.BadParameter(f"no [terms] group named {group!r}", param_hint="--assume")
        groups.setdefault(feed, []).append(group)
    return {feed: FeedContext(assume=tuple(names)) for feed, names in groups.items()}


def _ratio(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.3f}"


def _say_who_applies_it(app: _App) -> None:
    """After an edit of the config: whether a running service applies it now, or nobody yet."""
    try:
        running = ServiceRegistry(app.engine).running(app.config_file, utc_now())
    except (StoreUnavailableError, SQLAlchemyError):  # no database yet: nothing runs on it
        running = []
    if running:
        click.echo(f"the running service ({', '.join(running)}) applies this within seconds")
    else:
        click.echo(
            "no `aggregator run` uses this config now: the change applies when it starts "
            "(or at the next `aggregator fetch`)"
        )


def _configure_logging(verbose: int) -> None:
    # On a terminal the progress bar tells the story; elsewhere (cron, systemd) log lines do.
    quiet = sys.stderr.isatty() and verbose == 0
    logs.configure(
        logging.DEBUG if verbose > 1 else logging.WARNING if quiet else logging.INFO,
        requests=verbose > 0,
    )


def _print_fetch_summary(reports: Sequence[FeedReport]) -> None:
    print_table(
        ["feed", "status", "new", "updated", "error"],
        [[r.name, r.status, str(r.new), str(r.updated), r.error or ""] for r in reports],
    )
    failing = sum(1 for report in reports if report.error is not None)
    new = sum(report.new for report in reports)
    updated = sum(report.updated for report in reports)
    click.echo(f"{len(reports)} feeds fetched: {new} new items, {updated} updated", nl=False)
    if failing:
        click.secho(f"; warning: {failing} failing (see the error column)", fg="yellow", nl=False)
    click.echo()


def _print_json(value: object) -> None:
    click.echo(json.dumps(value, indent=2, ensure_ascii=False, default=_json_default))


def _json_default(value: object) -> str:
    if isinstance(value, datetime):
        return value.isoformat()
    raise TypeError(f"cannot serialise {type(value).__name__}")


def _when(moment: datetime | None) -> str:
    return moment.strftime("%Y-%m-%d %H:%M") if moment else "-"
