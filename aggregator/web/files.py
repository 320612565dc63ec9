"""The exported feed files, served with the media types feed readers expect."""

from __future__ import annotations

import os
from pathlib import Path

from starlette.requests import Request
from starlette.responses import FileResponse, Response
from starlette.staticfiles import NotModifiedResponse, StaticFiles
from starlette.types import Scope

from aggregator.publish.feeds import MEDIA_TYPES


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
