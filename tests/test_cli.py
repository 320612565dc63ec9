"""Commands as a user types them: init, feeds add/remove/check, OPML, --version, --help."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from click.testing import CliRunner
from conftest import DATA_DIR, CliRunnerFunction, ConfigFactory
from feed_server import FeedServer

from aggregator import __version__
from aggregator.cli import cli
from aggregator.config import load_settings


def test_init_creates_then_is_a_no_op(
    database_url: str, make_config: ConfigFactory, run_cli: CliRunnerFunction
) -> None:
    config = make_config(database_url, [("a", "https://a.example/feed")])
    first = run_cli(config, "init")
    assert first.exit_code == 0
    assert "database created at revision" in first.stdout
    second = run_cli(config, "init")
    assert second.exit_code == 0
    assert "database is up to date" in second.stdout
    assert json.loads(run_cli(config, "feeds", "list", "--json").stdout)[0]["name"] == "a"


def test_commands_need_an_initialised_database(
    database_url: str, make_config: ConfigFactory, run_cli: CliRunnerFunction
) -> None:
    config = make_config(database_url)
    result = run_cli(config, "fetch", "--all")
    assert result.exit_code == 1
    assert "the database is empty; run `aggregator init`" in result.stderr


def test_feeds_add_and_remove_edit_config_keeping_comments(
    tmp_path: Path, make_config: ConfigFactory, run_cli: CliRunnerFunction
) -> None:
    config = make_config(f"sqlite:///{tmp_path / 'db.sqlite'}", extra="# keep this comment\n")
    added = run_cli(
        config, "feeds", "add", "society", "https://society.example.org/feed", "--interval", "2h"
    )
    assert added.exit_code == 0, added.output
    text = config.read_text()
    assert "# keep this comment" in text
    assert 'name = "society"' in text
    assert 'interval = "2h"' in text

    removed = run_cli(config, "feeds", "remove", "society")
    assert removed.exit_code == 0
    assert "society" not in config.read_text()
    assert "# keep this comment" in config.read_text()


def test_feeds_add_refuses_bad_values_and_leaves_config_untouched(
    tmp_path: Path, make_config: ConfigFactory, run_cli: CliRunnerFunction
) -> None:
    config = make_config(f"sqlite:///{tmp_path / 'db.sqlite'}")
    before = config.read_text()
    result = run_cli(config, "feeds", "add", "x", "https://x.example/feed", "--interval", "soon")
    assert result.exit_code == 2
    assert "feeds[0].interval: expected a duration" in result.stderr
    assert config.read_text() == before


def test_feeds_remove_unknown_name_exits_2(
    tmp_path: Path, make_config: ConfigFactory, run_cli: CliRunnerFunction
) -> None:
    config = make_config(f"sqlite:///{tmp_path / 'db.sqlite'}")
    result = run_cli(config, "feeds", "remove", "nope")
    assert result.exit_code == 2
    assert "no feed named 'nope'" in result.stderr


def test_removed_feed_keeps_its_items(
    database_url: str,
    make_config: ConfigFactory,
    run_cli: CliRunnerFunction,
    feed_server: FeedServer,
) -> None:
    config = make_config(database_url, [("rss20", feed_server.url("rss20.xml"))])
    run_cli(config, "init")
    run_cli(config, "fetch", "--all")
    run_cli(config, "feeds", "remove", "rss20")
    assert json.loads(run_cli(config, "feeds", "list", "--json").stdout) == []
    assert len(json.loads(run_cli(config, "stories", "list", "--all", "--json").stdout)) == 2


def test_opml_import_then_export_round_trip(
    tmp_path: Path, make_config: ConfigFactory, run_cli: CliRunnerFunction
) -> None:
    config = make_config(
        f"sqlite:///{tmp_path / 'db.sqlite'}", [("existing", "https://news.example.org/feed")]
    )
    imported = run_cli(config, "feeds", "import-opml", str(DATA_DIR / "subscriptions.opml"))
    assert imported.exit_code == 0, imported.output
    assert "imported 3 feeds" in imported.stdout  # the 4th is already configured

    exported = run_cli(config, "feeds", "export-opml", "--output", str(tmp_path / "out.opml"))
    assert exported.exit_code == 0
    again = make_config(f"sqlite:///{tmp_path / 'db2.sqlite'}")
    run_cli(again, "feeds", "import-opml", str(tmp_path / "out.opml"))
    feeds = {feed.name: feed.url for feed in load_settings(again, environ={}).feeds}
    assert feeds == {
        "existing": "https://news.example.org/feed",
        "ms-society-news": "https://society.example.org/rss",
        "journal-toc": "https://journal.example.org/toc.xml",
        "trials-registries": "https://trials.example.org/rss?cond=MS",
    }


def test_opml_that_is_not_opml_is_refused(
    tmp_path: Path, make_config: ConfigFactory, run_cli: CliRunnerFunction
) -> None:
    config = make_config(f"sqlite:///{tmp_path / 'db.sqlite'}")
    bomb = tmp_path / "bomb.opml"
    bomb.write_text(
        '<?xml version="1.0"?><!DOCTYPE opml [<!ENTITY a "aaaaaaaaaa">'
        '<!ENTITY b "&a;&a;&a;&a;&a;&a;&a;&a;&a;&a;">]><opml><body>&b;</body></opml>'
    )
    result = run_cli(config, "feeds", "import-opml", str(bomb))
    assert result.exit_code == 1
    assert "not a readable OPML file" in result.stderr


def test_feeds_check_reports_without_storing(
    tmp_path: Path, make_config: ConfigFactory, run_cli: CliRunnerFunction, feed_server: FeedServer
) -> None:
    config = make_config(
        f"sqlite:///{tmp_path / 'never-created.db'}",
        [("good", feed_server.url("rss20.xml")), ("bad", feed_server.url("status/404"))],
    )
    result = run_cli(config, "feeds", "check")
    assert result.exit_code == 0
    lines = result.stdout.splitlines()
    assert any(line.split()[:4] == ["good", "ok", "(HTTP", "200)"] for line in lines)
    assert any(line.startswith("bad") and "HTTP 404 Not Found" in line for line in lines)
    assert not (tmp_path / "never-created.db").exists()


def test_version_and_help_work_everywhere() -> None:
    runner = CliRunner()
    assert runner.invoke(cli, ["--version"]).stdout.strip() == f"aggregator, version {__version__}"
    for command in (["--help"], ["fetch", "--help"], ["feeds", "add", "--help"]):
        result = runner.invoke(cli, command)
        assert result.exit_code == 0
        assert "Usage:" in result.stdout


def test_python_dash_m_runs_the_cli() -> None:
    result = subprocess.run(
        [sys.executable, "-m", "aggregator", "--version"],
        capture_output=True,
        text=True,
        check=True,
    )
    assert result.stdout.strip() == f"aggregator, version {__version__}"


def test_unknown_command_is_a_usage_error() -> None:
    result = CliRunner().invoke(cli, ["frobnicate"])
    assert result.exit_code == 2
