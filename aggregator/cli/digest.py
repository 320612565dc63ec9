"""`aggregator digest`: send, preview or write this run's digests."""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path

import click

from aggregator.cli.app import App, pass_app
from aggregator.clock import utc_now
from aggregator.config import EMAIL_ADDRESS, Settings, Subscriber
from aggregator.errors import AggregatorError, ConfigError
from aggregator.publish.digest import render_html, render_text
from aggregator.publish.mailer import Mailer
from aggregator.publish.readers import digest_readers, signing_tokens
from aggregator.publish.sending import DigestSender, PreparedDigest
from aggregator.store import Outbox

PREVIEW_READER = "reader@localhost"  # whom a preview is for when no subscriber is configured


@click.command()
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
    app: App, dry_run: bool, output: Path | None, recipient: str | None, email: str | None
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
