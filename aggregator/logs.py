"""Log lines for people and for machines: one line per event, in logfmt, whoever logged it.

    time=2026-12-02T07:00:01Z level=info logger=aggregator.pipeline event=feed_fetched
        feed=nature-ms url=https://... status=ok new=3 updated=0

structlog makes our lines from an event name and key-value pairs, so values with spaces are
quoted and nothing is a Python repr; the standard library's logging carries them, so the lines
of the libraries underneath (uvicorn, APScheduler, Alembic) come out in the same form, under
our logger names, with their text as `message`. Keys are the words of the product: `feed=`,
`url=`, `status=`, `items=`.
"""

from __future__ import annotations

import logging
import sys
from collections.abc import Iterator, MutableMapping
from contextlib import contextmanager
from functools import cache
from types import ModuleType
from typing import TYPE_CHECKING, Any, Protocol, TextIO

from aggregator.redact import redacted

if TYPE_CHECKING:
    from structlog.typing import EventDict, Processor

# Libraries whose lines appear under our names, and the event their lines stand for.
FOREIGN_LOGGERS = {
    "uvicorn.access": ("aggregator.http", "http_request"),
    "uvicorn": ("aggregator.http", "http_server"),
    "apscheduler": ("aggregator.scheduler", "scheduler"),
    "alembic": ("aggregator.migrations", "migration"),
}
_ORDER = ["time", "level", "logger", "event"]


class Logger:
    """A module's logger: `log.info("feed_fetched", feed=..., status=...)`.

    structlog is imported when a line is first logged or formatted, not when a module asks
    for its logger: a command that logs nothing (`stories list`) would otherwise pay 30 ms of
    its 0.4 s for it.
    """

    def __init__(self, name: str) -> None:
        self.name = name
        self._bound: Any = None

    def info(self, event: str, **fields: Any) -> None:
        self._logger().info(event, **fields)

    def warning(self, event: str, **fields: Any) -> None:
        self._logger().warning(event, **fields)

    def exception(self, event: str, **fields: Any) -> None:
        self._logger().exception(event, **fields)

    def _logger(self) -> Any:
        if self._bound is None:
            self._bound = _structlog().stdlib.get_logger(self.name)
        return self._bound


def get_logger(name: str) -> Logger:
    """The logger of module `name`."""
    return Logger(name)


@cache
def _structlog() -> ModuleType:
    """structlog, imported and configured once. Our events travel as standard library
    records, so a line logged before `configure` (or in a test) still reaches logging's
    handlers."""
    import structlog

    structlog.configure(
        processors=[
            structlog.stdlib.filter_by_level,
            *_shared_processors(),
            structlog.stdlib.ProcessorFormatter.wrap_for_formatter,
        ],
        logger_factory=structlog.stdlib.LoggerFactory(),
        wrapper_class=structlog.stdlib.BoundLogger,
        cache_logger_on_first_use=True,
    )
    return structlog


def _shared_processors() -> list[Processor]:
    import structlog

    return [
        structlog.stdlib.add_log_level,
        structlog.stdlib.add_logger_name,
        structlog.processors.TimeStamper(fmt="%Y-%m-%dT%H:%M:%SZ", utc=True, key="time"),
    ]


class LineSink(Protocol):
    def write(self, text: str, /) -> int: ...
    def flush(self) -> None: ...


@contextmanager
def writing_to(stream: LineSink) -> Iterator[None]:
    """Send log lines to `stream` for a while (above a progress bar), then back."""
    handlers = [h for h in logging.getLogger().handlers if isinstance(h, logging.StreamHandler)]
    previous = [handler.setStream(stream) for handler in handlers]
    try:
        yield
    finally:
        for handler, old in zip(handlers, previous, strict=True):
            if old is not None:
                handler.setStream(old)


def configure(level: int, stream: TextIO | None = None, *, requests: bool = False) -> None:
    """Send every log line at `level` or above to `stream` (standard error), in logfmt; a
    line per HTTP request served only with `requests` (a busy page would drown the rest)."""
    handler = logging.StreamHandler(stream or sys.stderr)
    handler.setFormatter(_LogfmtFormatter())
    root = logging.getLogger()
    root.handlers = [handler]
    root.setLevel(level)
    for noisy in ("httpx", "httpcore", "alembic"):
        logging.getLogger(noisy).setLevel(max(level, logging.WARNING))
    logging.getLogger("uvicorn.access").setLevel(level if requests else logging.WARNING)
    # A poll skipped because the previous fetch pass is still running is expected, not news.
    logging.getLogger("apscheduler").setLevel(max(level, logging.ERROR))


class _LogfmtFormatter(logging.Formatter):
    """structlog's ProcessorFormatter, made when the first line is formatted: configuring
    logging is every command's first step, logging a line is not."""

    def __init__(self) -> None:
        super().__init__()
        self._formatter: logging.Formatter | None = None

    def format(self, record: logging.LogRecord) -> str:
        if self._formatter is None:
            structlog = _structlog()
            self._formatter = structlog.stdlib.ProcessorFormatter(
                foreign_pre_chain=[*_shared_processors(), _as_our_event],
                processors=[
                    structlog.stdlib.ProcessorFormatter.remove_processors_meta,
                    structlog.processors.format_exc_info,
                    _without_none,
                    _without_secrets,
                    structlog.processors.LogfmtRenderer(key_order=_ORDER, bool_as_flag=False),
                ],
            )
        return self._formatter.format(record)


def _without_secrets(_logger: Any, _method: str, event: EventDict) -> EventDict:
    """No URL password or token in any value (`redact.py`), whoever logged it."""
    return {
        key: redacted(value) if isinstance(value, str) else value for key, value in event.items()
    }


def _as_our_event(_logger: Any, _method: str, event: EventDict) -> EventDict:
    """A library's line as one of ours: its logger renamed, its text as `message`, and an
    uvicorn access line as the request it records."""
    name = str(event.get("logger", ""))
    ours = next(
        (value for prefix, value in FOREIGN_LOGGERS.items() if name.startswith(prefix)), None
    )
    record = event.get("_record")
    if name == "uvicorn.access" and isinstance(record, logging.LogRecord):
        args = record.args if isinstance(record.args, tuple) else ()
        client, method, path, _version, status = (*args, None, None, None, None, None)[:5]
        return {
            **_meta(event),
            "logger": "aggregator.http.access",
            "event": "http_request",
            "client": client,
            "method": method,
            "path": path,
            "status": status,
        }
    logger, name_of_event = ours or (name, "library")
    return {**_meta(event), "logger": logger, "event": name_of_event, "message": event["event"]}


def _meta(event: EventDict) -> dict[str, Any]:
    """What ProcessorFormatter and the renderer need of a foreign record's event dict."""
    kept = ("_record", "_from_structlog", "time", "level", "exc_info", "stack_info")
    return {key: event[key] for key in kept if key in event}


def _without_none(_logger: Any, _method: str, event: MutableMapping[str, Any]) -> EventDict:
    """Keys with no value are left out: `error=None` tells a reader nothing."""
    return {key: value for key, value in event.items() if value is not None}
