"""`fetch`: feeds in.

The output feeds are written after the pass, when it brought something, with the feed writers
(feedgen and lxml, 5 MB) imported then: a pass holds its bodies and entries, and with the
writers loaded beside them `fetch --all` peaked higher (bench/README.md).
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence

import click

from aggregator.cli.app import App, pass_app
from aggregator.clock import utc_now
from aggregator.match import Matcher, build_matcher
from aggregator.models import FeedState
from aggregator.pipeline.fetch_pass import FeedReport, fetch_feeds, fetch_lease
from aggregator.pipeline.prepare import prepare
from aggregator.store import Repository
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
    brought = _fetch_feeds_due(app, repository, matcher, names, fetch_all)
    if changes or brought:
        from aggregator.publish.export import export_all  # after the pass: see the docstring

        written = export_all(app.settings, repository)
        click.echo(f"updated {len(written)} feed files in {app.settings.output.dir}")


def _fetch_feeds_due(
    app: App, repository: Repository, matcher: Matcher, names: tuple[str, ...], fetch_all: bool
) -> bool:
    """Claim the feeds due (or named, or all), fetch them and print how each went; true if
    they brought new or updated items.

    What a pass holds for each feed (its state, its report) ends here, before the export
    loads the feed writers.
    """
    feeds, busy = _claim(app, repository, names, fetch_all)
    if busy:
        click.echo(f"left to the process fetching them now: {', '.join(busy)}")
    if not feeds:
        if not busy:
            click.echo("no feeds are due (use --all to fetch every feed now)")
        return False
    with progress(len(feeds), "Fetching feeds") as advance:
        reports = asyncio.run(
            fetch_feeds(app.settings, repository, matcher, feeds, on_feed_done=lambda _: advance())
        )
    _print_fetch_summary(reports)
    return any(report.new or report.updated for report in reports)


def _claim(
    app: App, repository: Repository, names: tuple[str, ...], fetch_all: bool
) -> tuple[list[FeedState], list[str]]:
    """The feeds this fetch takes, and the names of those due that another process holds.

    Claimed like `run` claims them, so a fetch overlapping the service (or another fetch)
    leaves feeds in another process's hands to it instead of storing them twice.
    """
    now, owner, wanted = utc_now(), this_process(), names or None
    # A fetch on this machine that died (killed, or its disk full) left leases: take them back.
    repository.release_dead_claims(now, gone_from_this_host)
    # Only the names: the due feeds' states beside the claimed ones' would double what the
    # pass holds per feed.
    due = repository.names_to_fetch(now, names=wanted, include_not_due=fetch_all)
    feeds = repository.claim_feeds(
        now,
        lease_until=now + fetch_lease(app.settings.fetch, len(due)),
        owner=owner,
        names=wanted,
        include_not_due=fetch_all,
    )
    return feeds, sorted(due - {feed.name for feed in feeds})


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
