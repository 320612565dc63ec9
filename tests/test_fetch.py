"""The HTTP layer against a real server on 127.0.0.1: validators, gzip, limits, refusals."""

from __future__ import annotations

import asyncio
import gzip
import itertools
import time
from datetime import timedelta
from typing import Any
from urllib.parse import urlencode

import pytest
from feed_server import FeedServer

from aggregator import fetch as fetch_module
from aggregator.config import FetchSettings
from aggregator.errors import FetchError
from aggregator.fetch import Fetcher, FetchResult, is_public_address, requested_wait


def fetch(
    url: str,
    *,
    etag: str | None = None,
    last_modified: str | None = None,
    **settings: object,
) -> FetchResult:
    options: dict[str, object] = {"allow_private_addresses": True, "timeout": "5s"} | settings

    async def go() -> FetchResult:
        async with Fetcher(FetchSettings.model_validate(options)) as fetcher:
            return await fetcher.fetch(url, etag=etag, last_modified=last_modified)

    return asyncio.run(go())


def test_first_fetch_returns_body_and_validators(feed_server: FeedServer) -> None:
    result = fetch(feed_server.url("rss20.xml"))
    assert result.status == 200
    assert result.body == (feed_server.root / "rss20.xml").read_bytes()
    assert result.etag
    assert result.last_modified
    assert result.content_type == "application/rss+xml; charset=utf-8"


def test_conditional_request_gets_304_without_body(feed_server: FeedServer) -> None:
    first = fetch(feed_server.url("rss20.xml"))
    second = fetch(feed_server.url("rss20.xml"), etag=first.etag, last_modified=first.last_modified)
    assert second.not_modified
    assert second.status == 304
    sent = feed_server.requests_for("rss20.xml")[-1].headers
    assert sent["If-None-Match"] == first.etag
    assert sent["If-Modified-Since"] == first.last_modified


def test_a_304_leaves_its_connection_for_the_next_request(feed_server: FeedServer) -> None:
    url = feed_server.url("rss20.xml")
    settings = FetchSettings.model_validate({"allow_private_addresses": True, "timeout": "5s"})

    async def fetch_four_times() -> list[FetchResult]:
        async with Fetcher(settings) as fetcher:
            first = await fetcher.fetch(url)
            return [first] + [await fetcher.fetch(url, etag=first.etag) for _ in range(3)]

    results = asyncio.run(fetch_four_times())
    assert [result.status for result in results] == [200, 304, 304, 304]
    assert len({request.connection for request in feed_server.requests_for("rss20.xml")}) == 1


def test_many_feeds_of_a_host_share_at_most_concurrency_connections(
    feed_server: FeedServer,
) -> None:
    url = feed_server.url("rss20.xml")
    settings = FetchSettings.model_validate(
        {"allow_private_addresses": True, "timeout": "5s", "concurrency": 4, "per_host": 4}
    )

    async def fetch_forty() -> list[FetchResult]:
        async with Fetcher(settings) as fetcher:
            return await asyncio.gather(*(fetcher.fetch(url) for _ in range(40)))

    results = asyncio.run(fetch_forty())
    assert [result.status for result in results] == [200] * 40
    connections = {request.connection for request in feed_server.requests_for("rss20.xml")}
    assert 1 <= len(connections) <= 4


def test_a_connection_the_server_closed_while_idle_is_not_reused(feed_server: FeedServer) -> None:
    path = "hang-up/rss20.xml"
    url = feed_server.url(path)
    settings = FetchSettings.model_validate({"allow_private_addresses": True, "timeout": "5s"})

    async def fetch_twice() -> list[FetchResult]:
        async with Fetcher(settings) as fetcher:
            first = await fetcher.fetch(url)
            await asyncio.to_thread(feed_server.hung_up.wait, 5)
            return [first, await fetcher.fetch(url)]

    results = asyncio.run(fetch_twice())
    assert [result.status for result in results] == [200, 200]
    assert len({request.connection for request in feed_server.requests_for(path)}) == 2


def test_gzip_is_requested_and_decoded(feed_server: FeedServer) -> None:
    result = fetch(feed_server.url("rss20.xml"))
    assert "gzip" in feed_server.requests_for("rss20.xml")[0].headers["Accept-Encoding"]
    assert result.body is not None
    assert result.body.startswith(b"<?xml")


def test_sends_a_real_user_agent(feed_server: FeedServer) -> None:
    fetch(feed_server.url("rss20.xml"), user_agent="test-agent/1.0 (+mailto:ops@example.org)")
    assert (
        feed_server.requests[0].headers["User-Agent"] == "test-agent/1.0 (+mailto:ops@example.org)"
    )


def test_redirects_are_followed_and_the_final_url_kept(feed_server: FeedServer) -> None:
    result = fetch(feed_server.url("redirect/3/rss20.xml"))
    assert result.status == 200
    assert result.final_url == feed_server.url("rss20.xml")


@pytest.mark.parametrize(
    ("path", "message"),
    [
        pytest.param("loop", "more than 5 redirects", id="redirect-loop"),
        pytest.param("redirect/6/rss20.xml", "more than 5 redirects", id="six-redirects"),
        pytest.param("status/404", "HTTP 404 Not Found", id="404"),
        pytest.param("status/500", "HTTP 500 Internal Server Error", id="500"),
        pytest.param("status/410", "HTTP 410 Gone", id="410"),
        pytest.param("missing.xml", "HTTP 404", id="missing-file"),
        pytest.param(
            "redirect-to?url=http://0177.0.0.1/feed",
            "Invalid URL in location header",
            id="redirect-to-an-octal-host",
        ),
    ],
)
def test_failures_name_the_url_and_the_cause(
    feed_server: FeedServer, path: str, message: str
) -> None:
    url = feed_server.url(path)
    with pytest.raises(FetchError, match=message) as caught:
        fetch(url)
    assert caught.value.url == url


def test_a_url_httpx_cannot_read_is_the_feeds_error_not_a_crash() -> None:
    """httpx's InvalidURL is not an HTTPError; the config refuses such hosts, and a fetch
    given one anyway names it as that feed's error."""
    with pytest.raises(FetchError, match="unsupported URL or redirect: Invalid IPv4 address"):
        fetch("http://0177.0.0.1/feed")


def test_status_code_is_kept_on_http_errors(feed_server: FeedServer) -> None:
    with pytest.raises(FetchError) as caught:
        fetch(feed_server.url("status/503"))
    assert caught.value.status == 503


def test_body_over_max_bytes_is_refused(feed_server: FeedServer) -> None:
    with pytest.raises(FetchError, match="max_bytes"):
        fetch(feed_server.url("rss20.xml"), max_bytes=500)


def test_max_bytes_counts_decompressed_bytes(feed_server: FeedServer) -> None:
    big = b"<rss>" + b" " * 2_000_000 + b"</rss>"
    (feed_server.root / "big.xml").write_bytes(big)
    assert len(gzip.compress(big)) < 100_000  # what travels is small...
    with pytest.raises(FetchError, match="after decompression"):  # ...what it becomes is not
        fetch(feed_server.url("big.xml"), max_bytes=1_000_000)


def test_total_deadline_stops_a_trickling_server(feed_server: FeedServer) -> None:
    with pytest.raises(FetchError, match=r"no complete response within 1s"):
        fetch(feed_server.url("slow/rss20.xml"), timeout="1s")


def test_private_addresses_are_refused_unless_allowed(feed_server: FeedServer) -> None:
    with pytest.raises(FetchError, match=r"non-public address 127\.0\.0\.1"):
        fetch(feed_server.url("rss20.xml"), allow_private_addresses=False)
    assert feed_server.requests == []


@pytest.mark.parametrize("target_host", ["127.0.0.1", "localhost"], ids=["address", "dns-name"])
def test_a_redirect_from_a_public_host_to_a_private_one_is_refused(
    feed_server: FeedServer, monkeypatch: pytest.MonkeyPatch, target_host: str
) -> None:
    # No public address can be served here, so 127.0.0.2 plays the public host: the address
    # classification is the one thing changed, and the refusal still happens where sockets open.
    monkeypatch.setattr(fetch_module, "is_public_address", lambda address: address == "127.0.0.2")
    public = FeedServer(feed_server.root, host="127.0.0.2")
    try:
        assert fetch(public.url("rss20.xml"), allow_private_addresses=False).status == 200
        private = feed_server.url("rss20.xml").replace("127.0.0.1", target_host)
        hop = public.url("redirect-to?" + urlencode({"url": private}))
        with pytest.raises(FetchError, match=rf"{target_host} resolves to non-public address"):
            fetch(hop, allow_private_addresses=False)
        assert [request.path for request in public.requests][-1].startswith("/redirect-to?")
        assert feed_server.requests == []  # the private server was never connected to
        assert fetch(hop).status == 200  # allowed when the operator says so
    finally:
        public.stop()


def test_localhost_name_is_refused_after_resolution(feed_server: FeedServer) -> None:
    url = feed_server.url("rss20.xml").replace("127.0.0.1", "localhost")
    with pytest.raises(FetchError, match="localhost resolves to non-public address"):
        fetch(url, allow_private_addresses=False)


@pytest.mark.parametrize(
    ("address", "public"),
    [
        pytest.param("127.0.0.1", False, id="loopback"),
        pytest.param("10.1.2.3", False, id="private-10"),
        pytest.param("172.16.0.1", False, id="private-172"),
        pytest.param("192.168.1.1", False, id="private-192"),
        pytest.param("169.254.169.254", False, id="cloud-metadata"),
        pytest.param("100.64.0.1", False, id="carrier-grade-nat"),
        pytest.param("0.0.0.0", False, id="unspecified"),
        pytest.param("224.0.0.1", False, id="multicast"),
        pytest.param("::1", False, id="ipv6-loopback"),
        pytest.param("fe80::1", False, id="ipv6-link-local"),
        pytest.param("fd00::1", False, id="ipv6-unique-local"),
        pytest.param("::ffff:10.0.0.1", False, id="ipv4-mapped-private"),
        pytest.param("64:ff9b::7f00:1", False, id="nat64-to-loopback"),
        pytest.param("64:ff9b::a9fe:a9fe", False, id="nat64-to-cloud-metadata"),
        pytest.param("64:ff9b:1::5db8:d70e", False, id="local-use-nat64"),
        pytest.param("2002:7f00:1::", False, id="6to4-of-loopback"),
        pytest.param("2002:c0a8:101::1", False, id="6to4-of-private"),
        pytest.param("::7f00:1", False, id="ipv4-compatible-loopback"),
        pytest.param("::a00:1", False, id="ipv4-compatible-private"),
        pytest.param("2001:0:4136:e378:8000:63bf:3fff:fdd2", False, id="teredo-to-test-net"),
        pytest.param("192.0.0.192", False, id="ietf-protocol-assignments"),
        pytest.param("64:ff9b::5db8:d70e", True, id="nat64-to-public"),
        pytest.param("2002:5db8:d70e::1", True, id="6to4-of-public"),
        pytest.param("93.184.215.14", True, id="public-ipv4"),
        pytest.param("2606:4700::1111", True, id="public-ipv6"),
    ],
)
def test_is_public_address(address: str, public: bool) -> None:
    assert is_public_address(address) is public


def test_timeout_setting_is_a_duration() -> None:
    assert FetchSettings.model_validate({"timeout": "2m"}).timeout == timedelta(minutes=2)


def fetch_many(urls: list[str], **settings: object) -> list[FetchResult]:
    options: dict[str, object] = {"allow_private_addresses": True, "timeout": "5s"} | settings

    async def go() -> list[FetchResult]:
        async with Fetcher(FetchSettings.model_validate(options)) as fetcher:
            return list(await asyncio.gather(*(fetcher.fetch(url) for url in urls)))

    return asyncio.run(go())


@pytest.mark.parametrize(
    ("settings", "most_at_once"),
    [
        pytest.param({"per_host": 2, "concurrency": 16}, 2, id="per-host-limit"),
        pytest.param({"per_host": 4, "concurrency": 3}, 3, id="overall-limit"),
        pytest.param({"per_host": 1, "concurrency": 16}, 1, id="one-at-a-time"),
    ],
)
def test_concurrency_limits_hold_at_the_server(
    feed_server: FeedServer, settings: dict[str, int], most_at_once: int
) -> None:
    urls = [feed_server.url(f"delay/150/rss20.xml?copy={n}") for n in range(6)]
    results = fetch_many(urls, **settings)
    assert all(result.status == 200 for result in results)
    assert feed_server.max_in_flight == most_at_once


def test_a_rate_limited_request_that_connects_late_does_not_pull_the_next_along(
    feed_server: FeedServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The first connection stalls the whole event loop (as a collection or a busy loop
    would) after its turn came: the requests behind it still arrive 1/rate apart."""
    connect = fetch_module._Backend.connect_tcp
    stalled = []

    async def stall_first_connection(*args: Any, **kwargs: Any) -> Any:
        if not stalled:
            stalled.append(True)
            time.sleep(0.5)  # blocks the loop: no other request can be sent meanwhile
        return await connect(*args, **kwargs)

    monkeypatch.setattr(fetch_module._Backend, "connect_tcp", stall_first_connection)
    settings = FetchSettings.model_validate({"allow_private_addresses": True, "timeout": "5s"})
    urls = [feed_server.url(f"rss20.xml?request={n}") for n in range(4)]

    async def fetch_at_five_a_second() -> list[FetchResult]:
        async with Fetcher(settings) as fetcher:
            return list(await asyncio.gather(*(fetcher.fetch(url, rate=5) for url in urls)))

    assert [result.status for result in asyncio.run(fetch_at_five_a_second())] == [200] * 4
    arrivals = sorted(request.at for request in feed_server.requests)
    gaps = [later - earlier for earlier, later in itertools.pairwise(arrivals)]
    assert len(gaps) == 3
    # 0.2 s apart when sent; the server thread notes each arrival a few ms late, unevenly.
    assert min(gaps) >= 0.15, gaps


@pytest.mark.parametrize(
    ("headers", "expected"),
    [
        pytest.param({"Cache-Control": "public, max-age=600"}, timedelta(minutes=10), id="max-age"),
        pytest.param(
            {"Date": "Sun, 22 Nov 2026 10:00:00 GMT", "Expires": "Sun, 22 Nov 2026 12:00:00 GMT"},
            timedelta(hours=2),
            id="expires-against-the-servers-date",
        ),
        pytest.param({"Retry-After": "120"}, timedelta(minutes=2), id="retry-after-seconds"),
        pytest.param(
            {
                "Date": "Sun, 22 Nov 2026 10:00:00 GMT",
                "Retry-After": "Sun, 22 Nov 2026 11:00:00 GMT",
            },
            timedelta(hours=1),
            id="retry-after-date",
        ),
        pytest.param(
            {"Cache-Control": "max-age=60", "Retry-After": "3600"},
            timedelta(hours=1),
            id="the-longest-wins",
        ),
        pytest.param({"Cache-Control": "no-cache", "Expires": "0"}, None, id="nothing-asked"),
        pytest.param(
            {"Date": "Sun, 22 Nov 2026 10:00:00 GMT", "Expires": "Sat, 21 Nov 2026 10:00:00 GMT"},
            None,
            id="already-expired",
        ),
        pytest.param({"Retry-After": "soon"}, None, id="garbage"),
    ],
)
def test_the_wait_a_response_asks_for(headers: dict[str, str], expected: timedelta | None) -> None:
    assert requested_wait(headers) == expected
