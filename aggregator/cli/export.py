"""`export`: feeds out, all of them or one to a file of the reader's choice."""

from __future__ import annotations

from pathlib import Path

import click

from aggregator.cli.app import App, pass_app
from aggregator.errors import ConfigError
from aggregator.publish.export import export_all, export_one
from aggregator.publish.feeds import FORMATS, Format


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
