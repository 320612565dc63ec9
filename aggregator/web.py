"""The HTTP face: the page, the output feeds, health. An ASGI app (Starlette) for uvicorn.

Feeds are served from the files `export` writes, so the server does no work per request beyond
a file read, and conditional requests (ETag, Last-Modified) get 304s; responses are gzipped
for clients that ask. The page is rendered from the database with Jinja2 (autoescaped), plain
HTML and CSS: it works on a phone and without JavaScript. Its ETag is derived from the
database's content version, so a reader's browser or a cache revalidating it costs one small
query and a 304, not a render.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Callable
from email import message_from_bytes, policy
from email.message import EmailMessage
from pathlib import Path
from typing import Any

from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.middleware.gzip import GZipMiddleware
from starlette.requests import Request
from starlette.responses import (
    FileResponse,
    HTMLResponse,
    JSONResponse,
    PlainTextResponse,
    Response,
)
from starlette.routing import Mount, Route
from starlette.staticfiles import NotModifiedResponse, StaticFiles
from starlette.templating import Jinja2Templates
from starlette.types import Scope

from aggregator import __version__
from aggregator.config import Settings
from aggregator.metrics import CONTENT_TYPE as METRICS_CONTENT_TYPE
from aggregator.metrics import Metrics
from aggregator.models import PAUSED
from aggregator.publish.feeds import MEDIA_TYPES
from aggregator.publish.templates import environment
from aggregator.store import Outbox, Repository
from aggregator.store.outbox import StoredDigest

ARCHIVE_SIZE = 200  # the newest sent digests listed at /digests/


class FeedFiles(StaticFiles):
    """The output folder, with the media types feed readers expect (RSS is not just XML)."""

    def file_response(
        self,
        full_path: str | os.PathLike[str],
        stat_result: os.stat_result,
        scope: Scope,
        status_code: int = 200,
    ) -> Response:
        response = FileResponse(
            full_path,
            status_code=status_code,
            stat_result=stat_result,
            media_type=media_type(Path(full_path)),
        )
        if self.is_not_modified(response.headers, Request(scope).headers):
            return NotModifiedResponse(response.headers)
        return response


def media_type(path: Path) -> str | None:
    """RSS for `feed.xml` and `topics/*.xml`, Atom for `atom.xml` and `*.atom`, JSON Feed."""
    if path.name == "atom.xml" or path.suffix == ".atom":
        return MEDIA_TYPES["atom"]
    if path.suffix == ".xml":
        return MEDIA_TYPES["rss"]
    if path.suffix == ".json":
        return MEDIA_TYPES["json"]
    return None


def create_app(
    repository: Repository,
    outbox: Outbox,
    settings: Settings,
    *,
    metrics: Metrics | None = None,
    scheduler_health: Callable[[], dict[str, Any]] | None = None,
) -> Starlette:
    """The application: the page, the digest archive, /healthz, /metrics, then every exported
    feed. `aggregator run` passes its metrics and scheduler; `serve` has neither of its own."""
    metrics = metrics or Metrics(repository)
    templates = Jinja2Templates(env=environment())
    topic_titles = settings.topic_titles
    topics = [{"id": topic_id, "title": title} for topic_id, title in topic_titles.items()]
    common = {"site_title": settings.output.title, "topics": topics, "topic_titles": topic_titles}

    # What else shapes the page, fixed while the server runs: rendered to text once.
    rendering = repr((__version__, settings.output.title, settings.output.max_items, topic_titles))

    async def page(request: Request) -> Response:
        topic_id = request.query_params.get("topic") or None
        if topic_id is not None and topic_id not in topic_titles:
            return PlainTextResponse(f"No topic {topic_id!r}.", status_code=404)
        query = request.query_params.get("q", "").strip()[:200] or None
        # Weak: the same page gzipped or not. The version changes with every stored change.
        version = (repository.content_version(), rendering, topic_id, query)
        etag = 'W/"' + hashlib.sha256(repr(version).encode()).hexdigest()[:32] + '"'
        validators = {"ETag": etag, "Cache-Control": "no-cache", "Vary": "Accept-Encoding"}
        if _etag_matches(request.headers.get("If-None-Match", ""), etag):
            return Response(status_code=304, headers=validators)
        stories = repository.list_stories(settings.output.max_items, topic=topic_id, search=query)
        topic = {"id": topic_id, "title": topic_titles[topic_id]} if topic_id else None
        context = common | {"stories": stories, "topic": topic, "query": query}
        return templates.TemplateResponse(request, "index.html", context, headers=validators)

    async def digests(request: Request) -> Response:
        # Readers with the same topics get the same digest; the archive shows it once.
        archive: dict[str, StoredDigest] = {}
        for digest in outbox.sent(ARCHIVE_SIZE):
            archive.setdefault(_html_part(digest.message), digest)
        context = common | {"topic": None, "digests": list(archive.values())}
        return templates.TemplateResponse(request, "digests.html", context)

    async def archived_digest(request: Request) -> Response:
        digest = outbox.get_sent(request.path_params["digest_id"])
        if digest is None:
            return PlainTextResponse("No such digest.", status_code=404)
        return HTMLResponse(_html_part(digest.message))

    async def healthz(_request: Request) -> JSONResponse:
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
        return JSONResponse(
            {
                "status": "ok",
                "scheduler": scheduler_health() if scheduler_health else {"state": "off"},
                "last_successful_fetch": max(successes).isoformat() if successes else None,
                "feeds": len(feeds),
                "failing_feeds": failing,
                "paused_feeds": [feed.name for feed in feeds if feed.status == PAUSED],
            }
        )

    async def metrics_page(_request: Request) -> Response:
        return Response(metrics.exposition(), media_type=METRICS_CONTENT_TYPE)

    settings.output.dir.mkdir(parents=True, exist_ok=True)
    return Starlette(
        routes=[
            Route("/", page),
            Route("/digests/", digests),
            Route("/digests/{digest_id:int}", archived_digest),
            Route("/healthz", healthz),
            Route("/metrics", metrics_page),
            Mount("/", app=FeedFiles(directory=settings.output.dir)),
        ],
        middleware=[Middleware(GZipMiddleware, minimum_size=500)],
    )


def _etag_matches(if_none_match: str, etag: str) -> bool:
    """RFC 9110's weak comparison, which is the one If-None-Match uses."""
    if if_none_match.strip() == "*":
        return True
    return etag.removeprefix("W/") in {
        tag.strip().removeprefix("W/") for tag in if_none_match.split(",")
    }


def _html_part(message: bytes) -> str:
    """The HTML part of a stored digest, as the reader's mail client showed it."""
    parsed = message_from_bytes(message, policy=policy.default)
    assert isinstance(parsed, EmailMessage)
    body = parsed.get_body(preferencelist=("html",))
    return str(body.get_content()) if body is not None else ""
