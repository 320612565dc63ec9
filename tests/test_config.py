"""config.toml: values, defaults, overrides, and errors that name the key and the line."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import pytest
from click.testing import CliRunner

from aggregator.cli import cli
from aggregator.config import Subscriber, load_settings, parse_duration, parse_size
from aggregator.errors import ConfigError

ROOT = Path(__file__).parent.parent


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        pytest.param("30s", timedelta(seconds=30), id="seconds"),
        pytest.param("15m", timedelta(minutes=15), id="minutes"),
        pytest.param("2h", timedelta(hours=2), id="hours"),
        pytest.param("1d", timedelta(days=1), id="days"),
        pytest.param("1w", timedelta(weeks=1), id="weeks"),
        pytest.param("1h30m", timedelta(minutes=90), id="combined"),
        pytest.param("1h 30m", timedelta(minutes=90), id="combined-with-space"),
        pytest.param("500ms", timedelta(milliseconds=500), id="milliseconds"),
        pytest.param("2H", timedelta(hours=2), id="upper-case"),
        pytest.param(45, timedelta(seconds=45), id="bare-number-is-seconds"),
    ],
)
def test_durations(text: str | int, expected: timedelta) -> None:
    assert parse_duration(text) == expected


@pytest.mark.parametrize("text", ["soon", "", "2 hours", "h", "-1h", "0s", "1h fast", True])
def test_bad_durations(text: object) -> None:
    with pytest.raises(ValueError, match="duration"):
        parse_duration(text)


@pytest.mark.parametrize(
    ("value", "expected"),
    [(10_000_000, 10_000_000), ("10MB", 10_000_000), ("8 MiB", 8 * 2**20), ("512kb", 512_000)],
)
def test_sizes(value: str | int, expected: int) -> None:
    assert parse_size(value) == expected


def test_defaults_when_sections_are_missing(tmp_path: Path) -> None:
    path = tmp_path / "config.toml"
    path.write_text("")
    settings = load_settings(path, environ={})
    assert settings.fetch.interval == timedelta(hours=1)
    assert settings.fetch.concurrency == 16
    assert settings.fetch.per_host == 2
    assert settings.fetch.max_bytes == 10_000_000
    assert not settings.fetch.allow_private_addresses
    assert settings.database.url == f"sqlite:///{tmp_path / 'aggregator.db'}"


def test_relative_paths_resolve_against_the_config_folder(tmp_path: Path) -> None:
    folder = tmp_path / "etc"
    folder.mkdir()
    path = folder / "config.toml"
    path.write_text('[database]\nurl = "sqlite:///data/news.db"\n[output]\ndir = "site"\n')
    settings = load_settings(path, environ={})
    assert settings.database.url == f"sqlite:///{folder / 'data' / 'news.db'}"
    assert settings.output.dir == folder / "site"


def test_under_systemd_relative_paths_land_in_the_state_directory(tmp_path: Path) -> None:
    """A config copied to the read-only /etc/aggregator/ keeps its database and output in
    the unit's StateDirectory, which systemd names in $STATE_DIRECTORY."""
    folder, state = tmp_path / "etc", tmp_path / "var-lib"
    folder.mkdir()
    path = folder / "config.toml"
    path.write_text('[database]\nurl = "sqlite:///news.db"\n[output]\ndir = "public"\n')
    settings = load_settings(path, environ={"STATE_DIRECTORY": str(state)})
    assert settings.database.url == f"sqlite:///{state / 'news.db'}"
    assert settings.output.dir == state / "public"


def test_database_url_from_the_environment_wins(tmp_path: Path) -> None:
    path = tmp_path / "config.toml"
    path.write_text('[database]\nurl = "sqlite:///ignored.db"\n')
    settings = load_settings(path, environ={"AGGREGATOR_DATABASE_URL": "postgresql://u@db/news"})
    assert settings.database.url == "postgresql+psycopg://u@db/news"


def test_shipped_config_is_valid_and_real() -> None:
    settings = load_settings(ROOT / "config.toml", environ={})
    assert len(settings.feeds) >= 10
    assert all(feed.url.startswith("https://") for feed in settings.feeds)
    assert "car-t-ms" in {topic.id for topic in settings.topics}
    assert not settings.fetch.allow_private_addresses
    assert {feed.type for feed in settings.feeds} == {
        "rss",
        "clinicaltrials",
        "pubmed",
        "europepmc",
    }
    assert {feed.kind for feed in settings.feeds} == {
        "registry",
        "journal",
        "preprint",
        "press-release",
        "news",
        "society",
    }


VALID_FEEDS = """\
[fetch]
interval = "1h"

[[feeds]]
name = "first"
url = "https://a.example/feed"

[[feeds]]
name = "second"
url = "https://b.example/feed"
"""


@pytest.mark.parametrize(
    ("text", "line", "message"),
    [
        pytest.param(
            VALID_FEEDS + 'interval = "soon"\n',
            11,
            "feeds[1].interval: expected a duration like '30s', '15m', '2h' or '1d', got 'soon'",
            id="bad-duration-in-second-feed",
        ),
        pytest.param(
            VALID_FEEDS.replace('interval = "1h"', 'intervall = "1h"'),
            2,
            "fetch.intervall: unknown key",
            id="misspelt-key",
        ),
        pytest.param(
            VALID_FEEDS.replace('"https://b.example/feed"', '"ftp://b.example/feed"'),
            10,
            "feeds[1].url: expected an absolute http(s) URL, got 'ftp://b.example/feed'",
            id="not-http-url",
        ),
        pytest.param(
            VALID_FEEDS.replace('name = "second"', 'name = "first"'),
            9,
            "feeds[1].name: duplicate name 'first'",
            id="duplicate-feed-name",
        ),
        pytest.param(
            VALID_FEEDS + 'topics = ["nope"]\n',
            11,
            "feeds[1].topics: no topic with id 'nope'",
            id="unknown-topic",
        ),
        pytest.param(
            "[fetch]\nconcurrency = 0\n",
            2,
            "fetch.concurrency: Input should be greater than or equal to 1, got 0",
            id="out-of-range",
        ),
        pytest.param(
            "[fetch]\nconcurrency = 'many'\n",
            2,
            "fetch.concurrency: Input should be a valid integer",
            id="wrong-type",
        ),
        pytest.param(
            '[database]\nurl = "mysql://x/y"\n',
            2,
            "database.url: expected sqlite:///PATH or postgresql://USER@HOST/DATABASE",
            id="bad-db",
        ),
        pytest.param(
            '[digest]\ntimezone = "Mars/Olympus"\n',
            2,
            "digest.timezone: expected an IANA",
            id="bad-tz",
        ),
        pytest.param(
            '[[feeds]]\nname = "x"\n', 1, "feeds[0].url: Field required", id="missing-required-key"
        ),
        pytest.param("[fetch\ninterval = 1", 1, "not valid TOML", id="toml-syntax"),
        pytest.param(
            VALID_FEEDS + 'kind = "blog"\n',
            11,
            "feeds[1].kind: Input should be 'registry', 'journal', 'preprint', 'press-release', "
            "'news' or 'society'",
            id="unknown-source-kind",
        ),
        pytest.param(
            '[digest]\nschedule = "0 7 * * 8"\n',
            2,
            "digest.schedule: day of week '8' is not valid: expected 0-7 or sun-sat",
            id="bad-cron-weekday",
        ),
        pytest.param(
            '[digest]\nschedule = "0 25 * * *"\n',
            2,
            "digest.schedule: hour '25' is not valid: expected 0-23",
            id="hour-out-of-range",
        ),
        pytest.param(
            '[digest]\nschedule = "0 7 * *"\n',
            2,
            "digest.schedule: expected five crontab fields",
            id="short-cron",
        ),
        pytest.param(
            '[digest]\nfrom = "d@x.org"\n\n[[subscribers]]\nemail = "reader at example"\n',
            5,
            "subscribers[0].email: expected an e-mail address",
            id="bad-subscriber-address",
        ),
        pytest.param(
            '[digest]\nfrom = "d@x.org"\nto = ["a@x.org"]\n\n[[subscribers]]\nemail = "A@x.org"\n',
            6,
            "subscribers[0].email: 'A@x.org' is subscribed twice",
            id="subscribed-twice",
        ),
        pytest.param(
            '[digest]\nfrom = "d@x.org"\n\n[[subscribers]]\nemail = "a@x.org"\ntopics = ["x"]\n',
            6,
            "subscribers[0].topics: no topic with id 'x'",
            id="subscriber-unknown-topic",
        ),
        pytest.param(
            '[digest]\nto = ["a@x.org"]\n',
            1,
            "digest.from: digests have subscribers, so they need a `from` address",
            id="no-sender",
        ),
        pytest.param(
            '[digest]\nsubject = "{title} {sender}"\n',
            2,
            "digest.subject: unknown field {sender}",
            id="unknown-subject-field",
        ),
        pytest.param(
            VALID_FEEDS.replace('"https://b.example/feed"', '"http://0177.0.0.1/feed"'),
            10,
            "feeds[1].url: a numeric host must be a plain dotted IPv4 address like 192.0.2.1",
            id="octal-host",
        ),
        pytest.param(
            '[fetch]\nmin_interval = "2d"\n',
            2,
            "fetch.min_interval: min_interval is longer than max_interval",
            id="interval-bounds",
        ),
        pytest.param(
            '[service]\nlog_level = "loud"\n',
            2,
            "service.log_level: Input should be 'debug', 'info', 'warning' or 'error'",
            id="log-level",
        ),
        pytest.param(
            '[smtp]\nsecurity = "none"\nusername = "u"\n',
            2,
            "smtp.security: a username with security = 'none' would send the password",
            id="password-in-clear",
        ),
    ],
)
def test_config_errors_exit_2_naming_key_and_line(
    tmp_path: Path, text: str, line: int, message: str
) -> None:
    path = tmp_path / "config.toml"
    path.write_text(text)
    result = CliRunner().invoke(cli, ["--config", str(path), "feeds", "list"])
    assert result.exit_code == 2, result.output
    assert f"{path}:{line}: " in result.stderr
    assert message in result.stderr


@pytest.mark.parametrize(
    ("url", "message"),
    [
        ("postgresql+asyncpg://reader:hunter2@db/news", "psycopg 3 is the driver"),
        ("mysql://reader:hunter2@db/news", "expected sqlite:///PATH or postgresql://"),
        (
            "postgresql://reader:hunter2@db/news?sslmod=require",
            'invalid connection option "sslmod"',
        ),
        ("postgresql://reader:hunter2@db:port/news", "expected a database URL like"),
    ],
)
def test_a_mistyped_database_url_exits_2_without_its_password(
    tmp_path: Path, url: str, message: str
) -> None:
    path = tmp_path / "config.toml"
    path.write_text(f'[database]\nurl = "{url}"\n')
    result = CliRunner().invoke(cli, ["--config", str(path), "init"])
    assert result.exit_code == 2, result.output
    assert f"{path}:2: database.url: " in result.stderr
    assert message in result.stderr
    assert "hunter2" not in result.output
    assert "reader:***@db" in result.stderr


def test_missing_config_file_exits_2(tmp_path: Path) -> None:
    result = CliRunner().invoke(cli, ["--config", str(tmp_path / "nope.toml"), "init"])
    assert result.exit_code == 2
    assert "nope.toml: config file not found" in result.stderr


def test_subscribers_inherit_the_digest_defaults(tmp_path: Path) -> None:
    path = tmp_path / "config.toml"
    path.write_text(
        '[terms]\nms = ["MS"]\n\n[[topics]]\nid = "a"\nany = ["ms"]\n\n'
        '[[topics]]\nid = "b"\nany = ["ms"]\n\n'
        '[digest]\nfrom = "Digest <d@x.org>"\nto = ["all@x.org"]\nschedule = "0 8 * * *"\n\n'
        '[[subscribers]]\nemail = "b@x.org"\ntopics = ["b"]\ntimezone = "Europe/Paris"\n'
        "send_empty = true\n"
    )
    readers = load_settings(path, environ={}).all_subscribers
    assert readers == [
        Subscriber("all@x.org", ("a", "b"), "0 8 * * *", "Europe/London", False),
        Subscriber("b@x.org", ("b",), "0 8 * * *", "Europe/Paris", True),
    ]


def test_config_path_from_the_environment(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = tmp_path / "elsewhere.toml"
    path.write_text("[fetch]\nbogus = 1\n")
    monkeypatch.setenv("AGGREGATOR_CONFIG", str(path))
    result = CliRunner().invoke(cli, ["feeds", "list"])
    assert result.exit_code == 2
    assert f"{path}:2: fetch.bogus: unknown key" in result.stderr


def test_config_error_carries_path_and_line() -> None:
    error = ConfigError("fetch.timeout: bad", path="c.toml", line=3)
    assert str(error) == "c.toml:3: fetch.timeout: bad"
