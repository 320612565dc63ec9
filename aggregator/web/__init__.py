"""The HTTP face: the pages, the output feeds, health. An ASGI app (Starlette) for uvicorn.

Everything that reads the database or renders a template runs off the event loop: pages in
worker processes (`render_pool.py`), small reads and forms in a few threads (`PAGE_THREADS`),
so a flood of page requests queues for those while `/healthz` has threads of its own and
answers at once. A rendered page is kept
until the stored content changes (`cache.PageCache`), and its ETag is that content version, so
a reader's browser revalidating costs one small query and a 304. Feeds are served from the
files `export` writes. Responses are gzipped for clients that ask, and carry the headers in
`security.py`.
"""

from __future__ import annotations

import hashlib
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from functools import partial
from pathlib import Path
from typing import Any

import uvicorn
from anyio import CapacityLimiter, to_thread
from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.middleware import Middleware
from starlette.middleware.gzip import GZipMiddleware
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Mount, Route
from starlette.staticfiles import StaticFiles
from starlette.types import ASGIApp
from uvicorn.config import STARTUP_FAILURE

from aggregator import __version__
from aggregator.config import Settings
from aggregator.errors import AggregatorError
from aggregator.metrics import CONTENT_TYPE as METRICS_CONTENT_TYPE
from aggregator.metrics import Metrics
from aggregator.models import PAUSED
from aggregator.store import Outbox, Repository
from aggregator.web.cache import FreshVersion, PageCache, html_response
from aggregator.web.files import FeedFiles
from aggregator.web.pages import Page, Site
from aggregator.web.render_pool import PageRenderer
from aggregator.web.security import SecurityHeaders
from aggregator.web.subscribe import Subscribing, subscription_routes

PAGE_THREADS = 2  # reads and renders at once in this process: each holds the GIL, which the
# event loop needs
HEALTH_THREADS = 2  # kept apart, so a flood of page requests never queues /healthz
STATIC = Path(__file__).parent / "static"

# uvicorn's limits: past LIMIT_CONCURRENCY open requests a client gets a quick 503 rather than
# a slot in an ever longer queue; an idle keep-alive connection is closed after a few seconds,
# and a request whose headers never end is cut off at MAX_HEADER_BYTES.
LIMIT_CONCURRENCY = 512
KEEP_ALIVE_SECONDS = 5
MAX_HEADER_BYTES = 16 * 1024


def create_app(
    repository: Repository,
    outbox: Outbox,
    settings: Settings,
    *,
    metrics: Metrics | None = None,
    scheduler_health: Callable[[], dict[str, Any]] | None = None,
    subscribing: Subscribing | None = None,
) -> Starlette:
    """The application: the pages, the reader's subscription pages (given `subscribing`), the
    digest archive, /healthz, /metrics, then every exported feed. `aggregator run` passes its
    metrics and scheduler; `serve` has neither of its own. `close_app` ends its workers."""
    metrics = metrics or Metrics(repository)
    site = Site(repository, outbox, settings)
    cache = PageCache()
    page_threads = CapacityLimiter(PAGE_THREADS)
    renderer = PageRenderer(site, settings, page_threads)
    version_now = FreshVersion(
        lambda: to_thread.run_sync(repository.content_version, limiter=page_threads)
    )
    health_threads = CapacityLimiter(HEALTH_THREADS)
    # What else shapes a page, fixed while the server runs.
    rendering = repr((__version__, settings.output.title, settings.output.max_items))

    async def serve_page(request: Request, page: Page) -> Response:
        """A page at the current content version: from the cache, or rendered now."""
        version = await version_now.get()
        key = (request.url.path, request.url.query)
        digest = hashlib.sha256(repr((version, rendering, key)).encode()).hexdigest()[:32]
        etag = f'W/"{digest}"'
        validators = {"ETag": etag, "Cache-Control": "no-cache", "Vary": "Accept-Encoding"}
        if _etag_matches(request.headers.get("If-None-Match", ""), etag):
            return Response(status_code=304, headers=validators)

        rendered = await cache.page(version, key, partial(renderer.render, page))
        headers = validators if rendered.status == 200 else {}
        return html_response(rendered, headers)

    async def front(request: Request) -> Response:
        return await serve_page(request, Page(Site.listed, (dict(request.query_params),)))

    async def month(request: Request) -> Response:
        month = request.path_params["month"]
        return await serve_page(request, Page(Site.listed, (dict(request.query_params), month)))

    async def archive(request: Request) -> Response:
        topic = request.query_params.get("topic") or None
        return await serve_page(request, Page(Site.archive, (topic,)))

    async def story(request: Request) -> Response:
        return await serve_page(request, Page(Site.story, (request.path_params["story_id"],)))

    async def digests(request: Request) -> Response:
        return await serve_page(request, Page(Site.digests))

    async def digest(request: Request) -> Response:
        return await serve_page(request, Page(Site.digest, (request.path_params["digest_id"],)))

    async def healthz(_request: Request) -> JSONResponse:
        health = await to_thread.run_sync(
            partial(_health, repository, scheduler_health), limiter=health_threads
        )
        return JSONResponse(health | {"render_workers": renderer.state})

    async def metrics_page(_request: Request) -> Response:
        exposition = await to_thread.run_sync(metrics.exposition, limiter=health_threads)
        return Response(exposition, media_type=METRICS_CONTENT_TYPE)

    async def not_found(_request: Request, _exc: Exception) -> Response:
        return html_response(site.error(404, "Not found", "There is no page at this address."))

    async def server_error(_request: Request, _exc: Exception) -> Response:
        message = "Something went wrong on our side; the page should be back shortly."
        return html_response(site.error(500, "Something went wrong", message))

    async def http_error(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, HTTPException)
        if exc.status_code == 404:
            return await not_found(request, exc)
        return Response(exc.detail, status_code=exc.status_code, headers=exc.headers)

    @asynccontextmanager
    async def lifespan(_app: Starlette) -> AsyncIterator[None]:
        renderer.start()
        yield
        renderer.close()

    settings.output.dir.mkdir(parents=True, exist_ok=True)
    app = Starlette(
        routes=[
            Route("/", front),
            Route("/stories/{story_id:int}", story),
            Route("/archive/", archive),
            Route("/archive/{month}", month),
            Route("/digests/", digests),
            Route("/digests/{digest_id:int}", digest),
            *subscription_routes(site, settings, subscribing, page_threads),
            Route("/healthz", healthz),
            Route("/metrics", metrics_page),
            Mount("/static", app=StaticFiles(directory=STATIC), name="static"),
            Mount("/", app=FeedFiles(directory=settings.output.dir)),
        ],
        middleware=[
            Middleware(SecurityHeaders),
            Middleware(GZipMiddleware, minimum_size=500),
        ],
        exception_handlers={HTTPException: http_error, 500: server_error},
        lifespan=lifespan,
    )
    app.state.renderer = renderer
    return app


def close_app(app: Starlette) -> None:
    """End the app's render workers once they finish the pages under way (a server's shutdown
    does this itself; a config reload that replaces the app calls it for the old one)."""
    renderer: PageRenderer = app.state.renderer
    renderer.close()


def serve_until_stopped(server: uvicorn.Server) -> None:
    """Run `server` until a signal stops it. One that cannot start (the port is taken, the
    address is not this machine's) is a runtime failure saying where, not uvicorn's exit 3."""
    try:
        server.run()
    except SystemExit as stop:
        if stop.code != STARTUP_FAILURE:
            raise
        config = server.config
        raise AggregatorError(
            f"cannot serve on {config.host}:{config.port}: is another server using that port? "
            "(see the error above; [server] port or --port chooses another)"
        ) from None


def server_config(app: ASGIApp, host: str, port: int) -> uvicorn.Config:
    """How uvicorn serves the app, for `serve` and `run` alike: bounded, so that slow or
    numerous clients cannot starve the others."""
    return uvicorn.Config(
        app,
        host=host,
        port=port,
        log_config=None,  # our logging: one line per event on stderr
        proxy_headers=False,
        limit_concurrency=LIMIT_CONCURRENCY,
        timeout_keep_alive=KEEP_ALIVE_SECONDS,
        h11_max_incomplete_event_size=MAX_HEADER_BYTES,
    )


def _health(
    repository: Repository, scheduler_health: Callable[[], dict[str, Any]] | None
) -> dict[str, Any]:
    feeds = repository.list_feeds()
    successes = [feed.last_success_at for feed in feeds if feed.last_success_at]
    failing = [
        {
            "name": feed.name,
            "status": feed.status,
            "last_error": feed.last_error,
            "consecutive_failures": feed.consecutive_failures,
        }
        for feed in feeds
        if feed.last_error is not None
    ]
    return {
        "status": "ok",
        "version": __version__,
        "scheduler": scheduler_health() if scheduler_health else {"state": "off"},
        "last_successful_fetch": max(successes).isoformat() if successes else None,
        "feeds": len(feeds),
        "failing_feeds": failing,
        "paused_feeds": [feed.name for feed in feeds if feed.status == PAUSED],
    }


def _etag_matches(if_none_match: str, etag: str) -> bool:
    """RFC 9110's weak comparison, which is the one If-None-Match uses."""
    if if_none_match.strip() == "*":
        return True
    return etag.removeprefix("W/") in {
        tag.strip().removeprefix("W/") for tag in if_none_match.split(",")
    }
