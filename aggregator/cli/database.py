"""`init`: the database created, or upgraded to this version's schema.

A module of its own: the migrations bring Alembic, which with Mako and its dialects is about
10 MB and 80 ms that a scheduled `fetch` or `export` would pay on every run for nothing.
"""

from __future__ import annotations

import click

from aggregator.cli.app import App, pass_app
from aggregator.clock import utc_now
from aggregator.store.upgrade import upgrade_to_head


@click.command()
@pass_app
def init(app: App) -> None:
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
