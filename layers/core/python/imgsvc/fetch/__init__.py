"""SSRF-safe fetching of http(s) URLs ("analyze an image by URL", "import an image from a URL").

Every hop (the URL itself and each redirect) goes through the same steps:

1. ``validate_url``: http/https only, no user info, a sane host and port, at most
   ``MAX_URL_LENGTH`` characters. Numeric hosts must be written as a canonical dotted IPv4
   (``2130706433``, ``0x7f.1``, ``0177.0.0.1`` and ``127.1`` are refused) and
   percent-encoded hosts are refused, so there is exactly one reading of the host.
2. ``resolve_host`` (``socket.getaddrinfo``, A and AAAA) runs once per hop. Every address
   it returns must be public (``blocked_reason``); one bad address blocks the whole URL.
3. The TCP connection goes to a checked address, never to the name: urllib3 gets a pool
   for the IP plus the original ``Host`` header, SNI (``server_hostname``) and certificate
   check (``assert_hostname``) for the name. Nothing re-resolves the name, so a DNS answer
   that changes between check and use (DNS rebinding) cannot reach a private address.
4. Redirects are followed here, not by urllib3, so each Location goes through 1-3 again.
5. One wall-clock deadline covers DNS, connects, redirects and the body: a watchdog timer
   shuts the socket down when it passes, so a server that drips bytes cannot hold us.
   ``max_bytes`` is checked against Content-Length before the body is read and again
   while streaming (at most one byte over the cap is ever read).

``ALLOW_PRIVATE_URLS`` (or ``allow_private=True``) lets private, loopback and link-local
addresses through for local development; everything else above still applies.

Errors are ``imgsvc.errors`` classes: ``BadRequest`` (malformed URL), ``BlockedUrl``
(scheme, user info, host spelling or address not allowed), ``PayloadTooLarge``,
``UpstreamError`` (DNS failure, connection failure, non-2xx status, too many redirects)
and ``UpstreamTimeout``.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.client import HTTPException
from typing import Any
from urllib.parse import urljoin

from urllib3 import exceptions as u3exc
from urllib3.connectionpool import HTTPConnectionPool

from imgsvc.config import get_settings
from imgsvc.errors import (
    BadRequest,
    BlockedUrl,
    PayloadTooLarge,
    ServiceError,
    UpstreamError,
)
from imgsvc.fetch.addresses import blocked_reason
from imgsvc.fetch.connections import (
    _close_quietly,
    _content_length,
    _Deadline,
    _failure,
    _header_text,
    _request,
)
from imgsvc.fetch.dns import _resolve_checked, resolve_host
from imgsvc.fetch.urls import MAX_URL_LENGTH, _parse_target, _Target, validate_url

DEFAULT_CHUNK_SIZE = 64 * 1024
REDIRECT_STATUSES = frozenset({301, 302, 303, 307, 308})

__all__ = [
    "MAX_URL_LENGTH",
    "FetchResponse",
    "FetchResult",
    "blocked_reason",
    "fetch_bytes",
    "open_url",
    "resolve_host",
    "validate_url",
]


def _too_large(url: str, max_bytes: int) -> PayloadTooLarge:
    return PayloadTooLarge(
        f"The file at {url} is larger than the limit of {max_bytes} bytes; use a smaller image.",
        details={"max_bytes": max_bytes},
    )


class FetchResponse:
    """A successful (2xx) response whose body has not been read yet.

    Attributes: ``url`` (final URL after redirects, normalised), ``status``,
    ``headers`` (dict, lower-case names, repeated headers joined with ", "),
    ``content_type`` (media type only, lower case, or None), ``content_length``
    (declared size or None) and ``bytes_read`` (body bytes read so far).
    """

    def __init__(
        self,
        *,
        raw: Any,
        pool: HTTPConnectionPool,
        url: str,
        host: str,
        port: int,
        deadline: _Deadline,
        max_bytes: int,
    ) -> None:
        self._raw = raw
        self._pool = pool
        self._deadline = deadline
        self._max_bytes = max_bytes
        self._host = host
        self._port = port
        self._eof = False
        self._closed = False
        self._error: ServiceError | None = None
        self.url = url
        self.status: int = raw.status
        self.headers: dict[str, str] = {k.lower(): v for k, v in raw.headers.itermerged()}
        media_type = self.headers.get("content-type", "").split(";", 1)[0].strip().lower()
        self.content_type: str | None = media_type or None
        self.content_length: int | None = _content_length(self.headers)
        self.bytes_read = 0

    def iter_chunks(self, chunk_size: int = DEFAULT_CHUNK_SIZE) -> Iterator[bytes]:
        """Yield the rest of the body in chunks of at most ``chunk_size`` bytes.

        Raises ``PayloadTooLarge`` as soon as more than ``max_bytes`` arrived and
        ``UpstreamTimeout`` when the deadline passes. Stopping early is fine: leaving
        ``open_url`` closes the connection without reading the rest.
        """
        if chunk_size <= 0:
            raise ValueError("chunk_size must be positive")
        while True:
            if self._error is not None:
                raise self._error
            if self._closed:
                raise ValueError("the response is closed; read it inside open_url()")
            if self._eof:
                return
            # Ask for at most one byte past the cap: enough to know it was exceeded.
            want = min(chunk_size, self._max_bytes - self.bytes_read + 1)
            data = self._read(want)
            if not data:
                self._eof = True
                return
            self.bytes_read += len(data)
            if self.bytes_read > self._max_bytes:
                self._error = _too_large(self.url, self._max_bytes)
                raise self._error
            self._deadline.pause()  # the caller's work on this chunk is not the server's time
            try:
                yield data
            finally:
                self._deadline.resume()

    def read_all(self) -> bytes:
        """The rest of the body (all of it if nothing was read yet), within the limits."""
        return b"".join(self.iter_chunks())

    def _read(self, amount: int) -> bytes:
        try:
            data: bytes = self._raw.read(amount, decode_content=False)
        except (u3exc.HTTPError, OSError, HTTPException) as exc:
            self._error = _failure(exc, self._host, self._port, self._deadline)
            raise self._error from exc
        # A watchdog shutdown looks like an early EOF; it must not pass as a full body.
        if self._deadline.expired():
            self._error = self._deadline.timeout_error()
            raise self._error
        return data

    def close(self) -> None:
        if not self._closed:
            self._closed = True
            _close_quietly(self._raw, self._pool)


@contextmanager
def open_url(
    url: str,
    *,
    max_bytes: int,
    timeout: float | None = None,
    allow_private: bool | None = None,
    max_redirects: int | None = None,
) -> Iterator[FetchResponse]:
    """GET ``url`` safely and yield the 2xx response with its body unread.

    ``timeout`` (default ``FETCH_TIMEOUT_SECONDS``) covers everything until the block
    ends: DNS, connects, redirects and body reads. ``allow_private`` defaults to
    ``ALLOW_PRIVATE_URLS``, ``max_redirects`` to ``FETCH_MAX_REDIRECTS``. A declared
    Content-Length over ``max_bytes`` raises ``PayloadTooLarge`` before the body is read.
    Leaving the block closes the connection without draining the body.
    """
    if max_bytes <= 0:
        raise ValueError("max_bytes must be positive")
    settings = get_settings()
    if timeout is None:
        timeout = settings.fetch_timeout_seconds
    if timeout <= 0:
        raise ValueError("timeout must be positive")
    if allow_private is None:
        allow_private = settings.allow_private_urls
    if max_redirects is None:
        max_redirects = settings.fetch_max_redirects

    target = _parse_target(url, allow_private=allow_private)
    deadline = _Deadline(timeout)
    response: FetchResponse | None = None
    try:
        response = _follow(
            target,
            max_bytes=max_bytes,
            allow_private=allow_private,
            max_redirects=max_redirects,
            deadline=deadline,
        )
        yield response
    finally:
        if response is not None:
            response.close()
        deadline.cancel()


def _follow(
    target: _Target,
    *,
    max_bytes: int,
    allow_private: bool,
    max_redirects: int,
    deadline: _Deadline,
) -> FetchResponse:
    redirects = 0
    while True:
        addresses = _resolve_checked(
            target, allow_private=allow_private, deadline=deadline, redirected=redirects > 0
        )
        raw, pool = _request(target, addresses, deadline)
        try:
            status = raw.status
            if status in REDIRECT_STATUSES:
                location = raw.headers.get("Location")
                if not location:
                    raise UpstreamError(
                        f"The server at '{target.host}' answered HTTP {status} (redirect) "
                        "without saying where to; use the image's final URL.",
                        details={"upstream_status": status},
                    )
                if redirects >= max_redirects:
                    raise UpstreamError(
                        f"The URL redirected more than {max_redirects} times; "
                        "use the image's final URL.",
                    )
                next_url = urljoin(target.url, _header_text(location.strip()))
                try:
                    next_target = _parse_target(next_url, allow_private=allow_private)
                except BlockedUrl as exc:
                    raise BlockedUrl(f"The URL redirected to {next_url!r}: {exc.message}") from exc
                except BadRequest as exc:
                    raise UpstreamError(
                        f"The URL redirected to an invalid URL ({exc.message}); "
                        "use the image's final URL."
                    ) from exc
            elif not 200 <= status < 300:
                raise UpstreamError(
                    f"The server at '{target.host}' answered HTTP {status} for this URL; "
                    "check that the URL points to a publicly available image.",
                    details={"upstream_status": status},
                )
            else:
                response = FetchResponse(
                    raw=raw,
                    pool=pool,
                    url=target.url,
                    host=target.host,
                    port=target.port,
                    deadline=deadline,
                    max_bytes=max_bytes,
                )
                if response.content_length is not None and response.content_length > max_bytes:
                    raise _too_large(target.url, max_bytes)
                return response
        except BaseException:
            _close_quietly(raw, pool)
            raise
        _close_quietly(raw, pool)
        target = next_target
        redirects += 1


@dataclass(frozen=True)
class FetchResult:
    """A whole body fetched by ``fetch_bytes``."""

    data: bytes
    content_type: str | None
    url: str  # final URL after redirects
    headers: dict[str, str] = field(default_factory=dict)


def fetch_bytes(
    url: str,
    *,
    max_bytes: int,
    timeout: float | None = None,
    allow_private: bool | None = None,
) -> FetchResult:
    """Fetch the whole body (at most ``max_bytes``) with all of ``open_url``'s checks."""
    with open_url(url, max_bytes=max_bytes, timeout=timeout, allow_private=allow_private) as resp:
        data = resp.read_all()
        return FetchResult(
            data=data, content_type=resp.content_type, url=resp.url, headers=resp.headers
        )
