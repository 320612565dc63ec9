"""HTTP for feeds: polite, bounded, and safe to point at untrusted URLs.

The only module that builds httpx clients. One `Fetcher` serves a whole run so connections are
reused. Every request is bounded three ways: bytes (counted after decompression, while streaming),
time (a total deadline; httpx's own timeouts are per read, so a server trickling a byte a second
would never trip them) and concurrency (overall and per host). Addresses are checked where the
socket is opened, so redirects and DNS answers that point inside the network are refused too.
"""

from __future__ import annotations

import asyncio
import functools
import ipaddress
import re
import select
import socket
import ssl
import zlib
from collections import defaultdict
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from email.utils import parsedate_to_datetime
from types import TracebackType
from typing import Any
from urllib.parse import urlsplit

import httpcore
import httpx

from aggregator.config import FetchSettings
from aggregator.errors import FetchError

ACCEPT = (
    "application/rss+xml, application/atom+xml, application/feed+json, application/json;q=0.9, "
    "application/rdf+xml;q=0.9, application/xml;q=0.8, text/xml;q=0.8, */*;q=0.5"
)


@dataclass(frozen=True, slots=True)
class FetchResult:
    """What came back for one feed URL. `body` is None when the server said 304 Not Modified."""

    url: str
    final_url: str
    status: int
    body: bytes | None
    etag: str | None
    last_modified: str | None
    content_type: str | None
    server_wait: timedelta | None = None  # how long the server asked us not to come back
    # An API answer that stops short (a later page failed): what is missing, and why. The
    # pages read are kept, and the next fetch asks again from where this one started.
    incomplete: str | None = None

    @property
    def not_modified(self) -> bool:
        return self.body is None


class Fetcher:
    """An async HTTP client with the aggregator's limits; use as `async with Fetcher(...) as f`."""

    def __init__(self, settings: FetchSettings) -> None:
        self._settings = settings
        self._overall = asyncio.Semaphore(settings.concurrency)
        self._per_host: defaultdict[str, asyncio.Semaphore] = defaultdict(
            lambda: asyncio.Semaphore(settings.per_host)
        )
        self._turns = _Turns()
        limits = httpx.Limits(max_connections=settings.concurrency)
        self._client = httpx.AsyncClient(
            transport=_Transport(limits, public_only=not settings.allow_private_addresses),
            timeout=httpx.Timeout(settings.timeout.total_seconds()),
            follow_redirects=True,
            max_redirects=settings.max_redirects,
            headers={
                "User-Agent": settings.user_agent,
                "Accept": ACCEPT,
                "Accept-Encoding": "gzip, deflate",  # what _read_capped can inflate safely
            },
            trust_env=False,
        )

    async def __aenter__(self) -> Fetcher:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        await self._client.aclose()

    async def fetch(
        self,
        url: str,
        *,
        etag: str | None = None,
        last_modified: str | None = None,
        rate: float | None = None,
    ) -> FetchResult:
        """GET `url`, conditionally when validators are known; raise FetchError on any failure.

        `rate` (requests per second) is shared by every request to the same host in this run:
        an API's limit holds however many feeds query it.
        """
        headers = {}
        if etag:
            headers["If-None-Match"] = etag
        if last_modified:
            headers["If-Modified-Since"] = last_modified
        deadline = self._settings.timeout.total_seconds()
        host = urlsplit(url).hostname or ""
        # The host's turn first: a request waiting for its host holds no overall place.
        async with self._per_host[host], self._overall:
            # Last, just before sending: the turn is held until the request is written.
            turn = await self._turns.take(host, rate) if rate is not None else None
            try:
                async with asyncio.timeout(deadline):
                    return await self._get(url, headers, turn)
            except TimeoutError:
                raise FetchError(url, f"no complete response within {deadline:g}s") from None
            except RefusedAddressError as exc:
                raise FetchError(url, str(exc)) from None
            except httpx.TooManyRedirects:
                raise FetchError(
                    url, f"more than {self._settings.max_redirects} redirects (a redirect loop?)"
                ) from None
            except (httpx.UnsupportedProtocol, httpx.InvalidURL) as exc:
                # InvalidURL (a host httpx cannot read, such as 0177.0.0.1) is no HTTPError.
                raise FetchError(url, f"unsupported URL or redirect: {exc}") from None
            except httpx.HTTPError as exc:
                raise FetchError(
                    url, f"{type(exc).__name__}: {exc or 'connection failed'}"
                ) from None
            finally:
                if turn is not None:
                    turn.end()  # a request that failed before it was sent ends its turn here

    async def _get(self, url: str, headers: dict[str, str], turn: _Turn | None) -> FetchResult:
        extensions = {"trace": turn.trace} if turn is not None else None
        async with self._client.stream(
            "GET", url, headers=headers, extensions=extensions
        ) as response:
            validators = {
                "etag": response.headers.get("ETag"),
                "last_modified": response.headers.get("Last-Modified"),
                "server_wait": requested_wait(response.headers),
            }
            if response.status_code == httpx.codes.NOT_MODIFIED:
                # A 304 has no body, but until it is read the connection does not know the
                # response is over and is closed, not reused: a new connection (and TLS
                # handshake) for every unchanged feed of a host.
                await response.aread()
                return FetchResult(
                    url, str(response.url), 304, None, content_type=None, **validators
                )
            if response.status_code >= 400:
                raise FetchError(
                    url,
                    f"HTTP {response.status_code} {response.reason_phrase}".rstrip(),
                    status=response.status_code,
                    retry_after=validators["server_wait"],
                )
            body = await self._read_capped(url, response)
            return FetchResult(
                url,
                str(response.url),
                response.status_code,
                body,
                content_type=response.headers.get("Content-Type"),
                **validators,
            )

    async def _read_capped(self, url: str, response: httpx.Response) -> bytes:
        """The body, decompressed here rather than by httpx so that inflation is bounded too:
        httpx would inflate a whole network chunk at once, and 64 kB of gzip can hold 64 MB."""
        cap = self._settings.max_bytes
        declared = response.headers.get("Content-Length", "")
        if declared.isdigit() and int(declared) > cap:
            raise FetchError(url, f"response of {declared} bytes is over max_bytes ({cap})")
        encoding = response.headers.get("Content-Encoding", "").strip().lower()
        if encoding not in ("", "identity", "gzip", "x-gzip", "deflate"):
            raise FetchError(url, f"unsupported Content-Encoding {encoding!r}")
        # wbits 47: gzip or zlib, told apart by the header.
        inflater = zlib.decompressobj(47) if encoding not in ("", "identity") else None
        chunks: list[bytes] = []
        size = 0
        async for raw in response.aiter_raw():
            pending = raw
            while pending:
                if inflater is None:
                    data, pending = pending, b""
                else:
                    data = inflater.decompress(pending, cap + 1 - size)
                    pending = inflater.unconsumed_tail
                size += len(data)
                if size > cap:
                    raise FetchError(url, f"response is over max_bytes ({cap}) after decompression")
                chunks.append(data)
        return b"".join(chunks)


class _Turns:
    """Requests to a rate-limited host, spaced 1/rate seconds apart in the order they asked."""

    def __init__(self) -> None:
        self._locks: defaultdict[str, asyncio.Lock] = defaultdict(asyncio.Lock)
        self._next: defaultdict[str, float] = defaultdict(float)

    async def take(self, host: str, rate: float) -> _Turn:
        """Wait for `host`'s next turn; no other request to it starts until this one ends."""
        lock = self._locks[host]
        await lock.acquire()
        try:
            wait = self._next[host] - asyncio.get_running_loop().time()
            if wait > 0:
                await asyncio.sleep(wait)
        except BaseException:
            lock.release()
            raise
        return _Turn(functools.partial(self._end, host, rate))

    def _end(self, host: str, rate: float) -> None:
        self._next[host] = asyncio.get_running_loop().time() + 1 / rate
        self._locks[host].release()


class _Turn:
    """One request's turn at its host, held until the request's headers are written.

    The next turn counts from that write, not from when this turn came: a pause while the
    connection opens (a busy event loop, a garbage collection) then delays the requests
    queued behind this one instead of letting them follow it at once. NCBI counts arrivals.
    """

    def __init__(self, on_end: Callable[[], None]) -> None:
        self._on_end = on_end
        self._ended = False

    async def trace(self, event: str, _info: dict[str, Any]) -> None:
        """httpcore's `trace` extension: ends the turn once the first request's headers are
        written (a redirect's later requests belong to the same turn)."""
        if event.endswith(".send_request_headers.complete"):
            self.end()

    def end(self) -> None:
        if not self._ended:
            self._ended = True
            self._on_end()


def requested_wait(headers: Mapping[str, str]) -> timedelta | None:
    """The longest wait the response asks for: Retry-After, Cache-Control max-age, Expires.

    Dates are read against the response's own Date header where there is one, so a server whose
    clock is off still gets the wait it meant.
    """
    now = _http_date(headers.get("Date")) or datetime.now(UTC)
    waits = []
    if max_age := re.search(r"(?:^|[,\s])max-age\s*=\s*(\d+)", headers.get("Cache-Control", "")):
        waits.append(timedelta(seconds=int(max_age[1])))
    if expires := _http_date(headers.get("Expires")):
        waits.append(expires - now)
    retry_after = headers.get("Retry-After", "").strip()
    if retry_after.isdigit():
        waits.append(timedelta(seconds=int(retry_after)))
    elif when := _http_date(retry_after):
        waits.append(when - now)
    longest = max(waits, default=None)
    return longest if longest is not None and longest > timedelta(0) else None


def _http_date(value: str | None) -> datetime | None:
    if not value:
        return None
    try:
        moment = parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


class RefusedAddressError(Exception):
    """A host resolved to an address feeds may not be fetched from."""


def is_public_address(address: str) -> bool:
    """True for globally routable unicast addresses.

    Loopback, private, link-local (cloud metadata at 169.254.169.254), carrier-grade NAT,
    multicast, reserved and IETF protocol (192.0.0.0/24) ranges are refused. An IPv6 address
    that carries an IPv4 one (mapped, IPv4-compatible, 6to4, NAT64, Teredo's client) is judged
    by the IPv4 address it reaches: `ipaddress` calls 64:ff9b::7f00:1 global, yet a NAT64
    gateway delivers it to 127.0.0.1. Local-use NAT64 (64:ff9b:1::/48) is never public.
    """
    ip = ipaddress.ip_address(address.split("%", 1)[0])
    if isinstance(ip, ipaddress.IPv6Address):
        if ip in _LOCAL_NAT64:
            return False
        embedded = _embedded_ipv4(ip)
        if embedded is not None:
            ip = embedded
    if ip in _IETF_PROTOCOL_ASSIGNMENTS:
        return False
    return ip.is_global and not ip.is_multicast


_NAT64 = ipaddress.IPv6Network("64:ff9b::/96")
_LOCAL_NAT64 = ipaddress.IPv6Network("64:ff9b:1::/48")
_IPV4_COMPATIBLE = ipaddress.IPv6Network("::/96")
_IETF_PROTOCOL_ASSIGNMENTS = ipaddress.IPv4Network("192.0.0.0/24")


def _embedded_ipv4(ip: ipaddress.IPv6Address) -> ipaddress.IPv4Address | None:
    """The IPv4 address an IPv6 address carries and a packet to it would reach, if any."""
    if ip.ipv4_mapped is not None:
        return ip.ipv4_mapped
    if ip.sixtofour is not None:
        return ip.sixtofour
    if ip in _NAT64 or ip in _IPV4_COMPATIBLE:
        return ipaddress.IPv4Address(int(ip) & 0xFFFF_FFFF)
    if ip.teredo is not None:
        return ip.teredo[1]
    return None


class _Backend(httpcore.AsyncNetworkBackend):
    """AnyIO's network, with two changes.

    `public_only`: resolves the host itself, refuses non-public answers, and connects to the
    checked address. Connecting to the very address that was checked closes the gap a second
    DNS lookup would open (DNS rebinding). TLS still verifies the certificate against the host
    name.

    Every stream is a `_Stream`, which answers the pool's most frequent question cheaply.
    """

    def __init__(self, *, public_only: bool) -> None:
        self._inner = httpcore.AnyIOBackend()
        self._public_only = public_only

    async def connect_tcp(
        self,
        host: str,
        port: int,
        timeout: float | None = None,
        local_address: str | None = None,
        socket_options: Iterable[httpcore.SOCKET_OPTION] | None = None,
    ) -> httpcore.AsyncNetworkStream:
        addresses = await _checked_addresses(host, port) if self._public_only else [host]
        error: Exception = httpcore.ConnectError(f"cannot connect to {host}")
        for address in addresses:
            try:
                stream = await self._inner.connect_tcp(
                    address, port, timeout, local_address, socket_options
                )
            except (httpcore.ConnectError, httpcore.ConnectTimeout) as exc:
                error = exc
            else:
                return _Stream(stream)
        raise error

    async def sleep(self, seconds: float) -> None:
        await self._inner.sleep(seconds)


async def _checked_addresses(host: str, port: int) -> list[str]:
    """The addresses `host` resolves to, all of them public, or RefusedAddressError."""
    try:
        answers = await asyncio.get_running_loop().getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except socket.gaierror as exc:
        raise httpcore.ConnectError(f"cannot resolve {host}: {exc.strerror}") from exc
    addresses = list(dict.fromkeys(str(answer[4][0]) for answer in answers))
    refused = [address for address in addresses if not is_public_address(address)]
    if refused:
        raise RefusedAddressError(
            f"refused: {host} resolves to non-public address {refused[0]} "
            "(set fetch.allow_private_addresses = true to allow)"
        )
    return addresses


class _Stream(httpcore.AsyncNetworkStream):
    """AnyIO's stream, keeping its socket for "has the server closed this idle connection?".

    httpcore's pool asks that of every pooled connection at the start and end of every
    request, and AnyIO answers by building its table of socket attributes anew each time: a
    sixth of the CPU of a pass of 304s (bench/README.md). Polling the kept socket is the same
    answer.
    """

    def __init__(self, inner: httpcore.AsyncNetworkStream) -> None:
        self._inner = inner
        self._socket: socket.socket | None = inner.get_extra_info("socket")

    async def read(self, max_bytes: int, timeout: float | None = None) -> bytes:
        return await self._inner.read(max_bytes, timeout)

    async def write(self, buffer: bytes, timeout: float | None = None) -> None:
        await self._inner.write(buffer, timeout)

    async def aclose(self) -> None:
        await self._inner.aclose()

    async def start_tls(
        self,
        ssl_context: ssl.SSLContext,
        server_hostname: str | None = None,
        timeout: float | None = None,
    ) -> httpcore.AsyncNetworkStream:
        return _Stream(await self._inner.start_tls(ssl_context, server_hostname, timeout))

    def get_extra_info(self, info: str) -> Any:
        if info == "is_readable":
            return _readable(self._socket)
        return self._inner.get_extra_info(info)


def _readable(sock: socket.socket | None) -> bool:
    """Whether a read would return at once (data, or the end of a closed connection)."""
    if sock is None or sock.fileno() < 0:
        return True
    poll = select.poll()
    poll.register(sock, select.POLLIN)
    return bool(poll.poll(0))


@functools.cache
def _ssl_context() -> ssl.SSLContext:
    """One context for every pool of the process: loading the CA bundle takes 45-120 ms, 8%
    of a pass in which every feed answers 304. A context is safe to share between
    connections and threads, and nothing here changes it after it is made."""
    return httpx.create_ssl_context()


class _Transport(httpx.AsyncHTTPTransport):
    """httpx's transport with its connection pool built on `_Backend`.

    httpx has no public switch for the network backend, so the pool it builds is replaced with
    one configured the same way plus the backend.
    """

    def __init__(self, limits: httpx.Limits, *, public_only: bool) -> None:
        ssl_context = _ssl_context()
        super().__init__(verify=ssl_context, limits=limits, trust_env=False)
        self._pool = _Pool(
            ssl_context=ssl_context,
            max_connections=limits.max_connections,
            max_keepalive_connections=limits.max_keepalive_connections,
            keepalive_expiry=limits.keepalive_expiry,
            network_backend=_Backend(public_only=public_only),
        )


class _Pool(httpcore.AsyncConnectionPool):
    """httpcore's pool, matching requests to connections in one walk over the connections.

    httpcore 1.0 does this at the start and end of every request, and for each idle
    connection counts every connection again: with 16 connections, a seventh of the CPU of a
    pass in which every feed answers 304 (bench/README.md). Unfixed in httpcore 1.0.9;
    encode/httpcore#1035 proposes the same walk. Which connection each request gets is
    unchanged, except that idle connections past `max_keepalive_connections` are counted as
    the setting says (httpcore compares the count of all connections).
    """

    def _assign_requests_to_connections(self) -> list[httpcore.AsyncConnectionInterface]:
        closing: list[httpcore.AsyncConnectionInterface] = []
        kept: list[httpcore.AsyncConnectionInterface] = []
        for connection in self._connections:
            if connection.is_closed():
                continue
            (closing if connection.has_expired() else kept).append(connection)
        idle = [connection for connection in kept if connection.is_idle()]
        for connection in idle[: max(len(idle) - self._max_keepalive_connections, 0)]:
            kept.remove(connection)
            closing.append(connection)

        for pool_request in self._requests:
            if not pool_request.is_queued():
                continue
            origin = pool_request.request.url.origin
            chosen = next(
                (c for c in kept if c.can_handle_request(origin) and c.is_available()), None
            )
            if chosen is None and len(kept) >= self._max_connections:
                idle_one = next((c for c in kept if c.is_idle()), None)
                if idle_one is None:
                    continue  # the request waits for a connection to come free
                kept.remove(idle_one)
                closing.append(idle_one)
            if chosen is None:
                chosen = self.create_connection(origin)
                kept.append(chosen)
            pool_request.assign_to_connection(chosen)
        self._connections[:] = kept
        return closing
