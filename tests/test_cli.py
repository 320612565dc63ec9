"""Commands as a user types them: init, feeds add/remove/check, OPML, --version, --help."""

from __future__ import annotations

import json
import socket
import subprocess
import sys
from pathlib import Path
from typing import NamedTuple

import click
from click.testing import CliRunner
from conftest import DATA_DIR, CliRunnerFunction, ConfigFactory
from feed_server import FeedServer, write_feed
from samples import TOPIC_RULES

from aggregator import __version__
from aggregator.cli import COMMANDS, cli
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
    assert "imported 3 feeds" in imported.stdout
    assert "1 was already there" in imported.stdout

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


def test_opml_folders_titles_and_names_survive_a_round_trip(
    tmp_path: Path, make_config: ConfigFactory, run_cli: CliRunnerFunction
) -> None:
    config = make_config(f"sqlite:///{tmp_path / 'db.sqlite'}")
    imported = run_cli(config, "feeds", "import-opml", str(DATA_DIR / "folders.opml"))
    assert imported.exit_code == 0, imported.output
    assert "imported 4 feeds" in imported.stdout
    assert "skipped 'Old gopher' (ftp://old.example.org/feed)" in imported.stderr
    feeds = {feed.name: feed for feed in load_settings(config, environ={}).feeds}
    assert {name: (feed.kind, feed.tags, feed.title) for name, feed in feeds.items()} == {
        "multiple-sclerosis-journal": ("journal", (), "Multiple Sclerosis Journal"),
        "car-t-trials-in-ms": ("registry", (), "CAR-T trials in MS"),
        "arsep-fondation": ("society", ("Sclérose en plaques",), "ARSEP — Fondation"),
        "sclerose-en-plaques-actualites": (
            None,
            ("Sclérose en plaques",),
            "Sclérose en plaques — actualités",
        ),
    }
    text = config.read_text(encoding="utf-8")
    assert '\n\n[[feeds]]\nname = "car-t-trials-in-ms"' in text  # a blank line between tables

    again = run_cli(config, "feeds", "import-opml", str(DATA_DIR / "folders.opml"))
    assert "imported 0 feeds" in again.stdout
    assert "4 were already there" in again.stdout

    exported = run_cli(config, "feeds", "export-opml", "--output", str(tmp_path / "out.opml"))
    assert exported.exit_code == 0, exported.output
    copy = make_config(f"sqlite:///{tmp_path / 'copy.sqlite'}")
    assert run_cli(copy, "feeds", "import-opml", str(tmp_path / "out.opml")).exit_code == 0
    copied = {feed.name: feed for feed in load_settings(copy, environ={}).feeds}
    assert {name: (f.url, f.kind, f.title) for name, f in copied.items()} == {
        name: (f.url, f.kind, f.title) for name, f in feeds.items()
    }


def test_opml_export_gives_feed_readers_only_what_they_can_read(
    tmp_path: Path, make_config: ConfigFactory, run_cli: CliRunnerFunction
) -> None:
    config = make_config(
        f"sqlite:///{tmp_path / 'db.sqlite'}",
        extra=(
            '[[feeds]]\nname = "trials"\ntype = "clinicaltrials"\n'
            'url = "https://clinicaltrials.gov/api/v2/studies?query.cond=multiple+sclerosis'
            '&query.intr=CAR-T&pageSize=100"\n\n'
            '[[feeds]]\nname = "pubmed"\ntype = "pubmed"\n'
            'url = "https://eutils.ncbi.nlm.nih.gov/entrez/eutils/esearch.fcgi?db=pubmed'
            '&term=CAR-T+multiple+sclerosis"\n'
        ),
    )
    exported = run_cli(config, "feeds", "export-opml")
    assert exported.exit_code == 0, exported.output
    assert (
        'xmlUrl="https://clinicaltrials.gov/api/rss?cond=multiple+sclerosis&amp;intr=CAR-T'
        '&amp;dateField=LastUpdatePostDate"'
    ) in exported.stdout
    assert 'htmlUrl="https://clinicaltrials.gov/search?cond=multiple+sclerosis' in exported.stdout
    assert '<outline text="Trial registry" title="Trial registry">' in exported.stdout
    assert "<!-- pubmed (pubmed): an API query, which feed readers cannot read -->" in (
        exported.stdout
    )
    assert "eutils" not in exported.stdout
    assert "left out 1 API-only sources" in exported.stderr


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
    assert result.exit_code == 2
    assert "not a readable OPML file" in result.stderr


def test_feeds_check_reports_without_storing(
    tmp_path: Path, make_config: ConfigFactory, run_cli: CliRunnerFunction, feed_server: FeedServer
) -> None:
    config = make_config(
        f"sqlite:///{tmp_path / 'never-created.db'}",
        [("good", feed_server.url("rss20.xml")), ("bad", feed_server.url("status/404"))],
    )
    result = run_cli(config, "feeds", "check")
    assert result.exit_code == 1  # a feed that does not work is a failure to report
    assert "1 of 2 feeds failing: bad" in result.stderr
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


def test_stories_search_finds_a_trial_by_its_number(
    database_url: str,
    make_config: ConfigFactory,
    run_cli: CliRunnerFunction,
    feed_server: FeedServer,
) -> None:
    path = write_feed(
        feed_server.root,
        "registry",
        [
            ("NCT06384976", None, "KYSA-7: CD19 CAR T in progressive MS (NCT06384976)"),
            ("NCT05000000", None, "CAR T cells for relapsing MS, a second trial (NCT05000000)"),
        ],
    )
    config = make_config(database_url, [("registry", feed_server.url(path))], extra=TOPIC_RULES)
    assert run_cli(config, "init").exit_code == 0
    assert run_cli(config, "fetch", "--all").exit_code == 0
    found = run_cli(config, "stories", "search", "nct06384976", "--json")
    assert found.exit_code == 0, found.output
    assert [story["title"] for story in json.loads(found.stdout)] == [
        "KYSA-7: CD19 CAR T in progressive MS (NCT06384976)"
    ]
    assert "KYSA-7" in run_cli(config, "stories", "search", "KYSA 7").output
    nothing = run_cli(config, "stories", "search", "--", "-- !")
    assert nothing.exit_code == 2


def test_export_refuses_a_file_whose_format_it_cannot_tell(
    tmp_path: Path, make_config: ConfigFactory, run_cli: CliRunnerFunction
) -> None:
    config = make_config(f"sqlite:///{tmp_path / 'db.sqlite'}")
    assert run_cli(config, "init").exit_code == 0
    refused = run_cli(config, "export", "--output", str(tmp_path / "x.txt"))
    assert refused.exit_code == 2
    assert "name a .xml, .rss, .atom or .json file, or give --format" in refused.stderr
    assert not (tmp_path / "x.txt").exists()
    chosen = run_cli(config, "export", "--output", str(tmp_path / "x.txt"), "--format", "atom")
    assert chosen.exit_code == 0
    assert "<feed" in (tmp_path / "x.txt").read_text(encoding="utf-8")


def test_serve_on_a_busy_port_exits_1_saying_so(
    tmp_path: Path, make_config: ConfigFactory, run_cli: CliRunnerFunction
) -> None:
    config = make_config(f"sqlite:///{tmp_path / 'db.sqlite'}")
    assert run_cli(config, "init").exit_code == 0
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        command = [sys.executable, "-m", "aggregator", "--config", str(config), "serve"]
        served = subprocess.run(
            [*command, "--port", str(port)],
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
    assert served.returncode == 1, served.stderr
    assert f"cannot serve on 127.0.0.1:{port}: is another server using that port?" in served.stderr


def test_help_lists_each_command_as_its_own_help_says() -> None:
    context = click.Context(cli)
    for name, (_, line) in COMMANDS.items():
        command = cli.get_command(context, name)
        assert command is not None, name
        first_paragraph = " ".join((command.help or "").split("\n\n")[0].split())
        assert line == first_paragraph, name
    assert sorted(cli.list_commands(context)) == sorted(COMMANDS)


def test_help_answers_without_loading_the_database_or_the_web_layers() -> None:
    """`aggregator --help` imports click, not SQLAlchemy, pydantic, uvicorn or feedparser:
    every command, and every typo, used to pay for them all first."""
    run = _run_fresh(["--help"], ("sqlalchemy", "pydantic", "uvicorn", "feedparser", "structlog"))
    assert "Commands:" in run.printed
    assert run.loaded == []


def test_listing_stories_loads_neither_the_log_library_nor_another_database_s_dialect(
    database_url: str, make_config: ConfigFactory, run_cli: CliRunnerFunction
) -> None:
    """`stories list` and `feeds list` should answer within 0.4 s, and importing structlog
    (with rich's tracebacks) or PostgreSQL's dialect on SQLite cost 20-30 ms each: a command
    imports them when it logs a line or talks to PostgreSQL, not before."""
    config = make_config(database_url, [("a", "https://a.example/feed")])
    assert run_cli(config, "init").exit_code == 0
    other = "postgresql" if database_url.startswith("sqlite") else "sqlite"
    run = _run_fresh(
        ["--config", str(config), "stories", "list"],
        ("structlog", "rich.traceback", f"sqlalchemy.dialects.{other}"),
    )
    assert run.loaded == []


def test_exporting_does_not_load_the_migrations(
    database_url: str, make_config: ConfigFactory, run_cli: CliRunnerFunction
) -> None:
    """Alembic (with Mako and its dialects) is about 10 MB and 80 ms: `init` needs it, and
    scheduled `fetch` and `export` runs do not."""
    config = make_config(database_url, [("a", "https://a.example/feed")])
    assert run_cli(config, "init").exit_code == 0
    run = _run_fresh(["--config", str(config), "export"], ("alembic", "mako"))
    assert "updated" in run.printed
    assert run.loaded == []


def test_a_fetch_loads_the_feed_writers_only_when_it_has_feeds_to_write(
    database_url: str,
    make_config: ConfigFactory,
    run_cli: CliRunnerFunction,
    feed_server: FeedServer,
) -> None:
    """feedgen and lxml are 5 MB: a pass that holds them beside its bodies and entries peaks
    higher, and most scheduled polls bring nothing new to write."""
    config = make_config(database_url, [("rss20", feed_server.url("rss20.xml"))])
    assert run_cli(config, "init").exit_code == 0
    writers = ("feedgen", "lxml")

    first = _run_fresh(["--config", str(config), "fetch", "--all"], writers)
    again = _run_fresh(["--config", str(config), "fetch", "--all"], writers)

    assert "2 new items" in first.printed
    assert "updated 3 feed files" in first.printed  # RSS, Atom and JSON Feed
    assert "feedgen" in first.loaded
    assert "0 new items, 0 updated" in again.printed
    assert again.loaded == []


def test_a_scheduled_fetch_loads_no_syntax_highlighter_bars_or_tables(
    database_url: str,
    make_config: ConfigFactory,
    run_cli: CliRunnerFunction,
    feed_server: FeedServer,
) -> None:
    """httpx (its command line) and structlog (its console's tracebacks) would import rich's
    syntax highlighting and pygments' lexers, 2.3 MB of a fetch's peak that nothing uses; and
    off a terminal (cron, a log file) there is no bar to draw and the table is plain text."""
    config = make_config(database_url, [("rss20", feed_server.url("rss20.xml"))])
    assert run_cli(config, "init").exit_code == 0
    unused = ("pygments", "rich.syntax", "rich.traceback", "rich.progress", "rich.table")
    run = _run_fresh(["--config", str(config), "fetch", "--all"], ("httpx", "structlog", *unused))
    assert "1 feeds fetched" in run.printed
    assert {module.partition(".")[0] for module in run.loaded} == {"httpx", "structlog"}


def test_a_command_sets_up_without_the_garbage_collector_walking_its_imports(
    database_url: str, make_config: ConfigFactory, run_cli: CliRunnerFunction
) -> None:
    """A listing command's imports made the collector run about 190 times, a full walk among
    them, for nothing to free: 70-90 ms of its 0.35-0.4 s. It waits until the command is set
    up, and then runs again: a service that never collected would grow for months."""
    config = make_config(database_url, [("a", "https://a.example/feed")])
    assert run_cli(config, "init").exit_code == 0
    run = _run_fresh(["--config", str(config), "stories", "list"], ())
    assert run.collections < 30
    assert run.collector_enabled


class _FreshRun(NamedTuple):
    printed: str  # what the command printed
    loaded: list[str]  # which of the watched modules it imported
    collections: int  # how many times the garbage collector ran
    collector_enabled: bool  # whether the collector was on when the command ended


def _run_fresh(arguments: list[str], watched: tuple[str, ...]) -> _FreshRun:
    """Run `aggregator ARGUMENTS` in a fresh interpreter, as an operator would, and report
    what it printed, which `watched` modules (or modules inside them) it imported, and how the
    garbage collector fared."""
    probe = (
        "import gc, json, sys\n"
        "collections = []\n"
        "gc.callbacks.append(lambda phase, _: phase == 'stop' and collections.append(1))\n"
        "from aggregator.cli import main\n"
        f"sys.argv = ['aggregator', *{arguments!r}]\n"
        "try:\n    main()\nexcept SystemExit:\n    pass\n"
        f"watched = {watched!r}\n"
        "loaded = sorted(m for m, module in sys.modules.items() if module is not None"
        " and any(m == w or m.startswith(w + '.') for w in watched))\n"
        "print(json.dumps([loaded, len(collections), gc.isenabled()]))\n"
    )
    shown = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, check=True
    ).stdout
    printed, _, report = shown.rstrip().rpartition("\n")
    loaded, collections, collector_enabled = json.loads(report)
    return _FreshRun(printed, loaded, collections, collector_enabled)
