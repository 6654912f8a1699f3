"""Name resolution with a deadline, every address checked before use."""

from __future__ import annotations

import socket
import threading
from concurrent.futures import ThreadPoolExecutor
from concurrent.futures import TimeoutError as FutureTimeoutError

from imgsvc.errors import (
    BadRequest,
    BlockedUrl,
    UpstreamError,
)
from imgsvc.fetch.addresses import blocked_reason
from imgsvc.fetch.connections import _Deadline
from imgsvc.fetch.urls import _Target
from imgsvc.observability import logger


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
