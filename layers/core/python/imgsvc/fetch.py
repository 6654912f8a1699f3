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

import contextlib
import ipaddress
import re
import socket
import ssl
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from concurrent.futures import TimeoutError as FutureTimeoutError
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.client import HTTPException
from typing import Any
from urllib.parse import quote, urljoin, urlsplit

import urllib3
from urllib3 import exceptions as u3exc
from urllib3.connection import HTTPConnection, HTTPSConnection
from urllib3.connectionpool import HTTPConnectionPool, HTTPSConnectionPool

from imgsvc import __version__
from imgsvc.config import get_settings
from imgsvc.errors import (
    BadRequest,
    BlockedUrl,
    InvalidImage,
    PayloadTooLarge,
    ServiceError,
    UpstreamError,
    UpstreamTimeout,
)
from imgsvc.observability import logger

USER_AGENT = f"imgsvc/{__version__} (image service URL fetcher)"
ACCEPT = "image/*"
MAX_URL_LENGTH = 2048
# Per-address connect limit, so one black-holed address (e.g. IPv6 without a route)
# leaves time to try the next one within the overall deadline.
CONNECT_TIMEOUT_SECONDS = 3.0
DEFAULT_CHUNK_SIZE = 64 * 1024
REDIRECT_STATUSES = frozenset({301, 302, 303, 307, 308})


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


# --------------------------------------------------------------------------- addresses

_SHARED_V4 = ipaddress.ip_network("100.64.0.0/10")  # carrier-grade NAT, not global
_V4_COMPATIBLE = ipaddress.ip_network("::/96")  # deprecated ::a.b.c.d
_V4_TRANSLATED = ipaddress.ip_network("::ffff:0:0:0/96")  # SIIT ::ffff:0:a.b.c.d
# Instance metadata services at private (not link-local) IPv6 addresses: AWS's IMDS (and its
# DNS resolver and time server next to it). Refused even where private addresses are allowed.
_METADATA_V6 = ipaddress.ip_network("fd00:ec2::/32")
_NAT64_WELL_KNOWN = ipaddress.ip_network("64:ff9b::/96")  # embeds a v4 in the low 32 bits
_NAT64_LOCAL = ipaddress.ip_network("64:ff9b:1::/48")  # local-use NAT64, site specific
_TEREDO = ipaddress.ip_network("2001::/32")  # client address is obfuscated: refuse


def blocked_reason(address: str, *, allow_private: bool = False) -> str | None:
    """Why ``address`` must not be fetched from (e.g. ``"loopback"``), or None if it may be.

    ``ipaddress.is_global`` alone is not enough on 3.11 (multicast, site-local, 6to4 and
    NAT64 forms count as global there), so the dangerous ranges are checked explicitly and
    IPv6 forms that embed an IPv4 address are judged by that IPv4 address.
    """
    try:
        ip = ipaddress.ip_address(address)
    except ValueError:
        return "unrecognised"
    return _reason(ip, allow_private)


def _reason(ip: ipaddress.IPv4Address | ipaddress.IPv6Address, allow_private: bool) -> str | None:
    # No TCP server lives at these, even in local development.
    if ip.is_unspecified:
        return "unspecified"
    if ip.is_multicast:
        return "multicast"
    if isinstance(ip, ipaddress.IPv6Address):
        embedded: ipaddress.IPv4Address | None = ip.ipv4_mapped
        if embedded is None and ip in _NAT64_WELL_KNOWN:
            embedded = ipaddress.IPv4Address(int(ip) & 0xFFFFFFFF)
        if embedded is None:
            embedded = ip.sixtofour
        if embedded is not None:
            inner = _reason(embedded, allow_private)
            return f"{inner} (IPv4 inside IPv6)" if inner else None
    # Link-local holds cloud metadata services (169.254.169.254), and so does fd00:ec2::254:
    # refused even where private addresses are allowed for local development.
    if ip.is_link_local:
        return "link-local"
    if isinstance(ip, ipaddress.IPv6Address) and ip in _METADATA_V6:
        return "instance metadata"
    if allow_private:
        return None
    if ip.is_loopback:
        return "loopback"
    if isinstance(ip, ipaddress.IPv4Address) and ip in _SHARED_V4:
        return "shared (carrier-grade NAT)"
    if ip.is_private:
        return "private"
    if isinstance(ip, ipaddress.IPv6Address):
        if ip.is_site_local:
            return "site-local"
        if ip in _V4_COMPATIBLE or ip in _V4_TRANSLATED or ip in _NAT64_LOCAL:
            return "IPv4-translation"
        if ip in _TEREDO:
            return "Teredo"
    if ip.is_reserved:
        return "reserved"
    if not ip.is_global:
        return "non-public"
    return None


# --------------------------------------------------------------------------- URLs

_LABEL_RE = re.compile(r"^[a-z0-9_-]{1,63}$")
# WHATWG: a host whose last label is numeric is an IPv4 address in some spelling.
_NUMERIC_LABEL_RE = re.compile(r"^(?:0x[0-9a-f]*|[0-9]+)$")
_PORT_RE = re.compile(r"^[0-9]{1,5}$")
_DEFAULT_PORTS = {"http": 80, "https": 443}
_PATH_SAFE = "/%!$&'()*+,;=:@-._~"
_QUERY_SAFE = _PATH_SAFE + "?"


@dataclass(frozen=True)
class _Target:
    url: str  # normalised, without fragment
    scheme: str
    host: str  # ASCII, lower case, no brackets, no trailing dot
    port: int
    host_header: str
    request_target: str  # path and query


def validate_url(url: str, *, allow_private: bool | None = None) -> str:
    """Check ``url`` without any network access and return its normalised form.

    Raises ``BadRequest`` (malformed) or ``BlockedUrl`` (not allowed). Addresses are only
    checked when fetching, since that needs DNS. Useful for cache keys and early errors.
    """
    if allow_private is None:
        allow_private = get_settings().allow_private_urls
    return _parse_target(url, allow_private=allow_private).url


def _parse_target(url: str, *, allow_private: bool) -> _Target:
    if not isinstance(url, str) or not url.strip(" "):
        raise BadRequest("A URL is required, such as https://example.com/photo.jpg.")
    url = url.strip(" ")
    if len(url) > MAX_URL_LENGTH:
        raise BadRequest(
            f"The URL is {len(url)} characters long; the limit is {MAX_URL_LENGTH}. "
            "Use a shorter link to the image."
        )
    # urlsplit silently drops tabs and newlines; refuse them instead of guessing.
    if any(ord(ch) < 0x20 or ord(ch) == 0x7F for ch in url):
        raise BadRequest("The URL contains control characters; remove them and try again.")
    try:
        parts = urlsplit(url)
    except ValueError as exc:
        raise BadRequest(f"The URL could not be parsed ({exc}); check it and try again.") from exc

    scheme = parts.scheme.lower()
    if scheme not in _DEFAULT_PORTS:
        shown = f"'{scheme}:'" if scheme else "no scheme"
        raise BlockedUrl(
            f"Only http:// and https:// URLs can be fetched (got {shown}). "
            "Use a web link to the image."
        )
    netloc = parts.netloc
    if "@" in netloc:
        raise BlockedUrl(
            "URLs with a user name or password (user@host) are not allowed; "
            "remove the credentials from the URL."
        )
    host, host_header, port = _parse_netloc(netloc, scheme, allow_private=allow_private)

    path = quote(parts.path or "/", safe=_PATH_SAFE)
    if not path.startswith("/"):
        path = "/" + path
    request_target = path + ("?" + quote(parts.query, safe=_QUERY_SAFE) if parts.query else "")
    authority = host_header if port == _DEFAULT_PORTS[scheme] else f"{host_header}:{port}"
    return _Target(
        url=f"{scheme}://{authority}{request_target}",
        scheme=scheme,
        host=host,
        port=port,
        host_header=authority,
        request_target=request_target,
    )


def _parse_netloc(netloc: str, scheme: str, *, allow_private: bool) -> tuple[str, str, int]:
    """Return (host, host as written in a Host header, port) or raise."""
    if netloc.startswith("["):
        end = netloc.find("]")
        if end == -1:
            raise BadRequest("The URL has an unclosed '[' in its host; check the address.")
        raw_host, rest = netloc[1:end], netloc[end + 1 :]
        if rest and not rest.startswith(":"):
            raise BadRequest("The URL has text after its IPv6 address; check the address.")
        port_text = rest[1:]
        bracketed = True
    else:
        raw_host, _, port_text = netloc.partition(":")
        bracketed = False

    port = _parse_port(port_text, scheme)
    if not raw_host:
        raise BadRequest(
            "The URL has no host name; use a full URL such as https://example.com/photo.jpg."
        )
    if "%" in raw_host:
        raise BlockedUrl(
            "Percent-encoded or zone-scoped host names are not allowed; "
            "write the host name plainly."
        )
    if bracketed:
        try:
            ip = ipaddress.IPv6Address(raw_host)
        except ValueError as exc:
            raise BadRequest(f"'[{raw_host}]' is not a valid IPv6 address; check the URL.") from exc
        return str(ip), f"[{ip}]", port

    host = raw_host
    if not host.isascii():
        try:
            # IDNA 2003 also folds full-width digits and ideographic dots, so those
            # spellings become the plain ASCII host checked below.
            host = host.encode("idna").decode("ascii")
        except UnicodeError as exc:
            raise BadRequest(
                f"The host name '{raw_host}' is not a valid domain name; check the URL."
            ) from exc
    host = host.lower()
    if host.endswith("."):
        host = host[:-1]  # one trailing dot means the same name; keep a single spelling
    labels = host.split(".")
    if len(host) > 253 or not all(_LABEL_RE.match(label) for label in labels):
        raise BadRequest(f"The host name '{raw_host}' is not valid; check the URL.")
    if _NUMERIC_LABEL_RE.match(labels[-1]):
        try:
            canonical = str(ipaddress.IPv4Address(host)) == host
        except ValueError:
            canonical = False
        if not canonical:
            raise BlockedUrl(
                f"The host '{raw_host}' is an IP address in a non-standard form; "
                "write IPv4 addresses as four decimal numbers (like 93.184.216.34) "
                "or use the host name."
            )
    if not allow_private and (host == "localhost" or host.endswith(".localhost")):
        raise BlockedUrl(
            f"The host '{raw_host}' is this machine, which cannot be fetched from; "
            "use a publicly reachable image URL."
        )
    return host, host, port


def _parse_port(port_text: str, scheme: str) -> int:
    if port_text == "":
        return _DEFAULT_PORTS[scheme]
    if not _PORT_RE.match(port_text) or not 1 <= int(port_text) <= 65535:
        raise BadRequest(
            f"The URL port '{port_text}' is not valid; use a number from 1 to 65535 or none."
        )
    return int(port_text)


# --------------------------------------------------------------------------- DNS


def resolve_host(host: str, port: int) -> list[str]:
    """All addresses (A and AAAA) of ``host``. The only place that resolves names.

    Tests replace this function; anything that resolves must call it through the
    module so the replacement is seen.
    """
    infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    return [str(info[4][0]) for info in infos]


_dns_executor: ThreadPoolExecutor | None = None
_dns_lock = threading.Lock()


def _dns_pool() -> ThreadPoolExecutor:
    # getaddrinfo has no timeout of its own; a worker thread lets the deadline cover DNS.
    global _dns_executor
    with _dns_lock:
        if _dns_executor is None:
            _dns_executor = ThreadPoolExecutor(max_workers=4, thread_name_prefix="imgsvc-dns")
        return _dns_executor


# getaddrinfo's "no such name" answers (EAI_NODATA is not defined on every platform).
_NO_SUCH_NAME = {socket.EAI_NONAME, getattr(socket, "EAI_NODATA", socket.EAI_NONAME)}


def _resolve_checked(
    target: _Target, *, allow_private: bool, deadline: _Deadline, redirected: bool
) -> list[str]:
    """Resolve the host once and return its addresses if every one of them is allowed."""
    deadline.check()
    deadline.phase, deadline.host = "resolving the host name", target.host
    future = _dns_pool().submit(resolve_host, target.host, target.port)
    try:
        found = future.result(timeout=max(deadline.remaining(), 0.0))
    except FutureTimeoutError as exc:
        future.cancel()
        raise deadline.timeout_error() from exc
    except socket.gaierror as exc:
        if exc.errno in _NO_SUCH_NAME:
            # DNS answered that the name does not exist: the URL is wrong, not the upstream.
            raise BadRequest(
                f"The host '{target.host}' does not exist (DNS has no such name); "
                "check the spelling of the URL."
            ) from exc
        raise UpstreamError(
            f"The host '{target.host}' could not be resolved; check the spelling of the URL."
        ) from exc
    except (OSError, UnicodeError) as exc:
        raise UpstreamError(
            f"The host '{target.host}' could not be resolved; check the spelling of the URL."
        ) from exc

    addresses = list(dict.fromkeys(found))  # de-duplicate, keep resolver order
    if not addresses:
        raise UpstreamError(f"The host '{target.host}' has no addresses; check the URL.")
    for address in addresses:
        reason = blocked_reason(address, allow_private=allow_private)
        if reason:
            logger.warning(
                "blocked fetch", extra={"host": target.host, "address": address, "reason": reason}
            )
            lead = "The URL redirected to host" if redirected else "The URL's host"
            raise BlockedUrl(
                f"{lead} '{target.host}' resolves to a {reason} address, and only "
                "addresses on the public internet can be fetched. "
                "Use a publicly reachable image URL."
            )
    # IPv4 first: Lambda usually has no IPv6 route, and a fast failure there still costs
    # a connect attempt.
    return sorted(addresses, key=lambda a: ":" in a)


# --------------------------------------------------------------------------- deadline


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


# --------------------------------------------------------------------------- public API


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
