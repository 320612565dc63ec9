"""config.toml -> frozen, validated settings.

Every value a user can get wrong is checked here, once, so the rest of the code can trust its
settings. A mistake becomes a `ConfigError` naming the file, the line, the key and what was
expected; the CLI turns that into exit code 2.
"""

from __future__ import annotations

import ipaddress
import os
import re
import tomllib
import zoneinfo
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from email.utils import parseaddr
from pathlib import Path
from string import Formatter
from typing import TYPE_CHECKING, Annotated, Any, Literal
from urllib.parse import urlsplit

from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    ValidationError,
    ValidationInfo,
    field_validator,
    model_validator,
)
from pydantic.dataclasses import dataclass as pydantic_dataclass

from aggregator import __version__
from aggregator.errors import ConfigError
from aggregator.models import SourceKind, reader_key
from aggregator.redact import redacted
from aggregator.schedule import cron_trigger
from aggregator.sources.registry import TYPES as SOURCE_TYPES
from aggregator.term_markers import TERM_MARKERS, split_marker

if TYPE_CHECKING:  # SQLAlchemy is imported only where a database URL is read (not by workers)
    from sqlalchemy.engine import URL

CONFIG_ENV = "AGGREGATOR_CONFIG"
STATE_DIRECTORY_ENV = "STATE_DIRECTORY"  # set by systemd for StateDirectory=
DATABASE_URL_ENV = "AGGREGATOR_DATABASE_URL"
DEFAULT_CONFIG_PATH = Path("config.toml")
DEFAULT_USER_AGENT = (
    f"aggregator/{__version__} (research news aggregator; CAR T-cell therapy in MS)"
)

_DURATION_PART = re.compile(r"(\d+(?:\.\d+)?)\s*(ms|s|m|h|d|w)")
_DURATION_UNITS = {"ms": 0.001, "s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}
_SIZE = re.compile(r"(\d+(?:\.\d+)?)\s*(b|kb|mb|gb|kib|mib|gib)?", re.IGNORECASE)
_SIZE_UNITS = {
    "b": 1,
    "kb": 10**3,
    "mb": 10**6,
    "gb": 10**9,
    "kib": 2**10,
    "mib": 2**20,
    "gib": 2**30,
}
_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]*")
# Deliberately plain: an address goes into SMTP envelopes and headers, so no spaces, quotes,
# brackets or line breaks; anything fancier is the mail server's business.
_ADDRESS_CHAR = r"[^@\s<>()\[\],;:\"\\]"
EMAIL_ADDRESS = re.compile(rf"{_ADDRESS_CHAR}+@{_ADDRESS_CHAR}+")
# What a digest subject template may say: {title} {date} {count} {count_text}.
SUBJECT_FIELDS = ("title", "date", "count", "count_text")


def parse_duration(value: object) -> timedelta:
    """Read "30s", "2h", "1h30m", "1d" or a number of seconds; refuse zero and negatives."""
    if isinstance(value, timedelta):
        seconds = value.total_seconds()
    elif isinstance(value, int | float) and not isinstance(value, bool):
        seconds = float(value)
    elif isinstance(value, str):
        text = value.strip().lower()
        parts = _DURATION_PART.findall(text)
        if not parts or _DURATION_PART.sub("", text).strip():
            raise ValueError(f"expected a duration like '30s', '15m', '2h' or '1d', got {value!r}")
        seconds = sum(float(number) * _DURATION_UNITS[unit] for number, unit in parts)
    else:
        raise ValueError(f"expected a duration like '30s', '15m', '2h' or '1d', got {value!r}")
    if seconds <= 0:
        raise ValueError(f"expected a positive duration, got {value!r}")
    return timedelta(seconds=seconds)


def parse_size(value: object) -> int:
    """Read a byte count: 10_000_000, "10MB" or "8 MiB"."""
    if isinstance(value, int) and not isinstance(value, bool):
        size = value
    elif isinstance(value, str) and (match := _SIZE.fullmatch(value.strip())):
        size = int(float(match[1]) * _SIZE_UNITS[(match[2] or "b").lower()])
    else:
        raise ValueError(f"expected a size like 10_000_000 or '10MB', got {value!r}")
    if size <= 0:
        raise ValueError(f"expected a positive size, got {value!r}")
    return size


def _http_url(value: str) -> str:
    parts = urlsplit(value)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ValueError(f"expected an absolute http(s) URL, got {value!r}")
    if _is_numeric_host(parts.hostname):
        try:
            ipaddress.IPv4Address(parts.hostname)
        except ValueError:
            raise ValueError(
                "a numeric host must be a plain dotted IPv4 address like 192.0.2.1 (octal, hex "
                f"and single-number forms reach other addresses than they seem), got {value!r}"
            ) from None
    return value


def _is_numeric_host(host: str) -> bool:
    """A host written as numbers (0177.0.0.1, 0x7f.1, 2130706433): an IPv4 address in some
    form, since no top-level domain is all digits."""
    return all(re.fullmatch(r"\d+|0x[0-9a-f]*", label) for label in host.lower().split("."))


def _source_type(value: str) -> str:
    if value not in SOURCE_TYPES:
        raise ValueError(f"expected one of {', '.join(map(repr, SOURCE_TYPES))}, got {value!r}")
    return value


def _name(value: str) -> str:
    if not _NAME.fullmatch(value):
        raise ValueError(
            f"expected a short name of letters, digits, '-', '_' or '.', got {value!r}"
        )
    return value


def _timezone(value: str) -> str:
    try:
        zoneinfo.ZoneInfo(value)
    except (zoneinfo.ZoneInfoNotFoundError, ValueError):
        raise ValueError(
            f"expected an IANA time zone such as 'Europe/London', got {value!r}"
        ) from None
    return value


def _cron_schedule(value: str) -> str:
    cron_trigger(value, "UTC")
    return value


def _email_address(value: str) -> str:
    if not EMAIL_ADDRESS.fullmatch(value):
        raise ValueError(f"expected an e-mail address like 'reader@example.org', got {value!r}")
    return value


def _mailbox(value: str) -> str:
    """An address with an optional display name: 'Digest <digest@example.org>'."""
    _, address = parseaddr(value)
    if not address or any(char in value for char in "\r\n"):
        raise ValueError(f"expected an address like 'Name <digest@example.org>', got {value!r}")
    _email_address(address)
    return value.strip()


def _subject_template(value: str) -> str:
    try:
        fields = {field for _, field, _, _ in Formatter().parse(value) if field is not None}
    except ValueError as exc:
        raise ValueError(f"not a valid template ({exc}): {value!r}") from None
    if unknown := fields - set(SUBJECT_FIELDS):
        raise ValueError(
            f"unknown field {{{sorted(unknown)[0]}}} in {value!r}; "
            f"use {', '.join('{' + field + '}' for field in SUBJECT_FIELDS)}"
        )
    return value


def _resolve_path(value: Path, info: ValidationInfo) -> Path:
    base_dir: Path = (info.context or {}).get("base_dir", Path.cwd())
    return value if value.is_absolute() else (base_dir / value).resolve()


DATABASE_DRIVERS = ("sqlite", "sqlite+pysqlite", "postgresql", "postgres", "postgresql+psycopg")


def resolve_database_url(url: str, base_dir: Path) -> str:
    """Make a SQLite path absolute against the config's folder; pick psycopg 3 for PostgreSQL.

    Every message about the URL hides its password: it is printed, and logged by systemd."""
    from sqlalchemy.engine import make_url
    from sqlalchemy.exc import ArgumentError

    try:
        parsed = make_url(url)
    except (ArgumentError, ValueError):  # ValueError: a port that is not a number
        raise ValueError(
            f"expected a database URL like 'sqlite:///aggregator.db', got {redacted(url)!r}"
        ) from None
    if parsed.drivername not in DATABASE_DRIVERS:
        raise ValueError(
            "expected sqlite:///PATH or postgresql://USER@HOST/DATABASE (psycopg 3 is the "
            f"driver), got {parsed.render_as_string(hide_password=True)!r}"
        )
    if parsed.drivername.startswith("sqlite") and parsed.database not in (None, "", ":memory:"):
        path = Path(parsed.database)
        if not path.is_absolute():
            parsed = parsed.set(database=str((base_dir / path).resolve()))
    elif parsed.drivername.startswith("postgres"):
        parsed = parsed.set(drivername="postgresql+psycopg")
        _check_connection_options(parsed)
    return parsed.render_as_string(hide_password=False)


def _check_connection_options(url: URL) -> None:
    """Refuse connection options libpq does not know, here rather than at the first connect."""
    try:
        from psycopg import ProgrammingError, conninfo
    except ImportError:  # without the postgres extra, connecting says what to install
        return
    options = {name: str(value) for name, value in url.query.items()}
    try:
        conninfo.make_conninfo("", **options)
    except ProgrammingError as error:
        raise ValueError(f"{error} in {url.render_as_string(hide_password=True)!r}") from None


Duration = Annotated[timedelta, BeforeValidator(parse_duration)]
ByteSize = Annotated[int, BeforeValidator(parse_size)]
HttpUrl = Annotated[str, AfterValidator(_http_url)]
Name = Annotated[str, AfterValidator(_name)]
SourceTypeName = Annotated[str, AfterValidator(_source_type)]
TimeZone = Annotated[str, AfterValidator(_timezone)]
CronSchedule = Annotated[str, AfterValidator(_cron_schedule)]
EmailAddress = Annotated[str, AfterValidator(_email_address)]
Mailbox = Annotated[str, AfterValidator(_mailbox)]
SubjectTemplate = Annotated[str, AfterValidator(_subject_template)]


# validate_default: defaults such as the SQLite path must be resolved like written values.
_SECTION_CONFIG = ConfigDict(extra="forbid", populate_by_name=True, validate_default=True)


class _Section(BaseModel):
    model_config = _SECTION_CONFIG | ConfigDict(frozen=True)


class DatabaseSettings(_Section):
    url: str = "sqlite:///aggregator.db"
    busy_timeout: Duration = timedelta(seconds=30)  # waiting for another process's lock

    @field_validator("url")
    @classmethod
    def _resolve(cls, value: str, info: ValidationInfo) -> str:
        return resolve_database_url(value, (info.context or {}).get("base_dir", Path.cwd()))


class FetchSettings(_Section):
    interval: Duration = timedelta(hours=1)
    timeout: Duration = timedelta(seconds=30)
    concurrency: int = Field(16, ge=1, le=256)
    per_host: int = Field(2, ge=1, le=64)
    max_bytes: ByteSize = 10_000_000
    max_redirects: int = Field(5, ge=0, le=20)
    user_agent: str = Field(DEFAULT_USER_AGENT, min_length=1)
    allow_private_addresses: bool = False
    adaptive: bool = True  # feeds without their own interval follow how often they publish
    min_interval: Duration = timedelta(minutes=15)
    max_interval: Duration = timedelta(days=1)
    pause_after: Duration = timedelta(days=7)  # a feed failing this long is paused
    poll: Duration = timedelta(seconds=10)  # how often `run` looks for feeds that are due
    contact_email: EmailAddress | None = None  # NCBI asks API callers for one
    ncbi_api_key_env: str = "NCBI_API_KEY"  # 10 PubMed requests a second instead of 3
    # Read from the environment variable above by `parse_settings`, never from the file.
    ncbi_api_key: str | None = Field(None, repr=False, exclude=True)

    @field_validator("ncbi_api_key")
    @classmethod
    def _not_in_the_file(cls, value: str | None, info: ValidationInfo) -> str | None:
        if value is not None:
            raise ValueError(
                "secrets never go in the file: set the environment variable named by "
                "fetch.ncbi_api_key_env instead"
            )
        return value

    @model_validator(mode="after")
    def _check_bounds(self) -> FetchSettings:
        if self.min_interval > self.max_interval:
            raise _ReferenceError(
                ("fetch", "min_interval"), "min_interval is longer than max_interval"
            )
        return self


class ServiceSettings(_Section):
    """`aggregator run`: how it logs and how long it waits for work in progress when stopped."""

    log_level: Literal["debug", "info", "warning", "error"] = "info"
    shutdown_timeout: Duration = timedelta(seconds=30)


@pydantic_dataclass(frozen=True, slots=True, config=_SECTION_CONFIG)
class FeedSettings:
    """One [[feeds]] table. A dataclass with slots rather than a model: a config may list
    thousands of feeds, each held for the whole life of the process, and a model's instance
    (its dict and its set of the fields given) took 585 bytes against 122 (bench/README.md).
    """

    name: Name
    url: HttpUrl
    type: SourceTypeName = "rss"
    kind: SourceKind | None = None
    title: str | None = None  # what readers see it called, rather than the feed's own title
    tags: tuple[str, ...] = ()  # the operator's own grouping (an OPML folder): export keeps it
    interval: Duration | None = None
    assume: tuple[str, ...] = ()
    topics: tuple[str, ...] = ()

    @model_validator(mode="before")
    @classmethod
    def _kind_from_type(cls, data: Any) -> Any:
        """A registry query is a registry and a literature search finds papers, unless told."""
        if isinstance(data, dict) and data.get("kind") is None:
            registered = SOURCE_TYPES.get(str(data.get("type", "rss")))
            return data | {"kind": registered.kind} if registered and registered.kind else data
        return data


class TopicSettings(_Section):
    id: Name
    title: str = ""
    all: tuple[str, ...] = ()
    any: tuple[str, ...] = ()
    none: tuple[str, ...] = ()


class DigestSettings(_Section):
    """Defaults for every subscriber; `to` lists subscribers who take all of them."""

    schedule: CronSchedule = "0 7 * * 1"  # also when a weekly reader of the page gets theirs
    daily_schedule: CronSchedule = "0 7 * * *"  # when a daily reader of the page gets theirs
    timezone: TimeZone = "Europe/London"
    sender: Mailbox | None = Field(None, alias="from")
    to: tuple[EmailAddress, ...] = ()
    send_empty: bool = False
    subject: SubjectTemplate = "{count_text} · {title} · {date}"


class SubscriberSettings(_Section):
    """One reader with their own topics (all when empty), schedule or `send_empty`."""

    email: EmailAddress
    topics: tuple[str, ...] = ()
    schedule: CronSchedule | None = None
    timezone: TimeZone | None = None
    send_empty: bool | None = None


@dataclass(frozen=True, slots=True)
class Subscriber:
    """A digest reader with every default filled in: what the digest code works from."""

    email: str
    topics: tuple[str, ...]
    schedule: str
    timezone: str
    send_empty: bool
    id: int | None = None  # the database's row: what links in the digest name them by
    due_from: datetime | None = None  # runs before this are not theirs (see `Subscription`)
    from_config: bool = True

    @property
    def key(self) -> str:
        """Whose digests these are in the outbox: the address for a reader the config names
        (as always), a row number for one who subscribed, so no address is copied there."""
        return self.email if self.from_config or self.id is None else reader_key(self.id)


class SmtpSettings(_Section):
    host: str = "localhost"
    port: int = Field(587, ge=1, le=65535)
    security: Literal["starttls", "tls", "none"] = "starttls"
    username: str | None = None
    password_env: str = "AGGREGATOR_SMTP_PASSWORD"
    timeout: Duration = timedelta(seconds=30)
    retries: int = Field(3, ge=0, le=10)
    retry_delay: Duration = timedelta(seconds=5)
    ca_file: Annotated[Path, AfterValidator(_resolve_path)] | None = None


class OutputSettings(_Section):
    title: str = "CAR T-cell therapy in MS: research news"
    base_url: HttpUrl = "http://localhost:8080/"
    dir: Annotated[Path, AfterValidator(_resolve_path)] = Path("public")
    max_items: int = Field(100, ge=1, le=10_000)


class ServerSettings(_Section):
    host: str = "127.0.0.1"
    port: int = Field(8080, ge=1, le=65535)
    # Processes rendering pages: None for one per core; 0 renders in the server's threads,
    # saving their memory (each is a Python process) at the cost of pages under load.
    render_workers: int | None = Field(None, ge=0, le=64)


class Settings(_Section):
    """The whole configuration; built only by `load_settings`, never mutated."""

    # Made when needed: resolving its URL imports SQLAlchemy, which parse workers never need.
    database: DatabaseSettings = Field(default_factory=DatabaseSettings)
    fetch: FetchSettings = FetchSettings()
    feeds: tuple[FeedSettings, ...] = ()
    terms: dict[Name, tuple[str, ...]] = {}
    vetoes: dict[str, tuple[str, ...]] = {}
    requires: dict[str, tuple[str, ...]] = {}
    topics: tuple[TopicSettings, ...] = ()
    digest: DigestSettings = DigestSettings()
    subscribers: tuple[SubscriberSettings, ...] = ()
    smtp: SmtpSettings = SmtpSettings()
    output: OutputSettings = OutputSettings()
    server: ServerSettings = ServerSettings()
    service: ServiceSettings = ServiceSettings()

    @model_validator(mode="before")
    @classmethod
    def _validate_missing_sections(cls, data: Any) -> Any:
        """A missing section is validated as an empty one, so its defaults see the config folder."""
        if isinstance(data, dict):
            return {section: {} for section in _SECTIONS} | data
        return data

    @model_validator(mode="after")
    def _check_references(self) -> Settings:
        _require_unique("feeds", "name", [feed.name for feed in self.feeds])
        _require_unique("topics", "id", [topic.id for topic in self.topics])
        topic_ids = {topic.id for topic in self.topics}
        known_terms = {
            split_marker(term.strip())[0] for phrases in self.terms.values() for term in phrases
        }
        for section in ("vetoes", "requires"):
            for term in getattr(self, section):
                if term not in known_terms:
                    raise _ReferenceError(
                        (section, term), f"{term!r} is not a term of any [terms] group"
                    )
        for group, phrases in self.terms.items():
            for index, phrase in enumerate(phrases):
                marker = split_marker(phrase.strip())[1]
                if marker is not None and marker not in TERM_MARKERS:
                    raise _ReferenceError(
                        ("terms", group, index),
                        f"unknown marker @{marker} in {phrase!r}: use @defined or a language "
                        f"({', '.join(sorted(TERM_MARKERS - {'defined'}))})",
                    )
        for index, topic in enumerate(self.topics):
            if not topic.all and not topic.any:
                raise _ReferenceError(
                    ("topics", index, "id"), "a topic needs `all` or `any` groups"
                )
            for key in ("all", "any", "none"):
                for group in getattr(topic, key):
                    if group not in self.terms:
                        raise _ReferenceError(
                            ("topics", index, key), f"no [terms] group named {group!r}"
                        )
        for index, feed in enumerate(self.feeds):
            for group in feed.assume:
                if group not in self.terms:
                    raise _ReferenceError(
                        ("feeds", index, "assume"), f"no [terms] group named {group!r}"
                    )
            for topic_id in feed.topics:
                if topic_id not in topic_ids:
                    raise _ReferenceError(
                        ("feeds", index, "topics"), f"no topic with id {topic_id!r}"
                    )
        self._check_subscribers(topic_ids)
        return self

    def _check_subscribers(self, topic_ids: set[str]) -> None:
        emails = [address.lower() for address in self.digest.to]
        for index, subscriber in enumerate(self.subscribers):
            if subscriber.email.lower() in emails:
                raise _ReferenceError(
                    ("subscribers", index, "email"),
                    f"{subscriber.email!r} is subscribed twice (also in digest.to or above)",
                )
            emails.append(subscriber.email.lower())
            for topic_id in subscriber.topics:
                if topic_id not in topic_ids:
                    raise _ReferenceError(
                        ("subscribers", index, "topics"), f"no topic with id {topic_id!r}"
                    )
        if emails and self.digest.sender is None:
            raise _ReferenceError(
                ("digest", "from"), "digests have subscribers, so they need a `from` address"
            )
        if self.smtp.username and self.smtp.security == "none":
            raise _ReferenceError(
                ("smtp", "security"),
                "a username with security = 'none' would send the password unencrypted; "
                "use 'starttls' or 'tls'",
            )

    @property
    def all_subscribers(self) -> list[Subscriber]:
        """Every digest reader: each `digest.to` address, then each [[subscribers]] entry."""
        digest = self.digest
        every_topic = tuple(topic.id for topic in self.topics)
        readers = [self.reader_of_everything(email) for email in digest.to]
        for entry in self.subscribers:
            readers.append(
                Subscriber(
                    email=entry.email,
                    topics=entry.topics or every_topic,
                    schedule=entry.schedule or digest.schedule,
                    timezone=entry.timezone or digest.timezone,
                    send_empty=digest.send_empty if entry.send_empty is None else entry.send_empty,
                )
            )
        return readers

    def reader_of_everything(self, email: str) -> Subscriber:
        """A reader of every topic on the [digest] defaults: what `digest.to` addresses are."""
        digest = self.digest
        every_topic = tuple(topic.id for topic in self.topics)
        return Subscriber(email, every_topic, digest.schedule, digest.timezone, digest.send_empty)

    def warnings(self) -> list[tuple[str, str]]:
        """Settings that work but that a publisher asks to be otherwise: (key, why)."""
        found = []
        if self.fetch.contact_email is None and any(f.type == "pubmed" for f in self.feeds):
            found.append(
                (
                    "fetch.contact_email",
                    "PubMed feeds are configured but no contact_email: NCBI asks every "
                    "E-utilities caller for one, and may block callers without it",
                )
            )
        return found

    @property
    def topic_titles(self) -> dict[str, str]:
        """What readers see for each topic id: its title, else the id itself."""
        return {topic.id: topic.title or topic.id for topic in self.topics}

    def feed(self, name: str) -> FeedSettings:
        """The feed called `name`, or a ConfigError listing the names there are."""
        for feed in self.feeds:
            if feed.name == name:
                return feed
        known = ", ".join(feed.name for feed in self.feeds) or "none"
        raise ConfigError(f"no feed named {name!r} (feeds: {known})")


_SECTIONS = ("database", "fetch", "digest", "smtp", "output", "server", "service")


class _ReferenceError(ValueError):
    """A cross-reference between sections is broken; `loc` says which key to blame."""

    def __init__(self, loc: tuple[str | int, ...], message: str) -> None:
        self.loc = loc
        super().__init__(message)


def _require_unique(section: str, key: str, values: list[str]) -> None:
    seen: set[str] = set()
    for index, value in enumerate(values):
        if value in seen:
            raise _ReferenceError((section, index, key), f"duplicate {key} {value!r}")
        seen.add(value)


def config_path(explicit: str | os.PathLike[str] | None) -> Path:
    """The config file to read: the --config flag, else $AGGREGATOR_CONFIG, else ./config.toml."""
    if explicit is not None:
        return Path(explicit)
    return Path(os.environ.get(CONFIG_ENV) or DEFAULT_CONFIG_PATH)


def load_settings(path: Path, environ: Mapping[str, str] | None = None) -> Settings:
    """Read and validate `path`; $AGGREGATOR_DATABASE_URL overrides [database] url."""
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ConfigError("config file not found", path=str(path)) from None
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"cannot read config file: {exc}", path=str(path)) from None
    return parse_settings(text, path, environ)


def _base_dir(path: Path, environ: Mapping[str, str]) -> Path:
    """What relative paths in the config mean: the config's folder, except under systemd with
    `StateDirectory=`, which sets $STATE_DIRECTORY: a config in the read-only /etc/aggregator/
    keeps its database and output in /var/lib/aggregator/ instead."""
    if state := environ.get(STATE_DIRECTORY_ENV):
        return Path(state.split(":")[0]).resolve()
    return path.resolve().parent


def parse_settings(text: str, path: Path, environ: Mapping[str, str] | None = None) -> Settings:
    """Validate config text as if read from `path` (relative paths resolve against its folder,
    or $STATE_DIRECTORY)."""
    environ = os.environ if environ is None else environ
    try:
        data: dict[str, Any] = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        line = _toml_error_line(str(exc))
        raise ConfigError(f"not valid TOML: {exc}", path=str(path), line=line) from None
    if database_url := environ.get(DATABASE_URL_ENV):
        data.setdefault("database", {})
        if isinstance(data["database"], dict):
            data["database"]["url"] = database_url
    try:
        settings = Settings.model_validate(data, context={"base_dir": _base_dir(path, environ)})
    except ValidationError as exc:
        error = exc.errors()[0]
        loc, message = error["loc"], error["msg"].removeprefix("Value error, ")
        cause = error.get("ctx", {}).get("error")
        if isinstance(cause, _ReferenceError):
            loc = cause.loc
        if error["type"] in ("extra_forbidden", "unexpected_keyword_argument"):
            message = "unknown key (check its spelling and section)"
        elif (
            error["type"] != "value_error"
            and "input" in error
            and not isinstance(error["input"], dict | list)
        ):
            message = f"{message}, got {error['input']!r}"
        key = _dotted(loc)
        if key.startswith("database.url") and database_url:
            key = f"${DATABASE_URL_ENV}"
        raise ConfigError(f"{key}: {message}", path=str(path), line=locate_key(text, loc)) from None
    return _with_secrets(settings, environ)


def _with_secrets(settings: Settings, environ: Mapping[str, str]) -> Settings:
    """`settings` with the secrets the environment holds for it (the NCBI API key)."""
    fetch = settings.fetch
    key = environ.get(fetch.ncbi_api_key_env) or None
    return settings.model_copy(update={"fetch": fetch.model_copy(update={"ncbi_api_key": key})})


def _dotted(loc: tuple[str | int, ...]) -> str:
    key = ""
    for part in loc:
        key += f"[{part}]" if isinstance(part, int) else f".{part}" if key else str(part)
    return key or "(top level)"


def _toml_error_line(message: str) -> int | None:
    match = re.search(r"at line (\d+)", message)
    return int(match[1]) if match else None


_TABLE = re.compile(r"\s*(\[\[?)\s*([A-Za-z0-9_.\-\"' ]+?)\s*\]\]?\s*(#.*)?$")
_KEY = re.compile(r"\s*([A-Za-z0-9_\-\"']+)\s*=")


def locate_key(text: str, loc: tuple[str | int, ...]) -> int | None:
    """Best-effort line number of the key at `loc` (e.g. ("feeds", 2, "interval")).

    tomllib keeps no positions, so walk the lines tracking the current table. If the key itself is
    absent (a missing required key), the line of its table is the most useful answer.
    """
    array_counts: dict[str, int] = {}
    table: tuple[str | int, ...] = ()
    best_line: int | None = None
    best_depth = 0
    for number, line in enumerate(text.splitlines(), start=1):
        if match := _TABLE.match(line):
            name = match[2].replace('"', "").replace("'", "")
            if match[1] == "[[":
                index = array_counts.get(name, -1) + 1
                array_counts[name] = index
                table = (*name.split("."), index)
            else:
                table = tuple(name.split("."))
            path: tuple[str | int, ...] = table
        elif match := _KEY.match(line):
            path = (*table, match[1].strip("\"'"))
        else:
            continue
        depth = _common_prefix(path, loc)
        if depth == len(path) and depth > best_depth:
            best_line, best_depth = number, depth
    return best_line


def _common_prefix(a: tuple[str | int, ...], b: tuple[str | int, ...]) -> int:
    depth = 0
    for left, right in zip(a, b, strict=False):
        if left != right:
            break
        depth += 1
    return depth
