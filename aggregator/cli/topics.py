"""`aggregator topics ...`: what the matching rules do."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path

import click

from aggregator.cli.app import App, pass_app
from aggregator.errors import ConfigError
from aggregator.evaluate import by_why, evaluate, read_labelled
from aggregator.match import FeedContext, TopicRule, build_matcher
from aggregator.pipeline.prepare import stored_item_matcher


@click.group()
def topics() -> None:
    """Preview rule changes and measure them against labelled items."""


@topics.command("test")
@click.option("--topic", help="Only this topic id.")
@pass_app
def topics_test(app: App, topic: str | None) -> None:
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
def topics_evaluate(app: App, file: Path, topic: str | None, assumptions: tuple[str, ...]) -> None:
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
