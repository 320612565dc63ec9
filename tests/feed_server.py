"""A real HTTP server on 127.0.0.1 that serves feed files the way real publishers do.

Files come from a directory the test owns (so a test can change a feed between two fetches).
Every response carries an ETag and Last-Modified and honours conditional requests; gzip is used
when the client accepts it. A few paths imitate what goes wrong on the web:

    /status/<code>            that status code, with a short body (?retry-after=N adds the header)
    /max-age/<s>/<path>       the file with Cache-Control: max-age=<s>
    /gzip-bomb/<mb>           a small gzip body that inflates to <mb> MB of zeros
    /endless                  a chunked response that never ends
    /redirect/<n>/<path>      n redirects, then <path>
    /redirect-to?url=<url>    one redirect to any URL (another host)
    /loop                     a redirect to itself, forever
    /slow/<path>              the file, one byte every 0.2 s
    /delay/<ms>/<path>        the file after a pause (to observe concurrency)
    /ignore-validators/<path> the file with fresh validators on every request (no 304s)

API paths mirror the real endpoints and answer from files under api/, chosen by the paging
parameter, so tests exercise the same URLs and paging as production:

    /api/v2/studies?pageToken=T                  api/clinicaltrials/page-<T, else first>.json
    /entrez/eutils/esearch.fcgi                  api/pubmed/esearch.json
    /entrez/eutils/esummary.fcgi?id=N,...        api/pubmed/esummary-<first N>.json
    /entrez/eutils/efetch.fcgi?id=N,...          api/pubmed/efetch-<first N>.xml
    /europepmc/webservices/rest/search?cursorMark=C
                                                 api/europepmc/page-<C, "start" for *>.json

A folder before the API path serves its own files: /SITE/api/v2/studies answers from
SITE/api/clinicaltrials/..., so two feeds of one API can say different things.

`overrides` maps a path prefix to (status, headers): requests there get that answer instead (a
429 with Retry-After, a 503) until the test removes it. A prefix with a query string ("/api/v2/
studies?pageToken", "...esummary.fcgi?id=41200002") matches requests with those parameters
(any value where the prefix names none), in any order.

Every request is logged (path and headers) so tests can assert what the client sent, and the
most requests ever in flight at once is kept in `max_in_flight`.
"""

from __future__ import annotations

import gzip
import hashlib
import socket
import threading
import time
import zlib
from dataclasses import dataclass
from datetime import datetime
from email.utils import format_datetime, formatdate
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import parse_qs, urlsplit
from xml.sax.saxutils import escape

CONTENT_TYPES = {
    ".xml": "application/rss+xml; charset=utf-8",
    ".rdf": "application/rdf+xml",
    ".json": "application/feed+json",
    ".html": "text/html; charset=utf-8",
    ".opml": "text/x-opml",
}
LAST_MODIFIED = formatdate(1_780_000_000, usegmt=True)


@dataclass(frozen=True)
class LoggedRequest:
    path: str  # with the query string
    headers: dict[str, str]
    at: float = 0.0  # time.monotonic() when it arrived
    connection: int = 0  # the client's port: requests on one kept-alive connection share it


class FeedServer:
    """Serves `root` on `host` (a loopback address) at a free port until `stop()`."""

    def __init__(self, root: Path, host: str = "127.0.0.1") -> None:
        self.root = root
        self.requests: list[LoggedRequest] = []
        self.overrides: dict[str, tuple[int, dict[str, str]]] = {}
        self.max_in_flight = 0
        self.released = threading.Event()  # what `hold/...` waits for
        self.hung_up = threading.Event()  # set once `hang-up/...` closed its connection
        self._in_flight = 0
        self._lock = threading.Lock()
        handler = type("Handler", (_Handler,), {"server_state": self})
        self._httpd = _QuietServer((host, 0), handler)
        self._thread = threading.Thread(
            target=self._httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        )
        self._thread.start()

    @property
    def base_url(self) -> str:
        host, port = self._httpd.server_address[:2]
        return f"http://{host!s}:{port}/"

    def url(self, path: str) -> str:
        return self.base_url + path.lstrip("/")

    def requests_for(self, path: str) -> list[LoggedRequest]:
        return [request for request in self.requests if request.path == "/" + path.lstrip("/")]

    def enter(self) -> None:
        with self._lock:
            self._in_flight += 1
            self.max_in_flight = max(self.max_in_flight, self._in_flight)

    def leave(self) -> None:
        with self._lock:
            self._in_flight -= 1

    def stop(self) -> None:
        self._httpd.shutdown()
        self._httpd.server_close()


class _QuietServer(ThreadingHTTPServer):
    daemon_threads = True
    request_queue_size = 1024  # as real servers: the default 5 drops SYNs of parallel fetches

    def handle_error(self, request: object, client_address: object) -> None:
        """Clients that hang up mid-response (deadline and size tests) are expected here."""


class _Handler(BaseHTTPRequestHandler):
    server_state: FeedServer
    protocol_version = "HTTP/1.1"
    disable_nagle_algorithm = True  # headers and body are two writes: no 40 ms delayed ACK

    def log_message(self, format: str, *args: object) -> None:
        """Silence the default stderr log; requests are recorded in `server_state.requests`."""

    def do_GET(self) -> None:
        self.server_state.requests.append(
            LoggedRequest(
                self.path, dict(self.headers.items()), time.monotonic(), self.client_address[1]
            )
        )
        self.server_state.enter()
        try:
            url = urlsplit(self.path)
            for prefix, (status, headers) in list(self.server_state.overrides.items()):
                if _overridden(prefix, url.path, parse_qs(url.query, keep_blank_values=True)):
                    self._send(status, b"overridden\n", "text/plain", headers)
                    return
            self._route(url.path.lstrip("/").split("/"), parse_qs(url.query))
        finally:
            self.server_state.leave()

    def _route(self, parts: list[str], query: dict[str, list[str]]) -> None:
        if api_file := _api_file(parts, query):
            self._serve_file(api_file)
        elif parts[0] == "status":
            retry_after = {"Retry-After": query["retry-after"][0]} if "retry-after" in query else {}
            self._send(int(parts[1]), b"status page\n", "text/plain", retry_after)
        elif parts[0] == "redirect":
            remaining = int(parts[1])
            rest = "/".join(parts[2:])
            target = f"/redirect/{remaining - 1}/{rest}" if remaining > 1 else f"/{rest}"
            self._redirect(target)
        elif parts[0] == "redirect-to":
            self._redirect(query["url"][0])
        elif parts[0] == "loop":
            self._redirect("/loop")
        elif parts[0] == "delay":
            time.sleep(int(parts[1]) / 1000)
            self._serve_file("/".join(parts[2:]))
        elif parts[0] == "hold":  # a server that hangs until the test lets it answer
            self.server_state.released.wait(timeout=60)
            self._serve_file("/".join(parts[1:]))
        elif parts[0] == "hang-up":  # answers, then closes the kept-alive connection unsaid
            self._serve_file("/".join(parts[1:]))
            self.connection.shutdown(socket.SHUT_RDWR)
            self.close_connection = True
            self.server_state.hung_up.set()
        elif parts[0] == "slow":
            self._serve_file("/".join(parts[1:]), trickle=True)
        elif parts[0] == "ignore-validators":
            self._serve_file("/".join(parts[1:]), honour_validators=False)
        elif parts[0] == "gzip-bomb":
            self._gzip_bomb(int(parts[1]))
        elif parts[0] == "endless":
            self._endless()
        elif parts[0] == "max-age":
            self._serve_file("/".join(parts[2:]), extra={"Cache-Control": f"max-age={parts[1]}"})
        else:
            self._serve_file("/".join(parts))

    def _serve_file(
        self,
        relative: str,
        *,
        trickle: bool = False,
        honour_validators: bool = True,
        extra: dict[str, str] | None = None,
    ) -> None:
        path = (self.server_state.root / relative).resolve()
        if not path.is_file() or self.server_state.root.resolve() not in path.parents:
            self._send(404, b"not found\n", "text/plain")
            return
        body = path.read_bytes()
        etag = '"' + hashlib.sha256(body).hexdigest()[:16] + '"'
        if not honour_validators:
            etag = f'"{time.monotonic_ns()}"'
        elif self.headers.get("If-None-Match") == etag or (
            "If-None-Match" not in self.headers
            and self.headers.get("If-Modified-Since") == LAST_MODIFIED
        ):
            self.send_response(304)
            self.send_header("ETag", etag)
            self.send_header("Content-Length", "0")
            self.end_headers()
            return
        headers = {"ETag": etag, **(extra or {})}
        if honour_validators:
            headers["Last-Modified"] = LAST_MODIFIED
        content_type = CONTENT_TYPES.get(path.suffix, "application/octet-stream")
        if relative.startswith("api/"):
            content_type = "application/json"
        if trickle:
            self._trickle(body, content_type)
            return
        if "gzip" in self.headers.get("Accept-Encoding", ""):
            body = gzip.compress(body)
            headers["Content-Encoding"] = "gzip"
        self._send(200, body, content_type, headers)

    def _trickle(self, body: bytes, content_type: str) -> None:
        self.send_response(200)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        for byte in body:
            try:
                self.wfile.write(bytes([byte]))
                self.wfile.flush()
            except OSError:
                return
            time.sleep(0.2)

    def _gzip_bomb(self, megabytes: int) -> None:
        compressor = zlib.compressobj(9, zlib.DEFLATED, 31)  # 31: a gzip wrapper
        chunk = b"\0" * 2**20
        body = b"".join(compressor.compress(chunk) for _ in range(megabytes)) + compressor.flush()
        self._send(200, body, "application/rss+xml", {"Content-Encoding": "gzip"})

    def _endless(self) -> None:
        self.send_response(200)
        self.send_header("Content-Type", "application/rss+xml")
        self.send_header("Transfer-Encoding", "chunked")
        self.end_headers()
        chunk = b"<item><title>more</title></item>" * 1000
        try:
            while True:
                self.wfile.write(b"%x\r\n%s\r\n" % (len(chunk), chunk))
        except OSError:
            return

    def _redirect(self, location: str) -> None:
        self.send_response(302)
        self.send_header("Location", location)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def _send(
        self, status: int, body: bytes, content_type: str, headers: dict[str, str] | None = None
    ) -> None:
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        for name, value in (headers or {}).items():
            self.send_header(name, value)
        self.end_headers()
        self.wfile.write(body)


def _overridden(prefix: str, path: str, query: dict[str, list[str]]) -> bool:
    wanted_path, _, wanted_query = prefix.partition("?")
    if not path.startswith(wanted_path):
        return False
    for part in filter(None, wanted_query.split("&")):
        name, has_value, value = part.partition("=")
        if name not in query or (has_value and value not in query[name]):
            return False
    return True


def _api_file(parts: list[str], query: dict[str, list[str]]) -> str | None:
    path = "/".join(parts)
    first = {name: values[0] for name, values in query.items()}
    first_id = first.get("id", "").split(",")[0]
    cursor = first.get("cursorMark", "*")
    files = {
        "api/v2/studies": f"api/clinicaltrials/page-{first.get('pageToken', 'first')}.json",
        "entrez/eutils/esearch.fcgi": "api/pubmed/esearch.json",
        "entrez/eutils/esummary.fcgi": f"api/pubmed/esummary-{first_id}.json",
        "entrez/eutils/efetch.fcgi": f"api/pubmed/efetch-{first_id}.xml",
        "europepmc/webservices/rest/search": (
            f"api/europepmc/page-{'start' if cursor == '*' else cursor}.json"
        ),
    }
    for endpoint, file in files.items():
        if path == endpoint or path.endswith("/" + endpoint):
            return path.removesuffix(endpoint) + file
    return None


Item = tuple[str, str | None, str] | tuple[str, str | None, str, str]  # guid, link, title[, text]


def write_feed(
    root: Path, name: str, items: list[Item], *, published: datetime | None = None
) -> str:
    """An RSS 2.0 file in the server's folder; returns its path on the server. `published`
    dates every item (as most feeds do); without it they are undated."""
    date = f"<pubDate>{format_datetime(published)}</pubDate>" if published else ""
    entries = "".join(
        "<item>"
        f'<guid isPermaLink="false">{escape(item[0])}</guid>'
        + (f"<link>{escape(item[1])}</link>" if item[1] else "")
        + f"<title>{escape(item[2])}</title>"
        + (f"<description>{escape(item[3])}</description>" if len(item) > 3 else "")
        + date
        + "</item>"
        for item in items
    )
    (root / f"{name}.xml").write_text(
        f'<?xml version="1.0"?><rss version="2.0"><channel><title>{name}</title>'
        f"<link>https://{name}.example/</link><description>{name}</description>"
        f"{entries}</channel></rss>",
        encoding="utf-8",
    )
    return f"{name}.xml"
