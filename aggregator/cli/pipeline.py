"""`fetch` and `export`: feeds in, feeds out."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from pathlib import Path

import click

from aggregator.cli.app import App, pass_app
from aggregator.clock import utc_now
from aggregator.errors import ConfigError
from aggregator.match import build_matcher
from aggregator.pipeline.fetch_pass import FeedReport, fetch_feeds, fetch_lease
from aggregator.pipeline.prepare import prepare
from aggregator.publish.export import export_all, export_one
from aggregator.publish.feeds import FORMATS, Format
from aggregator.store.database import gone_from_this_host, this_process
from aggregator.terminal import print_table, progress


@click.command()
@click.option(
    "--feed", "names", multiple=True, metavar="NAME", help="Fetch this feed now (repeatable)."
)
@click.option("--all", "fetch_all", is_flag=True, help="Fetch every feed, due or not.")
@pass_app
def fetch(app: App, names: tuple[str, ...], fetch_all: bool) -> None:
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


@click.command()
@click.option("--format", "fmt", type=click.Choice(FORMATS), help="Only this format.")
@click.option("--topic", help="Only this topic's feed (default: all topics, and each topic).")
@click.option(
    "--output",
    type=click.Path(dir_okay=False, path_type=Path),
    help="Write one feed to this file (format from --format or the suffix: .xml .atom .json).",
)
@pass_app
def export(app: App, fmt: Format | None, topic: str | None, output: Path | None) -> None:
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
