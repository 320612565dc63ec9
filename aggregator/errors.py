"""One root for every error the aggregator raises on purpose.

The CLI maps the tree onto exit codes: `ConfigError` is a usage problem (exit 2), everything else
under `AggregatorError` is a runtime failure (exit 1). Per-feed errors never reach the CLI as
exceptions: the pipeline records them as a feed's result.
"""

from __future__ import annotations

from datetime import timedelta

from aggregator.redact import redacted


class AggregatorError(Exception):
    """Root of the errors the aggregator raises deliberately."""


class ConfigError(AggregatorError):
    """The config file or a command's arguments are wrong; the message names what and where."""

    def __init__(self, message: str, *, path: str | None = None, line: int | None = None) -> None:
        self.path = path
        self.line = line
        where = path if line is None else f"{path}:{line}"
        super().__init__(f"{where}: {message}" if where else message)


class FeedError(AggregatorError):
    """Something went wrong with one feed; carries its URL so logs and summaries can name it.
    The reason is stored and shown (`feeds list`, /healthz): no URL secret stays in it."""

    def __init__(self, url: str, message: str) -> None:
        self.url = url
        self.reason = redacted(message)
        super().__init__(url, message)  # the arguments as given, so it pickles across processes

    def __str__(self) -> str:
        return f"{redacted(self.url)}: {self.reason}"


class FetchError(FeedError):
    """The HTTP exchange failed: network, refused address, status code, size or time limit.

    `retry_after` is how long the server asked us to stay away (a 429 or 503's Retry-After).
    """

    def __init__(
        self,
        url: str,
        message: str,
        *,
        status: int | None = None,
        retry_after: timedelta | None = None,
    ) -> None:
        self.status = status
        self.retry_after = retry_after
        super().__init__(url, message)


class ParseError(FeedError):
    """The body arrived but is not a feed we can read."""


class StoreUnavailableError(AggregatorError):
    """The database could not do a unit of work: locked past the busy timeout, full,
    unreachable. The transaction was rolled back whole, so the same work can be tried again;
    the message is the database's own first line."""


class DatabaseNotReadyError(AggregatorError):
    """The database schema is missing or older than this version expects."""
