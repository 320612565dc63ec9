"""The `aggregator` command: parse arguments, call the pipeline or the store, print results.

Each command lives in a module of this package and is imported only when it runs, so that
`aggregator --help` (and a mistyped command) answers at once instead of loading the database
layer, the web server and the parsers first; `COMMANDS` lists them with the line `--help`
shows, which a test keeps equal to each command's own.

Exit codes (product contract): 0 success, 1 runtime failure, 2 usage or configuration error.
Feeds that fail during a fetch are a warning in the summary, not a failure of the command.
"""

from __future__ import annotations

import importlib
import sys
from pathlib import Path
from typing import Any

import click

from aggregator import __version__, heap
from aggregator.errors import AggregatorError, ConfigError, StoreUnavailableError

# name: (the module it lives in, the first line of its help: what `aggregator --help` lists)
COMMANDS: dict[str, tuple[str, str]] = {
    "init": ("database", "Create the database, or upgrade it to this version's schema."),
    "fetch": ("fetch", "Fetch due feeds once, and store what is new or changed."),
    "export": (
        "export",
        "Write the output feeds (RSS, Atom, JSON Feed) to [output] dir, or one feed to --output.",
    ),
    "digest": (
        "digest",
        "Send each subscriber the stories no digest has brought them yet, once per scheduled run.",
    ),
    "run": (
        "service",
        "The background service: scheduled fetches and digests, and the HTTP server.",
    ),
    "serve": ("service", "Serve the output feeds and /healthz over HTTP until interrupted."),
    "feeds": ("feeds", "List, add, remove and check feeds; import and export OPML."),
    "stories": ("stories", "List, search and show the stories collected so far."),
    "subscribers": (
        "subscribers",
        "List, add and remove digest readers (those in config.toml are listed, not changed).",
    ),
    "topics": ("topics", "Preview rule changes and measure them against labelled items."),
}


class _Failure(click.ClickException):
    """An AggregatorError on its way out, with the exit code the contract gives it."""

    def __init__(self, error: AggregatorError) -> None:
        super().__init__(str(error))
        self.exit_code = 2 if isinstance(error, ConfigError) else 1  # type: ignore[misc]


class _Commands(click.Group):
    """The commands, each imported from its module when it is run."""

    def list_commands(self, ctx: click.Context) -> list[str]:
        return list(COMMANDS)

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        if cmd_name not in COMMANDS:
            return None
        module = importlib.import_module(f"aggregator.cli.{COMMANDS[cmd_name][0]}")
        command = getattr(module, cmd_name)
        assert isinstance(command, click.Command)
        return command

    def format_commands(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        """Click's own listing, from COMMANDS rather than by importing every command."""
        limit = formatter.width - 6 - max(len(name) for name in COMMANDS)
        rows = [
            (name, click.Command(name, help=line).get_short_help_str(limit))
            for name, (_, line) in COMMANDS.items()
        ]
        with formatter.section("Commands"):
            formatter.write_dl(rows)

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except StoreUnavailableError as error:
            # Locked, unreachable, full: what was committed stays; the command can be re-run.
            raise _Failure(
                AggregatorError(f"database error, nothing half-done was kept: {error}")
            ) from error
        except AggregatorError as error:
            raise _Failure(error) from error


@click.group(cls=_Commands, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="aggregator")
@click.option(
    "--config",
    "config_file",
    type=click.Path(dir_okay=False, path_type=Path),
    help="Config file (default: $AGGREGATOR_CONFIG, else ./config.toml).",
)
@click.option("-v", "--verbose", count=True, help="More log lines (-vv for debug).")
@click.pass_context
def cli(ctx: click.Context, config_file: Path | None, verbose: int) -> None:
    """Research news on CAR T-cell therapy in multiple sclerosis: fetch, match, publish."""
    from aggregator.cli.app import App, configure_logging  # what every command needs

    configure_logging(verbose)
    ctx.obj = App.for_config(config_file, verbose)
    ctx.call_on_close(ctx.obj.close)


_UNUSED_IMPORTS = ("httpx._main", "rich.traceback")


def leave_out_unused_imports() -> None:
    """Two of the service's libraries import a feature of theirs the service never uses, and
    with it rich's syntax highlighting and pygments' lexers: httpx its own command line
    (encode/httpx#3547), structlog the rich tracebacks of its console renderer (the service
    logs in logfmt). 2.3 MB of a fetch's peak. A None in sys.modules makes each import fail,
    which both libraries handle as they would without rich installed. Called by the command,
    not on import, so a program that imports the package keeps them."""
    for name in _UNUSED_IMPORTS:
        sys.modules.setdefault(name, None)  # type: ignore[arg-type]  # None: "do not import"


def main() -> None:
    leave_out_unused_imports()
    with heap.collector_paused():
        cli(prog_name="aggregator")
