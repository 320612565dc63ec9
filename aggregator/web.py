"""The HTTP face: the output feeds, health. An ASGI app (Starlette) for uvicorn.

Feeds are served from the files `export` writes, so the server does no work per request beyond
a file read, and conditional requests (ETag, Last-Modified) get 304s; responses are gzipped
for clients that ask.
"""

from __future__ import annotations

import os
from pathlib import Path

from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.middleware.gzip import GZipMiddleware
from starlette.requests import Request
from starlette.responses import FileResponse, JSONResponse, Response
from starlette.routing import Mount, Route
from starlette.staticfiles import NotModifiedResponse, StaticFiles
from starlette.types import Scope

from aggregator.publish.feeds import MEDIA_TYPES
from aggregator.store.repository import Repository


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


def create_app(repository: Repository, output_dir: Path) -> Starlette:
    """The application: /healthz, then every exported feed under its path."""

    async def healthz(_request: Request) -> JSONResponse:
        feeds = repository.list_feeds()
        successes = [feed.last_success_at for feed in feeds if feed.last_success_at]
        failing = [
            {
                "name": feed.name,
                "last_error": feed.last_error,
                "consecutive_failures": feed.consecutive_failures,
            }
            for feed in feeds
            if feed.last_error is not None
        ]
        return JSONResponse(
            {
                "status": "ok",
                "last_successful_fetch": max(successes).isoformat() if successes else None,
                "feeds": len(feeds),
                "failing_feeds": failing,
            }
        )

    output_dir.mkdir(parents=True, exist_ok=True)
    return Starlette(
        routes=[
            Route("/healthz", healthz),
            Mount("/", app=FeedFiles(directory=output_dir)),
        ],
        middleware=[Middleware(GZipMiddleware, minimum_size=500)],
    )
