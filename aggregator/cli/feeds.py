"""`aggregator feeds ...`: the feeds in config.toml and their state.

`feeds check` loads the fetcher and the parsers (httpx, feedparser: a quarter of a second)
only when it runs, so that `feeds list`, the everyday command, does not wait for them.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import asdict
from pathlib import Path
from typing import Any

import click
from pydantic import TypeAdapter, ValidationError
from sqlalchemy.exc import SQLAlchemyError

from aggregator.cli.app import App, log, pass_app
from aggregator.cli.output import print_json, when
from aggregator.clock import utc_now
from aggregator.config import FeedSettings
from aggregator.config_edit import add_feeds, remove_feed
from aggregator.errors import AggregatorError, ConfigError, StoreUnavailableError
from aggregator.opml import Exported, name_for, read_opml, reader_urls, write_opml
from aggregator.store.services import ServiceRegistry
from aggregator.terminal import print_table


@click.group()
def feeds() -> None:
    """List, add, remove and check feeds; import and export OPML."""


@feeds.command("list")
@click.option("--json", "as_json", is_flag=True, help="Print a JSON array.")
@pass_app
def feeds_list(app: App, as_json: bool) -> None:
    """Every feed with its fetch state."""
    rows = app.repository().list_feeds()
    if as_json:
        print_json([asdict(row) for row in rows])
        return
    print_table(
        ["feed", "status", "items", "last fetched", "next fetch", "error"],
        [
            [
                row.name,
                row.status,
                str(row.items),
                when(row.last_fetched_at),
                when(row.next_fetch_at),
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
    app: App,
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
def feeds_resume(app: App, name: str) -> None:
    """Fetch a paused feed again (one failing too long, or gone), starting with a clean slate."""
    app.settings.feed(name)
    if not app.repository().resume_feed(name):
        raise ConfigError(f"feed {name!r} is not paused")
    click.echo(f"resumed feed {name}: it is fetched at the next run")


@feeds.command("remove")
@click.argument("name")
@pass_app
def feeds_remove(app: App, name: str) -> None:
    """Remove a feed from config.toml; items already stored are kept."""
    remove_feed(app.config_file, name)
    click.echo(f"removed feed {name} from {app.config_file}")
    _say_who_applies_it(app)


@feeds.command("check")
@click.argument("names", nargs=-1)
@pass_app
def feeds_check(app: App, names: tuple[str, ...]) -> None:
    """Fetch and parse feeds without storing anything, to see that they work."""
    from aggregator.pipeline.check import check_feeds

    chosen = [app.settings.feed(name) for name in names] or list(app.settings.feeds)
    reports = check_feeds(app.settings, chosen)
    print_table(
        ["feed", "status", "items", "title or error"],
        [[r.name, r.status, str(r.items), r.error or r.title] for r in reports],
    )
    if failing := [report.name for report in reports if report.error is not None]:
        raise AggregatorError(
            f"{len(failing)} of {len(reports)} feeds failing: {', '.join(failing)}"
        )


@feeds.command("import-opml")
@click.argument("file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@pass_app
def feeds_import_opml(app: App, file: Path) -> None:
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
        TypeAdapter(FeedSettings).validate_python(feed)
    except ValidationError as error:
        first = error.errors()[0]
        return str(first["msg"]).removeprefix("Value error, ")
    return None


@feeds.command("export-opml")
@click.option(
    "--output", type=click.Path(dir_okay=False, path_type=Path), help="File (default: stdout)."
)
@pass_app
def feeds_export_opml(app: App, output: Path | None) -> None:
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


def _stored_titles(app: App) -> dict[str, str]:
    """What each feed calls itself, from the database when there is one yet."""
    try:
        return {row.name: row.title for row in app.repository().list_feeds() if row.title}
    except (AggregatorError, SQLAlchemyError):
        return {}


def _say_who_applies_it(app: App) -> None:
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
