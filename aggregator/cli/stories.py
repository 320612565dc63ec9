"""`aggregator stories ...`: what is stored, as readers see it."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict

import click

from aggregator.cli.app import App, pass_app
from aggregator.cli.output import print_json, when
from aggregator.errors import ConfigError
from aggregator.models import StoryRow
from aggregator.publish.why import matched_words, why_shown
from aggregator.store.search import query_words
from aggregator.terminal import print_table


@click.group()
def stories() -> None:
    """List, search and show the stories collected so far."""


@stories.command("list")
@click.option("--topic", help="Only stories about this topic id.")
@click.option("--all", "include_unmatched", is_flag=True, help="Include stories matching no topic.")
@click.option("--json", "as_json", is_flag=True, help="Print a JSON array.")
@click.option("--limit", default=50, show_default=True, type=click.IntRange(min=1))
@pass_app
def stories_list(
    app: App, topic: str | None, include_unmatched: bool, as_json: bool, limit: int
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
def stories_search(app: App, query: str, topic: str | None, as_json: bool, limit: int) -> None:
    """Stories whose words, identifiers (NCT, DOI, PMID) or sources match QUERY, best first:
    every word must be there (as on the page's search)."""
    if topic is not None:
        app.topic(topic)
    if not query_words(query):
        raise ConfigError(f"nothing to search for in {query!r}: give a word or an identifier")
    _print_stories(app.repository().list_stories(limit, topic=topic, search=query), as_json)


def _print_stories(rows: Sequence[StoryRow], as_json: bool) -> None:
    if as_json:
        print_json([_story_json(row) for row in rows])
        return
    print_table(
        ["id", "published", "sources", "topics", "title", "why"],
        [
            [
                str(row.id),
                when(row.published) + ("*" if row.published_estimated else ""),
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
def stories_show(app: App, story_id: int, as_json: bool) -> None:
    """A story's sources, and why they were taken for one story."""
    found = app.repository().show_story(story_id)
    if found is None:
        raise click.BadParameter(f"no story with id {story_id}", param_hint="STORY_ID")
    row, reasons = found
    if as_json:
        print_json(_story_json(row) | {"merged": [asdict(reason) for reason in reasons]})
        return
    click.echo(f"#{row.id} {row.title}")
    click.echo(f"link: {row.link or '-'}")
    estimated = " (no source gave a date: first seen)" if row.published_estimated else ""
    click.echo(f"published {when(row.published)}{estimated}; first seen {when(row.first_seen)}")
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
