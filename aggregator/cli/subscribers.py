"""`aggregator subscribers ...`: digest readers, for the operator."""

from __future__ import annotations

import zoneinfo

import click

from aggregator.cli.app import App, pass_app
from aggregator.cli.output import print_json, when
from aggregator.clock import utc_now
from aggregator.config import EMAIL_ADDRESS
from aggregator.errors import ConfigError
from aggregator.publish.readers import FREQUENCIES
from aggregator.store.subscribers import FROM_CONFIG, UNSUBSCRIBED, Choice, SubscriberRecord
from aggregator.terminal import print_table


@click.group()
def subscribers() -> None:
    """List, add and remove digest readers (those in config.toml are listed, not changed)."""


@subscribers.command("list")
@click.option("--json", "as_json", is_flag=True, help="Print a JSON array.")
@pass_app
def subscribers_list(app: App, as_json: bool) -> None:
    """Every reader with an address: from the page, added here, or in the config."""
    app.repository()  # the config's readers have their rows
    records = app.subscriptions().listed()
    if as_json:
        print_json([_subscriber_json(record) for record in records])
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
                when(record.confirmed_at or record.created_at),
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
    app: App, email: str, topics: tuple[str, ...], frequency: str, timezone: str | None
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
def subscribers_remove(app: App, email: str) -> None:
    """Unsubscribe a reader now and delete their address (only its hash is kept)."""
    app.repository()
    subscriptions = app.subscriptions()
    record = subscriptions.find(email)
    if record is None or record.state == UNSUBSCRIBED:
        raise ConfigError(f"no subscriber {email!r}")
    if record.source == FROM_CONFIG:
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
