"""boto3 clients and the table, created lazily and reused across warm invocations.

boto3 reads AWS_ENDPOINT_URL itself, so the same code talks to AWS, the moto server of the
local stack, or moto's in-process mock in unit tests. Clients are keyed on the endpoint and
region so tests that change them get fresh clients.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Callable, Iterator
from typing import Any

import boto3
from botocore.config import Config

from imgsvc.config import get_settings

_lock = threading.Lock()
_cache: dict[tuple[str, ...], Any] = {}

# Path-style keeps presigned URLs valid for any bucket name and for local endpoints.
_S3_CONFIG = Config(signature_version="s3v4", s3={"addressing_style": "path"})


def _key(kind: str) -> tuple[str, ...]:
    return (
        kind,
        os.environ.get("AWS_ENDPOINT_URL", ""),
        os.environ.get("AWS_REGION", os.environ.get("AWS_DEFAULT_REGION", "")),
    )


def _get(kind: str, factory: Any) -> Any:
    key = _key(kind)
    with _lock:
        if key not in _cache:
            _cache[key] = factory()
        return _cache[key]


def s3() -> Any:
    return _get("s3", lambda: boto3.client("s3", config=_S3_CONFIG))


def dynamodb() -> Any:
    """The DynamoDB resource; ``dynamodb().meta.client`` takes plain Python values."""
    return _get("dynamodb", lambda: boto3.resource("dynamodb"))


def table() -> Any:
    return dynamodb().Table(get_settings().table_name)


def ddb_client() -> Any:
    """Low-level client of the resource: transactions with Python values, not typed JSON."""
    return dynamodb().meta.client


def all_items(
    call: Callable[..., dict[str, Any]],
    *,
    next_limit: Callable[[int], int] | None = None,
    **kwargs: Any,
) -> Iterator[dict[str, Any]]:
    """Every item of a paginated ``table().query`` or ``table().scan``, page after page.

    Written here because boto3's paginators belong to the low-level client, whose items come
    back as typed JSON; the resource's Table (plain Python values) has none. ``next_limit``
    changes the page size after each page (a listing that reads more as it goes deeper).
    """
    while True:
        page = call(**kwargs)
        yield from page.get("Items", [])
        last = page.get("LastEvaluatedKey")
        if not last:
            return
        kwargs["ExclusiveStartKey"] = last
        if next_limit is not None and "Limit" in kwargs:
            kwargs["Limit"] = next_limit(kwargs["Limit"])


def reset() -> None:
    """Forget every client (tests that switch mocks call this)."""
    with _lock:
        _cache.clear()
