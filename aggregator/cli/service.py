"""`run` and `serve`: the background service and the site alone."""

from __future__ import annotations

import logging
import os
import signal

import click
import uvicorn

from aggregator import __version__, heap
from aggregator.cli.app import App, log, pass_app
from aggregator.errors import ConfigError
from aggregator.publish.export import export_all
from aggregator.publish.readers import digest_readers
from aggregator.redact import redacted
from aggregator.service import Service
from aggregator.store import Outbox
from aggregator.web import create_app, serve_until_stopped, server_config
from aggregator.web.subscribe import subscribing


@click.command()
@click.option("--no-server", is_flag=True, help="Only the scheduler: fetch, publish, send.")
@click.option("--no-scheduler", is_flag=True, help="Only the HTTP server.")
@pass_app
def run(app: App, no_server: bool, no_scheduler: bool) -> None:
    """The background service: scheduled fetches and digests, and the HTTP server."""
    if no_server and no_scheduler:
        raise ConfigError("--no-server and --no-scheduler together leave nothing to run")
    if app.verbose == 0:
        logging.getLogger().setLevel(app.settings.service.log_level.upper())
    settings = app.settings
    app.repository()  # the schema is current and the feeds follow the config
    log.info(
        "starting",
        version=__version__,
        config=str(app.config_file),
        database=redacted(settings.database.url),
        feeds=len(settings.feeds),
        topics=len(settings.topics),
        subscribers=len(digest_readers(settings, app.subscriptions())),
    )
    app.warn_about_settings()
    Service(
        settings,
        app.engine,
        scheduler=not no_scheduler,
        server=not no_server,
        config_file=app.config_file,
    ).run()


@click.command()
@click.option("--host", help="Address to listen on (default: [server] host).")
@click.option("--port", type=click.IntRange(1, 65535), help="Port (default: [server] port).")
@pass_app
def serve(app: App, host: str | None, port: int | None) -> None:
    """Serve the output feeds and /healthz over HTTP until interrupted."""
    repository = app.repository()
    export_all(app.settings, repository)
    server = app.settings.server
    # uvicorn shuts down gracefully on SIGTERM/SIGINT, then raises the signal again for the
    # handler it found; ours turns that into the clean exit 0 the contract promises.
    for stop_signal in (signal.SIGTERM, signal.SIGINT):
        signal.signal(stop_signal, _exit_cleanly)
    site = create_app(
        repository,
        Outbox(app.engine),
        app.settings,
        subscribing=subscribing(app.settings, app.engine, os.environ),
    )
    heap.freeze()  # set up: what exists now lives as long as the server
    serve_until_stopped(
        uvicorn.Server(server_config(site, host or server.host, port or server.port))
    )


def _exit_cleanly(_signal: int, _frame: object) -> None:
    raise SystemExit(0)
