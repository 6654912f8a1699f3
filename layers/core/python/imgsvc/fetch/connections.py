"""Connections to checked addresses only, under one wall-clock deadline (urllib3 pools)."""

from __future__ import annotations

import contextlib
import socket
import ssl
import threading
import time
from http.client import HTTPException
from typing import Any

import urllib3
from urllib3 import exceptions as u3exc
from urllib3.connection import HTTPConnection, HTTPSConnection
from urllib3.connectionpool import HTTPConnectionPool, HTTPSConnectionPool

from imgsvc import __version__
from imgsvc.errors import (
    InvalidImage,
    ServiceError,
    UpstreamError,
    UpstreamTimeout,
)
from imgsvc.fetch.urls import _Target

USER_AGENT = f"imgsvc/{__version__} (image service URL fetcher)"
ACCEPT = "image/*"
# Per-address connect limit, so one black-holed address (e.g. IPv6 without a route)
# leaves time to try the next one within the overall deadline.
CONNECT_TIMEOUT_SECONDS = 3.0


def _default_ca_bundle() -> str | None:
    # certifi when installed (it is wherever requests/botocore brought it); otherwise the
    # system store (load_default_certs), which the Lambda images ship.
    try:
        import certifi
    except ImportError:
        return None
    return certifi.where()


# Module-level so tests can point it at a throwaway CA.
CA_BUNDLE: str | None = _default_ca_bundle()


class _Deadline:
    """The wall-clock budget of one fetch, enforced by a timer that shuts the socket down.

    Socket timeouts only bound a single recv(); a server sending a byte every second
    would never trip them. Shutting the socket down wakes any blocked read.
    """

    def __init__(self, seconds: float) -> None:
        self.seconds = seconds
        self.expires_at = time.monotonic() + seconds
        self.fired = False
        # What the fetch is doing now, for the message when the time runs out.
        self.phase = "resolving the host name"
        self.host = ""
        self.excluded = 0.0  # seconds of our own processing the deadline was moved by
        self.allowance = 2 * seconds  # at most that much
        self._paused_at: float | None = None
        self._lock = threading.Lock()
        self._sock: socket.socket | None = None
        self._done = False
        self._timer = self._arm(seconds)

    def _arm(self, seconds: float) -> threading.Timer:
        timer = threading.Timer(max(seconds, 0.0), self._fire)
        timer.daemon = True
        timer.start()
        return timer

    # Time our own code spends on the chunks (the caller between two reads: a header probe,
    # say) is not the server's: the deadline moves by that much, up to twice the fetch's own
    # limit; past that, the error says it was our processing.
    def pause(self) -> None:
        with self._lock:
            self._paused_at = time.monotonic()

    def resume(self) -> None:
        with self._lock:
            if self._paused_at is None or self.fired:
                self._paused_at = None
                return
            granted = min(time.monotonic() - self._paused_at, self.allowance - self.excluded)
            self.excluded += granted
            self.expires_at += granted
            self._paused_at = None

    def remaining(self) -> float:
        return self.expires_at - time.monotonic()

    def expired(self) -> bool:
        return self.fired or self.remaining() <= 0

    def check(self) -> None:
        if self.expired():
            raise self.timeout_error()

    def timeout_error(self) -> ServiceError:
        if self.excluded >= self.allowance:
            # Our own work on the chunks used its whole allowance: not the server's fault.
            return InvalidImage(
                f"Inspecting the file as it arrived took more than {self.allowance:g} seconds "
                "of processing: its structure is too costly to inspect. Use an ordinary file."
            )
        server = f" '{self.host}'" if self.host else ""
        return UpstreamTimeout(
            f"Fetching the URL ran out of its {self.seconds:g} second limit while "
            f"{self.phase} (server{server}); try again later or use an image hosted on a "
            "faster server."
        )

    def watch(self, sock: socket.socket | None) -> None:
        with self._lock:
            self._sock = sock
            fire_now = self.fired and not self._done
        if fire_now and sock is not None:
            _shutdown(sock)

    def _fire(self) -> None:
        with self._lock:
            if self._done:
                return
            now = time.monotonic()
            expires_at = self.expires_at
            if self._paused_at is not None:  # our own code is running, not the server
                spent = now - self._paused_at
                if spent >= self.allowance - self.excluded:
                    self.excluded = self.allowance  # our processing used its whole allowance
                expires_at += min(spent, self.allowance - self.excluded)
            if expires_at - now > 0:  # moved by our processing time: wait for the rest
                self._timer = self._arm(expires_at - now)
                return
            self.fired = True
            sock = self._sock
        if sock is not None:
            _shutdown(sock)

    def cancel(self) -> None:
        with self._lock:
            self._done = True
            self._sock = None
        self._timer.cancel()


def _shutdown(sock: socket.socket) -> None:
    # The plain socket method, also for SSLSocket: it only touches the descriptor,
    # so a read blocked in another thread returns instead of racing TLS state.
    with contextlib.suppress(OSError):
        socket.socket.shutdown(sock, socket.SHUT_RDWR)


# --------------------------------------------------------------------------- urllib3


class _Watched:
    """Mixin for urllib3 connections: hand each new socket to the fetch's deadline."""

    sock: Any

    def __init__(self, *args: Any, fetch_deadline: _Deadline, **kwargs: Any) -> None:
        self._fetch_deadline = fetch_deadline
        super().__init__(*args, **kwargs)

    def _new_conn(self) -> Any:
        deadline = self._fetch_deadline
        deadline.phase = "connecting"
        sock = super()._new_conn()  # type: ignore[misc]
        deadline.watch(sock)  # from here on, also during the TLS handshake
        if isinstance(self, HTTPSConnection):
            deadline.phase = "in the TLS handshake"
        return sock

    def connect(self) -> None:
        super().connect()  # type: ignore[misc]
        self._fetch_deadline.watch(self.sock)
        self._fetch_deadline.phase = "waiting for the response headers"


class _WatchedHTTPConnection(_Watched, HTTPConnection):
    pass


class _WatchedHTTPSConnection(_Watched, HTTPSConnection):
    pass


class _HTTPPool(HTTPConnectionPool):
    ConnectionCls = _WatchedHTTPConnection  # type: ignore[assignment]


class _HTTPSPool(HTTPSConnectionPool):
    ConnectionCls = _WatchedHTTPSConnection  # type: ignore[assignment]


def _make_pool(target: _Target, address: str, deadline: _Deadline) -> HTTPConnectionPool:
    common: dict[str, Any] = {
        "host": address,  # connect to the checked IP, never to the name
        "port": target.port,
        "maxsize": 1,
        "retries": False,
        "fetch_deadline": deadline,
    }
    if target.scheme == "https":
        return _HTTPSPool(
            cert_reqs="CERT_REQUIRED",
            ca_certs=CA_BUNDLE,
            server_hostname=target.host,  # SNI for the name, not the IP
            assert_hostname=target.host,  # certificate must match the name
            **common,
        )
    return _HTTPPool(**common)


def _request(
    target: _Target, addresses: list[str], deadline: _Deadline
) -> tuple[Any, HTTPConnectionPool]:
    headers = {
        "Host": target.host_header,
        "User-Agent": USER_AGENT,
        "Accept": ACCEPT,
        # Byte counts and limits apply to what crosses the wire; no decompression bombs.
        "Accept-Encoding": "identity",
        "Connection": "close",
    }
    failure: Exception | None = None
    deadline.host = target.host
    for address in addresses:
        deadline.check()
        remaining = max(deadline.remaining(), 0.001)
        pool = _make_pool(target, address, deadline)
        try:
            raw = pool.urlopen(
                "GET",
                target.request_target,
                headers=headers,
                retries=False,
                redirect=False,
                assert_same_host=False,
                preload_content=False,
                decode_content=False,
                release_conn=False,
                timeout=urllib3.Timeout(
                    connect=min(CONNECT_TIMEOUT_SECONDS, remaining), read=remaining
                ),
            )
        except u3exc.ConnectTimeoutError as exc:
            # Includes NewConnectionError: nothing was sent, so the next address is safe.
            pool.close()
            failure = exc
            continue
        except (u3exc.HTTPError, OSError, HTTPException) as exc:
            pool.close()
            raise _failure(exc, target.host, target.port, deadline) from exc
        deadline.phase = "reading the body"
        return raw, pool
    assert failure is not None
    raise _failure(failure, target.host, target.port, deadline) from failure


def _failure(exc: BaseException, host: str, port: int, deadline: _Deadline) -> ServiceError:
    """Turn a urllib3/socket error into the service error a user can act on."""
    connect_timeout = isinstance(exc, u3exc.ConnectTimeoutError) and not isinstance(
        exc, u3exc.NewConnectionError
    )
    if deadline.expired() or isinstance(exc, (u3exc.ReadTimeoutError, TimeoutError)):
        return deadline.timeout_error()
    if connect_timeout:
        # The per-address connect limit, not the whole budget, ran out.
        return UpstreamTimeout(
            f"Connecting to '{host}' on port {port} timed out after "
            f"{CONNECT_TIMEOUT_SECONDS:g} seconds (the limit per address); check that the "
            "server is reachable and try again later."
        )
    if isinstance(exc, (u3exc.SSLError, ssl.SSLError)):
        return UpstreamError(
            f"Could not make a secure connection to '{host}': the TLS handshake failed or "
            "its HTTPS certificate is not valid for that name or not trusted. Use a URL "
            "whose server has a valid certificate."
        )
    if isinstance(exc, u3exc.NewConnectionError):
        return UpstreamError(
            f"Could not connect to '{host}' on port {port}; check that the "
            "URL is correct and the server is reachable."
        )
    return UpstreamError(
        f"The connection to '{host}' failed before the image was received; try again later."
    )


def _close_quietly(raw: Any, pool: HTTPConnectionPool) -> None:
    # close(), never drain: the rest of a large body must not be downloaded.
    with contextlib.suppress(Exception):
        raw.close()
    with contextlib.suppress(Exception):
        pool.close()


def _header_text(value: str) -> str:
    # http.client decodes headers as Latin-1; a raw UTF-8 Location reads better re-decoded.
    try:
        return value.encode("latin-1").decode("utf-8")
    except UnicodeError:
        return value


def _content_length(headers: dict[str, str]) -> int | None:
    if "chunked" in headers.get("transfer-encoding", "").lower():
        return None
    values = {v.strip() for v in headers.get("content-length", "").split(",") if v.strip()}
    if len(values) != 1:
        return None
    (value,) = values
    return int(value) if value.isdigit() else None
