"""What each source says, shown right: real-shaped feeds through the feed server and the CLI,
on SQLite and PostgreSQL. Titles, words, identifiers, dates and statuses as readers see them."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from conftest import CliRunnerFunction, ConfigFactory
from feed_server import FeedServer
from outputs import assert_valid_outputs
from sqlalchemy import create_engine, text

from aggregator.config import load_settings

OUTPUT = '[output]\nbase_url = "https://news.example.org/"\n'


def listed(run_cli: CliRunnerFunction, config: Path) -> list[dict[str, Any]]:
    result = run_cli(config, "stories", "list", "--all", "--json", "--limit", "1000")
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout)  # type: ignore[no-any-return]


@pytest.fixture
def untitled_world(
    database_url: str,
    make_config: ConfigFactory,
    run_cli: CliRunnerFunction,
    feed_server: FeedServer,
) -> Path:
    """A Mastodon feed (items without titles) and a WordPress feed (footers, an empty title)."""
    feeds = [
        ("mastodon", feed_server.url("real/mastodon-untitled.xml")),
        ("wordpress", feed_server.url("real/wordpress.xml")),
    ]
    config = make_config(database_url, feeds, extra=OUTPUT)
    assert run_cli(config, "init").exit_code == 0
    return config


def test_items_without_titles_are_titled_from_their_text_and_every_output_is_valid(
    untitled_world: Path, run_cli: CliRunnerFunction, tmp_path: Path
) -> None:
    fetched = run_cli(untitled_world, "fetch", "--all")
    assert fetched.exit_code == 0, fetched.output
    assert "2 feeds fetched: 4 new items" in fetched.stdout
    titles = {story["title"] for story in listed(run_cli, untitled_world)}
    assert titles == {
        "KYSA-7 update from Kyverna Therapeutics",
        "Reading list for the week",
        "CAR T-cell therapy: what our members asked this month",
        "Webinar recording now online: a neurologist explains CD19-directed therapy.",
    }
    exported = run_cli(untitled_world, "export", "--format", "atom")
    assert exported.exit_code == 0, exported.output
    assert_valid_outputs(tmp_path / "public")


def test_words_stay_apart_and_wordpress_footers_are_not_content(
    untitled_world: Path, run_cli: CliRunnerFunction
) -> None:
    assert run_cli(untitled_world, "fetch", "--all").exit_code == 0
    summaries = {story["title"]: story["summary"] for story in listed(run_cli, untitled_world)}
    assert summaries["Reading list for the week"] == "Reading list for the week: Relapsing MS CD19"
    assert (
        "Kyverna Therapeutics Recruiting: the phase 2"
        in summaries["KYSA-7 update from Kyverna Therapeutics"]
    )
    assert "2026. 2 December 2026" not in " ".join(summaries.values())
    assert all("appeared first on" not in summary for summary in summaries.values())


def test_init_gives_stories_stored_without_a_title_one_and_the_atom_export_works_again(
    untitled_world: Path, run_cli: CliRunnerFunction, tmp_path: Path
) -> None:
    assert run_cli(untitled_world, "fetch", "--all").exit_code == 0
    url = load_settings(untitled_world, environ={}).database.url
    engine = create_engine(url)
    with engine.begin() as connection:  # what an older version stored for such items
        connection.execute(
            text(
                "UPDATE items SET title = '' WHERE feed_id IN "
                "(SELECT id FROM feeds WHERE name = 'mastodon')"
            )
        )
        connection.execute(
            text(
                "UPDATE stories SET title = '' WHERE id IN "
                "(SELECT story_id FROM items WHERE title = '')"
            )
        )
    engine.dispose()

    repaired = run_cli(untitled_world, "init")

    assert repaired.exit_code == 0, repaired.output
    assert "gave 2 untitled items a title from their text" in repaired.stdout
    assert "KYSA-7 update from Kyverna Therapeutics" in {
        story["title"] for story in listed(run_cli, untitled_world)
    }
    assert run_cli(untitled_world, "export").exit_code == 0
    assert_valid_outputs(tmp_path / "public")
    again = run_cli(untitled_world, "init")
    assert "untitled" not in again.stdout
