"""Tests for imgsvc.fetch, the SSRF-safe URL fetcher.

Positive paths talk to real HTTP(S) servers on 127.0.0.1 started here. Two autouse guards
keep the tests off the network: the resolver only answers names a test registered (IP
literals go to the real getaddrinfo, which does no DNS for them), and urllib3's
create_connection refuses any non-loopback address unless a test routes it to the local
server ("fake internet": the fetcher checks a public IP such as 8.8.8.8, the socket goes
to 127.0.0.1).
"""

from __future__ import annotations

import datetime
import ipaddress
import socket
import ssl
import threading
import time
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
import urllib3.util.connection as u3_connection

from imgsvc import fetch
from imgsvc.errors import (
    BadRequest,
    BlockedUrl,
    InvalidImage,
    PayloadTooLarge,
    UpstreamError,
    UpstreamTimeout,
)

_REAL_RESOLVE = fetch.resolve_host
_REAL_CREATE_CONNECTION = u3_connection.create_connection

PNG = b"\x89PNG\r\n\x1a\n" + bytes(range(256)) * 4
MIB = 1024 * 1024


# --------------------------------------------------------------------------- guards


class Net:
    """Fake DNS and connection routing; records every lookup and connection attempt."""

    def __init__(self) -> None:
        self.dns: dict[str, list[str] | Callable[[], list[str]]] = {}
        self.lookups: list[str] = []
        self.routes: dict[str, str] = {}  # checked address -> where the socket really goes
        self.refuse: set[str] = set()
        self.time_out: set[str] = set()
        self.connects: list[tuple[str, int]] = []

    def resolve(self, host: str, port: int) -> list[str]:
        self.lookups.append(host)
        answer = self.dns.get(host)
        if answer is not None:
            return answer() if callable(answer) else list(answer)
        try:
            ipaddress.ip_address(host)
        except ValueError:
            raise AssertionError(f"unexpected real DNS lookup of {host!r}") from None
        return _REAL_RESOLVE(host, port)

    def create_connection(self, address: tuple[str, int], *args: Any, **kwargs: Any) -> Any:
        host, port = address
        self.connects.append((host, port))
        if host in self.refuse:
            raise ConnectionRefusedError(111, "Connection refused (test)")
        if host in self.time_out:
            raise TimeoutError("timed out (test)")
        real_host = self.routes.get(host, host)
        if not ipaddress.ip_address(real_host).is_loopback:
            raise AssertionError(f"test tried to connect to non-loopback {real_host}")
        return _REAL_CREATE_CONNECTION((real_host, port), *args, **kwargs)


@pytest.fixture(autouse=True)
def net(monkeypatch: pytest.MonkeyPatch) -> Net:
    for name in ("ALLOW_PRIVATE_URLS", "FETCH_TIMEOUT_SECONDS", "FETCH_MAX_REDIRECTS"):
        monkeypatch.delenv(name, raising=False)
    guard = Net()
    monkeypatch.setattr(fetch.dns, "resolve_host", guard.resolve)  # where it is called
    monkeypatch.setattr(u3_connection, "create_connection", guard.create_connection)
    return guard


# --------------------------------------------------------------------------- local server

Route = Callable[[BaseHTTPRequestHandler], None]


class LocalServer:
    def __init__(self, ssl_context: ssl.SSLContext | None = None) -> None:
        self.routes: dict[str, Route] = {}
        self.requests: list[tuple[str, dict[str, str]]] = []
        self.sent: dict[str, int] = {}  # body bytes a streaming route handed to the kernel
        self.finished: dict[str, threading.Event] = {}
        self.stop = threading.Event()
        server = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args: Any) -> None:
                pass

            def do_GET(self) -> None:
                self.close_connection = True
                server.requests.append((self.path, {k.lower(): v for k, v in self.headers.items()}))
                route = server.routes.get(self.path.split("?", 1)[0])
                try:
                    if route is None:
                        send(self, 404, b"not here", content_type="text/plain")
                    else:
                        route(self)
                except (BrokenPipeError, ConnectionResetError, ssl.SSLError):
                    pass

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.httpd.block_on_close = False  # don't wait for handlers stuck in slow routes
        self.httpd.handle_error = lambda *args: None  # type: ignore[method-assign]
        if ssl_context is not None:
            self.httpd.socket = ssl_context.wrap_socket(
                self.httpd.socket, server_side=True, do_handshake_on_connect=False
            )
        self.port = self.httpd.server_address[1]
        threading.Thread(
            target=self.httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        ).start()

    def url(self, path: str, host: str = "127.0.0.1", scheme: str = "http") -> str:
        return f"{scheme}://{host}:{self.port}{path}"

    def route(self, path: str) -> Callable[[Route], Route]:
        def register(fn: Route) -> Route:
            self.routes[path] = fn
            return fn

        return register

    def paths(self) -> list[str]:
        return [path for path, _ in self.requests]

    def close(self) -> None:
        self.stop.set()
        self.httpd.shutdown()
        self.httpd.server_close()


@pytest.fixture
def server() -> Any:
    srv = LocalServer()
    yield srv
    srv.close()


def send(
    h: BaseHTTPRequestHandler,
    status: int = 200,
    body: bytes = PNG,
    *,
    content_type: str = "image/png",
    headers: tuple[tuple[str, str], ...] = (),
) -> None:
    h.send_response(status)
    h.send_header("Content-Type", content_type)
    h.send_header("Content-Length", str(len(body)))
    for name, value in headers:
        h.send_header(name, value)
    h.end_headers()
    h.wfile.write(body)


def redirect(location: str, status: int = 302) -> Route:
    return lambda h: send(
        h, status, b"", content_type="text/plain", headers=(("Location", location),)
    )


def streaming_route(srv: LocalServer, path: str, total: int, mode: str) -> None:
    """A body of ``total`` bytes sent in 64 KiB pieces, counting what was handed over.

    mode: "length" (Content-Length), "chunked" or "eof" (no length, ends at close).
    """
    piece = b"\xab" * (64 * 1024)
    srv.sent[path] = 0
    srv.finished[path] = done = threading.Event()

    def handler(h: BaseHTTPRequestHandler) -> None:
        try:
            h.send_response(200)
            h.send_header("Content-Type", "image/jpeg")
            if mode == "length":
                h.send_header("Content-Length", str(total))
            elif mode == "chunked":
                h.send_header("Transfer-Encoding", "chunked")
            h.end_headers()
            left = total
            while left > 0:
                data = piece[: min(len(piece), left)]
                if mode == "chunked":
                    h.wfile.write(b"%x\r\n%s\r\n" % (len(data), data))
                else:
                    h.wfile.write(data)
                left -= len(data)
                srv.sent[path] += len(data)
            if mode == "chunked":
                h.wfile.write(b"0\r\n\r\n")
        finally:
            done.set()

    srv.routes[path] = handler


# --------------------------------------------------------------------------- happy paths


def test_fetch_bytes_returns_body_type_and_final_url(server: LocalServer) -> None:
    server.routes["/img.png"] = lambda h: send(h, content_type="Image/PNG; charset=binary")

    result = fetch.fetch_bytes(server.url("/img.png?size=1"), max_bytes=MIB, allow_private=True)

    assert result.data == PNG
    assert result.content_type == "image/png"
    assert result.url == server.url("/img.png?size=1")
    path, headers = server.requests[0]
    assert path == "/img.png?size=1"
    assert headers["host"] == f"127.0.0.1:{server.port}"
    assert headers["user-agent"].startswith("imgsvc/")
    assert headers["accept"] == "image/*"
    assert headers["accept-encoding"] == "identity"


def test_open_url_exposes_response_details(server: LocalServer) -> None:
    server.routes["/a"] = lambda h: send(h, headers=(("X-Extra", "yes"),))

    with fetch.open_url(server.url("/a"), max_bytes=MIB, allow_private=True) as resp:
        assert resp.status == 200
        assert resp.content_length == len(PNG)
        assert resp.headers["x-extra"] == "yes"
        assert resp.bytes_read == 0
        first = next(resp.iter_chunks(100))
        assert first == PNG[:100]
        assert resp.read_all() == PNG[100:]
        assert resp.bytes_read == len(PNG)
    with pytest.raises(ValueError, match="closed"):
        next(resp.iter_chunks())


def test_streaming_stops_early_and_close_does_not_drain(server: LocalServer) -> None:
    total = 256 * MIB
    streaming_route(server, "/huge.jpg", total, "length")

    with fetch.open_url(server.url("/huge.jpg"), max_bytes=1024 * MIB, allow_private=True) as resp:
        assert resp.content_length == total
        chunks = resp.iter_chunks(64 * 1024)
        head = next(chunks) + next(chunks)
    assert len(head) == 128 * 1024
    assert resp.bytes_read == 128 * 1024

    assert server.finished["/huge.jpg"].wait(5), "server still sending: connection not closed"
    # Kernel socket buffers on loopback hold a few tens of MiB at most; a drain would
    # have pushed all 256 MiB through.
    assert server.sent["/huge.jpg"] < 64 * MIB


@pytest.mark.parametrize("mode", ["length", "chunked", "eof"])
def test_body_of_exactly_max_bytes_is_accepted(server: LocalServer, mode: str) -> None:
    streaming_route(server, "/exact", 200_000, mode)

    result = fetch.fetch_bytes(server.url("/exact"), max_bytes=200_000, allow_private=True)

    assert len(result.data) == 200_000


def test_content_length_over_cap_fails_before_body_is_read(server: LocalServer) -> None:
    streaming_route(server, "/declared-big", 256 * MIB, "length")

    with (
        pytest.raises(PayloadTooLarge, match="larger than the limit of 1000000 bytes"),
        fetch.open_url(server.url("/declared-big"), max_bytes=1_000_000, allow_private=True),
    ):
        pytest.fail("open_url must refuse before handing out the body")

    assert server.finished["/declared-big"].wait(5)
    assert server.sent["/declared-big"] < 64 * MIB


@pytest.mark.parametrize("mode", ["chunked", "eof"])
def test_body_without_length_stops_at_cap(server: LocalServer, mode: str) -> None:
    streaming_route(server, "/undeclared", 256 * MIB, mode)

    with fetch.open_url(server.url("/undeclared"), max_bytes=300_000, allow_private=True) as resp:
        assert resp.content_length is None
        with pytest.raises(PayloadTooLarge) as err:
            resp.read_all()
        assert resp.bytes_read == 300_001  # one byte past the cap is enough to know
    assert err.value.status_code == 413

    assert server.finished["/undeclared"].wait(5)
    assert server.sent["/undeclared"] < 64 * MIB


def test_allow_private_defaults_to_the_setting(
    server: LocalServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    server.routes["/a"] = lambda h: send(h)

    with pytest.raises(BlockedUrl):
        fetch.fetch_bytes(server.url("/a"), max_bytes=MIB)
    assert server.requests == []

    monkeypatch.setenv("ALLOW_PRIVATE_URLS", "true")
    assert fetch.fetch_bytes(server.url("/a"), max_bytes=MIB).data == PNG
    # The keyword wins over the setting.
    with pytest.raises(BlockedUrl):
        fetch.fetch_bytes(server.url("/a"), max_bytes=MIB, allow_private=False)


# --------------------------------------------------------------------------- redirects


def test_follows_relative_absolute_and_scheme_relative_redirects(server: LocalServer) -> None:
    server.routes["/dir/start"] = redirect("next?x=1")  # relative to /dir/
    server.routes["/dir/next"] = redirect(server.url("/abs"), 301)
    server.routes["/abs"] = redirect(f"//127.0.0.1:{server.port}/final", 307)
    server.routes["/final"] = lambda h: send(h)

    result = fetch.fetch_bytes(server.url("/dir/start"), max_bytes=MIB, allow_private=True)

    assert result.data == PNG
    assert result.url == server.url("/final")
    assert server.paths() == ["/dir/start", "/dir/next?x=1", "/abs", "/final"]


def _loop(server: LocalServer) -> None:
    def hop(h: BaseHTTPRequestHandler) -> None:
        n = int(h.path.rsplit("/", 1)[1])
        send(h, 302, b"", headers=(("Location", f"/loop/{n + 1}"),))

    for n in range(20):
        server.routes[f"/loop/{n}"] = hop


def test_redirect_limit_from_settings(server: LocalServer, monkeypatch: pytest.MonkeyPatch) -> None:
    _loop(server)
    monkeypatch.setenv("FETCH_MAX_REDIRECTS", "2")

    with pytest.raises(UpstreamError, match="more than 2 times") as err:
        fetch.fetch_bytes(server.url("/loop/0"), max_bytes=MIB, allow_private=True)

    assert type(err.value) is UpstreamError
    assert server.paths() == ["/loop/0", "/loop/1", "/loop/2"]


def test_default_redirect_limit_is_five(server: LocalServer) -> None:
    _loop(server)
    server.routes["/loop/5"] = lambda h: send(h)
    assert fetch.fetch_bytes(server.url("/loop/0"), max_bytes=MIB, allow_private=True).data == PNG

    server.requests.clear()
    server.routes["/loop/5"] = server.routes["/loop/4"]
    with pytest.raises(UpstreamError, match="more than 5 times"):
        fetch.fetch_bytes(server.url("/loop/0"), max_bytes=MIB, allow_private=True)
    assert len(server.requests) == 6


def test_redirect_without_location_is_an_upstream_error(server: LocalServer) -> None:
    server.routes["/r"] = lambda h: send(h, 302, b"")
    with pytest.raises(UpstreamError, match="302"):
        fetch.fetch_bytes(server.url("/r"), max_bytes=MIB, allow_private=True)


@pytest.mark.parametrize(
    "location",
    [
        "http://internal.test/secret",  # resolves to 10.1.2.3
        "http://127.0.0.1:{port}/secret",
        "http://[::1]:{port}/secret",
        "http://2130706433:{port}/secret",
        "http://localhost:{port}/secret",
        "http://169.254.169.254/latest/meta-data/",
        "file:///etc/passwd",
        "gopher://public.test/",
        "http://user:pw@public.test/",
    ],
)
def test_redirect_to_blocked_target_is_refused(
    server: LocalServer, net: Net, location: str
) -> None:
    net.dns["public.test"] = ["8.8.8.8"]
    net.dns["internal.test"] = ["10.1.2.3"]
    net.routes["8.8.8.8"] = "127.0.0.1"
    server.routes["/start"] = redirect(location.format(port=server.port))

    with pytest.raises(BlockedUrl, match="redirected"):
        fetch.fetch_bytes(
            server.url("/start", host="public.test"), max_bytes=MIB, allow_private=False
        )

    assert server.paths() == ["/start"]
    assert net.connects == [("8.8.8.8", server.port)]


# --------------------------------------------------------------------------- connect target


def test_connects_to_the_checked_address_with_the_original_host(
    server: LocalServer, net: Net
) -> None:
    answers = iter([["127.0.0.1"]])
    # A second lookup would get an address no test server listens on (and the guard
    # refuses): only the checked answer may be used.
    net.dns["rebind.test"] = lambda: next(answers, ["198.51.100.7"])
    server.routes["/a"] = lambda h: send(h)

    result = fetch.fetch_bytes(
        server.url("/a", host="rebind.test"), max_bytes=MIB, allow_private=True
    )

    assert result.data == PNG
    assert result.url == server.url("/a", host="rebind.test")
    assert net.lookups == ["rebind.test"]
    assert net.connects == [("127.0.0.1", server.port)]
    assert server.requests[0][1]["host"] == f"rebind.test:{server.port}"


def test_public_address_is_fetched_and_resolved_once_per_hop(server: LocalServer, net: Net) -> None:
    net.dns["a.test"] = ["8.8.8.8"]
    net.dns["b.test"] = ["8.8.4.4"]
    net.routes.update({"8.8.8.8": "127.0.0.1", "8.8.4.4": "127.0.0.1"})
    server.routes["/start"] = redirect(server.url("/end", host="b.test"))
    server.routes["/end"] = lambda h: send(h)

    result = fetch.fetch_bytes(
        server.url("/start", host="a.test"), max_bytes=MIB, allow_private=False
    )

    assert result.data == PNG
    assert net.lookups == ["a.test", "b.test"]
    assert net.connects == [("8.8.8.8", server.port), ("8.8.4.4", server.port)]
    assert [h["host"] for _, h in server.requests] == [
        f"a.test:{server.port}",
        f"b.test:{server.port}",
    ]


def test_tries_the_next_checked_address_when_one_refuses(server: LocalServer, net: Net) -> None:
    net.dns["multi.test"] = ["2001:4860:4860::8888", "8.8.4.4", "8.8.8.8"]
    net.refuse.add("8.8.4.4")
    net.routes["8.8.8.8"] = "127.0.0.1"
    server.routes["/a"] = lambda h: send(h)

    result = fetch.fetch_bytes(server.url("/a", host="multi.test"), max_bytes=MIB)

    assert result.data == PNG
    # IPv4 first, in resolver order; the IPv6 address was not needed.
    assert net.connects == [("8.8.4.4", server.port), ("8.8.8.8", server.port)]


@pytest.mark.parametrize("bad", ["10.0.0.1", "127.0.0.1", "::1", "::ffff:10.0.0.1", "fd00::1"])
def test_one_private_address_among_public_ones_blocks(net: Net, bad: str) -> None:
    net.dns["mixed.test"] = ["8.8.8.8", bad, "2001:4860:4860::8888"]

    with pytest.raises(BlockedUrl, match=r"mixed\.test"):
        fetch.fetch_bytes("http://mixed.test/x.png", max_bytes=MIB)

    assert net.connects == []


# --------------------------------------------------------------------------- upstream errors


@pytest.mark.parametrize("status", [404, 500, 403])
def test_non_2xx_status_is_a_502_with_the_status(server: LocalServer, status: int) -> None:
    server.routes["/x"] = lambda h: send(h, status, b"error page", content_type="text/html")

    with pytest.raises(UpstreamError, match=f"HTTP {status}") as err:
        fetch.fetch_bytes(server.url("/x"), max_bytes=MIB, allow_private=True)

    assert err.value.status_code == 502
    assert err.value.details == {"upstream_status": status}


def test_connection_refused_is_a_502() -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]  # closed again below: nothing listens there

    with pytest.raises(UpstreamError, match="Could not connect") as err:
        fetch.fetch_bytes(f"http://127.0.0.1:{port}/x", max_bytes=MIB, allow_private=True)

    assert type(err.value) is UpstreamError
    assert err.value.status_code == 502


def test_a_name_dns_says_does_not_exist_is_a_400(net: Net) -> None:
    def fail() -> list[str]:
        raise socket.gaierror(socket.EAI_NONAME, "Name or service not known")

    net.dns["nowhere.test"] = fail

    with pytest.raises(BadRequest, match="does not exist") as err:
        fetch.fetch_bytes("https://nowhere.test/x.jpg", max_bytes=MIB)

    assert err.value.status_code == 400


def test_a_dns_failure_is_a_502(net: Net) -> None:
    def fail() -> list[str]:
        raise socket.gaierror(socket.EAI_AGAIN, "Temporary failure in name resolution")

    net.dns["flaky.test"] = fail

    with pytest.raises(UpstreamError, match="could not be resolved") as err:
        fetch.fetch_bytes("https://flaky.test/x.jpg", max_bytes=MIB)

    assert type(err.value) is UpstreamError


def test_connect_timeout_is_a_504(net: Net) -> None:
    net.dns["slow.test"] = ["8.8.8.8"]
    net.time_out.add("8.8.8.8")

    with pytest.raises(
        UpstreamTimeout, match=r"Connecting to 'slow\.test' on port 80 timed out after 3 seconds"
    ) as err:
        fetch.fetch_bytes("http://slow.test/x.jpg", max_bytes=MIB, timeout=2)

    assert err.value.status_code == 504
    assert net.connects == [("8.8.8.8", 80)]


# --------------------------------------------------------------------------- deadline


def test_slow_response_headers_time_out(server: LocalServer) -> None:
    def slow(h: BaseHTTPRequestHandler) -> None:
        server.stop.wait(5)
        send(h)

    server.routes["/slow"] = slow

    with pytest.raises(
        UpstreamTimeout, match=r"0\.4 second limit while waiting for the response headers"
    ):
        fetch.fetch_bytes(server.url("/slow"), max_bytes=MIB, timeout=0.4, allow_private=True)


def test_drip_fed_body_hits_the_total_deadline(server: LocalServer) -> None:
    # Each byte arrives well within any per-read timeout; only a total deadline stops it.
    def drip(h: BaseHTTPRequestHandler) -> None:
        h.send_response(200)
        h.send_header("Content-Type", "image/png")
        h.send_header("Content-Length", "60")
        h.end_headers()
        for _ in range(60):
            h.wfile.write(b"x")
            if server.stop.wait(0.05):
                return

    server.routes["/drip"] = drip

    with fetch.open_url(
        server.url("/drip"), max_bytes=MIB, timeout=0.5, allow_private=True
    ) as resp:
        with pytest.raises(UpstreamTimeout, match=r"0\.5 second limit while reading the body"):
            resp.read_all()
        assert resp.bytes_read < 60


def test_a_server_that_never_answers_tls_times_out_in_the_handshake() -> None:
    listener = socket.create_server(("127.0.0.1", 0))  # accepts TCP, never speaks TLS
    try:
        port = listener.getsockname()[1]
        with pytest.raises(UpstreamTimeout, match=r"0\.4 second limit while in the TLS handshake"):
            fetch.fetch_bytes(
                f"https://127.0.0.1:{port}/x.png", max_bytes=MIB, timeout=0.4, allow_private=True
            )
    finally:
        listener.close()


def _quick_body(server: LocalServer) -> str:
    def quick(h: BaseHTTPRequestHandler) -> None:
        send(h, body=b"x" * 3000, headers=(("Content-Type", "image/png"),))

    server.routes["/quick"] = quick
    return server.url("/quick")


def test_our_own_processing_is_not_counted_as_a_slow_server(server: LocalServer) -> None:
    url = _quick_body(server)
    with fetch.open_url(url, max_bytes=MIB, timeout=0.5, allow_private=True) as resp:
        chunks = []
        for chunk in resp.iter_chunks(1000):
            chunks.append(chunk)
            if len(chunks) == 1:
                time.sleep(0.7)  # stands in for CPU work on the chunk, past the fetch's limit
        assert b"".join(chunks) == b"x" * 3000


def test_processing_past_its_allowance_is_reported_as_ours(server: LocalServer) -> None:
    url = _quick_body(server)
    with (
        fetch.open_url(url, max_bytes=MIB, timeout=0.3, allow_private=True) as resp,
        pytest.raises(InvalidImage, match="too costly to inspect"),
    ):
        for _ in resp.iter_chunks(1000):
            time.sleep(0.7)  # past twice the fetch's limit: our processing, not theirs


def test_deadline_covers_all_redirect_hops(server: LocalServer) -> None:
    def hop(h: BaseHTTPRequestHandler) -> None:
        n = int(h.path.rsplit("/", 1)[1])
        server.stop.wait(0.2)
        send(h, 302, b"", headers=(("Location", f"/hop/{n + 1}"),))

    for n in range(10):
        server.routes[f"/hop/{n}"] = hop

    with pytest.raises(UpstreamTimeout):
        fetch.fetch_bytes(server.url("/hop/0"), max_bytes=MIB, timeout=0.5, allow_private=True)
    assert len(server.requests) <= 4


def test_slow_dns_counts_against_the_deadline(net: Net) -> None:
    def slow() -> list[str]:
        time.sleep(1.0)
        return ["8.8.8.8"]

    net.dns["slowdns.test"] = slow

    with pytest.raises(UpstreamTimeout, match="while resolving the host name"):
        fetch.fetch_bytes("http://slowdns.test/", max_bytes=MIB, timeout=0.3)
    assert net.connects == []


def test_timeout_setting_is_the_default(
    server: LocalServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    def slow(h: BaseHTTPRequestHandler) -> None:
        server.stop.wait(5)

    server.routes["/slow"] = slow
    monkeypatch.setenv("FETCH_TIMEOUT_SECONDS", "0.3")

    with pytest.raises(UpstreamTimeout, match=r"0\.3 second limit"):
        fetch.fetch_bytes(server.url("/slow"), max_bytes=MIB, allow_private=True)


# --------------------------------------------------------------------------- blocked URLs

BLOCKED_URLS = [
    # schemes
    "file:///etc/passwd",
    "ftp://example.com/a.png",
    "gopher://example.com/",
    "dict://example.com:11211/",
    "data:image/png;base64,iVBORw0KGgo=",
    "javascript:alert(1)",
    "//example.com/a.png",
    "example.com/a.png",
    # user info
    "http://user:pw@example.com/a.png",
    "http://example.com@127.0.0.1/",
    "http://example.com\\@127.0.0.1/",
    # loopback in every spelling
    "http://127.0.0.1/",
    "HTTP://127.0.0.1:8080/a.png",
    "http://127.0.0.1./",
    "http://127.1/",
    "http://127.0.1/",
    "http://2130706433/",
    "http://017700000001/",
    "http://0177.0.0.1/",
    "http://0x7f.1/",
    "http://0x7f000001/",
    "http://0x7F.0x0.0x0.0x1/",
    "http://127.000.000.001/",
    "http://localhost/",
    "http://LOCALHOST:8000/",
    "http://localhost./",
    "http://api.localhost/",
    "http://%6c%6f%63%61%6c%68%6f%73%74/",
    "http://127%2E0%2E0%2E1/",
    "http://127.0.0.1%00.example.com/",
    "http://\uff4c\uff4f\uff43\uff41\uff4c\uff48\uff4f\uff53\uff54/",  # full-width letters
    "http://127\u30020\u30020\u30021/",  # ideographic full stops
    "http://\u2460\u2461\u2466.0.0.1/",  # circled digits
    "http://[::1]/",
    "http://[0:0:0:0:0:0:0:1]:80/",
    "http://[::ffff:127.0.0.1]/",
    "http://[::ffff:7f00:1]/",
    "http://[::127.0.0.1]/",  # IPv4-compatible
    "http://[::ffff:0:7f00:1]/",  # IPv4-translated
    "http://[2002:7f00:1::1]/",  # 6to4 around 127.0.0.1
    "http://[64:ff9b::7f00:1]/",  # NAT64 around 127.0.0.1
    # unspecified
    "http://0/",
    "http://0.0.0.0/",
    "http://[::]/",
    # private, link-local, cloud metadata
    "http://10.0.0.1/",
    "http://172.16.0.1/",
    "http://192.168.1.1/",
    "http://169.254.169.254/latest/meta-data/",
    "http://[::ffff:a9fe:a9fe]/",
    "http://[fd00:ec2::254]/",
    "http://[fe80::1]/",
    "http://[fe80::1%25eth0]/",
    "http://[fc00::1]/",
    "http://[fec0::1]/",  # site-local
    "http://[2002:c0a8:101::1]/",  # 6to4 around 192.168.1.1
    "http://[64:ff9b::a00:1]/",  # NAT64 around 10.0.0.1
    "http://[64:ff9b:1::1]/",  # local-use NAT64
    "http://[2001:0:4136:e378:8000:63bf:3fff:fdd2]/",  # Teredo
    # shared, multicast, reserved, documentation, benchmarking
    "http://100.64.0.1/",
    "http://224.0.0.1/",
    "http://[ff02::1]/",
    "http://240.0.0.1/",
    "http://255.255.255.255/",
    "http://192.0.0.1/",
    "http://192.0.2.1/",
    "http://198.18.0.1/",
    "http://[2001:db8::1]/",
]


@pytest.mark.parametrize("url", BLOCKED_URLS)
def test_blocked_urls(net: Net, url: str) -> None:
    with pytest.raises(BlockedUrl) as err:
        fetch.fetch_bytes(url, max_bytes=MIB, allow_private=False)

    assert err.value.status_code == 400
    assert err.value.code == "blocked_url"
    assert net.connects == []


@pytest.mark.parametrize(
    "url",
    [
        "file:///etc/passwd",
        "http://user@127.0.0.1/",
        "http://2130706433/",
        "http://0x7f.1/",
        "http://%6c%6f%63%61%6c%68%6f%73%74/",
    ],
)
def test_allow_private_keeps_scheme_and_spelling_checks(net: Net, url: str) -> None:
    with pytest.raises(BlockedUrl):
        fetch.fetch_bytes(url, max_bytes=MIB, allow_private=True)
    assert net.connects == []


@pytest.mark.parametrize("host", ["2130706433", "017700000001", "0177.0.0.1", "0x7f.1", "127.1"])
def test_getaddrinfo_reads_numeric_spellings_as_blocked_addresses(host: str) -> None:
    # Second line of defence: even without the spelling rule, what getaddrinfo makes of
    # these hosts is checked, and it is loopback.
    addresses = _REAL_RESOLVE(host, 80)
    assert addresses
    assert all(fetch.blocked_reason(a) == "loopback" for a in addresses)


@pytest.mark.parametrize(
    ("address", "reason"),
    [
        ("127.0.0.1", "loopback"),
        ("10.1.2.3", "private"),
        ("100.100.100.200", "shared (carrier-grade NAT)"),
        ("169.254.169.254", "link-local"),
        ("0.0.0.0", "unspecified"),
        ("239.1.2.3", "multicast"),
        ("::", "unspecified"),
        ("::1", "loopback"),
        ("::ffff:192.168.0.1", "private (IPv4 inside IPv6)"),
        ("2002:a00:1::", "private (IPv4 inside IPv6)"),
        ("64:ff9b::7f00:1", "loopback (IPv4 inside IPv6)"),
        ("::8.8.8.8", "IPv4-translation"),
        ("fec0::1", "site-local"),
        ("ff0e::1", "multicast"),
        ("not-an-ip", "unrecognised"),
        ("8.8.8.8", None),
        ("93.184.216.34", None),
        ("2001:4860:4860::8888", None),
        ("::ffff:8.8.8.8", None),
        ("2002:808:808::1", None),
        ("64:ff9b::808:808", None),
    ],
)
def test_blocked_reason(address: str, reason: str | None) -> None:
    assert fetch.blocked_reason(address) == reason


def test_allow_private_still_refuses_unusable_addresses() -> None:
    assert fetch.blocked_reason("10.0.0.1", allow_private=True) is None
    assert fetch.blocked_reason("::ffff:127.0.0.1", allow_private=True) is None
    assert fetch.blocked_reason("0.0.0.0", allow_private=True) == "unspecified"
    assert fetch.blocked_reason("224.0.0.1", allow_private=True) == "multicast"


@pytest.mark.parametrize(
    "url",
    [
        "",
        "http://",
        "http:///a.png",
        "http://:80/",
        "http://example.com:0/",
        "http://example.com:65536/",
        "http://example.com:-1/",
        "http://example.com:+80/",
        "http://example.com:8o/",
        "http://[::1/",
        "http://[v1.fe]/",
        "http://exa mple.com/",
        "http://exa_mple..com/",
        "http://example.com/a\r\nX-Injected: 1",
        "http://example.com/\ta.png",
        "http://example.com/" + "a" * fetch.MAX_URL_LENGTH,
    ],
)
def test_malformed_urls_are_bad_requests(net: Net, url: str) -> None:
    with pytest.raises(BadRequest) as err:
        fetch.fetch_bytes(url, max_bytes=MIB, allow_private=False)

    assert type(err.value) is BadRequest
    assert net.lookups == []


def test_validate_url_normalises_without_network(net: Net) -> None:
    assert (
        fetch.validate_url("HTTPS://Example.COM.:443/a b/\u00e9.png?q=\u00fc#frag")
        == "https://example.com/a%20b/%C3%A9.png?q=%C3%BC"
    )
    assert fetch.validate_url("http://b\u00fccher.example/x") == "http://xn--bcher-kva.example/x"
    assert fetch.validate_url("http://[2001:4860:4860:0::8888]:8080") == (
        "http://[2001:4860:4860::8888]:8080/"
    )
    assert net.lookups == []


# --------------------------------------------------------------------------- https


@pytest.fixture(scope="module")
def certs(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """A throwaway CA and two leaf certificates: for img.test and for other.test."""
    x509 = pytest.importorskip("cryptography.x509")
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

    out = tmp_path_factory.mktemp("certs")
    now = datetime.datetime.now(datetime.UTC)

    def name(cn: str) -> Any:
        return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, cn)])

    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_cert = (
        x509.CertificateBuilder()
        .subject_name(name("imgsvc test CA"))
        .issuer_name(name("imgsvc test CA"))
        .public_key(ca_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(hours=1))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=False,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                key_cert_sign=True,
                crl_sign=True,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(ca_key.public_key()), False)
        .sign(ca_key, hashes.SHA256())
    )
    files = {"ca": out / "ca.pem"}
    files["ca"].write_bytes(ca_cert.public_bytes(serialization.Encoding.PEM))

    for host in ("img.test", "other.test"):
        key = ec.generate_private_key(ec.SECP256R1())
        cert = (
            x509.CertificateBuilder()
            .subject_name(name(host))
            .issuer_name(ca_cert.subject)
            .public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(hours=1))
            .not_valid_after(now + datetime.timedelta(days=1))
            .add_extension(x509.SubjectAlternativeName([x509.DNSName(host)]), critical=False)
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
            .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), False)
            .add_extension(
                x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()), False
            )
            .sign(ca_key, hashes.SHA256())
        )
        pem = cert.public_bytes(serialization.Encoding.PEM) + key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
        files[host] = out / f"{host}.pem"
        files[host].write_bytes(pem)
    return files


def _tls_server(cert_file: Path, sni: list[str | None]) -> LocalServer:
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.load_cert_chain(cert_file)
    ctx.sni_callback = lambda sock, server_name, context: sni.append(server_name)
    return LocalServer(ssl_context=ctx)


def test_https_uses_sni_and_verifies_the_hostname_not_the_ip(
    certs: dict[str, Path], net: Net, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(fetch.connections, "CA_BUNDLE", str(certs["ca"]))
    net.dns["img.test"] = ["127.0.0.1"]
    sni: list[str | None] = []
    srv = _tls_server(certs["img.test"], sni)
    try:
        srv.routes["/a.png"] = lambda h: send(h)
        url = srv.url("/a.png", host="img.test", scheme="https")

        result = fetch.fetch_bytes(url, max_bytes=MIB, allow_private=True)

        assert result.data == PNG
        assert sni == ["img.test"]
        assert srv.requests[0][1]["host"] == f"img.test:{srv.port}"
        assert net.connects == [("127.0.0.1", srv.port)]
    finally:
        srv.close()


def test_https_certificate_for_another_name_is_refused(
    certs: dict[str, Path], net: Net, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(fetch.connections, "CA_BUNDLE", str(certs["ca"]))
    net.dns["img.test"] = ["127.0.0.1"]
    srv = _tls_server(certs["other.test"], [])
    try:
        srv.routes["/a.png"] = lambda h: send(h)
        url = srv.url("/a.png", host="img.test", scheme="https")

        with pytest.raises(UpstreamError, match="certificate") as err:
            fetch.fetch_bytes(url, max_bytes=MIB, allow_private=True)

        assert type(err.value) is UpstreamError
        assert srv.requests == []
    finally:
        srv.close()


def test_https_untrusted_ca_is_refused(certs: dict[str, Path], net: Net) -> None:
    net.dns["img.test"] = ["127.0.0.1"]
    srv = _tls_server(certs["img.test"], [])
    try:
        srv.routes["/a.png"] = lambda h: send(h)
        with pytest.raises(UpstreamError, match="certificate"):
            fetch.fetch_bytes(
                srv.url("/a.png", host="img.test", scheme="https"),
                max_bytes=MIB,
                allow_private=True,
            )
        assert srv.requests == []
    finally:
        srv.close()


@pytest.mark.parametrize(
    "address",
    ["169.254.169.254", "fe80::1", "::ffff:169.254.169.254", "fd00:ec2::254", "fd00:ec2::23"],
)
def test_metadata_is_refused_even_when_private_addresses_are_allowed(address: str) -> None:
    assert fetch.blocked_reason(address, allow_private=True) is not None
    assert fetch.blocked_reason("127.0.0.1", allow_private=True) is None
