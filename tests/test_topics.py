"""Topics end to end: matched when fetched, listed with the reason, re-matched on rule changes."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from conftest import CliRunnerFunction, ConfigFactory
from feed_server import FeedServer
from samples import TOPIC_RULES

from aggregator.config import load_settings
from aggregator.store import Repository
from aggregator.store.database import create_database_engine

ROOT = Path(__file__).parent.parent


def stories(run_cli: CliRunnerFunction, config: Path, *args: str) -> list[dict[str, Any]]:
    result = run_cli(config, "stories", "list", "--json", *args)
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout)  # type: ignore[no-any-return]


def titles(run_cli: CliRunnerFunction, config: Path, *args: str) -> set[str]:
    return {story["title"] for story in stories(run_cli, config, *args)}


@pytest.fixture
def mixed_news(
    database_url: str,
    make_config: ConfigFactory,
    run_cli: CliRunnerFunction,
    feed_server: FeedServer,
) -> Path:
    """A database with mixed-topics.xml fetched under TOPIC_RULES; returns the config."""
    config = make_config(
        database_url, [("mixed", feed_server.url("mixed-topics.xml"))], extra=TOPIC_RULES
    )
    run_cli(config, "init")
    run_cli(config, "fetch", "--all")
    return config


def test_fetched_items_are_matched_and_listed_per_topic_with_the_reason(
    mixed_news: Path, run_cli: CliRunnerFunction
) -> None:
    config = mixed_news

    [story] = stories(run_cli, config, "--topic", "car-t-ms")
    assert story["title"] == "Anti-CD19 CAR\u2011T cells reduce intrathecal IgG in MS"
    assert story["topics"] == ["car-t-ms"]
    [match] = story["matches"]
    assert match["topic"] == "car-t-ms"
    assert {(hit["term"], hit["field"]) for hit in match["hits"]} == {
        ("CAR T", "title"),
        ("CD19", "title"),
        ("MS", "title"),
    }
    assert titles(run_cli, config, "--topic", "car-t-lupus") == {
        "Lupus patients stay in remission after CD19 CAR T"
    }
    assert len(titles(run_cli, config)) == 2  # stories are items that match a topic
    assert len(titles(run_cli, config, "--all")) == 4

    table = run_cli(config, "stories", "list", "--topic", "car-t-ms").stdout
    assert "CD19, CAR T, MS" in table
    [story_id] = [line.split()[0] for line in table.splitlines() if "intrathecal" in line]
    shown = run_cli(config, "stories", "show", story_id).stdout
    assert "car-t-ms: \u201cAnti-CD19 CAR\u2011T cells reduce intrathecal IgG in MS\u201d" in shown


def test_an_edited_item_is_about_what_it_now_says(
    mixed_news: Path, run_cli: CliRunnerFunction, feed_server: FeedServer
) -> None:
    feed = feed_server.root / "mixed-topics.xml"
    feed.write_text(feed.read_text().replace("Lupus patients stay", "MS patients stay"))

    result = run_cli(mixed_news, "fetch", "--all")

    assert "0 new items, 1 updated" in result.stdout
    assert titles(run_cli, mixed_news, "--topic", "car-t-lupus") == set()
    assert titles(run_cli, mixed_news, "--topic", "car-t-ms") == {
        "Anti-CD19 CAR\u2011T cells reduce intrathecal IgG in MS",
        "MS patients stay in remission after CD19 CAR T",
    }


def test_feed_context_makes_every_item_about_its_group(
    database_url: str,
    make_config: ConfigFactory,
    run_cli: CliRunnerFunction,
    feed_server: FeedServer,
) -> None:
    config = make_config(
        database_url,
        [],
        extra=f'[[feeds]]\nname = "society"\nurl = "{feed_server.url("rss20.xml")}"\n'
        'assume = ["ms"]\n' + TOPIC_RULES,
    )
    run_cli(config, "init")
    run_cli(config, "fetch", "--all")
    [story] = stories(run_cli, config, "--topic", "car-t-ms")
    assert story["title"].startswith("CAR T-cell therapy KYV-101")
    hits = story["matches"][0]["hits"]
    assert {"group": "ms", "term": "", "field": "feed", "text": "society"} in hits


def test_rule_changes_are_previewed_then_applied_to_stored_items(
    mixed_news: Path, run_cli: CliRunnerFunction
) -> None:
    config = mixed_news
    assert len(titles(run_cli, config, "--topic", "car-t-ms")) == 1

    # A reader decides lupus news about CD19 CAR T belongs in the MS topic too.
    config.write_text(
        config.read_text().replace(
            'ms = ["multiple sclerosis", "MS"]', 'ms = ["multiple sclerosis", "MS", "lupus"]'
        )
    )
    preview = run_cli(config, "topics", "test", "--topic", "car-t-ms")
    assert preview.exit_code == 0, preview.output
    assert "+ car-t-ms" in preview.stdout
    assert "Lupus patients stay in remission" in preview.stdout
    assert "1 would be added, 0 removed" in preview.stdout
    assert len(titles(run_cli, config, "--topic", "car-t-ms")) == 1  # a preview changes nothing

    applied = run_cli(config, "fetch")  # nothing due: the rules still apply to the past
    assert (
        "matching rules applied to stored items: 1 topic matches added, 0 removed" in applied.stdout
    )
    assert "Lupus patients stay in remission after CD19 CAR T" in titles(
        run_cli, config, "--topic", "car-t-ms"
    )
    assert "0 would be added, 0 removed" in run_cli(config, "topics", "test").stdout


def test_unknown_topic_is_a_usage_error(
    database_url: str, make_config: ConfigFactory, run_cli: CliRunnerFunction
) -> None:
    config = make_config(database_url, extra=TOPIC_RULES)
    run_cli(config, "init")
    result = run_cli(config, "stories", "list", "--topic", "nope")
    assert result.exit_code == 2
    assert "no topic with id 'nope' (topics: car-t-ms, car-t-lupus)" in result.stderr


def test_evaluate_the_shipped_rules_on_the_labelled_data(run_cli: CliRunnerFunction) -> None:
    labelled = Path(__file__).parent / "data" / "relevance_dev.jsonl"
    result = run_cli(
        ROOT / "config.toml", "topics", "evaluate", str(labelled), "--assume", "society=ms"
    )
    assert result.exit_code == 0, result.output
    assert "precision 1.000  recall 1.000" in result.stdout
    assert "misclassified: none" in result.stdout


def test_evaluate_lists_the_misclassified(tmp_path: Path, run_cli: CliRunnerFunction) -> None:
    labelled = tmp_path / "labels.jsonl"
    labelled.write_text(
        '{"id": "a", "feed": "news", "title": "CAR T in MS", "label": 1}\n'
        '{"id": "b", "feed": "society", "title": "CAR T explainer", "label": 1}\n'
        '{"id": "c", "feed": "news", "title": "CAR T in MS (mislabelled)", "label": 0}\n'
    )
    result = run_cli(ROOT / "config.toml", "topics", "evaluate", str(labelled))
    assert "precision 0.500  recall 0.500" in result.stdout
    assert "1 x false negative: no ms term\n      b [society] CAR T explainer\n" in result.stdout
    assert (
        "1 x false positive: kept on car_t 'CAR T' in the title + ms 'MS' in the title\n"
        "      c [news] CAR T in MS (mislabelled)\n"
    ) in result.stdout


def test_evaluate_names_a_bad_line(tmp_path: Path, run_cli: CliRunnerFunction) -> None:
    labelled = tmp_path / "labels.jsonl"
    labelled.write_text('{"title": "ok", "label": 1}\n{"title": "no label"}\n')
    result = run_cli(ROOT / "config.toml", "topics", "evaluate", str(labelled))
    assert result.exit_code == 2
    assert f"{labelled}:2: expected a JSON object with title and label" in result.stderr


def test_stories_can_be_searched_by_words_in_any_source(
    mixed_news: Path, run_cli: CliRunnerFunction
) -> None:
    engine = create_database_engine(load_settings(mixed_news, environ={}).database.url)
    try:
        repository = Repository(engine)

        def found(words: str) -> set[str]:
            rows = repository.list_stories(50, matched_only=False, search=words)
            return {row.title for row in rows}

        assert found("intrathecal") == {"Anti-CD19 CAR\u2011T cells reduce intrathecal IgG in MS"}
        assert found("Erlangen remission") == {"Lupus patients stay in remission after CD19 CAR T"}
        assert found("CAR-T") >= {"Anti-CD19 CAR\u2011T cells reduce intrathecal IgG in MS"}
        assert found('" OR ( NEAR') == set()  # query syntax from a reader is just text
        assert found("toilets bacteria") == {"Supermarket cart hygiene study"}
        assert found("nothing-like-this") == set()
    finally:
        engine.dispose()
