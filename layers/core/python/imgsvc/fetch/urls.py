"""URL validation: one reading of every URL (scheme, host spelling, port, length)."""

from __future__ import annotations

import ipaddress
import re
from dataclasses import dataclass
from urllib.parse import quote, urlsplit

from imgsvc.config import get_settings
from imgsvc.errors import (
    BadRequest,
    BlockedUrl,
)

MAX_URL_LENGTH = 2048


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
